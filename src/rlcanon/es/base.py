"""The ask/tell interface every strategy implements, and what they share.

Fitness is *maximised*. ``ask()`` returns a population [lambda, n]; ``tell(population, fitness)``
updates the search distribution. Strategies keep their state in plain arrays and floats, so
``state_dict()`` / ``load_state_dict()`` round-trip through JSON + safetensors, and two strategies
can be compared exactly. NaN or infinite fitness never crashes an update: NaN ranks worst.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from rlcanon.errors import ConfigError


class Strategy(Protocol):
    name: str
    dim: int
    popsize: int
    mean: np.ndarray
    evaluations: int
    best_x: np.ndarray
    best_f: float

    def ask(self) -> np.ndarray: ...
    def tell(self, population: np.ndarray, fitness: np.ndarray) -> None: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


MAX_DIM = 10**8
"""Search-space dimensions (a policy's parameter count)."""
MAX_POPSIZE = 1_000_000
"""Candidates per generation."""


def prepare_x0(x0: Any, sigma0: float, popsize: int | None) -> np.ndarray:
    """x0 as a float vector, after checking the dimension, sigma0 and the population size."""
    try:
        x = np.atleast_1d(np.asarray(x0, dtype=np.float64))
    except (TypeError, ValueError):
        raise ConfigError(f"x0 must be a vector of numbers; got {x0!r:.80}") from None
    if x.ndim != 1:
        raise ConfigError(f"x0 must be a vector; got an array of shape {x.shape}")
    if not np.isfinite(x).all():
        raise ConfigError("x0 must hold finite numbers; it has NaN or infinite entries")
    check_common(len(x), sigma0, popsize)
    return x


def check_common(dim: int, sigma0: float, popsize: int | None) -> None:
    from rlcanon.core.config import check_memory

    if not 1 <= dim <= MAX_DIM:
        raise ConfigError(f"dimension={dim} is not allowed; it must be >= 1 (and at most {MAX_DIM})")
    if not _is_number(sigma0) or not np.isfinite(sigma0) or sigma0 <= 0:
        raise ConfigError(f"sigma0={sigma0!r} is not allowed; it must be a finite number > 0")
    if popsize is not None:
        is_int = isinstance(popsize, (int, np.integer)) and not isinstance(popsize, bool)
        if not is_int or not 2 <= popsize <= MAX_POPSIZE:
            raise ConfigError(
                f"popsize={popsize!r} is not allowed; it must be an integer in [2, {MAX_POPSIZE}]"
            )
        check_memory("popsize * dimension", 3 * 8 * int(popsize) * dim)  # the population and its temporaries


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


def clean_fitness(fitness: Any, popsize: int) -> np.ndarray:
    f = np.asarray(fitness, dtype=np.float64).reshape(-1)
    if len(f) != popsize:
        raise ConfigError(f"tell() got {len(f)} fitness values for a population of {popsize}")
    # NaN ranks worst; +inf/-inf keep their order
    return np.where(np.isnan(f), -np.inf, f)


class Tracker:
    """Best-so-far bookkeeping and state round trips shared by every strategy. Subclasses list
    their state attributes in ``_STATE`` and keep their generator in ``self.rng``."""

    _STATE: tuple[str, ...] = ()
    rng: np.random.Generator

    def _init_tracker(self, x0: np.ndarray) -> None:
        self.evaluations = 0
        self.generation = 0
        self.best_x = x0.copy()
        self.best_f = -np.inf

    def state_dict(self) -> dict[str, Any]:
        """Every array and counter of the strategy plus its RNG state (JSON + arrays)."""
        return {**state_of(self, self._STATE), "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        load_into(self, state, self._STATE)
        self.rng.bit_generator.state = state["rng"]

    def _record(self, population: np.ndarray, fitness: np.ndarray) -> None:
        self.evaluations += len(fitness)
        self.generation += 1
        i = int(np.argmax(fitness))
        if fitness[i] > self.best_f:
            self.best_f = float(fitness[i])
            self.best_x = population[i].copy()


def state_of(obj: Any, names: tuple[str, ...]) -> dict[str, Any]:
    out = {}
    for name in names:
        value = getattr(obj, name)
        out[name] = value.copy() if isinstance(value, np.ndarray) else value
    return out


def load_into(obj: Any, state: dict[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        value = state[name]
        if isinstance(getattr(obj, name), np.ndarray):
            value = np.array(value, dtype=np.float64)
        setattr(obj, name, value)
