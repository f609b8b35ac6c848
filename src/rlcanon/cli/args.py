"""Turn a config dataclass into argparse flags: one ``--flag`` per field, with the field's
docstring as its help. Flags default to "not given", so presets can fill what the user left out."""

from __future__ import annotations

import argparse
import dataclasses
import typing
from pathlib import Path
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
        if default is dataclasses.MISSING and field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
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
    """``NAME=VALUE`` -> (NAME, VALUE parsed as JSON when it is JSON, else the string). NaN and
    infinite numbers are refused: they are not JSON, so the run's config.json could not hold them."""
    import json

    name, sep, value = text.partition("=")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"{text!r} must look like NAME=VALUE")
    try:
        parsed = json.loads(value)
    except ValueError:
        return name, value
    if not _all_finite(parsed):
        raise argparse.ArgumentTypeError(f"{text!r}: NaN and infinite numbers are not allowed")
    return name, parsed


def _all_finite(value: Any) -> bool:
    import math

    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_all_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_all_finite(v) for v in value.values())
    return True


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


# ---- checks of the flags that are not config fields: each names the flag, the value and what is allowed ----

MAX_SEED = 2**32 - 1
"""The largest seed (the configs' bound, rlcanon.run.config.MAX_SEED)."""
IMAGE_SUFFIXES = (".png", ".pdf", ".svg")


def int_flag(text: str) -> int:
    """An argparse type: an integer, also written 1e5 or 100_000."""
    return _int(text)


def float_flag(text: str) -> float:
    """An argparse type: a finite number (NaN and infinity are refused with the flag's name)."""
    return _float(text)


def check_int_flag(flag: str, value: int, low: int, high: int) -> None:
    """``value`` of ``flag`` is an integer in [low, high]."""
    if not low <= value <= high:
        from rlcanon.errors import ConfigError

        raise ConfigError(f"{flag} {value} is not allowed; it must be an integer in [{low}, {high}]")


def check_float_flag(flag: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    """``value`` of ``flag`` is a finite number in [low, high] (or (low, high])."""
    bad = not (low < value <= high if low_open else low <= value <= high)
    if bad:
        from rlcanon.errors import ConfigError

        interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise ConfigError(f"{flag} {value:g} is not allowed; it must be a number in {interval}")


def check_path_flag(flag: str, value: str | None, *, image: bool = False) -> None:
    """A path flag that was given is not empty (and, for a figure, ends in .png, .pdf or .svg)."""
    if value is None:
        return
    from rlcanon.errors import ConfigError

    if not value.strip():
        raise ConfigError(f"{flag} {value!r} is not allowed; give a path")
    if image and Path(value).suffix.lower() not in IMAGE_SUFFIXES:
        raise ConfigError(
            f"{flag} {value!r} is not allowed; the figure's name must end in .png, .pdf or .svg"
        )


def refuse_flags(flags: list[str], why: str) -> None:
    """Refuse flags that were given but would be ignored (a silently ignored flag misleads)."""
    if flags:
        from rlcanon.errors import ConfigError

        names = ", ".join(flags)
        verb, pronoun = ("does", "it") if len(flags) == 1 else ("do", "them")
        raise ConfigError(f"{names} {verb} not apply {why}; drop {pronoun}")


def flag_name(field: str) -> str:
    return "--" + field.replace("_", "-")


def given_run_flags(args: argparse.Namespace) -> list[str]:
    """The run-directory flags (see ``add_run_flags``) the user gave, for commands that write none."""
    given = (
        ("--run-dir", args.run_dir is not None),
        ("--resume", args.resume is not None),
        ("--overwrite", args.overwrite),
        ("--show-config", args.show_config),
    )
    return [flag for flag, was_given in given if was_given]


class OneLineParser(argparse.ArgumentParser):
    """Errors are one line on stderr (no usage dump) and exit with status 2."""

    def error(self, message: str) -> typing.NoReturn:
        text = " ".join(str(message).split())  # one line, even for a value with a newline in it
        self.exit(2, f"{self.prog}: error: {text} (see --help)\n")


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
