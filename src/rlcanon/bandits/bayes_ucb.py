"""Bayes-UCB for Bernoulli arms (Kaufmann, Cappé & Garivier 2012): pull the arm whose Beta(1+S, 1+F)
posterior has the largest quantile at level 1 - 1/t (their c = 0 variant, used in their experiments).

Speed: a Beta quantile is an expensive inverse incomplete-beta. Only the pulled arm's posterior
changes at a step, so only its quantile is recomputed then. The level 1 - 1/t moves for every arm,
so all quantiles are refreshed whenever t passes the next point of a geometric grid (ratio
``refresh``, 1.02 by default); between refreshes every arm uses the level of the last grid point,
1 - 1/t_j with t <= 1.02 t_j. That is Bayes-UCB with a horizon rounded down by at most 2%,
and costs at most R quantiles a step instead of R*K.

A second saving is exact: the pulled arm was the argmax, and a success only raises its posterior
quantile, so after a success its cached index (a lower bound of the new one) still wins the next
argmax; the quantile is recomputed only after a failure, or at the next refresh. Decisions are
the same as recomputing every time.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaincinv

from rlcanon.bandits.base import argmax_rows, check_param


class BayesUCB:
    def __init__(self, refresh: float = 1.02) -> None:
        check_param("refresh", refresh, 1.0, 1e6)
        self.refresh = refresh

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.rows = np.arange(runs)
        self.alpha = np.ones((runs, k))
        self.beta = np.ones((runs, k))
        self.level = 0.0
        self.next_refresh = 1.0
        self.index = np.zeros((runs, k))

    def select(self, t: int) -> np.ndarray:
        if t >= self.next_refresh:
            self.level = 1.0 - 1.0 / t
            self.index = betaincinv(self.alpha, self.beta, self.level)
            self.next_refresh = max(t + 1, t * self.refresh)
        return argmax_rows(self.index)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        r = self.rows
        self.alpha[r, arms] += rewards
        self.beta[r, arms] += 1.0 - rewards
        failed = rewards < 1.0
        rf, af = r[failed], arms[failed]
        if len(rf):
            self.index[rf, af] = betaincinv(self.alpha[rf, af], self.beta[rf, af], self.level)
