"""Typed, frozen config dataclasses: field docstrings, validation helpers, JSON round trips.

Every algorithm's config is a frozen dataclass whose fields carry a docstring (a string literal right
after the field). Those docstrings become the CLI help and the documentation, so they are read here
once, from the source, with :mod:`ast`.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import itertools
import math
import textwrap
import types
import typing
from typing import Any

from rlcanon.errors import ConfigError


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Map each dataclass field of ``cls`` (and its bases) to the docstring written below it."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            source = textwrap.dedent(inspect.getsource(klass))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        assert isinstance(body, ast.ClassDef)
        stmts = body.body
        for stmt, nxt in itertools.pairwise(stmts):
            if (
                isinstance(stmt, ast.AnnAssign)
                and isinstance(stmt.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def resolved_types(cls: type) -> dict[str, Any]:
    """The evaluated annotation of each field (configs use ``from __future__ import annotations``)."""
    return typing.get_type_hints(cls)


def unwrap_optional(tp: Any) -> tuple[Any, bool]:
    """Return (inner type, is_optional) for ``X | None`` annotations."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of a config dataclass (tuples become lists)."""
    return {f.name: jsonable(getattr(config, f.name)) for f in dataclasses.fields(config)}


def jsonable(value: Any) -> Any:
    """A config value as :func:`to_dict` records it (tuples become lists)."""
    if isinstance(value, tuple):
        return [jsonable(v) for v in value]
    return value


def from_dict(cls: type, data: dict[str, Any]) -> Any:
    """Build ``cls`` from a dict written by :func:`to_dict`; unknown keys are an error."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no field(s) {unknown}; allowed: {sorted(names)}")
    hints = resolved_types(cls)
    kwargs = {}
    for key, value in data.items():
        inner, _ = unwrap_optional(hints[key])
        if typing.get_origin(inner) is tuple and isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


# ---- validation helpers: each names the field, the bad value and what is allowed ----


def check_types(config: Any) -> None:
    """Check every field's value against its annotation (int, float, bool, str, tuples of those, or
    a dict), so that a config built from Python gets the same one-line errors as one built from the
    command line. Integers are accepted (and stored) as floats where a float is expected."""
    hints = resolved_types(type(config))
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        tp, optional = unwrap_optional(hints[field.name])
        if value is None and optional:
            continue
        origin = typing.get_origin(tp)
        if origin is tuple:
            inner = typing.get_args(tp)[0]
            if isinstance(value, list):
                value = tuple(value)
                object.__setattr__(config, field.name, value)
            if not isinstance(value, tuple) or not all(_is(v, inner) for v in value):
                raise ConfigError(
                    f"{field.name}={value!r} is not allowed; it must be a list of {inner.__name__}"
                )
        elif origin is dict or tp is dict:
            if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
                raise ConfigError(f"{field.name}={value!r} is not allowed; it must be a dict with str keys")
        elif isinstance(tp, type):
            if tp is float and _is(value, int):
                object.__setattr__(config, field.name, float(value))
            elif not _is(value, tp):
                raise ConfigError(f"{field.name}={value!r} is not allowed; it must be {_article(tp)}")


def _is(value: Any, tp: type) -> bool:
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, float)
    return isinstance(value, tp)


def _article(tp: type) -> str:
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}.get(
        tp.__name__, tp.__name__
    )


def check_int(name: str, value: int, low: int, high: int) -> None:
    """An integer in [low, high] (the upper bound keeps absurd values from exhausting the machine)."""
    if not (low <= value <= high):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer in [{low}, {high}]")


def check_positive(name: str, value: float, *, allow_zero: bool = False) -> None:
    bad = value < 0 if allow_zero else value <= 0
    if bad or (isinstance(value, float) and not math.isfinite(value)):
        allowed = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a finite number {allowed}")


def check_range(name: str, value: float, low: float, high: float) -> None:
    if not (low <= value <= high):
        raise ConfigError(f"{name}={value!r} is not allowed; it must lie in [{low}, {high}]")


def check_choice(name: str, value: Any, allowed: typing.Iterable[Any]) -> None:
    allowed = list(allowed)
    if value not in allowed:
        raise ConfigError(f"{name}={value!r} is not allowed; choose one of {allowed}")


def check_memory(name: str, nbytes: int) -> None:
    """Refuse a setting whose arrays would need more than 80% of this machine's memory."""
    import os

    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return
    if nbytes > 0.8 * total:
        raise ConfigError(
            f"{name} needs about {nbytes / 2**30:.1f} GiB of memory, and this machine has "
            f"{total / 2**30:.1f} GiB; lower {name}"
        )
