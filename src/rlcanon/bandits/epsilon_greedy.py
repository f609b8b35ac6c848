"""epsilon-greedy: explore uniformly with probability epsilon, else pull the best-looking arm.

Variants: fixed epsilon; the decaying schedule eps_t = min(1, c K / t) (the eps_n-greedy of Auer,
Cesa-Bianchi & Fischer 2002, with their c/d^2 folded into ``decay_c``); and optimistic initial
values with a constant step size (Sutton & Barto 2018, sec. 2.6).
"""

from __future__ import annotations

import numpy as np

from rlcanon.bandits.base import ArmStats, argmax_rows, check_param


class EpsilonGreedy:
    def __init__(
        self,
        epsilon: float = 0.1,
        decay_c: float | None = None,
        initial_value: float = 0.0,
        step_size: float | None = None,
    ) -> None:
        check_param("epsilon", epsilon, 0.0, 1.0)
        check_param("decay_c", decay_c, 0.0, 1e6, low_open=True, optional=True)
        check_param("initial_value", initial_value, -1e9, 1e9)
        check_param("step_size", step_size, 0.0, 1.0, low_open=True, optional=True)
        self.epsilon, self.decay_c = epsilon, decay_c
        self.initial_value, self.step_size = initial_value, step_size

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.k, self.rng = k, rng
        self.stats = ArmStats(runs, k, self.initial_value)

    def epsilon_at(self, t: int) -> float:
        if self.decay_c is None:
            return self.epsilon
        return min(1.0, self.decay_c * self.k / t)

    def select(self, t: int) -> np.ndarray:
        greedy = argmax_rows(self.stats.values)
        runs = len(greedy)
        explore = self.rng.random(runs) < self.epsilon_at(t)
        return np.where(explore, self.rng.integers(0, self.k, runs), greedy)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.stats.update(arms, rewards, self.step_size)
