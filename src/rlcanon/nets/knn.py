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


def squared_norms(x: torch.Tensor) -> torch.Tensor:
    """||x_i||^2 of each row (einsum: a third of the time of (x * x).sum(1) here)."""
    return torch.einsum("nd,nd->n", x, x)


def squared_distances(
    queries: torch.Tensor, keys: torch.Tensor, key_norms: torch.Tensor | None = None
) -> torch.Tensor:
    """(B, N) squared Euclidean distances of B queries to N keys, clamped at 0 (the expansion can
    round below it). ``key_norms`` (N,) are the keys' squared norms when the caller keeps them:
    recomputing them costs more than the matrix product at 5e4 keys of dimension 64."""
    norms = squared_norms(keys) if key_norms is None else key_norms
    cross = torch.addmm(norms[:, None], keys, queries.T, alpha=-2.0).T
    return (cross + (queries * queries).sum(1, keepdim=True)).clamp_min_(0.0)


def nearest(
    queries: torch.Tensor, keys: torch.Tensor, k: int, key_norms: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(squared distances, indices), each (B, min(k, N)), of the k nearest keys, nearest first.

    The distances are one torch matrix product; the selection is NumPy's ``argpartition`` and a
    sort of the k chosen, which measured faster than ``torch.topk`` at every memory size these
    agents use (benchmarks/bench_knn.py; table in docs/episodic-control.md)."""
    n = keys.shape[0]
    k = min(k, n)
    with torch.no_grad():
        d2 = np.ascontiguousarray(squared_distances(queries.detach(), keys.detach(), key_norms).numpy())
    part = np.argpartition(d2, k - 1, axis=1)[:, :k] if k < n else np.broadcast_to(np.arange(n), d2.shape)
    order = np.argsort(np.take_along_axis(d2, part, 1), axis=1, kind="stable")
    idx = np.ascontiguousarray(np.take_along_axis(part, order, 1))
    return torch.from_numpy(np.take_along_axis(d2, idx, 1)), torch.from_numpy(idx)


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
        self.norms = [torch.zeros(start) for _ in range(n_actions)]  # ||key||^2, kept for the search
        self.last_used = [np.zeros(start, dtype=np.int64) for _ in range(n_actions)]
        self.sizes = np.zeros(n_actions, dtype=np.int64)
        self.clock = 0

    def size(self, action: int) -> int:
        return int(self.sizes[action])

    def stored(self, action: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(keys, values) of the entries action ``action`` holds (views, not copies)."""
        n = self.size(action)
        return self.keys[action][:n], self.values[action][:n]

    def search(self, action: int, queries: torch.Tensor, k: int) -> torch.Tensor:
        """Slots (B, min(k, size)) of the k nearest stored keys of each query, nearest first."""
        n = self.size(action)
        return nearest(queries, self.keys[action][:n], k, self.norms[action][:n])[1]

    def refresh_norms(self, action: int, slots: torch.Tensor) -> None:
        """Recompute the kept norms of keys changed in place (NEC's gradient step on keys)."""
        self.norms[action][slots] = squared_norms(self.keys[action][slots])

    def touch(self, action: int, slots: np.ndarray | torch.Tensor) -> None:
        """Mark entries as used now (a read of its neighbours keeps an entry alive)."""
        self.clock += 1
        self.last_used[action][np.asarray(slots).reshape(-1)] = self.clock

    def find_exact(self, action: int, keys: torch.Tensor) -> np.ndarray:
        """For each of ``keys`` (B, d), the slot holding exactly that key, or -1."""
        stored, _ = self.stored(action)
        if not len(stored):
            return np.full(len(keys), -1, dtype=np.int64)
        idx = self.search(action, keys, 1)
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
        keys, values, norms = torch.zeros(rows, self.key_dim), torch.zeros(rows), torch.zeros(rows)
        keys[:n], values[:n], norms[:n] = (
            self.keys[action][:n],
            self.values[action][:n],
            self.norms[action][:n],
        )
        last = np.zeros(rows, dtype=np.int64)
        last[:n] = self.last_used[action][:n]
        self.keys[action], self.values[action], self.last_used[action] = keys, values, last
        self.norms[action] = norms

    def write(self, action: int, key: torch.Tensor, value: float) -> int:
        """Store a new (key, value) pair; returns its slot."""
        slot = self.free_slot(action)
        self.keys[action][slot] = key
        self.norms[action][slot] = float(key @ key)
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
            self.norms[a] = squared_norms(self.keys[a])
            self.sizes[a] = n
