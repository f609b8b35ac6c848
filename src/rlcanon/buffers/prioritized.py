"""Prioritized experience replay, proportional variant (Schaul et al. 2016, Algorithm 1).

P(i) = p_i^alpha / sum_k p_k^alpha with p_i = |delta_i| + eps; importance weights
w_i = (N * P(i))^-beta / max_j w_j, with beta annealed towards 1 over training.
"""

from __future__ import annotations

import numpy as np

from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.buffers.sumtree import SumTree
from rlcanon.envs.collectors import Transition


class PrioritizedReplayBuffer(ReplayBuffer):
    def __init__(self, *args: object, alpha: float = 0.6, eps: float = 1e-6, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.alpha = alpha
        self.eps = eps
        self.tree = SumTree(self.rows * self.num_envs)
        self.max_priority = 1.0

    def add(self, t: Transition) -> int:
        row = super().add(t)
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
        n = len(self)
        weights = (n * probs) ** (-beta)
        return idx, (weights / weights.max()).astype(np.float32)

    def update_priorities(self, idx: np.ndarray, td_errors: np.ndarray) -> None:
        priorities = np.abs(td_errors) + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.update(idx, priorities**self.alpha)

    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays = super().state_arrays()
        arrays["replay/tree"] = self.tree.tree
        arrays["replay/max_priority"] = np.array([self.max_priority])
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        super().load_state_arrays(arrays)
        self.tree.tree[:] = arrays["replay/tree"]
        self.max_priority = float(arrays["replay/max_priority"][0])
