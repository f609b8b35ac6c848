"""Evaluate flat policy-parameter vectors on a Gymnasium env (the fitness of ES policy search).

Everything here is NumPy and picklable, so the same function runs in-process, in a process pool
or on Ray workers. Each candidate's episodes are seeded from (run seed, generation, candidate
index), so a candidate's return does not depend on which worker evaluated it.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.errors import NonFiniteError


@dataclass(frozen=True)
class PolicySpec:
    """A deterministic MLP policy obs -> action, stored as one flat vector."""

    env_id: str
    sizes: tuple[int, ...]  # obs_dim, hidden..., out_dim
    discrete: bool
    low: tuple[float, ...] = ()
    high: tuple[float, ...] = ()
    max_steps: int = 0
    episodes: int = 1
    env_kwargs: tuple[tuple[str, Any], ...] = ()
    wrappers: tuple[str, ...] = ()

    def make_env(self) -> gym.Env:
        """The env, from the shared factory (kwargs, named wrappers and the step limit)."""
        from rlcanon.envs.factory import make_env

        limit = (f"time-limit:max_episode_steps={self.max_steps}",) if self.max_steps else ()
        return make_env(self.env_id, dict(self.env_kwargs), (*self.wrappers, *limit))

    @property
    def n_params(self) -> int:
        return sum(a * b + b for a, b in zip(self.sizes[:-1], self.sizes[1:]))

    def init(self, rng: np.random.Generator) -> np.ndarray:
        """Small random weights (scaled by fan-in), zero biases."""
        parts = []
        for a, b in zip(self.sizes[:-1], self.sizes[1:]):
            parts += [rng.standard_normal(a * b) / np.sqrt(a), np.zeros(b)]
        return np.concatenate(parts)

    @functools.cached_property
    def _box(self) -> tuple[np.ndarray, np.ndarray]:
        """Half-width and centre of the action box (continuous actions)."""
        low, high = np.asarray(self.low), np.asarray(self.high)
        return (high - low) / 2, (high + low) / 2

    def act(self, theta: np.ndarray, obs: np.ndarray) -> np.ndarray | int:
        h, off = obs, 0
        n_layers = len(self.sizes) - 1
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            w = theta[off : off + a * b].reshape(a, b)
            off += a * b
            h = h @ w + theta[off : off + b]
            off += b
            if i < n_layers - 1:
                h = np.tanh(h)
        if self.discrete:
            return int(np.argmax(h))
        half, mid = self._box
        return np.clip(
            np.tanh(h) * half + mid,
            self.low,
            self.high,
        )


def to_torch(spec: PolicySpec, theta: np.ndarray) -> Any:
    """The policy as a torch ``nn.Sequential`` (Linear + Tanh) with the weights of ``theta``; its
    output is the argmax logits (discrete) or the pre-squash action (continuous) of :meth:`act`."""
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    off = 0
    pairs = list(zip(spec.sizes[:-1], spec.sizes[1:]))
    for i, (a, b) in enumerate(pairs):
        lin = nn.Linear(a, b)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(theta[off : off + a * b].reshape(a, b).T))
            off += a * b
            lin.bias.copy_(torch.as_tensor(theta[off : off + b]))
            off += b
        layers.append(lin)
        if i < len(pairs) - 1:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers).double()


def spec_for(
    env_id: str,
    hidden: tuple[int, ...],
    max_steps: int,
    episodes: int,
    env_kwargs: dict[str, Any] | None = None,
    wrappers: tuple[str, ...] = (),
) -> PolicySpec:
    kw = tuple(sorted((env_kwargs or {}).items()))
    env = PolicySpec(env_id, (), False, env_kwargs=kw, wrappers=wrappers).make_env()
    obs_space, space = env.observation_space, env.action_space
    env.close()
    if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
        from rlcanon.errors import ConfigError

        raise ConfigError(
            f"ES policy search needs vector (1-D Box) observations; {env_id} has {obs_space} "
            f"(the 'flatten-observation' wrapper flattens others)"
        )
    obs_dim = int(np.prod(obs_space.shape or (1,)))
    if isinstance(space, gym.spaces.Discrete):
        return PolicySpec(
            env_id, (obs_dim, *hidden, int(space.n)), True, (), (), max_steps, episodes, kw, wrappers
        )
    if not isinstance(space, gym.spaces.Box):
        from rlcanon.errors import ConfigError

        raise ConfigError(f"ES policy search supports Discrete or Box actions; {env_id} has {space}")
    return PolicySpec(
        env_id,
        (obs_dim, *hidden, int(np.prod(space.shape))),
        False,
        tuple(space.low.reshape(-1).tolist()),
        tuple(space.high.reshape(-1).tolist()),
        max_steps,
        episodes,
        kw,
        wrappers,
    )


def obs_normalizer(stats: np.ndarray, count: float, enabled: bool) -> tuple[np.ndarray, np.ndarray]:
    """(mean, std) from summed observations [sum, sum of squares] over ``count`` observations;
    identity statistics when disabled or too little has been seen."""
    dim = stats.shape[1]
    if not enabled or count < 2:
        return np.zeros(dim), np.ones(dim)
    mean = stats[0] / count
    return mean, np.sqrt(np.maximum(stats[1] / count - mean**2, 1e-4))


def episode_seed(run_seed: int, generation: int, index: int, episode: int) -> int:
    return int(np.random.SeedSequence([run_seed, generation, index, episode]).generate_state(1)[0])


def evaluate(
    spec: PolicySpec,
    theta: np.ndarray,
    seeds: list[int],
    obs_mean: np.ndarray,
    obs_std: np.ndarray,
    env: gym.Env,
    behaviours: list[tuple[np.ndarray, dict[str, Any]]] | None = None,
) -> tuple[float, int, np.ndarray]:
    """Mean return over episodes, env steps, and [sum, sum of squares] of raw observations. With
    ``behaviours`` (a list), the final observation and info of each episode are appended to it as
    ``(obs, info)`` (what a behaviour characterisation reads, as in Conti et al. 2018)."""
    total, steps = 0.0, 0
    stats = np.zeros((2, spec.sizes[0]))
    for seed in seeds:
        obs, info = env.reset(seed=seed)
        done = False
        while not done:
            o = np.asarray(obs, dtype=np.float64).reshape(-1)
            stats[0] += o
            stats[1] += o * o
            obs, r, term, trunc, info = env.step(spec.act(theta, (o - obs_mean) / obs_std))
            total += float(r)
            steps += 1
            done = term or trunc
            if not math.isfinite(total):  # a non-finite reward, or rewards whose sum overflows
                raise NonFiniteError(f"the environment returned a non-finite reward ({r}) or return")
        if not math.isfinite(stats[1].sum()):  # a NaN or infinite observation, checked per episode
            raise NonFiniteError("the environment returned a non-finite (or overflowing) observation")
        if behaviours is not None:
            behaviours.append((np.asarray(obs, dtype=np.float64).reshape(-1), info))
    return total / len(seeds), steps, stats


def evaluate_many(
    spec: PolicySpec,
    thetas: np.ndarray,
    indices: list[int],
    run_seed: int,
    generation: int,
    obs_mean: np.ndarray,
    obs_std: np.ndarray,
    behaviour: Callable[[np.ndarray, dict[str, Any]], np.ndarray] | None = None,
) -> list[tuple[Any, ...]]:
    """(index, return, steps, obs stats) for each candidate row of ``thetas``; with ``behaviour``
    (a picklable function of an episode's final observation and info), a fifth element: its mean
    over the candidate's episodes, the behaviour characterisation of novelty search. One env serves
    the whole call (made here, closed here: no env outlives a job)."""
    env = spec.make_env()
    try:
        out: list[tuple[Any, ...]] = []
        for theta, j in zip(thetas, indices):
            seeds = [episode_seed(run_seed, generation, j, e) for e in range(spec.episodes)]
            ends: list[Any] | None = [] if behaviour is not None else None
            ret, steps, stats = evaluate(spec, theta, seeds, obs_mean, obs_std, env, ends)
            if behaviour is None or ends is None:
                out.append((j, ret, steps, stats))
            else:
                bc = np.mean([np.asarray(behaviour(o, i), dtype=np.float64) for o, i in ends], axis=0)
                out.append((j, ret, steps, stats, bc))
        return out
    finally:
        env.close()
