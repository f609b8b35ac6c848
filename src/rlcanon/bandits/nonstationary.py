"""UCB for non-stationary means (Garivier & Moulines 2011, "On upper-confidence bound policies for
switching bandit problems").

- Discounted UCB: statistics discounted by gamma each step; index
  Xbar_k + 2 B sqrt(xi ln n_t / N_k), with n_t = sum_k N_k (their eq. for D-UCB).
- Sliding-window UCB: statistics over the last ``window`` steps only; index
  Xbar_k + B sqrt(xi ln min(t, window) / N_k).

B bounds the rewards (1 for Bernoulli). Defaults (gamma 0.9975, window 600, xi 0.6) suit horizons
around 1e4 with a few changes of the means; tune gamma / window to how fast the means move.
"""

from __future__ import annotations

import numpy as np

from rlcanon.bandits.base import check_param, untried_first

MAX_WINDOW = 1_000_000


def _check_index(xi: float, bound: float) -> None:
    check_param("xi", xi, 0.0, 1e6, low_open=True)
    check_param("bound", bound, 0.0, 1e9, low_open=True)


class DiscountedUCB:
    def __init__(self, gamma: float = 0.9975, xi: float = 0.6, bound: float = 1.0) -> None:
        check_param("gamma", gamma, 0.0, 1.0, low_open=True)
        _check_index(xi, bound)
        self.gamma, self.xi, self.bound = gamma, xi, bound

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.rows = np.arange(runs)
        self.counts = np.zeros((runs, k))
        self.sums = np.zeros((runs, k))

    def select(self, t: int) -> np.ndarray:
        n = np.maximum(self.counts, 1e-12)
        total = self.counts.sum(axis=1, keepdims=True)
        bonus = 2 * self.bound * np.sqrt(self.xi * np.log(np.maximum(total, 1.0)) / n)
        return untried_first(self.counts, self.sums / n + bonus)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.counts *= self.gamma
        self.sums *= self.gamma
        self.counts[self.rows, arms] += 1.0
        self.sums[self.rows, arms] += rewards


class SlidingWindowUCB:
    def __init__(self, window: int = 600, xi: float = 0.6, bound: float = 1.0) -> None:
        check_param("window", window, 1, MAX_WINDOW, integer=True)
        _check_index(xi, bound)
        self.window, self.xi, self.bound = window, xi, bound

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        from rlcanon.core.config import check_memory

        check_memory("runs * window", 16 * runs * self.window)
        self.rows = np.arange(runs)
        self.counts = np.zeros((runs, k))
        self.sums = np.zeros((runs, k))
        self.hist_arm = np.zeros((runs, self.window), dtype=np.int64)  # ring buffer of the window
        self.hist_rew = np.zeros((runs, self.window))
        self.t = 0

    def select(self, t: int) -> np.ndarray:
        n = np.maximum(self.counts, 1.0)
        bonus = self.bound * np.sqrt(self.xi * np.log(min(t, self.window)) / n)
        return untried_first(self.counts, self.sums / n + bonus)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        slot = self.t % self.window
        if self.t >= self.window:  # the oldest pull leaves the window
            old = self.hist_arm[:, slot]
            self.counts[self.rows, old] -= 1.0
            self.sums[self.rows, old] -= self.hist_rew[:, slot]
        self.hist_arm[:, slot] = arms
        self.hist_rew[:, slot] = rewards
        self.counts[self.rows, arms] += 1.0
        self.sums[self.rows, arms] += rewards
        self.t += 1
