"""The one place environments are made. Everything is a Gymnasium 1.x vector env whose autoreset
mode is NEXT_STEP (Gymnasium's default); the collector handles that mode once for every algorithm.

:func:`make_vec_env` builds the env itself (from an id, an env, a factory or a vector env, with
``env_kwargs`` and named per-env ``wrappers``). :func:`make_training_env` adds the episode
statistics and the normalisers a run config asks for; :func:`make_eval_env` the frozen observation
normaliser of a trained run.
"""

from __future__ import annotations

import copy
import difflib
from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.envs.normalize import NormalizeObservation, NormalizeReward
from rlcanon.envs.single import SingleVectorEnv
from rlcanon.envs.wrappers import apply_wrappers
from rlcanon.errors import ConfigError

EnvSpecLike = str | gym.Env | gym.vector.VectorEnv | Callable[[], gym.Env]

_ATARI_MARKERS = ("ALE/", "NoFrameskip")

# Gymnasium's native vector envs step all sub-envs with NumPy; with few sub-envs the array
# overhead outweighs that. Measured for CartPole-v1 (us per vector step, sync vs native):
# 1 env 11.5 vs 30.4, 2: 16.9 vs 29.7, 4: 27.1 vs 30.0, 8: 48.5 vs 32.3.
NATIVE_VECTOR_MIN_ENVS = 5

EXTRAS = {"mujoco": "mujoco", "box2d": "box2d", "Box2D": "box2d", "ale_py": "atari", "ray": "ray"}
"""Module names of optional dependencies and the rlcanon extra that installs each."""


def extra_hint(module: str) -> str:
    """How to install the extra that provides ``module``."""
    extra = EXTRAS.get(module, module)
    return f"pip install 'rlcanon[{extra}]' (in a checkout: bash scripts/setup.sh {extra})"


def is_atari(env_id: str) -> bool:
    return any(marker in env_id for marker in _ATARI_MARKERS)


def _register_optional(env_id: str) -> None:
    if not is_atari(env_id):
        return
    try:
        import ale_py
    except ImportError:
        raise ConfigError(
            f"env {env_id!r} needs the Atari extra; install it with: {extra_hint('ale_py')}"
        ) from None
    gym.register_envs(ale_py)


def check_env_id(env_id: str) -> None:
    """Raise a clear error for an id Gymnasium does not know, with the closest known ids."""
    if not isinstance(env_id, str) or not env_id:
        raise ConfigError(f"env id {env_id!r} is not allowed; give a Gymnasium id such as 'CartPole-v1'")
    from rlcanon.envs.registration import register_envs

    register_envs()
    _register_optional(env_id)
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.5)
    hint = (
        f"; did you mean {close}?" if close else "; see 'rlcanon list' or gymnasium.pprint_registry() for ids"
    )
    raise ConfigError(f"unknown env id {env_id!r}{hint}")


def make_env(
    env_id: str, env_kwargs: Mapping[str, Any] | None = None, wrappers: tuple[str, ...] = ()
) -> gym.Env:
    """One env from a registered id, with keyword arguments for ``gym.make`` and named wrappers.
    A missing optional dependency (MuJoCo, Box2D) is reported with the command that installs it."""
    check_env_id(env_id)
    kwargs = dict(env_kwargs or {})
    steps = kwargs.get("max_episode_steps")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(
            f"env_kwargs max_episode_steps={steps!r} is not allowed; it must be an integer >= 1"
        )
    try:
        env = gym.make(env_id, **kwargs)
    except gym.error.DependencyNotInstalled as exc:
        missing = next((m for m in EXTRAS if m.lower() in str(exc).lower()), "")
        hint = extra_hint(missing) if missing else str(exc).splitlines()[0]
        raise ConfigError(f"env {env_id!r} needs an optional dependency; install it with: {hint}") from None
    except (TypeError, ValueError, KeyError, AssertionError, gym.error.Error) as exc:
        # an env's own constructor refusing its kwargs (an unknown map name, a bad size, ...)
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ConfigError(f"env {env_id!r} does not accept env_kwargs {kwargs}: {detail}") from None
    return apply_wrappers(env, wrappers)


