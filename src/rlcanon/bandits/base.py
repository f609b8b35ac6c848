"""The solver interface, and the per-arm statistics most solvers share.

Every solver is vectorised over R independent runs: ``select(t)`` returns one arm per run and
``update(arms, rewards)`` takes one reward per run. ``t`` counts steps from 1.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Protocol

import numpy as np

from rlcanon.errors import ConfigError


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


def check_param(
    name: str,
    value: Any,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """A solver hyperparameter is a finite number (or an integer) in [low, high] (``low_open``:
    (low, high]); ``optional`` also allows None. Booleans and strings are refused, so a value
    such as ``--param c=abc`` is named instead of failing inside the arithmetic."""
    if optional and value is None:
        return
    kind = "an integer" if integer else "a number"
    interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
    ok_type = isinstance(value, numbers.Integral if integer else numbers.Real)
    ok = (
        ok_type
        and not isinstance(value, bool)
        and math.isfinite(value)
        and (low < value if low_open else low <= value)
        and value <= high
    )
    if not ok:
        none = " (or null)" if optional else ""
        raise ConfigError(f"{name}={value!r} is not allowed; it must be {kind} in {interval}{none}")


def check_flag(name: str, value: Any) -> None:
    """A solver switch is true or false."""
    if not isinstance(value, bool):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be true or false")
