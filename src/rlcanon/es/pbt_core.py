"""The parts of population-based training (Jaderberg et al. 2017) that know nothing of RL: the
search space and its priors, exploit (truncation selection), explore (perturb or resample) and one
synchronous round over any :class:`rlcanon.es.pbt_members.Population`. :mod:`rlcanon.es.pbt` runs
them over runs of the harness; the toy of the paper's Fig. 2 runs them over points in R^2."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.es.pbt_members import Hyperparameters, Population

SPEC_FORMS = "NAME=LOW:HIGH, NAME=LOW:HIGH:log or NAME=A,B,C"
NOT_SEARCHABLE = ("seed", "total_timesteps", "eval_episodes", "eval_interval", "checkpoint_interval")
"""Numeric settings that are not hyperparameters: PBT sets them for each member itself."""


@dataclass(frozen=True)
class Hyperparameter:
    """One searched config field and its prior: uniform or log-uniform on [low, high], or a uniform
    choice among ``choices`` (kept sorted, so that explore can step to a neighbour)."""

    name: str
    low: float = 0.0
    high: float = 1.0
    log: bool = False
    choices: tuple[float, ...] = ()
    integer: bool = False

    def _cast(self, value: float) -> float:
        return float(round(value)) if self.integer else float(value)

    def sample(self, rng: np.random.Generator) -> float:
        """A draw from the prior."""
        if self.choices:
            return self.choices[int(rng.integers(len(self.choices)))]
        if self.log:
            return self._cast(math.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        return self._cast(rng.uniform(self.low, self.high))

    def perturb(self, value: float, factor: float) -> float:
        """``value * factor`` kept in [low, high]; a choice steps to the next larger (factor > 1) or
        smaller neighbour (Ray Tune's convention: the paper perturbs only continuous values)."""
        if self.choices:
            i = self.choices.index(value) + (1 if factor > 1 else -1 if factor < 1 else 0)
            return self.choices[min(max(i, 0), len(self.choices) - 1)]
        return self._cast(min(max(value * factor, self.low), self.high))

    def contains(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return False
        if self.choices:
            return value in self.choices
        return self.low <= value <= self.high and (not self.integer or float(value).is_integer())


def _number(spec: str, text: str, integer: bool) -> float:
    try:
        value = float(int(text)) if integer else float(text)
    except ValueError:
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"search_space entry {spec!r}: {text!r} is not {kind}") from None
    if not math.isfinite(value):
        raise ConfigError(f"search_space entry {spec!r}: {text!r} is not a finite number")
    return value


def parse_hyperparameter(spec: str, fields: Mapping[str, Any], owner: str) -> Hyperparameter:
    """One ``search_space`` entry, checked against the field types of ``owner``'s config; every
    error is one line naming the entry and what is allowed."""
    name, sep, rhs = (part.strip() for part in spec.partition("="))
    name = name.replace("-", "_")
    if not (sep and name and rhs):
        raise ConfigError(f"search_space entry {spec!r} is not allowed; write {SPEC_FORMS}")
    numeric = sorted(n for n, tp in fields.items() if tp in (int, float) and n not in NOT_SEARCHABLE)
    if name not in fields:
        raise ConfigError(
            f"search_space entry {spec!r}: {owner} has no setting {name!r}; choose among {numeric}"
        )
    if name in NOT_SEARCHABLE:
        raise ConfigError(f"search_space entry {spec!r}: {name} is set by PBT itself; choose among {numeric}")
    tp = fields[name]
    if tp not in (int, float):
        kind = getattr(tp, "__name__", str(tp))
        raise ConfigError(
            f"search_space entry {spec!r}: {name} is a {kind} setting of {owner}, not a number; only int "
            f"and float settings can be searched"
        )
    integer = tp is int
    if ":" not in rhs:
        values = sorted({_number(spec, v.strip(), integer) for v in rhs.split(",")})
        if len(values) < 2:
            raise ConfigError(f"search_space entry {spec!r}: give at least two choices, or write LOW:HIGH")
        return Hyperparameter(name, values[0], values[-1], choices=tuple(values), integer=integer)
    parts = [p.strip() for p in rhs.split(":")]
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise ConfigError(f"search_space entry {spec!r} is not allowed; write {SPEC_FORMS}")
    low, high = (_number(spec, p, integer) for p in parts[:2])
    if not low < high:
        raise ConfigError(
            f"search_space entry {spec!r}: low {low:g} >= high {high:g}; write LOW:HIGH with LOW < HIGH"
        )
    log = len(parts) == 3
    if log and low <= 0:
        raise ConfigError(f"search_space entry {spec!r}: a log range needs low > 0, got {low:g}")
    return Hyperparameter(name, low, high, log=log, integer=integer)


def parse_search_space(specs: Sequence[str], config_cls: type, owner: str) -> tuple[Hyperparameter, ...]:
    """Every ``search_space`` entry of a PBT run over ``config_cls`` (a field at most once)."""
    from rlcanon.core.config import resolved_types

    hints = resolved_types(config_cls)
    fields = {f.name: hints[f.name] for f in dataclasses.fields(config_cls)}
    space = tuple(parse_hyperparameter(spec, fields, owner) for spec in specs)
    names = [h.name for h in space]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"search_space names {twice[0]} twice; give each setting once")
    if not space:
        raise ConfigError(f"search_space is empty; give at least one entry such as {SPEC_FORMS}")
    return space


