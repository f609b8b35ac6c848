"""The solver interface, and the per-arm statistics most solvers share.

Every solver is vectorised over R independent runs: ``select(t)`` returns one arm per run and
``update(arms, rewards)`` takes one reward per run. ``t`` counts steps from 1.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Solver(Protocol):
    def reset(self, runs: int, k: int, rng: np.random.Generator) -> None: ...
    def select(self, t: int) -> np.ndarray: ...
    def update(self, arms: np.ndarray, rewards: np.ndarray) -> None: ...


class ArmStats:
    """Pull counts N[r, k] and sample means Q[r, k], updated incrementally."""

    def __init__(self, runs: int, k: int, initial_value: float = 0.0) -> None:
        self.rows = np.arange(runs)
        self.counts = np.zeros((runs, k))
        self.values = np.full((runs, k), float(initial_value))

    def update(self, arms: np.ndarray, rewards: np.ndarray, step_size: float | None = None) -> None:
        """Q <- Q + alpha (r - Q), alpha = 1/N (sample average) or a constant step size."""
        r = self.rows
        self.counts[r, arms] += 1
        alpha = 1.0 / self.counts[r, arms] if step_size is None else step_size
        self.values[r, arms] += alpha * (rewards - self.values[r, arms])


def argmax_rows(x: np.ndarray) -> np.ndarray:
    """Per-row argmax (lowest index wins ties)."""
    return np.argmax(x, axis=1)


def untried_first(counts: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Pick the first never-pulled arm of each run if any, else the arm with the largest index."""
    untried = counts == 0
    has_untried = untried.any(axis=1)
    chosen = argmax_rows(index)
    if has_untried.any():
        chosen = np.where(has_untried, np.argmax(untried, axis=1), chosen)
    return chosen
