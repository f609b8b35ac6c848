"""Behaviour characterisations, their archive, k-nearest-neighbour novelty and the meta-population's
checkpointed state of novelty search (Conti et al. 2018,
"Improving Exploration in Evolution Strategies for Deep Reinforcement Learning via a Population of
Novelty-Seeking Agents", Sec. 3.1).

A behaviour characterisation (BC) b(pi_theta) is a vector describing what a policy did, such as
the final (x, y) of the agent. The archive A holds the BCs of the policies seen so far, and the
novelty of a policy is its mean Euclidean distance to its k nearest archive members:

    N(theta, A) = (1 / |S|) sum_{j in S} || b(pi_theta) - b(pi_j) ||_2,   S = kNN(b(pi_theta), A)

(the paper writes the neighbour count as lambda; it is the k of the k-NN, not the ES population
size). With fewer than k members, S is the whole archive.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from rlcanon.core.seeding import RNG_SCHEMA
from rlcanon.core.validate import ArraySpec, Map
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.run.config import MAX_BUDGET

MAX_ARCHIVE = 1_000_000
"""The most BCs an archive (and so a checkpoint) may hold: one per generation plus the initial ones."""
MAX_DISTANCE_CELLS = 4_000_000
"""Distances computed at once in :func:`knn_novelty` (queries are chunked to stay under it)."""


def final_xy(final_obs: np.ndarray, final_info: dict[str, Any]) -> np.ndarray:
    """The env's own BC, ``info["bc"]`` at the episode's end (the U-trap's final (x, y)); without
    one, the first two components of the final observation (a position, in most locomotion envs)."""
    if "bc" in final_info:
        return np.asarray(final_info["bc"], dtype=np.float64).reshape(-1)
    return np.asarray(final_obs, dtype=np.float64).reshape(-1)[:2]


def final_observation(final_obs: np.ndarray, final_info: dict[str, Any]) -> np.ndarray:
    """The whole final observation."""
    return np.asarray(final_obs, dtype=np.float64).reshape(-1)


BEHAVIOURS: dict[str, Callable[[np.ndarray, dict[str, Any]], np.ndarray]] = {
    "final-xy": final_xy,
    "final-obs": final_observation,
}
"""BC functions by name (module-level functions, so they travel to process and Ray workers)."""


def behaviour_function(name: str) -> Callable[[np.ndarray, dict[str, Any]], np.ndarray]:
    if name not in BEHAVIOURS:
        raise ConfigError(f"behaviour={name!r} is not allowed; choose one of {sorted(BEHAVIOURS)}")
    return BEHAVIOURS[name]


def knn_novelty(points: np.ndarray, archive: np.ndarray, k: int) -> np.ndarray:
    """N(b_i, A) for each row b_i of ``points``: the mean distance to its min(k, |A|) nearest
    archive rows (0 for an empty archive). Vectorised; queries are chunked to bound memory."""
    points = np.atleast_2d(np.asarray(points, dtype=np.float64))
    archive = np.atleast_2d(np.asarray(archive, dtype=np.float64))
    if len(archive) == 0 or archive.shape[1] == 0:
        return np.zeros(len(points))
    neighbours = min(int(k), len(archive))
    chunk = max(1, MAX_DISTANCE_CELLS // len(archive))
    out = np.empty(len(points))
    for start in range(0, len(points), chunk):
        block = points[start : start + chunk]
        distances = np.sqrt(((block[:, None, :] - archive[None, :, :]) ** 2).sum(axis=-1))
        nearest = np.partition(distances, neighbours - 1, axis=1)[:, :neighbours]
        out[start : start + chunk] = nearest.mean(axis=1)
    return out


def selection_probabilities(novelty: np.ndarray) -> np.ndarray:
    """P(agent m) = N(theta_m, A) / sum_j N(theta_j, A) (Conti et al. 2018, Algorithm 1); uniform
    while every novelty is 0 (all agents behave alike)."""
    novelty = np.maximum(np.asarray(novelty, dtype=np.float64), 0.0)
    total = novelty.sum()
    if not total > 0:
        return np.full(len(novelty), 1.0 / len(novelty))
    return novelty / total  # type: ignore[no-any-return]


class Archive:
    """The BCs seen so far, one row each, in the order they were added (a checkpointed part)."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.behaviours = np.zeros((0, dim))

    def __len__(self) -> int:
        return len(self.behaviours)

    def add(self, behaviours: np.ndarray) -> None:
        rows = np.atleast_2d(np.asarray(behaviours, dtype=np.float64))
        if rows.shape[1] != self.dim or not np.isfinite(rows).all():
            raise ConfigError(
                f"a behaviour characterisation of shape {rows.shape[1:]} with values {rows.ravel()[:4]} "
                f"cannot join the archive; expected {self.dim} finite values"
            )
        if len(self) + len(rows) > MAX_ARCHIVE:
            raise ConfigError(f"the archive would exceed {MAX_ARCHIVE} behaviours; run fewer generations")
        self.behaviours = np.concatenate([self.behaviours, rows])

    def novelty(self, points: np.ndarray, k: int) -> np.ndarray:
        return knn_novelty(points, self.behaviours, k)

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"behaviours": self.behaviours}

    def array_specs(self) -> dict[str, ArraySpec]:
        return {"behaviours": ArraySpec((MAX_ARCHIVE, self.dim), "float64", max_rows=MAX_ARCHIVE)}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        behaviours = np.array(arrays["behaviours"], dtype=np.float64)
        if behaviours.ndim != 2 or behaviours.shape[1] != self.dim:
            raise CheckpointError(
                f"archive: array 'behaviours' has shape {behaviours.shape}; expected (n, {self.dim})"
            )
        self.behaviours = behaviours


