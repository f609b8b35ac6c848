"""What an agent's checkpoint holds, named once: its modules, its optimizers (state kept per named
parameter, so a run saved on one device or code path loads on any other), its other stateful parts
(buffers, bonus models, ...) and its integer counters.

An agent lists its parts in :meth:`checkpoint_parts`; this module turns them into arrays and JSON,
derives the exact specs a checkpoint must meet from a freshly built agent, and loads a checked
checkpoint back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from rlcanon.core.validate import MAX_INT, ArraySpec, Int, Map, check_json
from rlcanon.errors import CheckpointError


class Stateful(Protocol):
    """A checkpointed part with arrays. It may also define ``check_state_arrays(arrays, where,
    prefix)``: checks across its arrays (consistent counts, a positive definite matrix) that raise
    :class:`CheckpointError` naming ``where`` and ``prefix/key``; it runs before anything is loaded."""

    def state_arrays(self) -> dict[str, np.ndarray]: ...
    def array_specs(self) -> dict[str, ArraySpec]: ...
    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None: ...


@dataclass
class Parts:
    """The checkpointed parts of an agent."""

    modules: dict[str, nn.Module] = field(default_factory=dict)
    optimizers: dict[str, torch.optim.Optimizer] = field(default_factory=dict)
    stateful: dict[str, Stateful] = field(default_factory=dict)
    counters: tuple[str, ...] = ("global_step",)
    """Integer attributes of the agent (global_step first)."""
    json_parts: dict[str, Any] = field(default_factory=dict)
    """Parts whose state is JSON: ``state_json()``, ``json_schema()``, ``load_state_json(obj)``
    (loaded after every array part)."""

    def param_names(self) -> dict[int, str]:
        """id(parameter) -> 'module.parameter' for every module parameter."""
        return {id(p): f"{m}.{n}" for m, mod in self.modules.items() for n, p in mod.named_parameters()}


def _opt_params(opt: torch.optim.Optimizer, names: dict[int, str], opt_name: str) -> list[tuple[str, Any]]:
    out = []
    for group in opt.param_groups:
        for p in group["params"]:
            if id(p) not in names:
                raise ValueError(f"optimizer {opt_name!r} holds a parameter of no checkpointed module")
            out.append((names[id(p)], p))
    return out


def state_specs(opt: torch.optim.Optimizer, name: str, p: torch.Tensor) -> dict[str, ArraySpec]:
    """The per-parameter state an optimizer keeps (Adam, AdamW, RMSprop), as array specs."""
    shape = tuple(p.shape)
    step = ArraySpec((), "float32", low=0.0, high=float(MAX_INT), optional=True, integer=True)
    if isinstance(opt, torch.optim.Adam | torch.optim.AdamW):
        return {
            "exp_avg": ArraySpec(shape, "float32", optional=True),
            "exp_avg_sq": ArraySpec(shape, "float32", low=0.0, optional=True),
            "step": step,
        }
    if isinstance(opt, torch.optim.RMSprop):
        group = opt.param_groups[0]
        specs = {"square_avg": ArraySpec(shape, "float32", low=0.0, optional=True), "step": step}
        if group["momentum"] > 0:
            specs["momentum_buffer"] = ArraySpec(shape, "float32", optional=True)
        if group["centered"]:
            specs["grad_avg"] = ArraySpec(shape, "float32", optional=True)
        return specs
    raise TypeError(
        f"optimizer {name!r} is a {type(opt).__name__}; checkpoints support Adam, AdamW and RMSprop"
    )


def part_arrays(parts: Parts) -> dict[str, Any]:
    """Every array of the parts, by checkpoint key."""
    arrays: dict[str, Any] = {}
    for m, mod in parts.modules.items():
        arrays.update({f"module/{m}/{k}": v.detach() for k, v in mod.state_dict().items()})
    names = parts.param_names()
    for o, opt in parts.optimizers.items():
        for pname, p in _opt_params(opt, names, o):
            keys = state_specs(opt, o, p)
            for key, value in opt.state.get(p, {}).items():
                if key in keys:
                    arrays[f"optim/{o}/{pname}/{key}"] = value.detach()
    for s, part in parts.stateful.items():
        arrays.update({f"{s}/{k}": v for k, v in part.state_arrays().items()})
    return arrays


MAX_WEIGHT = 1e8
"""The largest magnitude a stored network weight may have. Trained RL networks hold weights of
order 1 to 1e3; a value beyond this is a corrupt file, and loading it would make the network's
outputs overflow to infinity and act at random."""


def _module_spec(value: torch.Tensor) -> ArraySpec:
    if value.is_floating_point():
        return ArraySpec.like(value, low=-MAX_WEIGHT, high=MAX_WEIGHT)
    return ArraySpec.like(value)


def part_specs(parts: Parts) -> dict[str, ArraySpec]:
    """The name, shape, dtype and range of every array a checkpoint of these parts must hold."""
    specs: dict[str, ArraySpec] = {}
    for m, mod in parts.modules.items():
        specs.update({f"module/{m}/{k}": _module_spec(v) for k, v in mod.state_dict().items()})
    names = parts.param_names()
    for o, opt in parts.optimizers.items():
        for pname, p in _opt_params(opt, names, o):
            specs.update({f"optim/{o}/{pname}/{k}": v for k, v in state_specs(opt, o, p).items()})
    for s, part in parts.stateful.items():
        specs.update({f"{s}/{k}": v for k, v in part.array_specs().items()})
    return specs


def counter_schema(parts: Parts) -> Map:
    return Map({name: Int(0, MAX_INT) for name in parts.counters})


def part_json(parts: Parts) -> dict[str, Any]:
    return {name: part.state_json() for name, part in parts.json_parts.items()}


def json_schema(parts: Parts) -> Map:
    return Map({name: part.json_schema() for name, part in parts.json_parts.items()})


def _sub(arrays: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    return {k[len(prefix) + 1 :]: v for k, v in arrays.items() if k.startswith(prefix + "/")}


def check_parts(
    parts: Parts, arrays: dict[str, np.ndarray], counters: Any, extra: Any, where: str, state_where: str
) -> None:
    """The checks of :func:`load_parts` that go beyond each array's spec: counters and JSON parts
    against their schemas, optimizer state for all parameters or none, and each part's own checks
    across its arrays (``check_state_arrays``). Arrays must already be checked against
    :func:`part_specs`."""
    check_json(state_where, counters, counter_schema(parts), "agent")
    check_json(state_where, extra, json_schema(parts), "extra")
    names = parts.param_names()
    for o, opt in parts.optimizers.items():
        keys = [
            f"optim/{o}/{pname}/{key}"
            for pname, p in _opt_params(opt, names, o)
            for key in state_specs(opt, o, p)
        ]
        missing = [k for k in keys if k not in arrays]
        if missing and len(missing) != len(keys):
            raise CheckpointError(
                f"{where}: array {missing[0]!r} is missing; expected the state of optimizer {o!r} for every "
                f"parameter or for none"
            )
    for s, part in parts.stateful.items():
        check = getattr(part, "check_state_arrays", None)
        if check is not None:
            check(_sub(arrays, s), where, s)
    for name, jpart in parts.json_parts.items():
        check = getattr(jpart, "check_state_json", None)
        if check is not None:
            check(extra[name], state_where, f"extra.{name}")


def load_parts(
    parts: Parts,
    agent: Any,
    arrays: dict[str, np.ndarray],
    counters: dict[str, int],
    extra: Any,
    where: str,
    state_where: str | None = None,
) -> None:
    """Load arrays already checked against :func:`part_specs`, counters and JSON parts into the
    agent. Everything is checked first (:func:`check_parts`; ``where`` names the arrays' file and
    ``state_where`` the JSON's), so a refused checkpoint loads nothing."""
    state_where = state_where or where
    check_parts(parts, arrays, counters, extra, where, state_where)
    for m, mod in parts.modules.items():
        own = mod.state_dict()
        mod.load_state_dict(
            {
                k: torch.from_numpy(np.array(arrays[f"module/{m}/{k}"], order="C")).to(v.dtype)
                for k, v in own.items()
            }
        )
    names = parts.param_names()
    for o, opt in parts.optimizers.items():
        entries = _opt_params(opt, names, o)
        if not any(
            f"optim/{o}/{pname}/{key}" in arrays for pname, p in entries for key in state_specs(opt, o, p)
        ):
            opt.state.clear()  # saved before the first update
            continue
        for pname, p in entries:
            opt.state[p] = {
                key: torch.from_numpy(np.array(arrays[f"optim/{o}/{pname}/{key}"], order="C")).to(p.device)
                for key in state_specs(opt, o, p)
            }
    for s, part in parts.stateful.items():
        part.load_state_arrays(_sub(arrays, s))
    for name, jpart in parts.json_parts.items():
        jpart.load_state_json(extra[name])
    for name in parts.counters:
        setattr(agent, name, int(counters[name]))
