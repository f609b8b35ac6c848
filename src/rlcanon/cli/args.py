"""Turn a config dataclass into argparse flags: one ``--flag`` per field, with the field's
docstring as its help. Flags default to "not given", so presets can fill what the user left out."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from rlcanon.core.config import field_docs, resolved_types, unwrap_optional


def _int(text: str) -> int:
    """Accept 100000, 1e5 and 100_000 for integers."""
    try:
        return int(text.replace("_", ""))
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not value.is_integer():
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        return int(value)


def _float(text: str) -> float:
    """A finite number (NaN and infinity are refused here, with the flag's name)."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def add_config_flags(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    docs = field_docs(cls)
    hints = resolved_types(cls)
    for field in dataclasses.fields(cls):
        if field.name in skip:
            continue
        flag = "--" + field.name.replace("_", "-")
        tp, _ = unwrap_optional(hints[field.name])
        default = field.default
        help_text = f"{docs.get(field.name, '')} (default: {_show(default)})"
        kwargs: dict[str, Any] = {"dest": field.name, "default": argparse.SUPPRESS, "help": help_text}
        if tp is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif typing.get_origin(tp) is dict or tp is dict:
            parser.add_argument(flag, nargs="+", type=_assignment, metavar="NAME=VALUE", **kwargs)
        elif typing.get_origin(tp) is tuple:
            (inner, *_) = typing.get_args(tp)
            conv = {int: _int, float: _float}.get(inner, inner)
            parser.add_argument(flag, nargs="+", type=conv, metavar=inner.__name__.upper(), **kwargs)
        else:
            conv = {int: _int, float: _float}.get(tp, tp)
            parser.add_argument(flag, type=conv, metavar=getattr(tp, "__name__", "X").upper(), **kwargs)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value) or "none"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "none"
    return str(value)


def _assignment(text: str) -> tuple[str, Any]:
    """``NAME=VALUE`` -> (NAME, VALUE parsed as JSON when it is JSON, else the string)."""
    import json

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} must look like NAME=VALUE")
    try:
        return name, json.loads(value)
    except ValueError:
        return name, value


def given(namespace: argparse.Namespace, cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config fields the user set on the command line (tuples restored), minus ``skip``."""
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    hints = resolved_types(cls)
    out: dict[str, Any] = {}
    for key, value in vars(namespace).items():
        if key in names:
            tp, _ = unwrap_optional(hints[key])
            if typing.get_origin(tp) is dict or tp is dict:
                value = dict(value)
            elif isinstance(value, list):
                value = tuple(value)
            out[key] = value
    return out


class OneLineParser(argparse.ArgumentParser):
    """Errors are one line on stderr (no usage dump) and exit with status 2."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def parse_assignments(items: list[str], flag: str) -> dict[str, Any]:
    """``["name=0.5", "other=true"]`` -> {"name": 0.5, "other": True} (values parsed as JSON when
    they are JSON, else kept as strings); dashes in names become underscores."""
    import json

    from rlcanon.errors import ConfigError

    out: dict[str, Any] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise ConfigError(f"{flag} {item!r} must look like NAME=VALUE")
        try:
            out[name.replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[name.replace("-", "_")] = value
    return out
