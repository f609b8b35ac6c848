"""Finite MDPs with a known model, and small environments that expose theirs.

Every environment here follows Gymnasium's toy-text convention: ``env.unwrapped.P[s][a]`` is a
list of ``(probability, next_state, reward, terminated)``. :func:`model_of` turns that into arrays
for dynamic programming; the learners only ever step the environment.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.envs.toy import Transitions
from rlcanon.errors import ConfigError


@dataclass
class TabularModel:
    """P[s, a, s'] (mass of transitions that do not terminate) and expected rewards R[s, a].

    The Bellman backup is Q(s, a) = R[s, a] + gamma * sum_s' P[s, a, s'] V(s'): probability mass that
    terminates contributes its reward and no bootstrap.
    """

    P: np.ndarray
    R: np.ndarray

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


def discrete_sizes(env: gym.Env) -> tuple[int, int]:
    """(number of states, number of actions) of a tabular env."""
    obs, act = env.observation_space, env.action_space
    if not isinstance(obs, gym.spaces.Discrete) or not isinstance(act, gym.spaces.Discrete):
        raise ConfigError(
            f"{env.spec.id if env.spec else env} is not tabular (needs Discrete observations and actions)"
        )
    return int(obs.n), int(act.n)


def model_of(env: gym.Env) -> TabularModel:
    trans: Transitions | None = getattr(env.unwrapped, "P", None)
    if trans is None:
        raise ConfigError(f"{env.spec.id if env.spec else env} exposes no transition model (env.unwrapped.P)")
    n_s, n_a = discrete_sizes(env)
    P = np.zeros((n_s, n_a, n_s))
    R = np.zeros((n_s, n_a))
    for s, by_action in trans.items():
        for a, outcomes in by_action.items():
            for prob, s2, reward, terminated in outcomes:
                R[s, a] += prob * reward
                if not terminated:
                    P[s, a, int(s2)] += prob
    return TabularModel(P, R)


def make_tabular_env(
    env_id: str,
    max_steps: int | None = None,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: tuple[str, ...] = (),
) -> gym.Env:
    """Any env with discrete observations and actions (ours are ``rlcanon/...`` ids), through the
    shared factory. Monte Carlo needs episodes that end: an env without a step limit (CliffWalking)
    gets 1000 steps, and ``max_steps`` overrides any limit."""
    from rlcanon.envs.factory import make_env

    env = make_env(env_id, env_kwargs, wrappers)
    if max_steps or env.spec is None or env.spec.max_episode_steps is None:
        env = gym.wrappers.TimeLimit(env, max_steps or 1000)
    if not isinstance(env.observation_space, gym.spaces.Discrete) or not isinstance(
        env.action_space, gym.spaces.Discrete
    ):
        env.close()
        raise ConfigError(f"{env_id} is not tabular (needs Discrete observations and actions)")
    return env
