"""Observation and reward normalisation as vector-env wrappers, with their statistics saved in
checkpoints (:meth:`state_arrays`) and restored by ``eval`` and ``--resume``.

- :class:`NormalizeObservation`: (obs - mean) / sqrt(var + 1e-8) clipped to [-10, 10], with running
  statistics of every observation the training env returns (Welford, :class:`RunningMeanStd`).
  ``frozen`` stops the updates (evaluation uses a frozen copy of the training statistics).
- :class:`NormalizeReward`: r / sqrt(var(G) + 1e-8) clipped to [-10, 10], where G is the running
  discounted return of each sub-env (the scaling of Engstrom et al. 2020 and SB3's VecNormalize).
  Autoreset steps (NEXT_STEP mode) neither update the statistics nor extend a return.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.core.running import RunningMeanStd
from rlcanon.core.validate import MAX_INT, ArraySpec
from rlcanon.envs.episodes import find_wrapper
from rlcanon.errors import CheckpointError

CLIP = 10.0


def _rms_specs(shape: tuple[int, ...]) -> dict[str, ArraySpec]:
    return {
        "mean": ArraySpec(shape, "float64"),
        "var": ArraySpec(shape, "float64", low=0.0),
        "count": ArraySpec((), "float64", low=1e-12, high=float(MAX_INT)),  # (1e-4 plus a count)
    }


def _check_rms(arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
    """The statistics' sum of squares, count * (var + mean^2), must be finite: the next update
    works with it, and an overflow there would turn the variance into inf or NaN."""
    with np.errstate(over="ignore", invalid="ignore"):
        m2 = float(arrays["count"]) * (np.asarray(arrays["var"]) + np.asarray(arrays["mean"]) ** 2)
    if not np.isfinite(m2).all():
        raise CheckpointError(
            f"{where}: arrays '{prefix}/mean', '{prefix}/var' and '{prefix}/count' overflow a float64 "
            f"together; expected count * (var + mean^2) to be finite"
        )


class NormalizeObservation(gym.vector.VectorWrapper):  # type: ignore[misc]
    def __init__(self, env: gym.vector.VectorEnv, frozen: bool = False) -> None:
        super().__init__(env)
        space = env.single_observation_space
        self.rms = RunningMeanStd(tuple(space.shape or ()))
        self.frozen = frozen
        self.single_observation_space = gym.spaces.Box(-CLIP, CLIP, space.shape, np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)

    def _normalize(self, obs: np.ndarray) -> np.ndarray:
        if not self.frozen:
            self.rms.update(np.asarray(obs, dtype=np.float64))
        return self.rms.normalize(np.asarray(obs), CLIP)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self._normalize(obs), info

    def step(self, actions: Any) -> tuple[Any, ...]:
        obs, rew, term, trunc, info = self.env.step(actions)
        return self._normalize(obs), rew, term, trunc, info

    def state_arrays(self) -> dict[str, np.ndarray]:
        return self.rms.state_dict()

    def array_specs(self) -> dict[str, ArraySpec]:
        return _rms_specs(self.rms.mean.shape)

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        _check_rms(arrays, where, prefix)

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.rms.load_state_dict(arrays)


class NormalizeReward(gym.vector.VectorWrapper):  # type: ignore[misc]
    def __init__(self, env: gym.vector.VectorEnv, gamma: float) -> None:
        super().__init__(env)
        self.gamma = gamma
        self.rms = RunningMeanStd(())
        self.returns = np.zeros(self.num_envs)
        self._autoreset = np.zeros(self.num_envs, dtype=bool)
        self.last_raw = np.zeros(self.num_envs)
        """The rewards of the last step before scaling (the collector logs episode returns from them)."""

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict[str, Any]]:
        self.returns[:] = 0.0
        self._autoreset[:] = False
        return self.env.reset(**kwargs)  # type: ignore[no-any-return]

    def step(self, actions: Any) -> tuple[Any, ...]:
        obs, rew, term, trunc, info = self.env.step(actions)
        rew = np.asarray(rew, dtype=np.float64)
        self.last_raw = rew
        valid = ~self._autoreset
        self.returns = self.returns * self.gamma + rew
        self.rms.update(self.returns[valid])
        ended = np.asarray(term) | np.asarray(trunc)
        self.returns[ended | self._autoreset] = 0.0
        self._autoreset = ended
        scaled = np.clip(rew / np.sqrt(self.rms.var + 1e-8), -CLIP, CLIP).astype(np.float32)
        return obs, scaled, term, trunc, info

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {**self.rms.state_dict(), "returns": self.returns}

    def array_specs(self) -> dict[str, ArraySpec]:
        return {**_rms_specs(()), "returns": ArraySpec((self.num_envs,), "float64")}

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        _check_rms(arrays, where, prefix)

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.rms.load_state_dict(arrays)
        self.returns = np.array(arrays["returns"], dtype=np.float64)


def normalizers(env: Any) -> dict[str, Any]:
    """The normalisation wrappers in a wrapper chain, by name ('obs', 'reward')."""
    found = {"obs": find_wrapper(env, NormalizeObservation), "reward": find_wrapper(env, NormalizeReward)}
    return {k: v for k, v in found.items() if v is not None}


class EnvState:
    """The state of a training env's wrappers that a checkpoint must hold (the normalisers')."""

    def __init__(self, env: Any) -> None:
        self.parts = normalizers(env)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {f"{name}/{k}": v for name, w in self.parts.items() for k, v in w.state_arrays().items()}

    def array_specs(self) -> dict[str, ArraySpec]:
        return {f"{name}/{k}": v for name, w in self.parts.items() for k, v in w.array_specs().items()}

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        for name, w in self.parts.items():
            w.check_state_arrays(_sub(arrays, name), where, f"{prefix}/{name}")

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for name, w in self.parts.items():
            w.load_state_arrays(_sub(arrays, name))


def _sub(arrays: dict[str, np.ndarray], name: str) -> dict[str, np.ndarray]:
    return {k[len(name) + 1 :]: v for k, v in arrays.items() if k.startswith(name + "/")}


@contextlib.contextmanager
def frozen(env: Any) -> Iterator[None]:
    """Hold the observation normaliser's statistics still inside the block (restarting the envs of a
    restored run must not count its reset observations twice)."""
    norm = normalizers(env).get("obs")
    before = None if norm is None else norm.frozen
    if norm is not None:
        norm.frozen = True
    try:
        yield
    finally:
        if norm is not None:
            norm.frozen = before
