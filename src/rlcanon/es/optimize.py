"""Minimise a benchmark function with any strategy (the strategies maximise -f), with IPOP
restarts for CMA-ES (Auger & Hansen 2005: restart with the population doubled)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcanon.errors import ConfigError


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

    if max_evals < 1:
        raise ConfigError(f"max_evals={max_evals} is not allowed; it must be >= 1")
    opts = dict(options or {})
    start = time.perf_counter()
    evals, best_f, best_x, gens, history = 0, np.inf, np.asarray(x0, dtype=np.float64), 0, []
    popsize = opts.pop("popsize", None)
    for restart in range(restarts + 1):
        es = make(strategy_name, x0, sigma0, seed=seed + 1000 * restart, popsize=popsize, **opts)
        while evals < max_evals:
            X = es.ask()
            values = f(X)
            es.tell(X, -values)
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
                    evals, best_f, best_x, True, gens, restart, time.perf_counter() - start, history
                )
            if hasattr(es, "should_stop") and es.should_stop():
                break
        if evals >= max_evals:
            break
        popsize = 2 * es.popsize
    return MinimizeResult(
        evals, best_f, best_x, best_f <= target, gens, restart, time.perf_counter() - start, history
    )
