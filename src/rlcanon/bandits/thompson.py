"""Thompson sampling: pull the arm whose posterior sample is largest.

- Beta-Bernoulli (Thompson 1933; Agrawal & Goyal 2012): posterior Beta(1 + S_k, 1 + F_k).
- Gaussian (Agrawal & Goyal 2013): sample N(Q_k, sigma^2 / (N_k + 1)), with sigma the known reward
  standard deviation (1 by default).
"""

from __future__ import annotations

import numpy as np

from rlcanon.bandits.base import ArmStats, argmax_rows, check_param


class BetaThompson:
    def __init__(self, prior_alpha: float = 1.0, prior_beta: float = 1.0) -> None:
        check_param("prior_alpha", prior_alpha, 0.0, 1e6, low_open=True)
        check_param("prior_beta", prior_beta, 0.0, 1e6, low_open=True)
        self.prior_alpha, self.prior_beta = prior_alpha, prior_beta

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.rng, self.rows = rng, np.arange(runs)
        self.alpha = np.full((runs, k), self.prior_alpha)
        self.beta = np.full((runs, k), self.prior_beta)

    def select(self, t: int) -> np.ndarray:
        return argmax_rows(self.rng.beta(self.alpha, self.beta))

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        """Conjugate update: a success adds one to alpha, a failure one to beta."""
        self.alpha[self.rows, arms] += rewards
        self.beta[self.rows, arms] += 1.0 - rewards


class GaussianThompson:
    def __init__(self, sigma: float = 1.0) -> None:
        check_param("sigma", sigma, 0.0, 1e9, low_open=True)
        self.sigma = sigma

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.stats = ArmStats(runs, k)

    def select(self, t: int) -> np.ndarray:
        std = self.sigma / np.sqrt(self.stats.counts + 1.0)
        return argmax_rows(self.stats.values + std * self.rng.standard_normal(std.shape))

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.stats.update(arms, rewards)
