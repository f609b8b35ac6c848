"""The shared collector: the only code that knows how Gymnasium's NEXT_STEP autoreset works.

In NEXT_STEP mode, the step that ends an episode returns the *final* observation, and the next call
to ``step`` for that sub-env ignores its action and returns the reset observation with reward 0.
That call is an "autoreset step": it is not a transition of the MDP. :class:`VecStepper` marks it
``valid=False``; replay buffers never sample it and rollout losses mask it out. Because the final
observation arrives in the ordinary ``obs`` slot, truncated episodes can be bootstrapped from it with
no special case.

The stepper also keeps what recurrent and meta-RL agents read besides the observation: whether the
next observation starts an episode (``episode_start``), and the previous action and reward of each
sub-env (zero at an episode's start). It refuses non-finite rewards and observations, so a NaN never
enters a buffer.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode

from rlcanon.buffers.transition import Transition
from rlcanon.envs.episodes import find_wrapper
from rlcanon.envs.normalize import NormalizeReward
from rlcanon.errors import ConfigError, NonFiniteError


def check_autoreset(env: gym.vector.VectorEnv) -> None:
    """Refuse a vector env whose autoreset mode is not NEXT_STEP (Gymnasium's default)."""
    mode = (getattr(env, "metadata", None) or {}).get("autoreset_mode", AutoresetMode.NEXT_STEP)
    if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.NEXT_STEP.value):
        raise ConfigError(
            f"the vector env uses autoreset_mode={getattr(mode, 'value', mode)!r}; rlcanon's collector "
            f"needs NEXT_STEP (Gymnasium's default): build it with autoreset_mode=AutoresetMode.NEXT_STEP"
        )


class VecStepper:
    """Steps a NEXT_STEP vector env, flags autoreset steps and keeps per-sub-env context."""

    def __init__(self, env: gym.vector.VectorEnv, seed: int | None) -> None:
        check_autoreset(env)
        self.env = env
        self.num_envs = env.num_envs
        # episode returns are the env's own: read below a reward normaliser, if there is one
        self._scaler: NormalizeReward | None = find_wrapper(env, NormalizeReward)
        self.ep_return = np.zeros(self.num_envs, dtype=np.float64)
        self.ep_length = np.zeros(self.num_envs, dtype=np.int64)
        self.finished_returns: list[float] = []
        self.finished_lengths: list[int] = []
        self.steps = 0
        obs, self.infos = self.env.reset(seed=seed)
        self.obs = np.asarray(obs)
        self._check_obs(self.obs)
        self.autoreset = np.zeros(self.num_envs, dtype=bool)
        self.episode_start = np.ones(self.num_envs, dtype=bool)
        space = env.single_action_space
        self._no_action = np.zeros((self.num_envs, *(space.shape or ())), dtype=space.dtype or np.float32)
        self._last: tuple[np.ndarray, np.ndarray] | None = None

    def _check_obs(self, obs: np.ndarray) -> None:
        # one sum is cheaper than an elementwise test; only a non-finite sum needs the exact check
        if obs.dtype.kind == "f" and not math.isfinite(obs.sum()) and not np.isfinite(obs).all():
            raise NonFiniteError(
                f"the environment returned a non-finite observation after {self.steps} steps"
            )

    def step(self, actions: np.ndarray) -> Transition:
        next_obs, rewards, terminated, truncated, infos = self.env.step(actions)
        next_obs = np.asarray(next_obs)
        rewards = np.asarray(rewards, dtype=np.float32)
        if not math.isfinite(rewards.sum()) and not np.isfinite(rewards).all():
            raise NonFiniteError(f"the environment returned a non-finite reward after {self.steps} steps")
        self._check_obs(next_obs)
        terminated = np.asarray(terminated, dtype=bool)
        truncated = np.asarray(truncated, dtype=bool)
        ended = terminated | truncated
        raw = rewards if self._scaler is None else self._scaler.last_raw
        if self.autoreset.any():
            valid = ~self.autoreset
            terminated, truncated = terminated & valid, truncated & valid
            self.ep_return += np.where(valid, raw, 0.0)
            self.ep_length += valid
            done = ended & valid
        else:  # the common case: no sub-env is resetting, so every mask is a no-op
            valid = np.ones(self.num_envs, dtype=bool)
            self.ep_return += raw
            self.ep_length += 1
            done = ended
        if done.any():
            self.finished_returns.extend(self.ep_return[done].tolist())
            self.finished_lengths.extend(self.ep_length[done].tolist())
            self.ep_return[done] = 0.0
            self.ep_length[done] = 0
        tr = Transition(self.obs, actions, rewards, next_obs, terminated, truncated, valid, infos)
        # the step after an end returned a reset observation: the next one acted on starts an episode
        self.episode_start = self.autoreset
        self._last = (actions, rewards)
        self.autoreset = ended
        self.obs, self.infos = next_obs, infos
        self.steps += 1
        return tr

    def pop_episodes(self) -> tuple[list[float], list[int]]:
        """Returns and lengths of the episodes finished since the last call (unscaled rewards)."""
        out = (self.finished_returns, self.finished_lengths)
        self.finished_returns, self.finished_lengths = [], []
        return out

    def context(self) -> dict[str, Any]:
        """What a recurrent or meta-RL agent may read before acting on ``obs``: whether it starts an
        episode, the previous action and reward of each sub-env (zero at an episode's start) and the
        env's infos."""
        prev_actions = self._no_action.copy()
        prev_rewards = np.zeros(self.num_envs, dtype=np.float32)
        if self._last is not None:
            keep = ~self.episode_start
            prev_actions[keep] = np.asarray(self._last[0]).reshape(prev_actions.shape)[keep]
            prev_rewards[keep] = self._last[1][keep]
        return {
            "episode_start": self.episode_start,
            "prev_actions": prev_actions,
            "prev_rewards": prev_rewards,
            "infos": self.infos,
        }
