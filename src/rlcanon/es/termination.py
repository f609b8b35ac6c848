"""CMA-ES termination criteria, as the reference implementation defines them, and the fitness
histories they read.

Definitions and defaults follow pycma 4.x (``cma.evolution_strategy._CMAStopDict._update`` and
``cma.options_parameters``) and N. Hansen, "The CMA Evolution Strategy: A Tutorial"
(arXiv:1604.00772), Appendix B.3. Fitness is maximised here, but every criterion on fitness values is
about their *range*, so it is sign-free; only "stagnation" changes direction (no better = no higher).

Two of pycma's criteria that are on by default are not implemented: ``tolflatfitness`` (stop after 1
generation whose fitness values are all equal; here a flat generation only ends a run through
tolfun) and ``tolupsigma`` (sigma grew by 1e20 over the largest axis). ``maxfevals`` fires at
evaluations >= maxfevals; pycma counts one more (its final mean's evaluation).

Each criterion is one small function returning its value when it fires and None when it does not.
The per-generation cost is O(n) (coordinates, one principal axis, the diagonal of C); the O(n^2)
quantities (eigenvalues) are only read, never computed here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from rlcanon.errors import ConfigError

LONG_HISTORY = 20_000
"""Capacity of the long best/median histories (pycma keeps at most 2e4 entries, one every 5th
generation)."""
LONG_EVERY = 5
"""pycma records the long histories every 5th generation ("20 percent of 1e5 gen.")."""
FITNESS_LIMIT = 1e300
"""Fitness values are stored clamped to +-FITNESS_LIMIT (finite, and their differences too)."""
MAX_CONDITIONCOV = 1e15
"""CMA-ES floors C's eigenvalues at max/1e16, so larger condition limits could never fire."""


