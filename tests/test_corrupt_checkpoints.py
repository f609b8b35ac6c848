"""The corrupt-checkpoint suite: hundreds of deterministic mutations of the arrays, the JSON and the
pointer of a real checkpoint of every family, each loaded through the command line (``eval``, and
``--resume`` for a fixed subset).

Every mutation must give exit 2 with one ``rlcanon: error:`` line naming the file and what was
expected, and no traceback; only mutations that are genuinely harmless may load (exit 0). A mutation
that puts a non-finite or out-of-range value into a checkpoint is never accepted. Nothing on disk is
changed by a refused load, and a refused resume leaves metrics.csv and summary.json as they were. A
few mutations (a wrong-shaped Adam moment among them) also run in a fresh interpreter, to show that
no native kernel is reached: the exit status is 2, never a signal.

Expectations are stated here, from what each value means (a variance is >= 0, an action indexes
the action set, a priority is > 0), never from the library's own specs, so a spec that is too loose
is a failure of this suite.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import traceback
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from rlcanon.cli import main
from rlcanon.registry import ENTRIES, make_config

FAMILIES: dict[str, tuple[str, dict[str, Any]]] = {
    "dqn": ("dqn", {}),
    "dqn-per": ("dqn", {"prioritized": True}),
    "ppo": ("ppo", {}),
    "ppo-norm": ("ppo", {"normalize_obs": True, "normalize_reward": True}),
    "a2c": ("a2c", {}),
    "sac": ("sac", {}),
    "ppg": ("ppg", {}),
    "es-policy": ("es-policy", {}),
    "tabular": ("tabular", {}),
}
RESUME_CMD = {
    "dqn": ["train", "dqn"],
    "ppo": ["train", "ppo"],
    "a2c": ["train", "a2c"],
    "sac": ["train", "sac"],
    "ppg": ["train", "ppg"],
    "es-policy": ["es", "openai-es"],
    "tabular": ["tabular", "q-learning"],
}
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
"""A NumPy overflow warning would reach the user's stderr as extra lines: here it fails the case."""

REFUSE, ACCEPT, EITHER = "refuse", "accept", "either"
"""refuse: exit 2. accept: exit 0 (the mutation is genuinely harmless). either: a finite value in
the range of what it stands for that no check can call wrong (a huge weight, a legal sentinel):
exit 0, or exit 2 from a later guard, but always one clean line."""
WEIGHTS, STATE, LATEST = "arrays.safetensors", "state.json", "latest.json"


def _config(family: str) -> Any:
    algo, extra = FAMILIES[family]
    entry = ENTRIES[algo]
    return make_config(algo, entry.smoke_env, eval_episodes=1, **{**entry.smoke, **extra})


