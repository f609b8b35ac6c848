"""Schedules as plain functions of training progress."""

from __future__ import annotations


def linear(start: float, end: float, fraction: float, progress: float) -> float:
    """Move linearly from ``start`` to ``end`` over the first ``fraction`` of training, then hold.

    ``progress`` is the share of training done, in [0, 1].
    """
    if fraction <= 0:
        return end
    t = min(max(progress / fraction, 0.0), 1.0)
    return start + t * (end - start)
