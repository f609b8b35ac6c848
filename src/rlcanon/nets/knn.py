"""Nearest-neighbour search and the per-action key-value memories of episodic control (MFEC,
Blundell et al. 2016; NEC's differentiable neural dictionary, Pritzel et al. 2017).

The search is exact and brute force in torch: ||q - k||^2 = ||q||^2 - 2 q.k + ||k||^2 as one matrix
product, then ``topk``. ``benchmarks/bench_knn.py`` measures it against ``torch.cdist``, NumPy's
``argpartition``, scikit-learn (brute force and a kd-tree rebuilt after each write) and faiss
``IndexFlatL2`` at the memory sizes these agents use; the table is in docs/episodic-control.md.

:class:`ActionMemories` keeps one table per action of (key, value, last use) with a fixed capacity
and least-recently-used replacement (both papers, Section 2 of each)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from rlcanon.core.validate import MAX_INT, ArraySpec
from rlcanon.errors import CheckpointError


def squared_distances(queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """(B, N) squared Euclidean distances, clamped at 0 (the expansion can round below it)."""
    cross = torch.addmm((keys * keys).sum(1)[None, :], queries, keys.T, alpha=-2.0)
    return (cross + (queries * queries).sum(1, keepdim=True)).clamp_min_(0.0)


def nearest(queries: torch.Tensor, keys: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(squared distances, indices), each (B, min(k, N)), of the k nearest keys, nearest first."""
    d2 = squared_distances(queries, keys)
    return torch.topk(d2, min(k, keys.shape[0]), dim=1, largest=False, sorted=True)


class ActionMemories:
    """One table of at most ``capacity`` (key, value) pairs per action, each entry stamped with the
    clock tick of its last write or read; a write into a full table replaces the entry used least
    recently. Keys and values are torch tensors so that NEC can step them by their gradients.
    Storage grows by doubling up to the capacity, so a short run never holds a paper-sized table."""

    def __init__(self, n_actions: int, capacity: int, key_dim: int) -> None:
        self.n_actions, self.capacity, self.key_dim = n_actions, capacity, key_dim
        start = min(capacity, 1024)
        self.keys = [torch.zeros(start, key_dim) for _ in range(n_actions)]
        self.values = [torch.zeros(start) for _ in range(n_actions)]
        self.last_used = [np.zeros(start, dtype=np.int64) for _ in range(n_actions)]
        self.sizes = np.zeros(n_actions, dtype=np.int64)
        self.clock = 0

    def size(self, action: int) -> int:
        return int(self.sizes[action])

    def stored(self, action: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(keys, values) of the entries action ``action`` holds (views, not copies)."""
        n = self.size(action)
        return self.keys[action][:n], self.values[action][:n]

    def touch(self, action: int, slots: np.ndarray | torch.Tensor) -> None:
        """Mark entries as used now (a read of its neighbours keeps an entry alive)."""
        self.clock += 1
        self.last_used[action][np.asarray(slots).reshape(-1)] = self.clock

    def find_exact(self, action: int, keys: torch.Tensor) -> np.ndarray:
        """For each of ``keys`` (B, d), the slot holding exactly that key, or -1."""
        stored, _ = self.stored(action)
        if not len(stored):
            return np.full(len(keys), -1, dtype=np.int64)
        _, idx = nearest(keys, stored, 1)
        # a distance of 0 can round from a near miss, so the key itself is compared
        same = (stored[idx[:, 0]] == keys).all(1)
        return np.where(same.numpy(), idx[:, 0].numpy(), -1).astype(np.int64)

    def free_slot(self, action: int) -> int:
        """The slot a new entry goes into: the next empty one, else the least recently used."""
        n = self.size(action)
        if n == self.capacity:
            return int(np.argmin(self.last_used[action]))
        if n == len(self.values[action]):
            self._grow(action, min(2 * n, self.capacity))
        self.sizes[action] = n + 1
        return n

    def _grow(self, action: int, rows: int) -> None:
        n = self.size(action)
        keys, values = torch.zeros(rows, self.key_dim), torch.zeros(rows)
        keys[:n], values[:n] = self.keys[action][:n], self.values[action][:n]
        last = np.zeros(rows, dtype=np.int64)
        last[:n] = self.last_used[action][:n]
        self.keys[action], self.values[action], self.last_used[action] = keys, values, last

    def write(self, action: int, key: torch.Tensor, value: float) -> int:
        """Store a new (key, value) pair; returns its slot."""
        slot = self.free_slot(action)
        self.keys[action][slot] = key
        self.values[action][slot] = value
        self.touch(action, np.array([slot]))
        return slot

    # ---- checkpoints (a Stateful part): the filled rows of each table ----
    def state_arrays(self) -> dict[str, np.ndarray]:
        arrays: dict[str, np.ndarray] = {"clock": np.array([self.clock], dtype=np.int64)}
        for a in range(self.n_actions):
            n = self.size(a)
            arrays[f"keys_{a}"] = self.keys[a][:n].numpy().copy()
            arrays[f"values_{a}"] = self.values[a][:n].numpy().copy()
            arrays[f"last_used_{a}"] = self.last_used[a][:n].copy()
        return arrays

    def array_specs(self) -> dict[str, ArraySpec]:
        c, d = self.capacity, self.key_dim
        specs = {"clock": ArraySpec((1,), "int64", low=0, high=MAX_INT)}
        for a in range(self.n_actions):
            specs[f"keys_{a}"] = ArraySpec((c, d), "float32", max_rows=c, low=-1e12, high=1e12)
            specs[f"values_{a}"] = ArraySpec((c,), "float32", max_rows=c, low=-1e12, high=1e12)
            specs[f"last_used_{a}"] = ArraySpec((c,), "int64", max_rows=c, low=0, high=MAX_INT)
        return specs

    def check_state_arrays(self, arrays: Mapping[str, np.ndarray], where: str, prefix: str) -> None:
        """Each table's three arrays have as many rows, and no entry was used after the clock."""
        clock = int(arrays["clock"][0])
        for a in range(self.n_actions):
            n = len(arrays[f"keys_{a}"])
            for name in (f"values_{a}", f"last_used_{a}"):
                if len(arrays[name]) != n:
                    raise CheckpointError(
                        f"{where}: array '{prefix}/{name}' has {len(arrays[name])} rows, expected {n} "
                        f"(the rows of '{prefix}/keys_{a}')"
                    )
            if int(arrays[f"last_used_{a}"].max(initial=0)) > clock:
                raise CheckpointError(
                    f"{where}: array '{prefix}/last_used_{a}' holds a tick after the clock {clock} in "
                    f"'{prefix}/clock'"
                )

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.check_state_arrays(arrays, "episodic memory state", "memory")
        self.clock = int(arrays["clock"][0])
        for a in range(self.n_actions):
            n = len(arrays[f"keys_{a}"])
            rows = max(n, min(self.capacity, 1024))
            self.keys[a], self.values[a] = torch.zeros(rows, self.key_dim), torch.zeros(rows)
            self.last_used[a] = np.zeros(rows, dtype=np.int64)
            self.keys[a][:n] = torch.from_numpy(np.array(arrays[f"keys_{a}"]))
            self.values[a][:n] = torch.from_numpy(np.array(arrays[f"values_{a}"]))
            self.last_used[a][:n] = arrays[f"last_used_{a}"]
            self.sizes[a] = n