def parse_member_settings(specs: Sequence[str], config_cls: type, owner: str) -> dict[str, Any]:
    """``NAME=VALUE`` entries typed by ``config_cls``'s fields (lists as A,B,C; booleans true/false)."""
    from rlcanon.core.config import resolved_types, unwrap_optional

    hints = resolved_types(config_cls)
    out: dict[str, Any] = {}
    for spec in specs:
        name, sep, text = (part.strip() for part in spec.partition("="))
        name = name.replace("-", "_")
        if not (sep and name):
            raise ConfigError(f"member_settings entry {spec!r} is not allowed; write NAME=VALUE")
        if name not in hints or name in ("seed", "total_timesteps", "env_id"):
            raise ConfigError(
                f"member_settings entry {spec!r}: {owner} has no setting {name!r} that PBT leaves free"
            )
        tp, _ = unwrap_optional(hints[name])
        try:
            out[name] = _typed(text, tp)
        except ValueError:
            raise ConfigError(
                f"member_settings entry {spec!r}: {text!r} is not a valid {getattr(tp, '__name__', tp)}"
            ) from None
    return out


def _typed(text: str, tp: Any) -> Any:
    import typing

    if typing.get_origin(tp) is tuple:
        inner = typing.get_args(tp)[0]
        return tuple(_typed(t.strip(), inner) for t in text.split(",") if t.strip())
    if tp is bool:
        if text.lower() not in ("true", "false"):
            raise ValueError(text)
        return text.lower() == "true"
    return tp(text) if tp in (int, float) else text


# ---- exploit and explore -------------------------------------------------------------------------


