"""A strategy's state as a checkpointed part: its arrays and float scalars as arrays, its counters
and generator state as JSON, every value checked against a freshly built strategy of the same
settings before it is loaded."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcanon.core.seeding import RNG_SCHEMA
from rlcanon.core.validate import ArraySpec, Int, Map
from rlcanon.errors import CheckpointError

POSITIVE = ("sigma",)
"""Float scalars that must be > 0."""
UNBOUNDED = ("best_f",)
"""Float scalars that may be -inf (nothing finite seen yet)."""


class StrategyState:
    def __init__(self, es: Any) -> None:
        self.es = es
        self._fresh = es.state_dict()
        self._pending: dict[str, np.ndarray] = {}

    def _split(self, state: dict[str, Any]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        arrays, json = {}, {}
        for key, value in state.items():
            if isinstance(value, np.ndarray):
                arrays[key] = value
            elif isinstance(value, float):
                arrays[f"scalar/{key}"] = np.array(value, dtype=np.float64)
            else:
                json[key] = value
        return arrays, json

    def state_arrays(self) -> dict[str, np.ndarray]:
        return self._split(self.es.state_dict())[0]

    def array_specs(self) -> dict[str, ArraySpec]:
        specs = {}
        for key, value in self._split(self._fresh)[0].items():
            name = key.removeprefix("scalar/")
            specs[key] = ArraySpec(
                value.shape,
                value.dtype.name,
                finite=name not in UNBOUNDED,
                low=1e-300 if name in POSITIVE else None,
            )
        return specs

    def state_json(self) -> dict[str, Any]:
        return self._split(self.es.state_dict())[1]

    def json_schema(self) -> Map:
        fields: dict[str, Any] = {}
        for key, value in self._split(self._fresh)[1].items():
            if key == "rng":
                fields[key] = RNG_SCHEMA.fields["numpy"]
            elif isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"strategy state {key!r} has no schema")
            else:
                fields[key] = Int()
        return Map(fields)

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._pending = dict(arrays)

    def load_state_json(self, obj: dict[str, Any]) -> None:
        state: dict[str, Any] = dict(obj)
        for key, value in self._pending.items():
            if key.startswith("scalar/"):
                state[key.removeprefix("scalar/")] = float(value)
            else:
                state[key] = np.array(value)
        if "C" in state:  # CMA-ES: the covariance must be symmetric positive definite
            c = state["C"]
            if not np.allclose(c, c.T) or np.linalg.eigvalsh((c + c.T) / 2).min() <= 0:
                raise CheckpointError("strategy covariance C is not symmetric positive definite")
        if "D" in state and (state["D"] <= 0).any():
            raise CheckpointError("strategy scales D must be > 0")
        for key in ("var", "stds"):
            if key in state and (state[key] <= 0).any():
                raise CheckpointError(f"strategy {key} must be > 0")
        self.es.load_state_dict(state)
