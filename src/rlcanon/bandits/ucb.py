"""UCB1 (Auer, Cesa-Bianchi & Fischer 2002): pull each arm once, then the arm maximising
Q_k + sqrt(c ln t / N_k), with c = 2 in the paper."""

from __future__ import annotations

import numpy as np

from rlcanon.bandits.base import ArmStats, check_param, untried_first


class UCB1:
    def __init__(self, c: float = 2.0) -> None:
        check_param("c", c, 0.0, 1e6)
        self.c = c

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.stats = ArmStats(runs, k)

    def index(self, t: int) -> np.ndarray:
        n = np.maximum(self.stats.counts, 1)
        return self.stats.values + np.sqrt(self.c * np.log(t) / n)

    def select(self, t: int) -> np.ndarray:
        return untried_first(self.stats.counts, self.index(t))

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.stats.update(arms, rewards)
