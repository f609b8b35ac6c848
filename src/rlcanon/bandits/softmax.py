"""Boltzmann (softmax) exploration: pull arm k with probability exp(Q_k / tau) / sum exp(Q_j / tau)
(Sutton & Barto 2018, sec. 2.8 notes; Cesa-Bianchi et al. 2017 on its pitfalls)."""

from __future__ import annotations

import numpy as np

from rlcanon.bandits.base import ArmStats, argmax_rows, check_param


class Boltzmann:
    def __init__(self, temperature: float = 0.1) -> None:
        check_param("temperature", temperature, 1e-6, 1e6)
        self.temperature = temperature

    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None:
        self.rng = rng
        self.stats = ArmStats(runs, k)

    def select(self, t: int) -> np.ndarray:
        # Gumbel-max: argmax(Q / tau + Gumbel noise) is an exact sample of the softmax.
        gumbel = -np.log(-np.log(self.rng.random(self.stats.values.shape)))
        return argmax_rows(self.stats.values / self.temperature + gumbel)

    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None:
        self.stats.update(arms, rewards)
