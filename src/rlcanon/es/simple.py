"""Simple Gaussian ES and the cross-entropy method.

Simple Gaussian ES (as in the ES post's "simple Gaussian evolution strategies"; Hansen's tutorial
and Ha's "A Visual Guide to ES"): sample N(mu, sigma^2 I), keep the top ``elite`` samples, set
mu' = mean of the elite and sigma'^2 = mean squared deviation of the elite about the OLD mean mu.

CEM (Rubinstein 1999; de Boer et al. 2005): per-coordinate Gaussian, refit mean and variance to the
elite fraction (about the NEW mean), with optional extra noise added to the variance to delay
collapse (Szita & Lorincz 2006).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.es.base import Tracker, clean_fitness, prepare_x0


class SimpleGaussianES(Tracker):
    name = "simple-es"
    _STATE = ("mean", "sigma", "evaluations", "generation", "best_x", "best_f")

    def __init__(
        self, x0: Any, sigma0: float, seed: int = 0, popsize: int | None = None, elite_fraction: float = 0.2
    ) -> None:
        x0 = prepare_x0(x0, sigma0, popsize)
        self.dim = len(x0)
        self.popsize = popsize or max(10, 4 * (4 + int(3 * np.log(self.dim))))
        self.elite = max(1, round(elite_fraction * self.popsize))
        self.mean, self.sigma = x0.copy(), float(sigma0)
        self.rng = np.random.default_rng(seed)
        self._init_tracker(x0)

    def ask(self) -> np.ndarray:
        return self.mean + self.sigma * self.rng.standard_normal((self.popsize, self.dim))

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        self._record(population, f)
        elite = population[np.argsort(-f, kind="stable")[: self.elite]]
        old_mean = self.mean
        self.mean = elite.mean(axis=0)
        # variance about the OLD mean (the post's update; it keeps the step from collapsing too fast)
        self.sigma = float(np.sqrt(np.mean((elite - old_mean) ** 2)))


class CEM(Tracker):
    name = "cem"
    _STATE = ("mean", "var", "evaluations", "generation", "best_x", "best_f")

    def __init__(
        self,
        x0: Any,
        sigma0: float,
        seed: int = 0,
        popsize: int | None = None,
        elite_fraction: float = 0.2,
        extra_noise: float = 0.0,
    ) -> None:
        x0 = prepare_x0(x0, sigma0, popsize)
        if not 0 < elite_fraction <= 1:
            raise ConfigError(f"elite_fraction={elite_fraction} is not allowed; it must lie in (0, 1]")
        self.dim = len(x0)
        self.popsize = popsize or max(10, 4 * (4 + int(3 * np.log(self.dim))))
        self.elite = max(1, round(elite_fraction * self.popsize))
        self.extra_noise = extra_noise
        self.mean, self.var = x0.copy(), np.full(self.dim, float(sigma0) ** 2)
        self.rng = np.random.default_rng(seed)
        self._init_tracker(x0)

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.var.mean()))

    def ask(self) -> np.ndarray:
        return self.mean + np.sqrt(self.var) * self.rng.standard_normal((self.popsize, self.dim))

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        self._record(population, f)
        elite = population[np.argsort(-f, kind="stable")[: self.elite]]
        self.mean = elite.mean(axis=0)
        self.var = elite.var(axis=0) + self.extra_noise
