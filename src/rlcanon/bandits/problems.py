"""K-armed bandit problems, simulated for R independent runs at once.

Means are kept per run ([R, K]) so that non-stationary problems (means that drift as a random walk,
or switch to new values at given times) run in the same vectorised loop as stationary ones.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rlcanon.errors import ConfigError

MAX_ARMS = 10_000
"""At most this many arms (every solver keeps [runs, K] arrays)."""
MAX_MEAN = 1e9
"""Means (and with them rewards) stay within +-MAX_MEAN, so regret sums stay finite."""
MAX_SCALE = 1e9
"""The largest reward std (sigma) and random-walk std (drift)."""


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


@dataclass(frozen=True)
class BanditProblem:
    """Bernoulli or Gaussian arms with the given means."""

    means: tuple[float, ...]
    """Mean reward of each arm."""
    kind: str = "bernoulli"
    """'bernoulli' (rewards in {0, 1}) or 'gaussian' (rewards N(mean, sigma^2))."""
    sigma: float = 1.0
    """Reward standard deviation of Gaussian arms."""
    drift: float = 0.0
    """Non-stationary: std of the per-step Gaussian random walk of every mean (0: stationary)."""
    switches: tuple[tuple[int, tuple[float, ...]], ...] = field(default=())
    """Non-stationary: (t, new means) pairs; at step t the means jump to the new values."""

    def __post_init__(self) -> None:
        if not 2 <= len(self.means) <= MAX_ARMS:
            raise ConfigError(f"a bandit needs K >= 2 arms (at most {MAX_ARMS}); got {len(self.means)}")
        if self.kind not in ("bernoulli", "gaussian"):
            raise ConfigError(f"kind={self.kind!r} is not allowed; choose 'bernoulli' or 'gaussian'")
        for when, _ in self.switches:
            if not _is_int(when) or when < 1:
                raise ConfigError(f"switch time {when!r} is not allowed; it must be an integer step >= 1")
        for means in (self.means, *(m for _, m in self.switches)):
            if len(means) != len(self.means):
                raise ConfigError("every switch must give one mean per arm")
            if not all(_is_real(m) and math.isfinite(m) for m in means):
                raise ConfigError(f"means must be finite numbers; got {list(means)}")
            if self.kind == "bernoulli" and not all(0.0 <= m <= 1.0 for m in means):
                raise ConfigError(f"Bernoulli means must lie in [0, 1]; got {list(means)}")
            if not all(-MAX_MEAN <= m <= MAX_MEAN for m in means):
                raise ConfigError(f"means must lie in [{-MAX_MEAN:g}, {MAX_MEAN:g}]; got {list(means)}")
        # NaN fails every comparison, so each check is written as "not inside the allowed range"
        if not (_is_real(self.sigma) and 0 < self.sigma <= MAX_SCALE):
            raise ConfigError(
                f"sigma={self.sigma!r} is not allowed; it must be a number in (0, {MAX_SCALE:g}]"
            )
        if not (_is_real(self.drift) and 0 <= self.drift <= MAX_SCALE):
            raise ConfigError(
                f"drift={self.drift!r} is not allowed; it must be a number in [0, {MAX_SCALE:g}]"
            )

    @property
    def k(self) -> int:
        return len(self.means)

    @property
    def stationary(self) -> bool:
        return self.drift == 0 and not self.switches

    def initial_means(self, runs: int) -> np.ndarray:
        return np.broadcast_to(np.asarray(self.means, dtype=np.float64), (runs, self.k)).copy()

    def advance(self, means: np.ndarray, t: int, rng: np.random.Generator) -> np.ndarray:
        """Means for step ``t`` (1-based) given those of step t-1."""
        for when, new in self.switches:
            if when == t:
                means[:] = new
        if self.drift:
            means += rng.normal(0.0, self.drift, means.shape)
            if self.kind == "bernoulli":
                np.clip(means, 0.0, 1.0, out=means)
        return means

    def pull(self, chosen_means: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Rewards for arms whose means are ``chosen_means`` (one per run)."""
        if self.kind == "bernoulli":
            return (rng.random(chosen_means.shape) < chosen_means).astype(np.float64)
        return chosen_means + self.sigma * rng.standard_normal(chosen_means.shape)


def bernoulli_kl(p: np.ndarray | float, q: np.ndarray | float) -> np.ndarray:
    """KL(Bernoulli(p) || Bernoulli(q))."""
    eps = 1e-15
    p = np.clip(p, eps, 1 - eps)
    q = np.clip(q, eps, 1 - eps)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


def lai_robbins_constant(means: tuple[float, ...] | np.ndarray) -> float:
    """sum over suboptimal arms of gap / KL(mu_k, mu*): regret >= constant * ln T asymptotically
    (Lai & Robbins 1985, Bernoulli arms)."""
    mu = np.asarray(means, dtype=np.float64)
    best = mu.max()
    sub = mu < best
    return float(np.sum((best - mu[sub]) / bernoulli_kl(mu[sub], best)))
