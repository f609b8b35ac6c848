"""Schedules as plain functions of training progress."""

from __future__ import annotations

from typing import Any

import numpy as np


def linear(start: float, end: float, fraction: float, progress: float) -> float:
    """Move linearly from ``start`` to ``end`` over the first ``fraction`` of training, then hold.

    ``progress`` is the share of training done, in [0, 1].
    """
    if fraction <= 0:
        return end
    t = min(max(progress / fraction, 0.0), 1.0)
    return start + t * (end - start)


def epsilon_greedy(greedy: Any, epsilon: float, n_actions: int, rng: Any) -> Any:
    """``greedy`` actions (B,) with each replaced, with probability ``epsilon``, by a uniform
    random one of ``n_actions`` (``rng`` a NumPy generator)."""
    explore = rng.random(len(greedy)) < epsilon
    return np.where(explore, rng.integers(0, n_actions, len(greedy)), greedy)