@cache
def _layout(family: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Array key -> (dtype, shape) of a checkpoint of ``family`` (from a freshly built learner)."""
    from rlcanon.run.state import part_specs
    from rlcanon.runs import _close

    algo, _ = FAMILIES[family]
    config = _config(family)
    learner = ENTRIES[algo].make(config, config.env_id, np.random.default_rng(0))
    try:
        specs = part_specs(learner.checkpoint_parts())
    finally:
        _close(learner)
    return {k: (s.dtype, tuple(s.shape)) for k, s in sorted(specs.items())}


# ---- what values mean (the suite's own view, independent of the library's specs) ----------------

NON_NEGATIVE = (
    "/exp_avg_sq",
    "/square_avg",
    "/step",
    "/var",
    "/count",
    "tables/counts",
    "tables/n",
    "tables/e",
    "replay/priorities",
    "replay/max_priority",
    "replay/meta",
    "replay/valid",
    "replay/terminated",
    "replay/dones",
    "replay/actions",
    "phase/valid",
    "strategy/v",
    "strategy/seeds",
    "strategy/scalar/sigma",
)
"""Keys whose every value must be >= 0."""
BOUNDED_ABOVE = (
    "/step",
    ".flat",  # network weights: |w| <= 1e8
    "/count",
    "tables/counts",
    "tables/n",
    "replay/meta",
    "replay/valid",
    "replay/terminated",
    "replay/dones",
    "replay/actions",
    "phase/valid",
    "strategy/seeds",
)
"""Keys with a known upper bound (a count <= 2**53, a flag <= 1, an action < n, a row index, a
seed < 2**31), so a huge value is out of range."""


CONTINUOUS_ACTIONS = {"sac": (-2.0, 2.0)}
"""Families whose stored actions are points of a Box (Pendulum's [-2, 2]), not indices."""


def _nonneg(key: str) -> bool:
    return any(key.endswith(p) for p in NON_NEGATIVE)


def _bounded(key: str) -> bool:
    return any(key.endswith(p) for p in BOUNDED_ABOVE)


# ---- mutations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Mutation:
    name: str
    apply: Callable[[Path, Path], Any]
    """(checkpoint directory, run directory) -> None: corrupt the files."""
    expect: str
    needles: tuple[str, ...] = ()
    """Substrings the refusal must contain (the file, the key or field)."""


Arrays = dict[str, np.ndarray]


def _edit_arrays(fn: Callable[[Arrays], Any]) -> Callable[[Path, Path], None]:
    def apply(ck: Path, run: Path) -> None:
        path = ck / WEIGHTS
        arrays = {k: np.array(v) for k, v in load_file(str(path)).items()}
        fn(arrays)
        save_file({k: np.array(v, order="C") for k, v in arrays.items()}, str(path))  # (keeps 0-d arrays 0-d)

    return apply


def _set(key: str, value: Any, index: Any = 0) -> Callable[[Arrays], None]:
    """Set element ``index`` of the flattened array (a tuple: a multi-index; 'all': every element)."""

    def fn(arrays: Arrays) -> None:
        arr = np.array(arrays[key])
        if arr.ndim == 0:
            arr = np.array(value).astype(arr.dtype)
        elif isinstance(index, str):
            arr[...] = value
        elif isinstance(index, (tuple, slice)):
            arr[index] = value
        else:
            arr.reshape(-1)[index] = value
        arrays[key] = arr

    return fn


def _replace(key: str, make: Callable[[np.ndarray], np.ndarray]) -> Callable[[Arrays], None]:
    def fn(arrays: Arrays) -> None:
        arrays[key] = make(np.array(arrays[key]))

    return fn


def _grow(a: np.ndarray) -> np.ndarray:
    return np.concatenate([a.reshape(-1)[:1], a.reshape(-1)]) if a.ndim <= 1 else np.concatenate([a, a[:1]])


def _as_int(a: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        return a.astype(np.int32 if a.dtype == np.float32 else np.int64)


HUGE = {"float32": 3e38, "float64": 1e300, "int64": 2**62, "int32": 2**31 - 1, "uint8": 255}


def array_mutations(family: str) -> list[Mutation]:
    layout = _layout(family)
    out: list[Mutation] = []

    def add(name: str, fn: Callable[[Arrays], Any], expect: str, *needles: str) -> None:
        out.append(Mutation(name, _edit_arrays(fn), expect, (WEIGHTS, *needles) if expect != ACCEPT else ()))

    for key, (dtype, shape) in layout.items():
        floating = dtype.startswith("float")
        add(f"{key}:shape-grow", _replace(key, _grow), REFUSE, key)
        add(f"{key}:shape-shrink", _replace(key, lambda a: a[:-1] if a.ndim else a.reshape(1)), REFUSE, key)
        add(f"{key}:shape-extra-dim", _replace(key, lambda a: a[None]), REFUSE, key)
        if sum(n > 1 for n in shape) >= 2:
            add(
                f"{key}:shape-transposed",
                _replace(key, lambda a: np.ascontiguousarray(a.swapaxes(0, -1))),
                REFUSE,
                key,
            )
        add(f"{key}:empty", _replace(key, lambda a: np.zeros((0,), a.dtype)), REFUSE, key)
        add(
            f"{key}:empty-rows",
            _replace(key, lambda a: a[:0] if a.ndim else np.zeros((0, 1), a.dtype)),
            REFUSE,
            key,
        )
        other = "float32" if dtype == "float64" else "float64"
        add(f"{key}:dtype-{other}", _replace(key, lambda a, o=other: a.astype(o)), REFUSE, key)
        if dtype != "int32":
            add(f"{key}:dtype-int32", _replace(key, lambda a: a.astype(np.int32)), REFUSE, key)
        if floating:
            add(f"{key}:integer-cast", _replace(key, _as_int), REFUSE, key)
            add(
                f"{key}:integer-view",
                _replace(key, lambda a: a.view(np.int32 if a.itemsize == 4 else np.int64)),
                REFUSE,
                key,
            )
            add(f"{key}:nan", _set(key, np.nan), REFUSE, key)
            add(f"{key}:inf", _set(key, np.inf), REFUSE, key)
            # -inf is the documented "nothing seen yet" value of a best fitness
            add(f"{key}:-inf", _set(key, -np.inf), EITHER if key.endswith("best_f") else REFUSE, key)
            add(f"{key}:nan-everywhere", _set(key, np.nan, "all"), REFUSE, key)
            continuous = key == "replay/actions" and family in CONTINUOUS_ACTIONS  # -1 is in the box
            add(
                f"{key}:negative", _set(key, -1.0), REFUSE if _nonneg(key) and not continuous else ACCEPT, key
            )
        else:
            add(
                f"{key}:float-view",
                _replace(key, lambda a: a.view(np.float64) if a.itemsize == 8 else a.astype(np.float32)),
                REFUSE,
                key,
            )
            if dtype != "uint8":
                add(f"{key}:negative", _set(key, -1), REFUSE if _nonneg(key) else ACCEPT, key)
        add(f"{key}:huge", _set(key, HUGE[dtype]), REFUSE if _bounded(key) else EITHER, key)
        add(f"{key}:missing", lambda a, k=key: a.pop(k), REFUSE, key)
    first = next(iter(layout))
    add(
        "extra-key:bogus", lambda a: a.update({"bogus/array": np.zeros(3, np.float32)}), REFUSE, "bogus/array"
    )
    add("extra-key:near-miss", lambda a: a.update({first + "_": np.array(a[first])}), REFUSE, first + "_")
    add("extra-key:empty-name", lambda a: a.update({"": np.zeros(1, np.float32)}), REFUSE)
    add("missing:everything", lambda a: a.clear(), REFUSE)
    optim = [k for k in layout if k.startswith("optim/")]
    if optim:
        # a checkpoint written before the first update holds no optimizer state: that is legal
        add("missing:all-optimizer-state", lambda a: [a.pop(k) for k in optim], EITHER)
        moment = next(k for k in optim if k.endswith(("/exp_avg", "/square_avg")))
        add(f"{moment}:wrong-shape-moment", _replace(moment, lambda a: a[: len(a) // 2]), REFUSE, moment)
        add(f"{moment}:scalar-moment", _replace(moment, lambda a: np.array(1.0, np.float32)), REFUSE, moment)
        add(
            f"{moment}:other-param-shape",
            _replace(moment, lambda a: np.zeros((len(a) // 2, 2), np.float32)),
            REFUSE,
            moment,
        )
        step = next(k for k in optim if k.endswith("/step"))
        add(f"{step}:counter-too-large", _set(step, 2.0**60), REFUSE, step)
        add(f"{step}:fraction", _set(step, 1.5), REFUSE, step)  # a count of updates
        add(f"{step}:vector", _replace(step, lambda a: np.array([a, a], np.float32)), REFUSE, step)
        add(f"{step}:zero", _set(step, 0.0), ACCEPT)
    for mod in [k for k in layout if k.startswith("module/")][:1]:
        add(f"{mod}:scaled", _replace(mod, lambda a: a * np.float32(0.5)), ACCEPT)
        add(f"{mod}:zeros", _replace(mod, lambda a: np.zeros_like(a)), ACCEPT)
    if family in CONTINUOUS_ACTIONS:
        low, high = CONTINUOUS_ACTIONS[family]
        add("replay/actions:above-the-box", _set("replay/actions", high + 0.5), REFUSE, "replay/actions")
        add("replay/actions:below-the-box", _set("replay/actions", low - 0.5, 2), REFUSE, "replay/actions")
        add("replay/actions:other-action-in-the-box", _set("replay/actions", 0.5 * high, 3), ACCEPT)
    elif "replay/actions" in layout:
        add("replay/actions:out-of-range", _set("replay/actions", 2), REFUSE, "replay/actions")
        add("replay/actions:far-out-of-range", _set("replay/actions", 2**40, "all"), REFUSE, "replay/actions")
        add("replay/actions:other-valid-action", _set("replay/actions", 1, 3), ACCEPT)
        add("replay/valid:two", _set("replay/valid", 2), REFUSE, "replay/valid")
        add("replay/terminated:three", _set("replay/terminated", 3), REFUSE, "replay/terminated")
        add("replay/dones:nine", _set("replay/dones", 9, 7), REFUSE, "replay/dones")
        add("replay/meta:pos-past-capacity", _set("replay/meta", 2048, 0), REFUSE, "replay/meta")
        add("replay/meta:full-two", _set("replay/meta", 2, 1), REFUSE, "replay/meta")
        add("replay/meta:pos-inconsistent", _set("replay/meta", 5, 0), REFUSE, "replay/meta")
        add("replay/meta:full-but-short", _set("replay/meta", 1, 1), REFUSE, "replay/meta")
        add("replay/meta:negative-pos", _set("replay/meta", -7, 0), REFUSE, "replay/meta")
        add("replay/rows:fewer-but-consistent", _shorten_replay, ACCEPT)
        add("replay/rewards:changed", _set("replay/rewards", 0.25, "all"), ACCEPT)
        add("replay/rows:different-counts", _replace("replay/obs", lambda a: a[:-3]), REFUSE, "replay/")
    if "replay/priorities" in layout:
        add(
            "replay/priorities:zero-for-valid",
            _set("replay/priorities", 0.0, "all"),
            REFUSE,
            "replay/priorities",
        )
        add(
            "replay/priorities:sum-overflows",
            _set("replay/priorities", 1.7e308, slice(0, 4)),
            REFUSE,
            "replay/priorities",
        )
        add("replay/priorities:tiny", _set("replay/priorities", 1e-300, 3), ACCEPT)
        add("replay/max_priority:zero", _set("replay/max_priority", 0.0), ACCEPT)
    if "env/obs/count" in layout:
        add("env/obs/count:zero", _set("env/obs/count", 0.0), REFUSE, "env/obs/count")
        add("env/reward/count:zero", _set("env/reward/count", 0.0), REFUSE, "env/reward/count")
        add("env/obs/var:zero", _set("env/obs/var", 0.0, "all"), ACCEPT)
        # a normaliser's count starts at 1e-4, so it is no whole number
        add("env/obs/count:fraction", _replace("env/obs/count", lambda a: a + 0.5), ACCEPT)
        add("env/reward/returns:reset", _set("env/reward/returns", 0.0, "all"), ACCEPT)
    if "obs/stats" in layout:
        add("obs/stats:negative-sum-of-squares", _set("obs/stats", -1.0, (1, 0)), REFUSE, "obs/stats")
        add("obs/stats:sum-beyond-its-squares", _set("obs/stats", 1e200, (0, 0)), REFUSE, "obs/stats")
        add("obs/count:zero-with-sums", _set("obs/count", 0.0), REFUSE, "obs/")
        add("obs/count:fraction", _replace("obs/count", lambda a: a + 0.5), REFUSE, "obs/count")
        add(
            "obs/stats:all-zero",
            lambda a: (_set("obs/stats", 0.0, "all")(a), _set("obs/count", 0.0)(a)),
            ACCEPT,
        )
        add("strategy/scalar/sigma:zero", _set("strategy/scalar/sigma", 0.0), REFUSE, "strategy/scalar/sigma")
        add("strategy/seeds:too-large", _set("strategy/seeds", 2**31, 1), REFUSE, "strategy/seeds")
        add("strategy/mean:moved", _replace("strategy/mean", lambda a: a + 0.125), ACCEPT)
    if "tables/q" in layout:
        add("tables/q:shifted", _replace("tables/q", lambda a: a - 3.0), ACCEPT)
        add("tables/counts:fraction", _set("tables/counts", 0.5, 5), REFUSE, "tables/counts")
        add("tables/counts:incremented", _replace("tables/counts", lambda a: a + 1.0), ACCEPT)
    return out


def _shorten_replay(arrays: Arrays) -> None:
    """Keep the first 100 rows and say so in meta: a smaller, consistent buffer."""
    for k in list(arrays):
        if k.startswith("replay/") and k not in ("replay/meta", "replay/priorities", "replay/max_priority"):
            arrays[k] = np.ascontiguousarray(arrays[k][:100])
    arrays["replay/meta"] = np.array([100, 0], np.int64)


# ---- JSON ----------------------------------------------------------------------------------


def _edit_state(fn: Callable[[dict[str, Any]], Any]) -> Callable[[Path, Path], None]:
    def apply(ck: Path, run: Path) -> None:
        path = ck / STATE
        state = json.loads(path.read_text())
        new = fn(state)
        path.write_text(json.dumps(state if new is None else new))

    return apply


def _write(name: str, data: bytes | str) -> Callable[[Path, Path], None]:
    def apply(ck: Path, run: Path) -> None:
        path = run / "checkpoints" / LATEST if name == LATEST else ck / name
        if isinstance(data, str):
            path.write_text(data)
        else:
            path.write_bytes(data)

    return apply


def _text(fn: Callable[[str], str]) -> Callable[[Path, Path], None]:
    def apply(ck: Path, run: Path) -> None:
        path = ck / STATE
        path.write_text(fn(path.read_text()))

    return apply


def _at(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set the dotted field ``path`` to ``value`` (a function of the old value; ``...`` deletes it)."""

    def fn(state: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = state
        for p in parents:
            node = node[p]
        if value is ...:
            del node[last]
        else:
            node[last] = value(node.get(last)) if callable(value) else value

    return fn


def _literal(field: str, literal: str) -> Callable[[str], str]:
    """Replace the number of the first ``"field": <number>`` with ``literal``."""

    def fn(text: str) -> str:
        new, n = re.subn(rf'("{field}": )(-?[0-9.eE+]+)', lambda m: m.group(1) + literal, text, count=1)
        assert n == 1, field
        return new

    return fn


COUNTERS = {
    "dqn": ("global_step", "updates"),
    "ppo": ("global_step",),
    "a2c": ("global_step",),
    "sac": ("global_step", "updates"),
    "ppg": ("global_step",),
    "es-policy": ("global_step",),
    "tabular": ("global_step", "episode"),
}
PROGRESS = {
    "dqn": "global_step",
    "ppo": "global_step",
    "a2c": "global_step",
    "sac": "global_step",
    "ppg": "global_step",
    "tabular": "episode",
}
"""The counter that is the budget's progress (ES: the strategy's generation)."""


def json_mutations(family: str) -> list[Mutation]:
    algo, _ = FAMILIES[family]
    out: list[Mutation] = []

    def add(name: str, apply: Callable[[Path, Path], Any], expect: str, *needles: str) -> None:
        out.append(Mutation(name, apply, expect, needles if expect != ACCEPT else ()))

    def field(name: str, path: str, value: Any, expect: str = REFUSE) -> None:
        add(name, _edit_state(_at(path, value)), expect, STATE, path)

    # the file itself
    add("state:not-json", _write(STATE, "{not json"), REFUSE, STATE)
    add("state:empty", _write(STATE, ""), REFUSE, STATE)
    add("state:binary", _write(STATE, b"\xff\xfe\x00\x01garbage"), REFUSE, STATE)
    add("state:list", _write(STATE, "[]"), REFUSE, STATE)
    add("state:null", _write(STATE, "null"), REFUSE, STATE)
    add("state:number", _write(STATE, "512"), REFUSE, STATE)
    add("state:missing", lambda ck, run: (ck / STATE).unlink(), REFUSE, STATE)
    add("state:directory", lambda ck, run: ((ck / STATE).unlink(), (ck / STATE).mkdir()), REFUSE, STATE)
    add(
        "state:symlink-to-dev-zero",
        lambda ck, run: ((ck / STATE).unlink(), (ck / STATE).symlink_to("/dev/zero")),
        REFUSE,
        STATE,
    )
    add(
        "state:deeply-nested",
        _text(lambda t: t.replace('"extra": {', '"extra": {"x": ' + "[" * 100_000 + "]" * 100_000 + ", ", 1)),
        REFUSE,
        STATE,
    )
    add("state:huge-integer-literal", _text(_literal("metrics_rows", "9" * 5000)), REFUSE, STATE)
    add("state:reformatted", _edit_state(lambda s: None), ACCEPT)
    add("state:trailing-whitespace", _text(lambda t: t + "\n\n  \n"), ACCEPT)
    add("state:utf8-bom", _text(lambda t: "\ufeff" + t), REFUSE, STATE)  # (JSON text has no BOM: RFC 8259)
    add("state:duplicate-key-overridden", _text(lambda t: t.replace("{", '{"metrics_rows": -1, ', 1)), ACCEPT)
    add(
        "state:duplicate-key-last-wins",
        _text(lambda t: t[: t.rindex("}")] + ', "metrics_rows": -1}'),
        REFUSE,
        STATE,
        "metrics_rows",
    )
    # NaN / Infinity literals and numbers that overflow a double
    for fname in ("elapsed", "metrics_rows", "step", "global_step"):
        for lit in ("NaN", "Infinity", "-Infinity"):
            add(f"literal:{fname}={lit}", _text(_literal(fname, lit)), REFUSE, STATE)
        add(f"literal:{fname}=1e400", _text(_literal(fname, "1e400")), REFUSE, STATE, fname)
    # top-level fields
    field("format:other", "format", "other-tool")
    field("format:missing", "format", ...)
    for name, value in (("1", 1), ("3", 3), ("string", "2"), ("float", 2.0), ("bool", True), ("null", None)):
        field(f"format_version:{name}", "format_version", value)
    field("format_version:missing", "format_version", ...)
    for name, value in (
        ("negative", -1),
        ("1e30", 1e30),
        ("string", "512"),
        ("null", None),
        ("bool", True),
        ("list", [512]),
        ("off-by-one", lambda v: v + 1),
        ("2**53+1", 2**53 + 1),
        ("2**64", 2**64),
        ("float", float),
    ):
        field(f"step:{name}", "step", value)
    field("step:missing", "step", ...)
    field("algo:other", "algo", "ppo" if algo != "ppo" else "dqn")
    field("algo:number", "algo", 5)
    field("algo:missing", "algo", ...)
    field("extra-field", "bogus", 1)
    # counters
    field("agent:missing", "agent", ...)
    field("agent:list", "agent", [])
    field("agent:null", "agent", None)
    field("agent:string", "agent", "x")
    field("agent:extra-counter", "agent.bogus", 1)
    for c in COUNTERS[algo]:
        for name, value in (
            ("string", str),
            ("list", lambda v: [v]),
            ("null", None),
            ("bool", True),
            ("1e30", 1e30),
            ("float", float),
            ("negative", -1),
            ("2**70", 2**70),
        ):
            field(f"agent.{c}:{name}", f"agent.{c}", value)
        field(f"agent.{c}:missing", f"agent.{c}", ...)
        if c == PROGRESS.get(algo):  # then step and the counters disagree
            add(
                f"agent.{c}:plus-one",
                _edit_state(_at(f"agent.{c}", lambda v: v + 1)),
                REFUSE,
                STATE,
                "field step",
            )
        else:  # a counter that is only reported: any value in its range is legal
            field(f"agent.{c}:plus-one", f"agent.{c}", lambda v: v + 1, ACCEPT)
    # RNG state
    field("rng:missing", "rng", ...)
    field("rng:null", "rng", None)
    field("rng:list", "rng", [])
    field("rng:extra-field", "rng.mt", 1)
    field("rng.numpy:missing", "rng.numpy", ...)
    field("rng.numpy:string", "rng.numpy", "PCG64")
    for name, value in (("MT19937", "MT19937"), ("Philox", "Philox"), ("number", 5)):
        field(f"rng.numpy.bit_generator:{name}", "rng.numpy.bit_generator", value)
    for part in ("state", "inc"):
        for name, value in (
            ("negative", -1),
            ("2**128", 2**128),
            ("string", "x"),
            ("float", 1.5),
            ("null", None),
        ):
            field(f"rng.numpy.state.{part}:{name}", f"rng.numpy.state.{part}", value)
    field("rng.numpy.has_uint32:two", "rng.numpy.has_uint32", 2)
    field("rng.numpy.uinteger:negative", "rng.numpy.uinteger", -1)
    field("rng.numpy.uinteger:2**32", "rng.numpy.uinteger", 2**32)
    field("rng.numpy.state:missing", "rng.numpy.state", ...)
    field("rng.torch:not-base64", "rng.torch", "!!! not base64 !!!")
    field("rng.torch:empty", "rng.torch", "")
    field("rng.torch:truncated", "rng.torch", lambda v: base64.b64encode(base64.b64decode(v)[:100]).decode())
    field(
        "rng.torch:longer", "rng.torch", lambda v: base64.b64encode(base64.b64decode(v) + b"\0" * 8).decode()
    )
    field("rng.torch:number", "rng.torch", 123)
    field("rng.torch:null", "rng.torch", None)
    field("rng.torch:bad-padding", "rng.torch", lambda v: v[:-3])
    field(
        "rng.torch:zeros",
        "rng.torch",
        lambda v: base64.b64encode(bytes(len(base64.b64decode(v)))).decode(),
        REFUSE,
    )
    # clock and metrics rows
    field("clock:missing", "clock", ...)
    field("clock:null", "clock", None)
    field("clock.elapsed:negative", "clock.elapsed", -1.0)
    field("clock.elapsed:string", "clock.elapsed", "1")
    field("clock.elapsed:too-large", "clock.elapsed", 1e13)
    field("clock.train:missing", "clock.train", ...)
    field("clock.wall:extra-field", "clock.wall", 1.0)
    field("clock.elapsed:zero", "clock.elapsed", 0.0, ACCEPT)
    for name, value in (
        ("negative", -1),
        ("1e30", 1e30),
        ("string", "3"),
        ("null", None),
        ("bool", True),
        ("fraction", 3.5),
        ("2**60", 2**60),
    ):
        field(f"metrics_rows:{name}", "metrics_rows", value)
    field("metrics_rows:missing", "metrics_rows", ...)
    field("metrics_rows:zero", "metrics_rows", 0, ACCEPT)
    # more rows than metrics.csv holds (a file cut short): the rows it has are kept, with a note
    field("metrics_rows:larger-than-the-file", "metrics_rows", lambda v: v + 1000, ACCEPT)
    # JSON parts
    field("extra:null", "extra", None)
    field("extra:list", "extra", [])
    field("extra:missing", "extra", ...)
    field("extra.bogus:unknown-part", "extra.bogus", {"x": 1})
    if algo == "es-policy":
        field("extra.strategy:missing", "extra.strategy", ...)
        field("extra.strategy:null", "extra.strategy", None)
        field("extra.strategy.bogus:extra-field", "extra.strategy.bogus", 1)
        for c in ("t", "generation", "evaluations"):
            for name, value in (
                ("negative", -1),
                ("string", "3"),
                ("float", 1.5),
                ("null", None),
                ("bool", True),
                ("1e30", 1e30),
            ):
                field(f"extra.strategy.{c}:{name}", f"extra.strategy.{c}", value)
            field(f"extra.strategy.{c}:missing", f"extra.strategy.{c}", ...)
        add(
            "extra.strategy.generation:off-by-one",
            _edit_state(_at("extra.strategy.generation", lambda v: v + 1)),
            REFUSE,
            STATE,
            "field step",
        )
        field("extra.strategy.rng.bit_generator:MT19937", "extra.strategy.rng.bit_generator", "MT19937")
        field("extra.strategy.rng.state.state:negative", "extra.strategy.rng.state.state", -5)
        field("extra.strategy.rng:null", "extra.strategy.rng", None)
        field("extra.strategy.evaluations:plus-one", "extra.strategy.evaluations", lambda v: v + 1, ACCEPT)
    return out


# ---- the weights file's bytes, the pointer, whole checkpoints -------------------------------------


def _pointer(obj: Any) -> Callable[[Path, Path], None]:
    def apply(ck: Path, run: Path) -> None:
        ptr = run / "checkpoints" / LATEST
        info = json.loads(ptr.read_text())
        ptr.write_text(json.dumps(obj(info) if callable(obj) else obj))

    return apply


def _named(value: Any) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda info: {**info, "checkpoint": value}


def _older(ck: Path, run: Path) -> None:
    older = sorted(p.name for p in (run / "checkpoints").glob("step-*") if p.name != ck.name)
    assert older, "the smoke run should keep two checkpoints"
    _pointer(_named(older[-1]))(ck, run)


def _header(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path, Path], None]:
    """Rewrite the safetensors JSON header (its length recomputed, the tensor bytes unchanged)."""

    def apply(ck: Path, run: Path) -> None:
        path = ck / WEIGHTS
        raw = path.read_bytes()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8 : 8 + n])
        edit(header)
        text = json.dumps(header).encode()
        path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + n :])

    return apply


def _tensor(header: dict[str, Any]) -> dict[str, Any]:
    """The first float tensor of a header."""
    return next(v for k, v in sorted(header.items()) if k != "__metadata__" and v["dtype"] in ("F32", "F64"))


def _overlap(header: dict[str, Any]) -> None:
    order = sorted((v["data_offsets"][0], k) for k, v in header.items() if k != "__metadata__")
    a, b = header[order[0][1]], header[order[1][1]]
    start = a["data_offsets"][0]
    b["data_offsets"] = [start, start + b["data_offsets"][1] - b["data_offsets"][0]]


def _retype(dtype: str, size: int) -> Callable[[dict[str, Any]], None]:
    """Relabel the first float tensor's bytes as ``dtype`` (of ``size`` bytes an element)."""

    def edit(header: dict[str, Any]) -> None:
        t = _tensor(header)
        factor = {"F32": 4, "F64": 8}[t["dtype"]] // size
        t["dtype"] = dtype
        t["shape"] = [*t["shape"][:-1], t["shape"][-1] * factor] if t["shape"] else [factor]

    return edit


def _no_checkpoints(ck: Path, run: Path) -> None:
    for p in (run / "checkpoints").glob("step-*"):
        shutil.rmtree(p)
    _pointer(_named("step-999999999999"))(ck, run)


def _corrupt_older(ck: Path, run: Path) -> None:
    for p in (run / "checkpoints").glob("step-*"):
        if p.name != ck.name:
            (p / STATE).write_text("{garbage")
            (p / WEIGHTS).write_bytes(b"garbage")


def _raw(fn: Callable[[bytes], bytes]) -> Callable[[Path, Path], None]:
    def apply(ck: Path, run: Path) -> None:
        path = ck / WEIGHTS
        path.write_bytes(fn(path.read_bytes()))

    return apply


def _zero_header(b: bytes) -> bytes:
    (n,) = struct.unpack("<Q", b[:8])
    return b[:8] + b"\x00" * n + b[8 + n :]


def _replace_file(name: str, target: str | None) -> Callable[[Path, Path], None]:
    """Replace ``name`` (in the checkpoint, or the pointer) by a directory (None) or a symlink."""

    def apply(ck: Path, run: Path) -> None:
        path = run / "checkpoints" / LATEST if name == LATEST else ck / name
        path.unlink()
        if target is None:
            path.mkdir()
        else:
            path.symlink_to(target)

    return apply


def file_mutations(family: str) -> list[Mutation]:
    out: list[Mutation] = []

    def add(name: str, apply: Callable[[Path, Path], Any], expect: str, *needles: str) -> None:
        out.append(Mutation(name, apply, expect, needles if expect != ACCEPT else ()))

    add("bytes:truncated-half", _raw(lambda b: b[: len(b) // 2]), REFUSE, WEIGHTS)
    add("bytes:truncated-last-byte", _raw(lambda b: b[:-1]), REFUSE, WEIGHTS)
    add("bytes:header-length-only", _raw(lambda b: b[:8]), REFUSE, WEIGHTS)
    add("bytes:seven-bytes", _raw(lambda b: b[:7]), REFUSE, WEIGHTS)
    add("bytes:empty-file", _raw(lambda b: b""), REFUSE, WEIGHTS)
    add("bytes:garbage", _raw(lambda b: bytes(range(256)) * 8), REFUSE, WEIGHTS)
    add("bytes:header-length-huge", _raw(lambda b: struct.pack("<Q", 2**63 - 1) + b[8:]), REFUSE, WEIGHTS)
    add("bytes:header-length-past-end", _raw(lambda b: struct.pack("<Q", len(b)) + b[8:]), REFUSE, WEIGHTS)
    add("bytes:header-zeroed", _raw(_zero_header), REFUSE, WEIGHTS)
    add("bytes:header-not-utf8", _raw(lambda b: b[:8] + b"\xff" + b[9:]), REFUSE, WEIGHTS)
    add("bytes:trailing-garbage", _raw(lambda b: b + b"\x00garbage"), REFUSE, WEIGHTS)
    add(
        "bytes:offsets-past-end",
        _header(lambda h: _tensor(h)["data_offsets"].__setitem__(1, _tensor(h)["data_offsets"][1] + 4096)),
        REFUSE,
        WEIGHTS,
    )
    add(
        "bytes:offsets-negative",
        _header(lambda h: _tensor(h).__setitem__("data_offsets", [-8, 8])),
        REFUSE,
        WEIGHTS,
    )
    add("bytes:offsets-overlap", _header(_overlap), REFUSE, WEIGHTS)
    add(
        "bytes:shape-disagrees-with-bytes",
        _header(lambda h: _tensor(h).__setitem__("shape", [*_tensor(h)["shape"], 2])),
        REFUSE,
        WEIGHTS,
    )
    add(
        "bytes:shape-huge",
        _header(lambda h: _tensor(h).__setitem__("shape", [2**62, 2**62])),
        REFUSE,
        WEIGHTS,
    )
    add("bytes:shape-negative", _header(lambda h: _tensor(h).__setitem__("shape", [-1])), REFUSE, WEIGHTS)
    add("bytes:dtype-unknown", _header(lambda h: _tensor(h).__setitem__("dtype", "X9")), REFUSE, WEIGHTS)
    add("bytes:dtype-bfloat16", _header(_retype("BF16", 2)), REFUSE, WEIGHTS)
    add("bytes:dtype-bool", _header(_retype("BOOL", 1)), REFUSE, WEIGHTS)
    add("bytes:dtype-float16", _header(_retype("F16", 2)), REFUSE, WEIGHTS)
    add(
        "bytes:metadata-not-strings",
        _header(lambda h: h.__setitem__("__metadata__", {"format": 5})),
        REFUSE,
        WEIGHTS,
    )
    add("bytes:missing", lambda ck, run: (ck / WEIGHTS).unlink(), REFUSE, WEIGHTS)
    add("bytes:directory", _replace_file(WEIGHTS, None), REFUSE, WEIGHTS)
    add("bytes:symlink-to-dev-zero", _replace_file(WEIGHTS, "/dev/zero"), REFUSE, WEIGHTS)
    for name, value in (
        ("parent-parent", "../.."),
        ("parent", ".."),
        ("absolute", "/tmp"),
        ("dot", "."),
        ("escape-through-step", "step-000000000512/../.."),
        ("empty-name", ""),
        ("other-name", "weights"),
        ("number", 5),
        ("null", None),
        ("name-list", ["step-000000000512"]),
    ):
        add(f"pointer:{name}", _pointer(_named(value)), REFUSE, LATEST)
    add(
        "pointer:trailing-slash",
        _pointer(lambda i: {**i, "checkpoint": i["checkpoint"] + "/"}),
        REFUSE,
        LATEST,
    )
    add(
        "pointer:trailing-newline",
        _pointer(lambda i: {**i, "checkpoint": i["checkpoint"] + "\n"}),
        REFUSE,
        LATEST,
    )
    add(
        "pointer:no-name",
        _pointer(lambda i: {k: v for k, v in i.items() if k != "checkpoint"}),
        REFUSE,
        LATEST,
    )
    add("pointer:other-format", _pointer(lambda i: {**i, "format": "x"}), REFUSE, LATEST)
    add("pointer:top-level-list", _pointer([]), REFUSE, LATEST)
    add("pointer:not-json", _write(LATEST, "step-000000000512"), REFUSE, LATEST)
    add("pointer:binary", _write(LATEST, b"\xff\xfe\x00"), REFUSE, LATEST)
    add("pointer:nan", _write(LATEST, '{"format": "rlcanon-checkpoint", "checkpoint": NaN}'), REFUSE, LATEST)
    # a pointer naming a checkpoint that is not there (deleted by hand), or no pointer at all: the
    # newest complete checkpoint is used, with a note
    add("pointer:missing-dir", _pointer(_named("step-999999999999")), ACCEPT)
    add("pointer:missing-dir-suffix", _pointer(_named("step-000000000512-7")), ACCEPT)
    add("pointer:deleted", lambda ck, run: (run / "checkpoints" / LATEST).unlink(), ACCEPT)
    add("pointer:directory", _replace_file(LATEST, None), ACCEPT)
    add("pointer:symlink-to-dev-zero", _replace_file(LATEST, "/dev/zero"), ACCEPT)
    add("pointer:older-checkpoint", _older, ACCEPT)
    add("pointer:missing-dir-and-no-checkpoint", _no_checkpoints, REFUSE, "checkpoint")
    add("checkpoint-dir:deleted", lambda ck, run: shutil.rmtree(ck), ACCEPT)
    add("checkpoint-dir:older-one-corrupt", _corrupt_older, ACCEPT)
    return out


@cache
def mutations(family: str) -> dict[str, Mutation]:
    out: dict[str, Mutation] = {}
    for m in (*array_mutations(family), *json_mutations(family), *file_mutations(family)):
        assert m.name not in out, m.name
        out[m.name] = m
    return out


ALWAYS_RESUME = (
    "wrong-shape-moment",
    ":nan",
    "rng.",
    "metrics_rows",
    "pointer:",
    "checkpoint-dir:",
    ":negative",
)


def _resumes(name: str) -> bool:
    """A fixed subset (about a third, and the names above) also runs ``--resume``."""
    return zlib.crc32(name.encode()) % 3 == 0 or any(s in name for s in ALWAYS_RESUME)


CASES = [(family, name) for family in FAMILIES for name in mutations(family)]


# ---- running -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("corrupt-runs")
    out = {}
    for family, (algo, _) in FAMILIES.items():
        out[family] = root / family
        ENTRIES[algo].train(_config(family), run_dir=out[family], progress=False)
    return out


def _snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, str]:
    """Every path under ``root``: a digest of its content (files), its target (links) or 'dir'."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if rel in skip:
                continue
            if p.is_symlink():
                out[rel] = "link:" + os.readlink(p)
            elif p.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _latest(run: Path) -> Path:
    return run / "checkpoints" / json.loads((run / "checkpoints" / LATEST).read_text())["checkpoint"]


def _call(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except BaseException as exc:  # any escape is a traceback for the user
            tb = traceback.format_exc()
            pytest.fail(f"{' '.join(argv[:2])} raised {type(exc).__name__}: {exc}\n{tb}", pytrace=False)
    return rc, out.getvalue(), err.getvalue()


def _check(m: Mutation, what: str, rc: int, out: str, err: str, copy: Path) -> bool:
    """Check one outcome; returns whether the load was refused."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    if rc == 0:
        assert m.expect != REFUSE, f"{what}: {m.name} was accepted; it must be refused (stderr: {err!r})"
        assert all(line.startswith("rlcanon: note: ") for line in lines), err
        result = json.loads(out.strip().splitlines()[-1])
        assert math.isfinite(result["eval_return_mean"])
        return False
    assert rc == 2, (rc, err)
    assert m.expect != ACCEPT, f"{what}: {m.name} is harmless but was refused: {err.strip()}"
    assert len(lines) == 1 and lines[0].startswith("rlcanon: error: "), (
        f"{what}: expected one error line: {lines}"
    )
    for needle in m.needles:
        assert needle in lines[0], f"{what}: the refusal does not name {needle!r}: {lines[0]}"
    assert str(copy) in lines[0], f"{what}: the refusal does not name the file: {lines[0]}"
    return True


OUTCOMES: list[tuple[str, str, str, str, str]] = []
"""(family, mutation, expectation, command, 'refused' or 'accepted') of every load run here."""


@pytest.fixture(scope="module", autouse=True)
def _report() -> Any:
    """With RLCANON_CORRUPT_REPORT=FILE, write the outcomes as JSON when the module ends."""
    yield
    path = os.environ.get("RLCANON_CORRUPT_REPORT")
    if path:
        Path(path).write_text(json.dumps(OUTCOMES))


@pytest.mark.parametrize(("family", "name"), CASES, ids=[f"{f}/{n}" for f, n in CASES])
def test_corrupt_checkpoint(family: str, name: str, runs: dict[str, Path], tmp_path: Path) -> None:
    m = mutations(family)[name]
    copy = tmp_path / "run"
    shutil.copytree(runs[family], copy, symlinks=True)
    m.apply(_latest(copy), copy)
    before = _snapshot(copy)

    rc, out, err = _call(["eval", str(copy), "--episodes", "1"])
    refused = _check(m, "eval", rc, out, err, copy)
    OUTCOMES.append((family, name, m.expect, "eval", "refused" if refused else "accepted"))
    assert _snapshot(copy) == before, "eval changed the run directory"

    if _resumes(name):
        algo, _ = FAMILIES[family]
        rc, out, err = _call([*RESUME_CMD[algo], "--resume", str(copy), "--no-progress"])
        refused = _check(m, "resume", rc, out, err, copy)
        OUTCOMES.append((family, name, m.expect, "resume", "refused" if refused else "accepted"))
        if refused:
            unchanged = {k: v for k, v in before.items() if k != ".lock"}
            assert _snapshot(copy, skip=(".lock",)) == unchanged, "a refused resume changed the run directory"


def test_every_family_has_at_least_100_mutations() -> None:
    for family in FAMILIES:
        assert len(mutations(family)) >= 100, (family, len(mutations(family)))
    assert {algo for algo, _ in FAMILIES.values()} == set(RESUME_CMD)


def test_a_wrong_shaped_moment_is_named(runs: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(runs["dqn"], copy)
    key = next(k for k in _layout("dqn") if k.endswith("/exp_avg"))
    mutations("dqn")[f"{key}:wrong-shape-moment"].apply(_latest(copy), copy)
    rc, _, err = _call(["eval", str(copy)])
    assert rc == 2 and key in err and "shape" in err and "expected" in err and WEIGHTS in err, err


SUBPROCESS = [
    ("dqn", "exp_avg:wrong-shape-moment", "resume"),
    ("ppo", "exp_avg:wrong-shape-moment", "resume"),
    ("ppo", "exp_avg:wrong-shape-moment", "eval"),
    ("dqn-per", "bytes:shape-huge", "eval"),
    ("es-policy", "obs/stats:sum-beyond-its-squares", "resume"),
]


@pytest.mark.parametrize(
    ("family", "suffix", "how"), SUBPROCESS, ids=[f"{f}/{n}/{h}" for f, n, h in SUBPROCESS]
)
def test_no_crash_in_a_fresh_process(
    family: str, suffix: str, how: str, runs: dict[str, Path], tmp_path: Path
) -> None:
    m = next(m for name, m in mutations(family).items() if name.endswith(suffix))
    copy = tmp_path / "run"
    shutil.copytree(runs[family], copy)
    m.apply(_latest(copy), copy)
    before = {k: v for k, v in _snapshot(copy).items() if k != ".lock"}
    algo, _ = FAMILIES[family]
    args = (
        ["eval", str(copy), "--episodes", "1"]
        if how == "eval"
        else [*RESUME_CMD[algo], "--resume", str(copy), "--no-progress"]
    )
    proc = subprocess.run(
        [sys.executable, "-m", "rlcanon", *args], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-2000:])  # negative: killed by a signal
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rlcanon: error: "), lines
    assert _snapshot(copy, skip=(".lock",)) == before
