"""Run a solver on a bandit problem for R independent runs at once, and summarise the regret."""

from __future__ import annotations

import math
import numbers
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcanon.bandits.base import Solver
from rlcanon.bandits.problems import BanditProblem, lai_robbins_constant
from rlcanon.errors import ConfigError

MAX_HORIZON = 10_000_000
"""Steps per run (the per-step curves hold one float per step)."""
MAX_RUNS = 1_000_000
"""Independent runs simulated at once."""
MAX_PULLS = 10**10
"""horizon * runs: more would run for hours."""


@dataclass
class BanditResult:
    """Cumulative pseudo-regret of every run at the ``grid`` steps, and per-step curves."""

    grid: np.ndarray  # steps (1-based) at which regret of every run was recorded
    regret_at: np.ndarray  # [len(grid), R] cumulative pseudo-regret
    mean_regret: np.ndarray  # [T] mean over runs of the cumulative regret after each step
    optimal_fraction: np.ndarray  # [T] share of runs that pulled an optimal arm at each step
    problem: BanditProblem
    horizon: int
    runs: int
    wall_time_s: float

    @property
    def final(self) -> np.ndarray:
        return self.regret_at[-1]

    def summary(self) -> dict[str, Any]:
        final = self.final
        q = np.quantile(final, [0.05, 0.25, 0.75, 0.95])
        bound = lai_robbins_bound(self.problem, self.horizon)
        return {
            "horizon": self.horizon,
            "runs": self.runs,
            "regret_mean": float(final.mean()),
            "regret_median": float(np.median(final)),
            "regret_stderr": float(final.std(ddof=1) / math.sqrt(len(final))) if len(final) > 1 else 0.0,
            "regret_q05": float(q[0]),
            "regret_q25": float(q[1]),
            "regret_q75": float(q[2]),
            "regret_q95": float(q[3]),
            "optimal_action_fraction": float(self.optimal_fraction.mean()),
            "lai_robbins_bound": bound,
            "wall_time_s": round(self.wall_time_s, 3),
            "pulls_per_s": round(self.horizon * self.runs / max(self.wall_time_s, 1e-9), 1),
        }


def lai_robbins_bound(problem: BanditProblem, horizon: int) -> float | None:
    """The asymptotic lower bound constant * ln T for stationary Bernoulli problems, else None."""
    if problem.kind != "bernoulli" or not problem.stationary:
        return None
    return lai_robbins_constant(problem.means) * math.log(horizon)


def record_grid(horizon: int, points: int = 200) -> np.ndarray:
    """About ``points`` steps, log-spaced then linear, always including the horizon."""
    grid = np.unique(
        np.concatenate(
            [
                np.geomspace(1, horizon, points // 2).astype(int),
                np.linspace(1, horizon, points // 2).astype(int),
            ]
        )
    )
    return grid


def check_budget(horizon: int, runs: int, k: int) -> None:
    """``horizon`` and ``runs`` are integers within the bounds, and the [runs, K] arrays fit in memory."""
    from rlcanon.core.config import check_int, check_memory

    for name, value in (("horizon", horizon), ("runs", runs)):
        if not isinstance(value, numbers.Integral) or isinstance(value, bool):
            raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer")
    check_int("horizon", horizon, 1, MAX_HORIZON)
    check_int("runs", runs, 1, MAX_RUNS)
    if horizon * runs > MAX_PULLS:
        raise ConfigError(
            f"horizon * runs = {horizon * runs:.3g} pulls is too many; it must be at most {MAX_PULLS:.0e} "
            "(lower --horizon or --runs)"
        )
    # a few [runs, K] float64 arrays live at once (statistics, noise, indices)
    check_memory("runs * arms", 8 * 8 * runs * k)


def simulate(
    solver: Solver,
    problem: BanditProblem,
    horizon: int,
    runs: int,
    seed: int,
    progress: bool | None = False,
    label: str = "",
) -> BanditResult:
    """R = ``runs`` independent runs of ``horizon`` pulls, vectorised over runs (no Python loop
    over runs). The solver and the environment draw from separate streams of ``seed``.
    ``progress=None`` shows a progress bar when stderr is a terminal."""
    check_budget(horizon, runs, problem.k)
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed={seed!r} is not allowed; it must be an integer >= 0")
    env_rng, solver_rng = np.random.default_rng(seed).spawn(2)
    solver.reset(runs, problem.k, solver_rng)
    means = problem.initial_means(runs)
    rows = np.arange(runs)
    grid = record_grid(horizon)
    regret_at = np.empty((len(grid), runs))
    mean_regret = np.empty(horizon)
    optimal = np.empty(horizon)
    regret = np.zeros(runs)
    g = 0
    from tqdm.auto import tqdm

    bar = tqdm(
        total=horizon,
        unit="step",
        desc=label or "bandit",
        disable=None if progress is None else not progress,
        miniters=max(1, horizon // 100),
    )
    start = time.perf_counter()
    stationary = problem.stationary
    mu = np.asarray(problem.means)
    best_mu = mu.max()
    for t in range(1, horizon + 1):
        if not stationary:
            means = problem.advance(means, t, env_rng)
        arms = solver.select(t)
        if stationary:
            chosen, best = mu[arms], best_mu
        else:
            chosen, best = means[rows, arms], means.max(axis=1)
        rewards = problem.pull(chosen, env_rng)
        solver.update(arms, rewards)
        gap = best - chosen
        regret += gap
        mean_regret[t - 1] = regret.mean()
        optimal[t - 1] = np.mean(gap <= 1e-12)
        if t == grid[g]:
            regret_at[g] = regret
            g += 1
            bar.update(t - bar.n)
    bar.close()
    return BanditResult(
        grid, regret_at, mean_regret, optimal, problem, horizon, runs, time.perf_counter() - start
    )