# ---- the meta-population's state ------------------------------------------------------------


class MetaPopulation:
    """M agents' means and Adam moments, their last BCs and fitnesses, the archive, the best policy
    so far, w and its stall counter, and the generators (a checkpointed part, arrays and JSON)."""

    def __init__(self, x0: np.ndarray, bc_dim: int, seed: int, weight: float) -> None:
        agents, n = x0.shape
        self.means, self.adam_m, self.adam_v = x0.copy(), np.zeros((agents, n)), np.zeros((agents, n))
        self.adam_steps = np.zeros(agents, dtype=np.int64)
        self.agent_bc = np.zeros((agents, bc_dim))
        self.agent_fitness = np.full(agents, -np.inf)
        self.archive = Archive(bc_dim)
        self.best_theta, self.best_fitness, self.best_bc = x0[0].copy(), -np.inf, np.zeros(bc_dim)
        self.weight, self.stall, self.generation = float(weight), 0, 0
        streams = np.random.SeedSequence([seed, 7]).spawn(agents + 1)
        self.selection_rng = np.random.default_rng(streams[0])
        self.noise_rngs = [np.random.default_rng(s) for s in streams[1:]]

    @property
    def agents(self) -> int:
        return len(self.means)

    def record(self, agent: int, theta: np.ndarray, fitness: float, bc: np.ndarray) -> None:
        """A mean policy's evaluation: its BC joins the archive and becomes its agent's, and it may
        be the best policy so far."""
        self.archive.add(bc)
        self.agent_bc[agent], self.agent_fitness[agent] = bc, fitness
        if fitness > self.best_fitness:
            self.best_theta, self.best_fitness, self.best_bc = theta.copy(), float(fitness), bc.copy()

    _FLOAT_ARRAYS = ("means", "adam_m", "adam_v", "agent_bc", "agent_fitness", "best_theta", "best_bc")

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = {key: getattr(self, key) for key in self._FLOAT_ARRAYS}
        arrays.update(
            adam_steps=self.adam_steps,
            archive=self.archive.behaviours,
            best_fitness=np.array(self.best_fitness),
            weight=np.array(self.weight),
            generation=np.array(self.generation, dtype=np.int64),
            stall=np.array(self.stall, dtype=np.int64),
        )
        return arrays

    def array_specs(self) -> dict[str, ArraySpec]:
        agents, n = self.means.shape
        d = self.agent_bc.shape[1]
        return {
            "means": ArraySpec((agents, n), "float64"),
            "adam_m": ArraySpec((agents, n), "float64"),
            "adam_v": ArraySpec((agents, n), "float64", low=0.0),
            "adam_steps": ArraySpec((agents,), "int64", low=0, high=MAX_BUDGET),
            "agent_bc": ArraySpec((agents, d), "float64"),
            "agent_fitness": ArraySpec((agents,), "float64", neg_inf=True),
            "archive": ArraySpec((MAX_ARCHIVE, d), "float64", max_rows=MAX_ARCHIVE),
            "best_theta": ArraySpec((n,), "float64"),
            "best_fitness": ArraySpec((), "float64", neg_inf=True),
            "best_bc": ArraySpec((d,), "float64"),
            "weight": ArraySpec((), "float64", low=0.0, high=1.0),
            "generation": ArraySpec((), "int64", low=0, high=MAX_ARCHIVE),
            "stall": ArraySpec((), "int64", low=0, high=MAX_ARCHIVE),
        }

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        """An archive of M + generation BCs (one per agent at the start, then one per generation),
        or none before the first generation; Adam steps that generation can have taken."""
        generation, rows = int(arrays["generation"]), len(arrays["archive"])
        if rows != self.agents + generation and not (rows == 0 and generation == 0):
            raise CheckpointError(
                f"{where}: array '{prefix}/archive' holds {rows} behaviours after generation {generation}; "
                f"expected {self.agents + generation} (one per agent, then one per generation)"
            )
        steps = np.asarray(arrays["adam_steps"])
        if steps.sum() != generation:
            raise CheckpointError(
                f"{where}: array '{prefix}/adam_steps' sums to {steps.sum()}; expected {generation}, one "
                f"agent update per generation"
            )

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for key in self._FLOAT_ARRAYS:
            setattr(self, key, np.array(arrays[key], dtype=np.float64))
        self.archive.behaviours = np.array(arrays["archive"], dtype=np.float64)
        self.adam_steps = np.array(arrays["adam_steps"], dtype=np.int64)
        self.best_fitness, self.weight = float(arrays["best_fitness"]), float(arrays["weight"])
        self.generation, self.stall = int(arrays["generation"]), int(arrays["stall"])

    def _rng_names(self) -> list[str]:
        return ["selection", *(f"agent_{i}" for i in range(self.agents))]

    def _rngs(self) -> list[np.random.Generator]:
        return [self.selection_rng, *self.noise_rngs]

    def state_json(self) -> dict[str, Any]:
        return {name: r.bit_generator.state for name, r in zip(self._rng_names(), self._rngs())}

    def json_schema(self) -> Map:
        return Map(dict.fromkeys(self._rng_names(), RNG_SCHEMA.fields["numpy"]))

    def check_state_json(self, obj: dict[str, Any], where: str, path: str) -> None:
        """Generator states the bit generator accepts (checked on a scratch generator)."""
        for name, state in obj.items():
            try:
                np.random.default_rng(0).bit_generator.state = state
            except (TypeError, ValueError, KeyError) as exc:
                raise CheckpointError(
                    f"{where}: field {path}.{name} is not a generator state ({exc})"
                ) from None

    def load_state_json(self, obj: dict[str, Any]) -> None:
        for name, r in zip(self._rng_names(), self._rngs()):
            r.bit_generator.state = obj[name]
