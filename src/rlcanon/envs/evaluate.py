"""Evaluation: separate episodes with the deterministic (greedy or mean) policy."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

Predict = Callable[..., tuple[np.ndarray, Any]]
"""``predict(obs, state, episode_start, deterministic) -> (actions, state)`` for a batch."""


def evaluate(
    predict: Predict,
    env: gym.vector.VectorEnv,
    episodes: int,
    seed: int,
    max_steps: int = 1_000_000,
) -> np.ndarray:
    """Run ``episodes`` episodes on the sub-envs of ``env`` and return their undiscounted returns.

    Each sub-env runs its quota of episodes back to back (NEXT_STEP autoreset). A recurrent state is
    carried per sub-env and reset through ``episode_start`` at every episode's first step. The env is
    closed at the end."""
    n = env.num_envs
    try:
        obs, _ = env.reset(seed=seed)
        ep_ret = np.zeros(n)
        autoreset = np.zeros(n, dtype=bool)
        episode_start = np.ones(n, dtype=bool)
        state: Any = None
        returns: list[float] = []
        quota = np.full(n, episodes // n)
        quota[: episodes % n] += 1
        for _ in range(max_steps):
            actions, state = predict(np.asarray(obs), state, episode_start, True)
            obs, rew, term, trunc, _ = env.step(actions)
            valid = ~autoreset & (quota > 0)
            ep_ret += np.where(valid, rew, 0.0)
            ended = np.asarray(term) | np.asarray(trunc)
            for i in np.flatnonzero(ended & valid):
                returns.append(float(ep_ret[i]))
                ep_ret[i] = 0.0
                quota[i] -= 1
            episode_start = autoreset  # an autoreset step returned a reset observation
            autoreset = ended
            if len(returns) >= episodes:
                break
        return np.asarray(returns[:episodes], dtype=np.float64)
    finally:
        env.close()
