"""Per-env wrappers that a config or the CLI can name (``--wrappers time-limit:max_episode_steps=200``).

Each entry maps a name to a function ``(env, **kwargs) -> env``. A spec string is ``name`` or
``name:key=value,key=value`` (values are parsed as JSON where they are JSON). The randomization and
curriculum layers add their wrappers here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.errors import ConfigError


class RewardScale(gym.RewardWrapper):  # type: ignore[misc]
    """Multiply every reward by ``scale``."""

    def __init__(self, env: gym.Env, scale: float = 1.0) -> None:
        super().__init__(env)
        self.scale = float(scale)

    def reward(self, reward: Any) -> float:
        return float(reward) * self.scale


class ObservationNoise(gym.ObservationWrapper):  # type: ignore[misc]
    """Add N(0, std^2) noise to every observation, drawn from the env's own seeded generator."""

    def __init__(self, env: gym.Env, std: float = 0.1) -> None:
        super().__init__(env)
        self.std = float(std)

    def observation(self, obs: Any) -> Any:
        noise = self.np_random.normal(0.0, self.std, np.shape(obs))
        return (np.asarray(obs) + noise).astype(self.observation_space.dtype or np.float32)


class ActionRepeat(gym.Wrapper):  # type: ignore[misc]
    """Repeat each action ``repeat`` times (or until the episode ends), summing the rewards."""

    def __init__(self, env: gym.Env, repeat: int = 2) -> None:
        super().__init__(env)
        self.repeat = int(repeat)

    def step(self, action: Any) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


WRAPPERS: dict[str, tuple[Callable[..., gym.Env], dict[str, type], str]] = {
    "time-limit": (
        gym.wrappers.TimeLimit,
        {"max_episode_steps": int},
        "end episodes after N steps (truncation)",
    ),
    "clip-action": (gym.wrappers.ClipAction, {}, "clip actions to the Box bounds"),
    "rescale-action": (
        gym.wrappers.RescaleAction,
        {"min_action": float, "max_action": float},
        "map actions from [min_action, max_action] to the env's bounds",
    ),
    "flatten-observation": (gym.wrappers.FlattenObservation, {}, "flatten Dict/Tuple/array observations"),
    "reward-scale": (RewardScale, {"scale": float}, "multiply rewards by scale"),
    "observation-noise": (ObservationNoise, {"std": float}, "add Gaussian noise to observations"),
    "action-repeat": (ActionRepeat, {"repeat": int}, "repeat each action, summing rewards"),
}


LIMITS: dict[str, tuple[float, float]] = {
    "max_episode_steps": (1, 10**9),
    "repeat": (1, 1000),
    "std": (0.0, 1e6),
    "scale": (-1e6, 1e6),
    "min_action": (-1e6, 1e6),
    "max_action": (-1e6, 1e6),
}
"""The allowed range of every wrapper argument (beyond these, rewards and observations overflow)."""


def parse_wrapper(spec: str) -> tuple[str, dict[str, Any]]:
    """``'name:key=value,...'`` -> (name, kwargs), checked against :data:`WRAPPERS`."""
    name, _, args = spec.partition(":")
    if name not in WRAPPERS:
        raise ConfigError(f"unknown wrapper {name!r}; choose one of {sorted(WRAPPERS)}")
    _, params, _ = WRAPPERS[name]
    kwargs: dict[str, Any] = {}
    for item in filter(None, args.split(",")):
        key, sep, raw = item.partition("=")
        if not sep or key not in params:
            raise ConfigError(
                f"wrapper {name!r} takes {sorted(params) or 'no arguments'}; got {item!r} (write key=value)"
            )
        try:
            value = params[key](json.loads(raw))
        except (ValueError, TypeError, OverflowError):
            raise ConfigError(
                f"wrapper {name!r}: {key}={raw!r} is not a valid {params[key].__name__}"
            ) from None
        if isinstance(value, float) and not np.isfinite(value):
            raise ConfigError(f"wrapper {name!r}: {key}={raw!r} must be finite")
        low, high = LIMITS[key]
        if not low <= value <= high:
            raise ConfigError(
                f"wrapper {name!r}: {key}={value} is not allowed; it must lie in [{low:g}, {high:g}]"
            )
        kwargs[key] = value
    return name, kwargs


def apply_wrappers(env: gym.Env, specs: tuple[str, ...]) -> gym.Env:
    for spec in specs:
        name, kwargs = parse_wrapper(spec)
        try:
            env = WRAPPERS[name][0](env, **kwargs)
        except (
            TypeError,
            ValueError,
            AssertionError,
            gym.error.Error,
        ) as exc:  # e.g. a Box wrapper, Discrete env
            detail = " ".join(str(exc).split())[:200] or type(exc).__name__
            env.close()
            raise ConfigError(f"wrapper {name!r} does not apply to this env ({detail})") from None
    return env
