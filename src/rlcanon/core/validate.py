"""Checks for everything read from a file: arrays against the names, shapes, dtypes and value ranges
their owner expects, and JSON against a small schema. A mismatch raises :class:`CheckpointError`
with one line naming the file, the key and what was expected, before any value reaches a model, an
optimizer or a native kernel."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcanon.errors import CheckpointError

MAX_INT = 2**53
"""The largest counter a checkpoint may hold (exact in a JSON double)."""


@dataclass(frozen=True)
class ArraySpec:
    """What one stored array must be.

    ``shape`` is exact, except that with ``max_rows`` the leading dimension may be anything from 0
    to ``max_rows`` (replay contents). Float arrays must be finite unless ``finite`` is False;
    ``neg_inf`` also allows -inf (a "nothing seen yet" sentinel such as a best fitness), never NaN
    or +inf. ``low``/``high`` bound every value (inclusive); ``integer`` asks for whole numbers (a
    count kept in a float array). An ``optional`` array may be absent."""

    shape: tuple[int, ...]
    dtype: str
    max_rows: int | None = None
    finite: bool = True
    low: float | None = None
    high: float | None = None
    optional: bool = False
    neg_inf: bool = False
    integer: bool = False

    @staticmethod
    def like(array: Any, **kw: Any) -> ArraySpec:
        """The spec of an existing array or tensor (its shape and dtype), with options ``kw``."""
        arr = np.asarray(array.detach().cpu() if hasattr(array, "detach") else array)
        return ArraySpec(tuple(arr.shape), stored_dtype(arr.dtype), **kw)


def stored_dtype(dtype: Any) -> str:
    """The dtype name an array has once written (booleans are stored as uint8)."""
    dt = np.dtype(dtype)
    return "uint8" if dt == np.bool_ else dt.name


def check_arrays(where: str, arrays: Mapping[str, Any], specs: Mapping[str, ArraySpec]) -> None:
    """Check that ``arrays`` holds exactly the ``specs`` keys with matching shapes, dtypes and values."""
    unknown = sorted(set(arrays) - set(specs))
    if unknown:
        raise CheckpointError(
            f"{where}: unexpected array {unknown[0]!r}; expected only the arrays this model writes "
            f"(it was written by another model or changed)"
        )
    for key, spec in specs.items():
        if key not in arrays:
            if spec.optional:
                continue
            raise CheckpointError(
                f"{where}: array {key!r} is missing; expected it in a checkpoint of this model"
            )
        check_array(where, key, arrays[key], spec)


def check_array(where: str, key: str, value: Any, spec: ArraySpec) -> None:
    arr = np.asarray(value)
    if stored_dtype(arr.dtype) != spec.dtype:
        raise CheckpointError(f"{where}: array {key!r} has dtype {arr.dtype.name}, expected {spec.dtype}")
    shape = tuple(arr.shape)
    if spec.max_rows is not None:
        ok = len(shape) == len(spec.shape) and shape[1:] == spec.shape[1:] and 0 <= shape[0] <= spec.max_rows
        want = f"(n, {', '.join(map(str, spec.shape[1:]))}) with n <= {spec.max_rows}"
    else:
        ok = shape == spec.shape
        want = str(spec.shape)
    if not ok:
        raise CheckpointError(f"{where}: array {key!r} has shape {shape}, expected {want}")
    if arr.size == 0:
        return
    if spec.finite and arr.dtype.kind == "f":
        bad = ~np.isfinite(arr)
        if spec.neg_inf:
            bad &= arr != -np.inf
        if bad.any():
            value = arr[bad].flat[0]
            want = "finite values or -inf" if spec.neg_inf else "finite values"
            raise CheckpointError(f"{where}: array {key!r} holds {value}, expected {want}")
    if arr.dtype.kind in "fiub" and (spec.low is not None or spec.high is not None):
        checked = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
        if checked.size and spec.low is not None and checked.min() < spec.low:
            raise CheckpointError(
                f"{where}: array {key!r} holds {checked.min()}, expected values >= {_bound(spec.low)}"
            )
        if checked.size and spec.high is not None and checked.max() > spec.high:
            raise CheckpointError(
                f"{where}: array {key!r} holds {checked.max()}, expected values <= {_bound(spec.high)}"
            )

    if spec.integer and arr.dtype.kind == "f":
        finite = arr[np.isfinite(arr)]
        if finite.size and (np.floor(finite) != finite).any():
            value = finite[np.floor(finite) != finite].flat[0]
            raise CheckpointError(f"{where}: array {key!r} holds {value}, expected whole numbers (a count)")


def _bound(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(value)


# ---- JSON ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Int:
    low: int = 0
    high: int = MAX_INT


@dataclass(frozen=True)
class Num:
    low: float = -math.inf
    high: float = math.inf


@dataclass(frozen=True)
class Str:
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Bool:
    pass


@dataclass(frozen=True)
class Map:
    """A JSON object with exactly these keys (``optional`` keys may be absent)."""

    fields: Mapping[str, Any]
    optional: tuple[str, ...] = ()


@dataclass(frozen=True)
class AnyMap:
    """A JSON object whose values all follow ``value`` (keys are free)."""

    value: Any


@dataclass(frozen=True)
class AnyJSON:
    """Anything (checked elsewhere)."""


def check_json(where: str, value: Any, schema: Any, path: str = "") -> None:
    """Check ``value`` against ``schema``; the error names the file and the field's path."""
    name = path or "(top level)"
    if isinstance(schema, Int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise CheckpointError(f"{where}: field {name} is {value!r}, expected an integer")
        if not schema.low <= value <= schema.high:
            raise CheckpointError(
                f"{where}: field {name} is {value}, expected an integer in [{schema.low}, {schema.high}]"
            )
    elif isinstance(schema, Num):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise CheckpointError(f"{where}: field {name} is {value!r}, expected a finite number")
        if not schema.low <= value <= schema.high:
            raise CheckpointError(
                f"{where}: field {name} is {value}, expected a number in [{schema.low}, {schema.high}]"
            )
    elif isinstance(schema, Str):
        if not isinstance(value, str) or (schema.choices and value not in schema.choices):
            want = f"one of {list(schema.choices)}" if schema.choices else "a string"
            raise CheckpointError(f"{where}: field {name} is {value!r}, expected {want}")
    elif isinstance(schema, Bool):
        if not isinstance(value, bool):
            raise CheckpointError(f"{where}: field {name} is {value!r}, expected true or false")
    elif isinstance(schema, Map):
        if not isinstance(value, dict):
            raise CheckpointError(f"{where}: field {name} is {type(value).__name__}, expected an object")
        extra = sorted(set(value) - set(schema.fields))
        if extra:
            raise CheckpointError(f"{where}: field {_join(path, extra[0])} is not expected here")
        for key, sub in schema.fields.items():
            if key not in value:
                if key in schema.optional:
                    continue
                raise CheckpointError(f"{where}: field {_join(path, key)} is missing")
            check_json(where, value[key], sub, _join(path, key))
    elif isinstance(schema, AnyMap):
        if not isinstance(value, dict):
            raise CheckpointError(f"{where}: field {name} is {type(value).__name__}, expected an object")
        for key, sub in value.items():
            check_json(where, sub, schema.value, _join(path, str(key)))
    elif not isinstance(schema, AnyJSON):
        raise TypeError(f"unknown schema {schema!r}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
