"""Flatten torch modules and optimizers into (arrays, JSON) for safetensors checkpoints."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from rlcanon.errors import CheckpointError


def module_arrays(prefix: str, module: nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}/{k}": v.detach().clone() for k, v in module.state_dict().items()}


def load_module(prefix: str, module: nn.Module, arrays: dict[str, np.ndarray]) -> None:
    own = module.state_dict()
    state = {}
    for key, ref in own.items():
        name = f"{prefix}/{key}"
        if name not in arrays:
            raise CheckpointError(f"checkpoint has no tensor {name!r}; it was saved by another model")
        value = torch.from_numpy(np.ascontiguousarray(arrays[name]))
        if tuple(value.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"checkpoint tensor {name!r} has shape {tuple(value.shape)}, the model needs "
                f"{tuple(ref.shape)}; it was saved with other network sizes or another env"
            )
        state[key] = value.to(ref.dtype)
    module.load_state_dict(state)


def optimizer_state(
    prefix: str, opt: torch.optim.Optimizer
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = opt.state_dict()
    arrays: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for pid, entries in sd["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                arrays[f"{prefix}/{pid}/{key}"] = value.detach().clone().reshape(value.shape)
            else:
                scalars.setdefault(str(pid), {})[key] = value
    return arrays, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(
    prefix: str, opt: torch.optim.Optimizer, arrays: dict[str, np.ndarray], meta: dict[str, Any]
) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in arrays.items():
        if not name.startswith(prefix + "/"):
            continue
        pid, key = name[len(prefix) + 1 :].split("/", 1)
        state.setdefault(int(pid), {})[key] = torch.from_numpy(np.ascontiguousarray(value))
    for pid, entries in meta.get("scalars", {}).items():
        state.setdefault(int(pid), {}).update(entries)
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