def quantile_count(population_size: int, fraction: float) -> int:
    """Members in the bottom (and in the top) ``fraction``: fraction * size rounded half up, at least
    one and at most half the population (so the two sets never overlap); none for a fraction of 0."""
    if fraction <= 0:
        return 0
    return min(population_size // 2, max(1, math.floor(fraction * population_size + 0.5)))


def truncation_selection(
    performance: np.ndarray, fraction: float, rng: np.random.Generator
) -> list[tuple[int, int]]:
    """(target, source) pairs: each member of the bottom ``fraction`` copies one drawn uniformly from
    the top ``fraction`` (Jaderberg et al. 2017, truncation selection; 20% in the paper). A member
    that is not finite ranks last; ties rank the lower index lower."""
    perf = np.where(np.isfinite(performance), performance, -np.inf)
    k = quantile_count(len(perf), fraction)
    if k == 0:
        return []
    order = np.argsort(perf, kind="stable")
    bottom, top = order[:k], order[len(perf) - k :]
    return [(int(target), int(top[rng.integers(k)])) for target in bottom]


@dataclass(frozen=True)
class Rules:
    """The exploit and explore steps of PBT, with their settings."""

    space: tuple[Hyperparameter, ...]
    truncation_fraction: float = 0.2
    explore_mode: str = "perturb"
    perturb_factors: tuple[float, ...] = (0.8, 1.2)
    resample_probability: float = 0.25

    def exploit(self, performance: np.ndarray, rng: np.random.Generator) -> list[tuple[int, int]]:
        return truncation_selection(performance, self.truncation_fraction, rng)

    def explore(self, hyperparameters: Hyperparameters, rng: np.random.Generator) -> Hyperparameters:
        """New values from copied ones: each perturbed by a factor drawn uniformly from
        ``perturb_factors``, or (resample) drawn again from its prior with ``resample_probability``."""
        out = dict(hyperparameters)
        for h in self.space:
            if self.explore_mode == "perturb":
                factor = self.perturb_factors[int(rng.integers(len(self.perturb_factors)))]
                out[h.name] = h.perturb(out[h.name], factor)
            elif rng.random() < self.resample_probability:
                out[h.name] = h.sample(rng)
        return out


def initial_hyperparameters(
    space: Sequence[Hyperparameter], size: int, rng: np.random.Generator
) -> list[Hyperparameters]:
    """Each member's first values, drawn from the priors (the paper's random initial population)."""
    return [{h.name: h.sample(rng) for h in space} for _ in range(size)]


def pbt_round(
    population: Population,
    hyperparameters: Sequence[Hyperparameters],
    until: int,
    rules: Rules,
    rng: np.random.Generator,
    round_index: int,
) -> tuple[np.ndarray, list[Hyperparameters], list[dict[str, Any]]]:
    """One round: train every member to ``until`` steps, then exploit (copy the weights and the
    hyperparameters of a better member) and only then explore (perturb the copied values).

    Returns (each member's performance, the hyperparameters of the next round, one lineage row per
    member: round, member, performance, copied_from (None if kept), old and new values)."""
    performance = np.asarray(population.train(hyperparameters, until), dtype=np.float64)
    new = [dict(h) for h in hyperparameters]
    copied_from: dict[int, int] = {}
    for target, source in rules.exploit(performance, rng):
        population.copy(target, source)  # the weights first ...
        copied = dict(hyperparameters[source])  # ... and the hyperparameters they trained with
        new[target] = rules.explore(copied, rng)  # then explore moves the copy
        copied_from[target] = source
    rows = [
        {
            "round": round_index,
            "member": i,
            "performance": float(performance[i]) if np.isfinite(performance[i]) else None,
            "copied_from": copied_from.get(i),
            "old": dict(hyperparameters[i]),
            "new": new[i],
        }
        for i in range(len(new))
    ]
    return performance, new, rows


def run_rounds(
    population: Population,
    hyperparameters: Sequence[Hyperparameters],
    rules: Rules | None,
    rounds: int,
    interval: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """``rounds`` rounds of :func:`pbt_round` in memory (the toy, the tests); ``rules=None`` trains
    the same members for the same steps with their first hyperparameters kept (random search).
    Returns (performance after each round, shape (rounds, size); the lineage rows)."""
    current = [dict(h) for h in hyperparameters]
    history, lineage = [], []
    for r in range(1, rounds + 1):
        if rules is None:
            history.append(np.asarray(population.train(current, r * interval), dtype=np.float64))
            continue
        performance, current, rows = pbt_round(population, current, r * interval, rules, rng, r)
        history.append(performance)
        lineage.extend(rows)
    return np.stack(history), lineage
