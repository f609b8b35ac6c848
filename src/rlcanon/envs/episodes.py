"""Helpers for episode statistics and wrapper chains."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


def find_wrapper(env: Any, cls: type) -> Any:
    """The first wrapper of type ``cls`` in a chain of vector wrappers, or None."""
    while env is not None:
        if isinstance(env, cls):
            return env
        env = getattr(env, "env", None) if isinstance(env, gym.vector.VectorWrapper) else None
    return None


def episode_metrics(returns: list[float], lengths: list[int]) -> dict[str, float]:
    """Mean return and length of finished episodes, for the log row (empty when none finished)."""
    if not returns:
        return {}
    return {
        "charts/episodic_return": float(np.mean(returns)),
        "charts/episodic_length": float(np.mean(lengths)),
        "charts/episodes": float(len(returns)),
    }
