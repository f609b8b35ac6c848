"""The one place environments are made. Everything is a Gymnasium 1.x vector env whose autoreset
mode is NEXT_STEP (Gymnasium's default); the collectors handle that mode once for every algorithm."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.envs.single import SingleVectorEnv
from rlcanon.errors import ConfigError

EnvSpecLike = str | gym.Env | gym.vector.VectorEnv | Callable[[], gym.Env]

_ATARI_MARKERS = ("ALE/", "NoFrameskip")

# Gymnasium's native vector envs step all sub-envs with NumPy; with few sub-envs the array
# overhead outweighs that. Measured for CartPole-v1 (us per vector step, sync vs native):
# 1 env 11.5 vs 30.4, 2: 16.9 vs 29.7, 4: 27.1 vs 30.0, 8: 48.5 vs 32.3.
NATIVE_VECTOR_MIN_ENVS = 5


def is_atari(env_id: str) -> bool:
    return any(marker in env_id for marker in _ATARI_MARKERS)


def _register_optional(env_id: str) -> None:
    if not is_atari(env_id):
        return
    try:
        import ale_py
    except ImportError:
        raise ConfigError(
            f"env {env_id!r} needs the Atari extra; install it with: pip install 'rlcanon[atari]'"
        ) from None
    gym.register_envs(ale_py)


def check_env_id(env_id: str) -> None:
    """Raise a clear error for an id Gymnasium does not know, with the closest known ids."""
    _register_optional(env_id)
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
    hint = f"; did you mean {close}?" if close else "; see gymnasium.pprint_registry() for all ids"
    raise ConfigError(f"unknown env id {env_id!r}{hint}")


def make_vec_env(
    env: EnvSpecLike,
    num_envs: int = 1,
    seed: int | None = None,
    *,
    frame_stack: int = 4,
    env_kwargs: dict[str, Any] | None = None,
) -> gym.vector.VectorEnv:
    """Build a NEXT_STEP-autoreset vector env from an id, an env, a factory or a vector env.

    - A registered id uses Gymnasium's native vector implementation where the id has one
      (CartPole, for example) and ``num_envs`` is at least ``NATIVE_VECTOR_MIN_ENVS``, else
      ``SyncVectorEnv`` (faster for a handful of sub-envs); a single env gets the leaner
      :class:`~rlcanon.envs.single.SingleVectorEnv`.
    - Atari ids get the DQN preprocessing (84x84 grey, frame skip 4, no-op starts, terminal on
      life loss off) and a stack of ``frame_stack`` frames.
    - An env instance can only back a single-env vector env.

    ``seed`` seeds sub-env ``i`` with ``seed + i`` on the first reset (done by the caller).
    """
    if num_envs < 1:
        raise ConfigError(f"num_envs={num_envs} is not allowed; it must be >= 1")
    kwargs = env_kwargs or {}
    if isinstance(env, gym.vector.VectorEnv):
        return env
    if isinstance(env, gym.Env):
        if num_envs != 1:
            raise ConfigError("an env instance can back only num_envs=1; pass an env factory for more")
        return SingleVectorEnv(env)
    if callable(env):
        return _from_factory(env, num_envs)
    if not isinstance(env, str):
        raise ConfigError(f"env must be an id, an env, a factory or a vector env, not {type(env)}")
    check_env_id(env)
    if is_atari(env):
        from rlcanon.envs.atari import atari_env_fn

        return _from_factory(atari_env_fn(env, frame_stack, kwargs), num_envs)
    if num_envs == 1:
        return SingleVectorEnv(gym.make(env, **kwargs))
    spec = gym.spec(env)
    if spec.vector_entry_point is not None and not kwargs and num_envs >= NATIVE_VECTOR_MIN_ENVS:
        return gym.make_vec(env, num_envs=num_envs, vectorization_mode="vector_entry_point")
    return gym.make_vec(env, num_envs=num_envs, vectorization_mode="sync", **kwargs)


def _from_factory(fn: Callable[[], gym.Env], num_envs: int) -> gym.vector.VectorEnv:
    """One env: the lean :class:`SingleVectorEnv`; more: ``SyncVectorEnv`` over ``fn``."""
    return SingleVectorEnv(fn()) if num_envs == 1 else gym.vector.SyncVectorEnv([fn] * num_envs)


def env_label(env: EnvSpecLike) -> str:
    """A short name for run directories and summaries."""
    if isinstance(env, str):
        return env
    spec = getattr(env, "spec", None)
    if spec is not None and getattr(spec, "id", None):
        return str(spec.id)
    return getattr(env, "__name__", type(env).__name__)


def space_info(env: gym.vector.VectorEnv) -> tuple[gym.Space, gym.Space]:
    """(single observation space, single action space) of a vector env."""
    return env.single_observation_space, env.single_action_space


def obs_shape(space: gym.Space) -> tuple[int, ...]:
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(f"observation space {space} is not supported; Box observations only")
    return tuple(int(d) for d in space.shape)


def flat_obs(obs: np.ndarray) -> np.ndarray:
    return np.asarray(obs, dtype=np.float32)