def make_vec_env(
    env: EnvSpecLike,
    num_envs: int = 1,
    *,
    frame_stack: int = 4,
    env_kwargs: Mapping[str, Any] | None = None,
    wrappers: tuple[str, ...] = (),
) -> gym.vector.VectorEnv:
    """Build a NEXT_STEP-autoreset vector env from an id, an env, a factory or a vector env.

    - A registered id uses Gymnasium's native vector implementation where the id has one
      (CartPole, for example), ``num_envs`` is at least ``NATIVE_VECTOR_MIN_ENVS`` and no kwargs or
      wrappers are given; else ``SyncVectorEnv`` (faster for a handful of sub-envs). A single env gets
      the leaner :class:`~rlcanon.envs.single.SingleVectorEnv`.
    - Atari ids get the Nature DQN preprocessing and a stack of ``frame_stack`` frames.
    - An env instance can only back a single-env vector env; a vector env is used as it is.
    """
    if num_envs < 1:
        raise ConfigError(f"num_envs={num_envs} is not allowed; it must be >= 1")
    if isinstance(env, gym.vector.VectorEnv):
        if wrappers or env_kwargs:
            raise ConfigError("wrappers and env_kwargs need an env id or factory, not a ready vector env")
        return env
    if isinstance(env, gym.Env):
        if num_envs != 1:
            raise ConfigError("an env instance can back only num_envs=1; pass an env factory for more")
        return SingleVectorEnv(apply_wrappers(env, wrappers))
    if callable(env):
        fn = env
        return _from_factory(lambda: apply_wrappers(fn(), wrappers), num_envs)
    if not isinstance(env, str):
        raise ConfigError(f"env must be an id, an env, a factory or a vector env, not {type(env).__name__}")
    check_env_id(env)
    if is_atari(env):
        from rlcanon.envs.atari import atari_env_fn

        base = atari_env_fn(env, frame_stack, dict(env_kwargs or {}))
        return _from_factory(lambda: apply_wrappers(base(), wrappers), num_envs)
    if num_envs == 1:
        return SingleVectorEnv(make_env(env, env_kwargs, wrappers))
    spec = gym.spec(env)
    if (
        spec.vector_entry_point is not None
        and not env_kwargs
        and not wrappers
        and num_envs >= NATIVE_VECTOR_MIN_ENVS
    ):
        return gym.make_vec(env, num_envs=num_envs, vectorization_mode="vector_entry_point")
    make_env(env, env_kwargs, wrappers).close()  # errors (bad kwargs, missing extras) surface here
    return gym.vector.SyncVectorEnv([lambda: make_env(env, env_kwargs, wrappers)] * num_envs)


def _from_factory(fn: Callable[[], gym.Env], num_envs: int) -> gym.vector.VectorEnv:
    """One env: the lean :class:`SingleVectorEnv`; more: ``SyncVectorEnv`` over ``fn``."""
    return SingleVectorEnv(fn()) if num_envs == 1 else gym.vector.SyncVectorEnv([fn] * num_envs)


def make_training_env(config: Any, env: EnvSpecLike | None = None) -> gym.vector.VectorEnv:
    """The env a deep RL run trains on: ``config.num_envs`` sub-envs with the config's kwargs and
    wrappers, then the normalisers the config asks for."""
    vec = make_vec_env(
        env if env is not None else config.env_id,
        config.num_envs,
        frame_stack=config.frame_stack,
        env_kwargs=config.env_kwargs,
        wrappers=config.wrappers,
    )
    if config.normalize_obs:
        vec = NormalizeObservation(vec)
    if config.normalize_reward:
        vec = NormalizeReward(vec, config.gamma)
    return vec


def make_eval_env(
    config: Any, env: EnvSpecLike | None, num_envs: int, obs_state: dict[str, np.ndarray] | None
) -> gym.vector.VectorEnv:
    """The env a run is evaluated on: like the training env, with the observation normaliser
    frozen at ``obs_state`` (the training statistics) and rewards left unscaled."""
    spec = env if env is not None else config.env_id
    if isinstance(spec, gym.Env):  # evaluate on a copy: the instance itself is the training env
        instance = spec
        spec = lambda: copy.deepcopy(instance)  # noqa: E731
    elif isinstance(spec, gym.vector.VectorEnv):  # a vector env cannot be copied: rebuild it by id
        spec = env_label(spec)
    vec = make_vec_env(
        spec,
        num_envs,
        frame_stack=getattr(config, "frame_stack", 4),
        env_kwargs=getattr(config, "env_kwargs", None),
        wrappers=getattr(config, "wrappers", ()),
    )
    if obs_state is not None:
        vec = NormalizeObservation(vec, frozen=True)
        vec.load_state_arrays(obs_state)
    return vec


def check_evaluable(env: EnvSpecLike) -> None:
    """Refuse, before any training, an env that :func:`make_eval_env` could not rebuild: it copies a
    ``gym.Env`` and rebuilds a ready vector env by its registered id (a vector env cannot be copied)."""
    if isinstance(env, gym.Env):
        try:
            copy.deepcopy(env).close()
        except Exception as exc:
            raise ConfigError(
                f"the env {env_label(env)!r} cannot be copied for evaluation ({type(exc).__name__}: {exc}); "
                f"pass a function that returns a new env instead"
            ) from None
    if not isinstance(env, gym.vector.VectorEnv):
        return
    label = env_label(env)
    if label not in gym.registry:
        raise ConfigError(
            f"a ready vector env without a registered id ({label!r}) cannot be rebuilt for evaluation; "
            f"pass an env id, a gym.Env, or a function that returns one"
        )


def env_label(env: EnvSpecLike) -> str:
    """A short name for run directories and summaries."""
    if isinstance(env, str):
        return env
    spec = getattr(env, "spec", None)
    if spec is not None and getattr(spec, "id", None):
        return str(spec.id)
    return getattr(env, "__name__", type(env).__name__)


def obs_shape(space: gym.Space) -> tuple[int, ...]:
    if not isinstance(space, gym.spaces.Box):
        raise ConfigError(
            f"observation space {space} is not supported here; Box observations only (try the "
            f"'flatten-observation' wrapper, or 'rlcanon tabular' for Discrete states)"
        )
    return tuple(int(d) for d in space.shape)
