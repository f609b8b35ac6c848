"""Minimise a benchmark function with any strategy (the strategies maximise -f), with IPOP
restarts for CMA-ES (Auger & Hansen 2005: restart with the population doubled)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.es.base import MAX_POPSIZE

MAX_EVALS = 10**10
MAX_RESTARTS = 100

# value checks of the strategies' keyword options: name -> (low, high, low_open, high_open)
OPTION_RANGES: dict[str, tuple[float, float, bool, bool]] = {
    "elite_fraction": (0.0, 1.0, True, False),
    "extra_noise": (0.0, 1e6, False, False),
    "learning_rate": (0.0, 100.0, True, False),
    "weight_decay": (0.0, 1.0, False, False),
    "beta1": (0.0, 1.0, False, True),
    "beta2": (0.0, 1.0, False, True),
    "eigen_gap_factor": (0.0, 1e6, False, False),
}


def check_options(options: dict[str, Any]) -> None:
    """Numeric strategy options are finite numbers within their ranges (each error names the option,
    the value and the range; an unknown name is left to the strategy, which lists what it takes)."""
    import math

    for name, value in options.items():
        if name in OPTION_RANGES:
            low, high, low_open, high_open = OPTION_RANGES[name]
            ok = (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and math.isfinite(value)
                and (low < value if low_open else low <= value)
                and (value < high if high_open else value <= high)
            )
            if not ok:
                interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
                raise ConfigError(f"{name}={value!r} is not allowed; it must be a number in {interval}")


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer in [{low}, {high}]")


@dataclass
class MinimizeResult:
    evaluations: int
    best_value: float
    best_x: np.ndarray
    reached_target: bool
    generations: int
    restarts: int
    wall_time_s: float
    history: list[tuple[int, float, float]] = field(default_factory=list)  # (evals, best f, sigma)

    def summary(self) -> dict[str, Any]:
        return {
            "evaluations": self.evaluations,
            "best_value": self.best_value,
            "reached_target": self.reached_target,
            "generations": self.generations,
            "restarts": self.restarts,
            "wall_time_s": round(self.wall_time_s, 4),
        }


def minimize(
    strategy_name: str,
    f: Callable[[np.ndarray], np.ndarray],
    x0: np.ndarray,
    sigma0: float,
    seed: int = 0,
    target: float = 1e-8,
    max_evals: int = 100_000,
    restarts: int = 0,
    options: dict[str, Any] | None = None,
    on_generation: Callable[[Any, np.ndarray, np.ndarray], None] | None = None,
) -> MinimizeResult:
    """Run until f <= target, ``max_evals`` evaluations, or (CMA-ES) numerical stagnation, in
    which case up to ``restarts`` IPOP restarts follow from the same x0 with twice the population."""
    from rlcanon.es import make

    _check_int("max_evals", max_evals, 1, MAX_EVALS)
    _check_int("restarts", restarts, 0, MAX_RESTARTS)
    _check_int("seed", seed, 0, 2**63 - 1 - 1000 * restarts)
    is_number = isinstance(target, (int, float, np.floating, np.integer)) and not isinstance(target, bool)
    if not is_number or np.isnan(target):
        raise ConfigError(f"target={target!r} is not allowed; it must be a number (not NaN)")
    opts = dict(options or {})
    check_options(opts)
    start = time.perf_counter()
    evals, best_f, best_x, gens, history = 0, np.inf, np.asarray(x0, dtype=np.float64), 0, []
    popsize = opts.pop("popsize", None)
    done = 0  # restarts begun
    for restart in range(restarts + 1):
        if restart:
            if popsize > min(MAX_POPSIZE, max_evals - evals):
                break  # no budget (or memory) left for one generation of the doubled population
            done = restart
        es = make(strategy_name, x0, sigma0, seed=seed + 1000 * restart, popsize=popsize, **opts)
        while evals < max_evals:
            # An overflow gives an infinite value, which ranks worst. A search distribution that
            # degenerates numerically (a singular or non-finite one, e.g. on an unbounded problem)
            # ends this run like a stagnation does: IPOP restarts, or the result is returned.
            diverged = False
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                X = es.ask()
                values = np.asarray(f(X), dtype=np.float64)
                try:
                    es.tell(X, -values)
                except np.linalg.LinAlgError:
                    diverged = True
            evals += len(values)
            gens += 1
            i = int(np.nanargmin(np.where(np.isnan(values), np.inf, values)))
            if values[i] < best_f:
                best_f, best_x = float(values[i]), X[i].copy()
            history.append((evals, best_f, float(getattr(es, "sigma", np.nan))))
            if on_generation is not None:
                on_generation(es, X, values)
            if best_f <= target:
                return MinimizeResult(
                    evals, best_f, best_x, True, gens, done, time.perf_counter() - start, history
                )
            if hasattr(es, "should_stop") and es.should_stop():
                break
            sigma = float(getattr(es, "sigma", 1.0))
            if diverged or not np.isfinite(es.mean).all() or not np.isfinite(sigma) or sigma <= 0:
                break
        if evals >= max_evals:
            break
        popsize = 2 * es.popsize
    return MinimizeResult(
        evals, best_f, best_x, best_f <= target, gens, done, time.perf_counter() - start, history
    )
