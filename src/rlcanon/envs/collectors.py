"""The shared collectors: the only code that knows how Gymnasium's NEXT_STEP autoreset works.

In NEXT_STEP mode, the step that ends an episode returns the *final* observation, and the next call
to ``step`` for that sub-env ignores its action and returns the reset observation with reward 0.
That call is an "autoreset step": it is not a transition of the MDP. :class:`VecStepper` marks it
``valid=False``; the replay collector drops it and the rollout collector masks it out of the loss.
Because the final observation arrives in the ordinary ``obs`` slot, truncated episodes can be
bootstrapped from it with no special case.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass
class Transition:
    """One vector step: arrays with a leading num_envs axis."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray


class VecStepper:
    """Steps a NEXT_STEP vector env, tracks episode statistics and flags autoreset steps."""

    def __init__(self, env: gym.vector.VectorEnv, seed: int | None) -> None:
        self.env = env
        self.num_envs = env.num_envs
        obs, _ = env.reset(seed=seed)
        self.obs = np.asarray(obs)
        self.autoreset = np.zeros(self.num_envs, dtype=bool)
        self.ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self.ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self.finished_returns: list[float] = []
        self.finished_lengths: list[int] = []

    def step(self, actions: np.ndarray) -> Transition:
        next_obs, rewards, terminated, truncated, _ = self.env.step(actions)
        next_obs = np.asarray(next_obs)
        rewards = np.asarray(rewards, dtype=np.float32)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        ended = terminated | truncated
        if self.autoreset.any():
            valid = ~self.autoreset
            self.ep_return += np.where(valid, rewards, 0.0)
            self.ep_length += valid
            terminated, truncated = terminated & valid, truncated & valid
            done = ended & valid
        else:  # the common case: no sub-env is resetting, so every masking is a no-op
            valid = np.ones(self.num_envs, dtype=bool)
            self.ep_return += rewards
            self.ep_length += 1
            done = ended
        if done.any():
            self.finished_returns.extend(self.ep_return[done].tolist())
            self.finished_lengths.extend(self.ep_length[done].tolist())
            self.ep_return[done] = 0.0
            self.ep_length[done] = 0
        step = Transition(self.obs, actions, rewards, next_obs, terminated, truncated, valid)
        self.autoreset = ended
        self.obs = next_obs
        return step

    def pop_episodes(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes finished since the last call."""
        out = (self.finished_returns, self.finished_lengths)
        self.finished_returns, self.finished_lengths = [], []
        return out


def episode_metrics(returns: list[float], lengths: list[int]) -> dict[str, float]:
    """Mean return and length of finished episodes, for the log row (empty when none finished)."""
    if not returns:
        return {}
    return {
        "charts/episodic_return": float(np.mean(returns)),
        "charts/episodic_length": float(np.mean(lengths)),
        "charts/episodes": float(len(returns)),
    }
