"""The gradient bandit (Sutton & Barto 2018, sec. 2.8, eq. 2.12): preferences H, policy softmax(H),
stochastic gradient ascent on expected reward with the average reward as baseline:

    H_a <- H_a + alpha (R - baseline) (1{a = A} - pi(a))
"""

from __future__ import annotations

import numpy as np

from rlcanon.bandits.base import argmax_rows, check_flag, check_param


class GradientBandit:
    def __init__(self, alpha: float = 0.1, baseline: bool = True) -> None:
        check_param("alpha", alpha, 0.0, 1e6, low_open=True)
        check_flag("baseline", baseline)
        self.alpha, self.baseline = alpha, baseline

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.rng, self.rows = rng, np.arange(runs)
        self.prefs = np.zeros((runs, k))
        self.avg_reward = np.zeros(runs)
        self.t = 0

    def policy(self) -> np.ndarray:
        z = np.exp(self.prefs - self.prefs.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def select(self, t: int) -> np.ndarray:
        gumbel = -np.log(-np.log(self.rng.random(self.prefs.shape)))
        return argmax_rows(self.prefs + gumbel)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.t += 1
        pi = self.policy()
        base = self.avg_reward if self.baseline else 0.0
        adv = (rewards - base)[:, None]
        onehot = np.zeros_like(pi)
        onehot[self.rows, arms] = 1.0
        self.prefs += self.alpha * adv * (onehot - pi)
        self.avg_reward += (rewards - self.avg_reward) / self.t