@dataclass(frozen=True)
class StopCriteria:
    """The settings of the termination criteria (pycma's option names and defaults)."""

    tolx: float = 1e-11
    """Stop when sigma * sqrt(C_ii) and |sigma p_c,i| are below tolx in every coordinate (pycma
    'tolx' default 1e-11; tutorial B.3 TolX)."""
    tolfun: float = 1e-11
    """Stop when this generation's fitness range and the range of the recent best values are both
    below tolfun (pycma 'tolfun' default 1e-11; tutorial B.3 TolFun)."""
    tolfunhist: float = 1e-12
    """Stop when the range of the best values of the last 10 + 30 n / lambda generations (more than
    9 of them) is below tolfunhist (pycma 'tolfunhist' default 1e-12)."""
    tolstagnation: int | None = None
    """Generations without improvement before 'tolstagnation' fires; None is pycma's default
    int(100 + 100 n^1.5 / lambda) (tutorial B.3 Stagnation)."""
    conditioncov: float = 1e14
    """Stop when the condition number of C exceeds this (pycma 'tolconditioncov' default 1e14;
    tutorial B.3 ConditionCov)."""
    tolfacupx: float = 1e3
    """Stop when sigma * sqrt(C_ii) grows above tolfacupx * sigma0 in some coordinate: sigma0 was far
    too small, or the problem is unbounded (pycma 'tolfacupx' default 1e3)."""
    maxiter: int | None = None
    """Stop after this many generations; None is pycma's default 100 + 150 (n + 3)^2 // sqrt(lambda)."""
    maxfevals: float = math.inf
    """Stop once this many evaluations are spent (pycma 'maxfevals' default inf)."""

    def validate(self) -> None:
        for name in ("tolx", "tolfun", "tolfunhist"):
            _check_number(name, getattr(self, name), 0.0, 1e300)
        _check_number("conditioncov", self.conditioncov, 1.0, MAX_CONDITIONCOV)
        _check_number("tolfacupx", self.tolfacupx, 1.0, 1e300)
        _check_number("maxfevals", self.maxfevals, 1.0, math.inf)
        for name in ("tolstagnation", "maxiter"):
            value = getattr(self, name)
            if value is not None and (
                not isinstance(value, (int, np.integer))
                or isinstance(value, bool)
                or not 1 <= value <= 10**12
            ):
                raise ConfigError(
                    f"{name}={value!r} is not allowed; it must be an integer in [1, {10**12}] "
                    "(or None for pycma's default)"
                )

    def resolved_tolstagnation(self, n: int, popsize: int) -> int:
        """pycma's default ``int(100 + 100 * N**1.5 / popsize)`` unless set."""
        return self.tolstagnation or int(100 + 100 * n**1.5 / popsize)

    def resolved_maxiter(self, n: int, popsize: int) -> int:
        """pycma's default ``100 + 150 * (N+3)**2 // popsize**0.5`` unless set."""
        return self.maxiter or int(100 + 150 * (n + 3) ** 2 // popsize**0.5)


def _clamp(value: float) -> float:
    """NaN is impossible here (clean_fitness maps it to -inf); +-inf become +-1e300."""
    return min(max(value, -FITNESS_LIMIT), FITNESS_LIMIT)


def _check_number(name: str, value: Any, low: float, high: float) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not low <= value <= high:  # also refuses NaN
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a number in [{low:g}, {high:g}]")


class FitnessHistory:
    """The fitness records the criteria need, in fixed-size ring buffers (so a checkpoint's arrays
    keep their shapes): the best value of each of the last 10 + 30 n / lambda generations (pycma
    ``fit.hist``), the best and the median of every 5th generation (``fit.histbest``,
    ``fit.histmedian``), this generation's range and the evaluation count at the best-ever value.
    Values are clamped to [-1e300, 1e300] (so a range over infinite ones is 0 or huge, never NaN);
    NaN fitness arrives here as -inf (it ranks worst)."""

    STATE = (
        "fit_recent",
        "fit_recent_count",
        "fit_long_best",
        "fit_long_median",
        "fit_long_count",
        "fit_range",
        "best_evaluation",
    )

    def __init__(self, n: int, popsize: int) -> None:
        # pycma keeps the best of the last 10 + 30 N / lambda generations; the buffer holds enough for
        # any lambda >= 2, so that its shape does not change with the population (BIPOP restarts)
        self.recent_length = 10 + (30 * n) // popsize
        self.fit_recent = np.zeros(10 + 15 * n)
        self.fit_recent_count = 0
        self.fit_long_best = np.zeros(LONG_HISTORY)
        self.fit_long_median = np.zeros(LONG_HISTORY)
        self.fit_long_count = 0
        self.fit_range = 0.0
        self.best_evaluation = 0  # pycma ``best.evals``: evaluations when the best-ever value was seen

    def record(self, fitness: np.ndarray, generation: int, evaluations: int, improved: bool) -> None:
        best, worst = float(fitness.max()), float(fitness.min())
        if not -FITNESS_LIMIT <= worst <= best <= FITNESS_LIMIT:  # rare: inline checks are cheaper
            best, worst = _clamp(best), _clamp(worst)
        self.fit_range = best - worst
        self.fit_recent[self.fit_recent_count % len(self.fit_recent)] = best
        self.fit_recent_count += 1
        if generation % LONG_EVERY == 0:
            ranked = np.sort(fitness)
            half = len(ranked) // 2
            median = (
                ranked[half] if len(ranked) % 2 else ranked[half - 1] / 2 + ranked[half] / 2
            )  # no overflow
            i = self.fit_long_count % LONG_HISTORY
            self.fit_long_best[i] = best
            self.fit_long_median[i] = _clamp(float(median))
            self.fit_long_count += 1
        if improved:
            self.best_evaluation = evaluations

    def recent(self) -> np.ndarray:
        """The best values of the last 10 + 30 n / lambda generations (fewer at the start)."""
        count = min(self.fit_recent_count, self.recent_length)
        if self.fit_recent_count <= self.recent_length:
            return self.fit_recent[:count]  # not wrapped yet: a view, no copy
        return self.fit_recent[(self.fit_recent_count - 1 - np.arange(count)) % len(self.fit_recent)]

    def long_newest_first(self, m: int) -> tuple[np.ndarray, np.ndarray]:
        """The newest ``m`` entries of the long best and median histories, newest first."""
        idx = (self.fit_long_count - 1 - np.arange(m)) % LONG_HISTORY
        return self.fit_long_best[idx], self.fit_long_median[idx]

    def state_dict(self) -> dict[str, Any]:
        return {
            k: (v.copy() if isinstance(v, np.ndarray) else v) for k in self.STATE for v in [getattr(self, k)]
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.STATE:
            value = state[key]
            if isinstance(getattr(self, key), np.ndarray):
                value = np.array(value, dtype=np.float64)
            elif key == "fit_range":
                value = float(value)
            else:
                value = max(0, int(value))  # counts
            setattr(self, key, value)


class CMAView(Protocol):
    """What the criteria read of a CMA-ES."""

    dim: int
    popsize: int
    generation: int
    evaluations: int
    sigma: float
    sigma0: float
    mean: np.ndarray
    C: np.ndarray
    B: np.ndarray
    D: np.ndarray
    p_c: np.ndarray
    history: FitnessHistory


def stop_reasons(es: CMAView, crit: StopCriteria) -> dict[str, float]:
    """Every criterion that holds now, by name, with the setting (or the measured value) that fired;
    empty while the run should go on. Nothing is checked before the first generation (as pycma)."""
    if es.generation == 0:
        return {}
    stds = es.sigma * np.sqrt(np.abs(np.diagonal(es.C)))  # sigma sqrt(C_ii), the coordinate scales
    checks = (
        ("maxfevals", _maxfevals(es, crit)),
        ("maxiter", _maxiter(es, crit)),
        ("tolx", _tolx(es, crit, stds)),
        ("tolfacupx", _tolfacupx(es, crit, stds)),
        ("tolfun", _tolfun(es, crit)),
        ("tolfunhist", _tolfunhist(es, crit)),
        ("tolstagnation", _tolstagnation(es, crit)),
        ("conditioncov", _conditioncov(es, crit)),
        ("noeffectaxis", _noeffectaxis(es)),
        ("noeffectcoord", _noeffectcoord(es, stds)),
    )
    return {name: value for name, value in checks if value is not None}


def _maxfevals(es: CMAView, crit: StopCriteria) -> float | None:
    return float(crit.maxfevals) if es.evaluations >= crit.maxfevals else None


def _maxiter(es: CMAView, crit: StopCriteria) -> float | None:
    limit = crit.resolved_maxiter(es.dim, es.popsize)
    return float(limit) if es.generation >= limit else None


def _tolx(es: CMAView, crit: StopCriteria, stds: np.ndarray) -> float | None:
    # tutorial B.3: all coordinate standard deviations and all of sigma p_c below TolX (pycma
    # compares sigma p_c without its absolute value; the tutorial's wording needs it)
    small = bool((stds < crit.tolx).all() and (np.abs(es.sigma * es.p_c) < crit.tolx).all())
    return float(crit.tolx) if small else None


def _tolfacupx(es: CMAView, crit: StopCriteria, stds: np.ndarray) -> float | None:
    return float(crit.tolfacupx) if bool((stds > es.sigma0 * crit.tolfacupx).any()) else None


def _tolfun(es: CMAView, crit: StopCriteria) -> float | None:
    recent = es.history.recent()
    if not len(recent):
        return None
    flat = es.history.fit_range < crit.tolfun and float(recent.max() - recent.min()) < crit.tolfun
    return float(crit.tolfun) if flat else None


def _tolfunhist(es: CMAView, crit: StopCriteria) -> float | None:
    recent = es.history.recent()
    flat = len(recent) > 9 and float(recent.max() - recent.min()) < crit.tolfunhist
    return float(crit.tolfunhist) if flat else None


def _tolstagnation(es: CMAView, crit: StopCriteria) -> float | None:
    """pycma's test: past n (5 + 100 / lambda) generations, with the best-ever value older than half
    the stagnation period, the medians of the newest l long-history entries (bests and medians) are
    no better than those of the l before, l = max(tolstagnation / 10, entries / 10)."""
    tol = crit.resolved_tolstagnation(es.dim, es.popsize)
    h = es.history
    entries = min(h.fit_long_count, LONG_HISTORY)
    if (
        es.generation <= es.dim * (5 + 100 / es.popsize)
        or (es.evaluations - h.best_evaluation) / es.popsize <= tol / 2
        or entries <= 100
    ):
        return None  # the cheap conditions first: the medians are only computed when they hold
    window = max(tol / 5 / 2, entries / 10)
    if window > es.generation or not 2 * int(window) < entries:
        return None
    m = int(window)
    best, median = h.long_newest_first(2 * m)
    # maximising: stagnation = the newer half is not higher than the older half
    stalled = np.median(median[:m]) <= np.median(median[m:]) and np.median(best[:m]) <= np.median(best[m:])
    return float(tol) if stalled else None


def _conditioncov(es: CMAView, crit: StopCriteria) -> float | None:
    d_max, d_min = float(es.D.max()), float(es.D.min())
    return float(crit.conditioncov) if d_max > math.sqrt(crit.conditioncov) * d_min else None


def _noeffectaxis(es: CMAView) -> float | None:
    # one principal axis per generation, in turn (pycma: i = iteration % N)
    i = es.generation % es.dim
    step = 0.1 * es.sigma * es.D[i] * es.B[:, i]
    return float(i) if bool((es.mean == es.mean + step).all()) else None


def _noeffectcoord(es: CMAView, stds: np.ndarray) -> float | None:
    without_effect = int((es.mean == es.mean + 0.2 * stds).sum())
    return float(without_effect) if without_effect else None
