"""Prioritized experience replay, proportional variant (Schaul et al. 2016, Algorithm 1).

P(i) = p_i^alpha / sum_k p_k^alpha with p_i = |delta_i| + eps; importance weights
w_i = (N * P(i))^-beta / max_j w_j, with beta annealed towards 1 over training.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.buffers.sumtree import SumTree
from rlcanon.buffers.transition import Transition
from rlcanon.core.validate import ArraySpec
from rlcanon.errors import CheckpointError


class PrioritizedReplayBuffer(ReplayBuffer):
    def __init__(self, *args: Any, alpha: float = 0.6, eps: float = 1e-6, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.alpha = alpha
        self.eps = eps
        self.tree = SumTree(self.rows * self.num_envs)
        self.max_priority = 1.0

    def add(self, t: Transition, **extras: np.ndarray) -> int:
        row = super().add(t, **extras)
        flat = row * self.num_envs + np.arange(self.num_envs)
        # New transitions get the largest priority so far, so each is replayed at least once.
        self.tree.update(flat, np.where(t.valid, self.max_priority**self.alpha, 0.0))
        return row

    def sample_prioritized(
        self, rng: np.random.Generator, batch_size: int, beta: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """(flat indices, normalised importance weights)."""
        idx = self.tree.sample(rng, batch_size)
        probs = self.tree.priorities(idx) / self.tree.total
        weights = (len(self) * probs) ** (-beta)
        return idx, (weights / weights.max()).astype(np.float32)

    def update_priorities(self, idx: np.ndarray, td_errors: np.ndarray) -> None:
        priorities = np.abs(td_errors) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(idx, priorities**self.alpha)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super().state_arrays()
        arrays["priorities"] = self.tree.priorities(np.arange(self.tree.capacity))
        arrays["max_priority"] = np.array([self.max_priority])
        return arrays

    def array_specs(self) -> dict[str, ArraySpec]:
        specs = super().array_specs()
        specs["priorities"] = ArraySpec((self.tree.capacity,), "float64", low=0.0)
        specs["max_priority"] = ArraySpec((1,), "float64", low=0.0)
        return specs

    def check_state_arrays(self, arrays: Mapping[str, np.ndarray], where: str, prefix: str) -> None:
        """Also: every stored transition has a priority > 0 (|delta| + eps, raised to alpha), and
        their sum, the sum tree's root, is finite (else sampling could not draw from it)."""
        super().check_state_arrays(arrays, where, prefix)
        leaves = self._leaves(arrays)
        valid = self._valid(arrays)
        if valid.any() and not (leaves[valid] > 0).all():
            raise CheckpointError(
                f"{where}: array '{prefix}/priorities' holds 0 for a stored transition; expected "
                f"priorities > 0 for every valid transition"
            )
        with np.errstate(over="ignore"):
            total = leaves.sum()
        if not np.isfinite(total):
            raise CheckpointError(
                f"{where}: array '{prefix}/priorities' sums to {total}; expected a finite total priority"
            )

    def _valid(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        valid = np.zeros(self.rows * self.num_envs, dtype=bool)
        stored = np.asarray(arrays["valid"], dtype=bool).reshape(-1)
        valid[: len(stored)] = stored
        return valid

    def _leaves(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.where(self._valid(arrays), np.asarray(arrays["priorities"], dtype=np.float64), 0.0)

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        super().load_state_arrays(arrays)  # (checks first, these checks included)
        leaves = self._leaves(arrays)
        self.tree.rebuild(leaves)  # inner sums are recomputed, never read from the file
        self.max_priority = max(float(arrays["max_priority"][0]), float(leaves.max(initial=0.0)), self.eps)
