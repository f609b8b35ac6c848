"""Multilayer perceptrons, and a NumPy snapshot of one for fast acting.

Acting happens one small batch at a time while the weights stay fixed for a whole rollout or
collection phase. Three tiny matmuls in NumPy cost a few microseconds, against tens of microseconds
of torch dispatch, so collectors act through :class:`NumpySequential` snapshots when they can.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcanon.nets.activations import FastTanh

ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "tanh": FastTanh}


def mlp(
    in_dim: int,
    hidden: Sequence[int],
    out_dim: int,
    activation: str = "relu",
    out_gain: float | None = None,
    orthogonal: bool = False,
) -> nn.Sequential:
    """Linear layers of the given hidden sizes with ``activation`` between them.

    With ``orthogonal``, hidden layers use orthogonal init with gain sqrt(2) and the output layer
    ``out_gain`` (the PPO implementation detail from Engstrom et al. 2020 / Huang et al. 2022).
    """
    act = ACTIVATIONS[activation]
    dims = [in_dim, *hidden]
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(dims):
        layers += [_init(nn.Linear(a, b), np.sqrt(2), orthogonal), act()]
    layers.append(_init(nn.Linear(dims[-1], out_dim), out_gain or 1.0, orthogonal))
    return nn.Sequential(*layers)


def _init(layer: nn.Linear, gain: float, orthogonal: bool) -> nn.Linear:
    if orthogonal:
        nn.init.orthogonal_(layer.weight, gain)
        nn.init.zeros_(layer.bias)
    return layer


_NP_ACTS: dict[type[nn.Module], Callable[[np.ndarray], np.ndarray]] = {
    nn.ReLU: lambda x: np.maximum(x, 0.0, out=x),
    nn.Tanh: lambda x: np.tanh(x, out=x),
    FastTanh: lambda x: np.tanh(x, out=x),
    nn.Identity: lambda x: x,
}


class NumpySequential:
    """A frozen NumPy copy of an ``nn.Sequential`` of Linear / ReLU / Tanh / Flatten layers."""

    def __init__(self, module: nn.Sequential) -> None:
        self.ops: list[tuple[str, Any]] = []
        with torch.no_grad():
            for layer in module:
                if isinstance(layer, nn.Linear):
                    w = layer.weight.detach().cpu().numpy().T.copy()
                    b = layer.bias.detach().cpu().numpy().copy()
                    self.ops.append(("linear", (w, b)))
                elif isinstance(layer, nn.Flatten):
                    self.ops.append(("flatten", None))
                elif type(layer) in _NP_ACTS:
                    self.ops.append(("act", _NP_ACTS[type(layer)]))
                else:
                    raise TypeError(f"no NumPy version of {type(layer).__name__}")

    @staticmethod
    def supports(module: nn.Module) -> bool:
        return isinstance(module, nn.Sequential) and all(
            isinstance(m, (nn.Linear, nn.Flatten)) or type(m) in _NP_ACTS for m in module
        )

    def __call__(self, x: np.ndarray) -> np.ndarray:
        out = np.asarray(x, dtype=np.float32)
        for kind, op in self.ops:
            if kind == "linear":
                w, b = op  # type: ignore[misc]
                out = out @ w + b
            elif kind == "flatten":
                out = out.reshape(out.shape[0], -1)
            else:
                out = op(out)  # type: ignore[operator]
        return out
