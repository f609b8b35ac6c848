"""Natural evolution strategies (Wierstra, Schaul, Glasmachers, Sun, Peters & Schmidhuber 2014,
"Natural Evolution Strategies", JMLR 15): natural-gradient ascent on E[f] with rank-based
utilities (eq. 19).

- xNES (Algorithm 5): full covariance A A^T in exponential coordinates; learning rates
  eta_mu = 1, eta_sigma = eta_B = 3 (3 + ln d) / (5 d sqrt(d)) (Table 1).
- SNES (Algorithm 6): separable (diagonal) version; eta_sigma = (3 + ln d) / (5 sqrt(d)).
Default population 4 + floor(3 ln d) (Table 1).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.linalg import expm

from rlcanon.es.base import Tracker, clean_fitness, prepare_x0
from rlcanon.es.shaping import utilities_for


class XNES(Tracker):
    name = "xnes"
    _STATE = ("mean", "sigma", "B", "evaluations", "generation", "best_x", "best_f")

    def __init__(self, x0: Any, sigma0: float, seed: int = 0, popsize: int | None = None) -> None:
        x0 = prepare_x0(x0, sigma0, popsize)
        d = self.dim = len(x0)
        self.popsize = popsize or 4 + math.floor(3 * math.log(d))
        self.eta_mu = 1.0
        self.eta_sigma = self.eta_b = 3 * (3 + math.log(d)) / (5 * d * math.sqrt(d))
        self.mean, self.sigma, self.B = x0.copy(), float(sigma0), np.eye(d)  # A = sigma * B, det B = 1
        self.rng = np.random.default_rng(seed)
        self._z: np.ndarray | None = None
        self._init_tracker(x0)

    def ask(self) -> np.ndarray:
        self._z = self.rng.standard_normal((self.popsize, self.dim))
        return self.mean + self.sigma * self._z @ self.B.T

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        self._record(population, f)
        z = np.linalg.solve(self.sigma * self.B, (population - self.mean).T).T  # recover z
        u = utilities_for(f)
        d = self.dim
        g_delta = u @ z
        g_m = (z * u[:, None]).T @ z - u.sum() * np.eye(d)
        g_sigma = np.trace(g_m) / d
        g_b = g_m - g_sigma * np.eye(d)
        self.mean = self.mean + self.eta_mu * self.sigma * self.B @ g_delta
        self.sigma *= math.exp(self.eta_sigma / 2 * g_sigma)
        self.B = self.B @ expm(self.eta_b / 2 * g_b)


class SNES(Tracker):
    name = "snes"
    _STATE = ("mean", "stds", "evaluations", "generation", "best_x", "best_f")

    def __init__(self, x0: Any, sigma0: float, seed: int = 0, popsize: int | None = None) -> None:
        x0 = prepare_x0(x0, sigma0, popsize)
        d = self.dim = len(x0)
        self.popsize = popsize or 4 + math.floor(3 * math.log(d))
        self.eta_mu, self.eta_sigma = 1.0, (3 + math.log(d)) / (5 * math.sqrt(d))
        self.mean, self.stds = x0.copy(), np.full(d, float(sigma0))
        self.rng = np.random.default_rng(seed)
        self._init_tracker(x0)

    @property
    def sigma(self) -> float:
        return float(np.exp(np.log(self.stds).mean()))

    def ask(self) -> np.ndarray:
        return self.mean + self.stds * self.rng.standard_normal((self.popsize, self.dim))

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        self._record(population, f)
        z = (population - self.mean) / self.stds
        u = utilities_for(f)
        self.mean = self.mean + self.eta_mu * self.stds * (u @ z)
        self.stds = self.stds * np.exp(self.eta_sigma / 2 * (u @ (z * z - 1)))
