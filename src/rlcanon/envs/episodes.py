"""Episode returns and lengths as the environment pays them, before any reward scaling."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np


class EpisodeStatistics(gym.vector.VectorWrapper):  # type: ignore[misc]
    """Records the undiscounted return and length of every finished episode of a NEXT_STEP vector env.

    The step after an episode's end is an autoreset step (it returns the reset observation and a
    reward of 0); it belongs to no episode. Wrappers that scale rewards sit above this one, so the
    logged returns are the env's own."""

    def __init__(self, env: gym.vector.VectorEnv) -> None:
        super().__init__(env)
        self.ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self.ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self.autoreset = np.zeros(self.num_envs, dtype=bool)
        self.finished_returns: list[float] = []
        self.finished_lengths: list[int] = []

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.ep_return[:] = 0.0
        self.ep_length[:] = 0
        self.autoreset[:] = False
        return self.env.reset(**kwargs)  # type: ignore[no-any-return]

    def step(self, actions: Any) -> tuple[Any, ...]:
        obs, rew, term, trunc, info = self.env.step(actions)
        ended = np.asarray(term, dtype=bool) | np.asarray(trunc, dtype=bool)
        if self.autoreset.any():
            valid = ~self.autoreset
            self.ep_return += np.where(valid, rew, 0.0)
            self.ep_length += valid
            done = ended & valid
        else:  # the common case: no sub-env is resetting
            self.ep_return += rew
            self.ep_length += 1
            done = ended
        if done.any():
            self.finished_returns.extend(self.ep_return[done].tolist())
            self.finished_lengths.extend(self.ep_length[done].tolist())
            self.ep_return[done] = 0.0
            self.ep_length[done] = 0
        self.autoreset = ended
        return obs, rew, term, trunc, info

    def pop(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes finished since the last call."""
        out = (self.finished_returns, self.finished_lengths)
        self.finished_returns, self.finished_lengths = [], []
        return out


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
