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
        value = float(text)
        if not value.is_integer():
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        return int(value)


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
        elif typing.get_origin(tp) is tuple:
            (inner, *_) = typing.get_args(tp)
            conv = _int if inner is int else inner
            parser.add_argument(flag, nargs="+", type=conv, metavar=inner.__name__.upper(), **kwargs)
        else:
            conv = _int if tp is int else tp
            parser.add_argument(flag, type=conv, metavar=getattr(tp, "__name__", "X").upper(), **kwargs)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return " ".join(str(v) for v in value)
    return str(value)


def given(namespace: argparse.Namespace, cls: type, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The config fields the user set on the command line (tuples restored), minus ``skip``."""
    names = {f.name for f in dataclasses.fields(cls)} - set(skip)
    out = {}
    for key, value in vars(namespace).items():
        if key in names:
            out[key] = tuple(value) if isinstance(value, list) else value
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
