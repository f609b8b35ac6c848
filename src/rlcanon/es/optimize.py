"""Minimise a benchmark function with any strategy (the strategies maximise -f), with IPOP
(Auger & Hansen 2005: restart with the population doubled) or BIPOP (Hansen 2009) restarts, and
the reasons it stopped."""

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
    stop: dict[str, Any] = field(default_factory=dict)
    """Why the search ended, by name: "ftarget" (f <= target), "maxfevals" (the budget), a strategy's
    own criteria (CMA-ES: es/termination.py), "maxiter" (a small BIPOP run's cap) or "degenerated"
    (a search distribution that broke down numerically)."""
    run_stops: list[dict[str, Any]] = field(default_factory=list)
    """The stop reasons of every run, restarts included, in order."""

    def summary(self) -> dict[str, Any]:
        return {
            "evaluations": self.evaluations,
            "best_value": self.best_value,
            "reached_target": self.reached_target,
            "generations": self.generations,
            "restarts": self.restarts,
            "stop": dict(self.stop),
            "wall_time_s": round(self.wall_time_s, 4),
        }


@dataclass
class _Search:
    """What the runs of one minimisation share."""

    f: Callable[[np.ndarray], np.ndarray]
    target: float
    max_evals: int
    on_generation: Callable[[Any, np.ndarray, np.ndarray], None] | None
    evals: int = 0
    gens: int = 0
    best_f: float = np.inf
    best_x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    history: list[tuple[int, float, float]] = field(default_factory=list)

    def run(self, es: Any, max_generations: int | None) -> dict[str, Any]:
        """Generations of ``es`` until the target, the budget, its own stop or a numerical breakdown;
        returns why it ended."""
        generation = 0
        while True:
            # An overflow gives an infinite value, which ranks worst. A search distribution that
            # degenerates numerically (a singular or non-finite one, e.g. on an unbounded problem)
            # ends this run like a stagnation does.
            diverged = False
            with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
                X = es.ask()
                values = np.asarray(self.f(X), dtype=np.float64)
                try:
                    es.tell(X, -values)
                except np.linalg.LinAlgError:
                    diverged = True
            self.evals += len(values)
            self.gens += 1
            generation += 1
            i = int(np.nanargmin(np.where(np.isnan(values), np.inf, values)))
            if values[i] < self.best_f:
                self.best_f, self.best_x = float(values[i]), X[i].copy()
            self.history.append((self.evals, self.best_f, float(getattr(es, "sigma", np.nan))))
            if self.on_generation is not None:
                self.on_generation(es, X, values)
            if self.best_f <= self.target:
                return {"ftarget": float(self.target)}
            stop = es.should_stop() if hasattr(es, "should_stop") else {}
            if stop:
                return dict(stop) if isinstance(stop, dict) else {"stopped": 1.0}
            sigma = float(getattr(es, "sigma", 1.0))
            if diverged or not np.isfinite(es.mean).all() or not np.isfinite(sigma) or sigma <= 0:
                return {"degenerated": 1.0}
            if self.evals >= self.max_evals:
                return {"maxfevals": float(self.max_evals)}
            if max_generations is not None and generation >= max_generations:
                return {"maxiter": float(max_generations)}


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
    restart_scheme: str = "ipop",
) -> MinimizeResult:
    """Run until f <= target, ``max_evals`` evaluations, or the strategy's own stop (CMA-ES: its
    termination criteria), after which up to ``restarts`` restarts follow from the same x0: IPOP
    (Auger & Hansen 2005, the population doubled each time) or BIPOP (Hansen 2009; es/restarts.py).
    The result's ``stop`` names why it ended."""
    from rlcanon.es import make
    from rlcanon.es.restarts import SCHEMES, RestartSchedule, Run

    _check_int("max_evals", max_evals, 1, MAX_EVALS)
    _check_int("restarts", restarts, 0, MAX_RESTARTS)
    _check_int("seed", seed, 0, 2**63 - 1 - 1000 * restarts)
    is_number = isinstance(target, (int, float, np.floating, np.integer)) and not isinstance(target, bool)
    if not is_number or np.isnan(target):
        raise ConfigError(f"target={target!r} is not allowed; it must be a number (not NaN)")
    if restart_scheme not in SCHEMES:
        raise ConfigError(f"restart_scheme={restart_scheme!r} is not allowed; choose one of {list(SCHEMES)}")
    opts = dict(options or {})
    check_options(opts)
    start = time.perf_counter()
    search = _Search(f, target, max_evals, on_generation, best_x=np.asarray(x0, dtype=np.float64))
    run = Run(0, "large", opts.pop("popsize", None), sigma0, seed)
    schedule, stops = None, []
    while True:
        es = make(strategy_name, x0, run.sigma0, seed=run.seed, popsize=run.popsize, **opts)
        schedule = schedule or RestartSchedule(restart_scheme, es.popsize, sigma0, seed)
        evals_before = search.evals
        stops.append(search.run(es, run.max_generations))
        if "ftarget" in stops[-1] or "maxfevals" in stops[-1] or schedule.run_index >= restarts:
            break
        if schedule.peek_popsize() > min(MAX_POPSIZE, max_evals - search.evals):
            break  # no budget (or memory) left for one generation of the doubled population
        run = schedule.next_run(search.evals - evals_before)
    return MinimizeResult(
        search.evals,
        search.best_f,
        search.best_x,
        search.best_f <= target,
        search.gens,
        schedule.run_index,
        time.perf_counter() - start,
        search.history,
        stops[-1],
        stops,
    )
