"""OpenAI-ES (Salimans, Ho, Chen, Sidor & Sutskever 2017, "Evolution Strategies as a Scalable
Alternative to Reinforcement Learning"): mirrored sampling, centred-rank fitness shaping, L2 weight
decay and an Adam step on the gradient estimate

    g = 1 / (n sigma) * sum_i (r(theta + sigma eps_i) - r(theta - sigma eps_i)) eps_i - l2 * theta

Perturbations are regenerated from per-pair integer seeds (:func:`noise`), so distributed workers
exchange seeds and scalars, never parameter vectors. Defaults follow the paper's released
configuration: noise std 0.02, Adam step 0.01, L2 coefficient 0.005.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcanon.es.base import Tracker, clean_fitness, prepare_x0
from rlcanon.es.shaping import centered_ranks


def noise(seeds: np.ndarray, dim: int) -> np.ndarray:
    """eps_i ~ N(0, I) rebuilt from each seed: identical in every process."""
    return np.stack([np.random.default_rng(int(s)).standard_normal(dim) for s in seeds])


def population_from_seeds(mean: np.ndarray, sigma: float, seeds: np.ndarray) -> np.ndarray:
    """Rows 2i and 2i+1 are mean + sigma eps_i and mean - sigma eps_i."""
    eps = noise(seeds, len(mean))
    pop = np.empty((2 * len(seeds), len(mean)))
    pop[0::2] = mean + sigma * eps
    pop[1::2] = mean - sigma * eps
    return pop


class OpenAIES(Tracker):
    name = "openai-es"
    _STATE = ("mean", "sigma", "m", "v", "t", "evaluations", "generation", "best_x", "best_f", "seeds")

    def __init__(
        self,
        x0: Any,
        sigma0: float = 0.02,
        seed: int = 0,
        popsize: int | None = None,
        learning_rate: float = 0.01,
        weight_decay: float = 0.005,
        beta1: float = 0.9,
        beta2: float = 0.999,
    ) -> None:
        x0 = prepare_x0(x0, sigma0, popsize)
        self.dim = len(x0)
        pairs = (popsize or 2 * max(4, (4 + int(3 * np.log(self.dim))) // 2 * 2)) // 2
        self.popsize = 2 * max(1, pairs)
        self.mean, self.sigma = x0.copy(), float(sigma0)
        self.lr, self.weight_decay, self.beta1, self.beta2 = learning_rate, weight_decay, beta1, beta2
        self.m, self.v, self.t = np.zeros(self.dim), np.zeros(self.dim), 0
        self.rng = np.random.default_rng(seed)
        self.seeds = np.zeros(self.popsize // 2, dtype=np.int64)
        self._init_tracker(x0)

    def ask_seeds(self) -> np.ndarray:
        """Draw this generation's noise seeds (what a distributed master sends to workers)."""
        self.seeds = self.rng.integers(0, 2**31 - 1, self.popsize // 2)
        return self.seeds

    def ask(self) -> np.ndarray:
        return population_from_seeds(self.mean, self.sigma, self.ask_seeds())

    def gradient(self, fitness: np.ndarray) -> np.ndarray:
        shaped = centered_ranks(fitness)
        eps = noise(self.seeds, self.dim)
        g = (shaped[0::2] - shaped[1::2]) @ eps / (self.popsize * self.sigma)
        return g - self.weight_decay * self.mean

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        self._record(population, f)
        g = self.gradient(f)
        # Adam ascent (Kingma & Ba 2015, Algorithm 1)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * g
        self.v = self.beta2 * self.v + (1 - self.beta2) * g * g
        m_hat = self.m / (1 - self.beta1**self.t)
        v_hat = self.v / (1 - self.beta2**self.t)
        self.mean = self.mean + self.lr * m_hat / (np.sqrt(v_hat) + 1e-8)
