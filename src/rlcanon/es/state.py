"""A strategy's state as a checkpointed part: its arrays and float scalars as arrays, its counters
and generator state as JSON, every value checked against a freshly built strategy of the same
settings before it is loaded."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcanon.core.seeding import RNG_SCHEMA
from rlcanon.core.validate import ArraySpec, Int, Map
from rlcanon.errors import CheckpointError

POSITIVE = ("sigma", "sigma0", "D", "var", "stds")
"""Step sizes, scales and variances: every value > 0."""
NON_NEGATIVE = ("v",)
"""Second moments (OpenAI-ES Adam): every value >= 0."""
SENTINEL = ("best_f", "mean_f")
"""Float scalars that may be -inf (nothing finite seen yet, or a NaN fitness); never NaN or +inf."""
RECORDS = ("fitness_history",)
"""Vectors that grow by one value per evaluation (Nelder-Mead's record, replayed on load): any length
up to MAX_RECORD; values may be +-inf (a NaN fitness is stored as -inf, and the strategy refuses NaN)."""
MAX_RECORD = 10**10
BOUNDS = {"seeds": (0, 2**31 - 1)}
"""Integer arrays with a range (noise seeds are drawn from [0, 2**31 - 1))."""


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
            low: float | None
            high: float | None
            low, high = BOUNDS.get(name, (None, None))
            if name in POSITIVE:
                low = 1e-300
            elif name in NON_NEGATIVE:
                low = 0.0
            grows = name in RECORDS
            specs[key] = ArraySpec(
                value.shape,
                value.dtype.name,
                low=low,
                high=high,
                neg_inf=name in SENTINEL,
                max_rows=MAX_RECORD if grows else None,
                finite=not grows,
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

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        """Checks across values (each array already met :meth:`array_specs`): CMA-ES's covariance is
        symmetric positive definite and its eigenvector matrix orthonormal."""
        if "C" in arrays:
            c = np.asarray(arrays["C"], dtype=np.float64)
            if not np.allclose(c, c.T, rtol=1e-8, atol=1e-12 * max(float(np.abs(c).max()), 1e-300)):
                raise CheckpointError(
                    f"{where}: array '{prefix}/C' is not symmetric; expected a covariance matrix"
                )
            try:
                smallest = float(np.linalg.eigvalsh((c + c.T) / 2).min())
            except np.linalg.LinAlgError:
                smallest = float("nan")
            if not smallest > 0:
                raise CheckpointError(
                    f"{where}: array '{prefix}/C' has eigenvalue {smallest}; expected a positive definite "
                    f"covariance"
                )
        if "B" in arrays and "D" in arrays:  # CMA-ES: C = B diag(D^2) B^T with B orthonormal
            b = np.asarray(arrays["B"], dtype=np.float64)
            if not np.allclose(b.T @ b, np.eye(len(b)), atol=1e-6):
                raise CheckpointError(
                    f"{where}: array '{prefix}/B' is not orthonormal; expected eigenvectors of C"
                )
        elif "B" in arrays:  # xNES: the square root of the covariance must be invertible
            sign, logdet = np.linalg.slogdet(np.asarray(arrays["B"], dtype=np.float64))
            if sign == 0 or not np.isfinite(logdet):
                raise CheckpointError(
                    f"{where}: array '{prefix}/B' is singular; expected an invertible matrix"
                )

    def check_state_json(self, obj: dict[str, Any], where: str, path: str) -> None:
        """A generator state the bit generator accepts (checked on a scratch generator)."""
        if "rng" in obj:
            try:
                np.random.default_rng(0).bit_generator.state = obj["rng"]
            except (TypeError, ValueError, KeyError) as exc:
                raise CheckpointError(f"{where}: field {path}.rng is not a generator state ({exc})") from None
        if hasattr(self.es, "check_state_json"):  # a strategy's own checks across its counters
            self.es.check_state_json(obj, where, path)

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self._pending = dict(arrays)

    def load_state_json(self, obj: dict[str, Any]) -> None:
        state: dict[str, Any] = dict(obj)
        for key, value in self._pending.items():
            if key.startswith("scalar/"):
                state[key.removeprefix("scalar/")] = float(value)
            else:
                state[key] = np.array(value)
        self.es.load_state_dict(state)
