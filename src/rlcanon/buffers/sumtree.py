"""A sum tree over priorities, vectorised over whole batches (Schaul et al. 2016, Appendix B.2.1)."""

from __future__ import annotations

import numpy as np


class SumTree:
    """Leaves hold priorities; each inner node holds the sum of its children. Updating a batch of
    leaves and drawing a batch of proportional samples both cost O(batch * log capacity) in a few
    NumPy calls per tree level."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.leaves = 1 << max(0, (capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.leaves, dtype=np.float64)

    @property
    def total(self) -> float:
        return float(self.tree[1])

    def priorities(self, idx: np.ndarray) -> np.ndarray:
        return self.tree[self.leaves + np.asarray(idx)]

    def rebuild(self, priorities: np.ndarray) -> None:
        """Set every leaf at once and recompute all inner sums."""
        self.tree[:] = 0.0
        self.tree[self.leaves : self.leaves + len(priorities)] = priorities
        level = self.leaves  # nodes [level, 2 level) are one level of the tree
        while level > 1:
            half = level // 2
            self.tree[half:level] = self.tree[level : 2 * level : 2] + self.tree[level + 1 : 2 * level : 2]
            level = half

    def update(self, idx: np.ndarray, priorities: np.ndarray) -> None:
        nodes = self.leaves + np.asarray(idx, dtype=np.int64)
        self.tree[nodes] = priorities
        nodes = np.unique(nodes // 2)
        while nodes[0] >= 1:
            self.tree[nodes] = self.tree[2 * nodes] + self.tree[2 * nodes + 1]
            if nodes[0] == 1:
                break
            nodes = np.unique(nodes // 2)

    def find(self, values: np.ndarray) -> np.ndarray:
        """Leaf indices i with prefix_sum(i) <= value < prefix_sum(i + 1), for each value."""
        values = np.asarray(values, dtype=np.float64).copy()
        nodes = np.ones(len(values), dtype=np.int64)
        while nodes[0] < self.leaves:
            left = self.tree[2 * nodes]
            right = values >= left
            values -= left * right
            nodes = 2 * nodes + right
        return nodes - self.leaves

    def sample(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """Stratified proportional sampling: one draw from each of ``batch_size`` equal segments."""
        total = self.total
        if not total > 0:
            raise ValueError("cannot sample from a sum tree whose priorities sum to zero")
        seg = total / batch_size
        values = (np.arange(batch_size) + rng.random(batch_size)) * seg
        idx = self.find(np.minimum(values, np.nextafter(total, 0)))
        zero = self.priorities(idx) <= 0  # float round-off can land on an empty leaf
        while zero.any():
            idx[zero] = self.find(rng.random(int(zero.sum())) * total)
            zero = self.priorities(idx) <= 0
        return idx
