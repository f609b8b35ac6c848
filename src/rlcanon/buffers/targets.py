"""A FIFO replay of (observation, action, target) tuples, for agents whose regression targets are
fixed when a tuple is stored (NEC's N-step Q^N, Pritzel et al. 2017, Section 3) rather than
recomputed from a next observation at sample time."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from rlcanon.core.validate import ArraySpec
from rlcanon.errors import CheckpointError


class TargetReplay:
    """At most ``capacity`` tuples of a flat float32 observation, a discrete action and a target;
    the oldest are overwritten first."""

    def __init__(self, capacity: int, obs_dim: int, n_actions: int) -> None:
        self.capacity, self.obs_dim, self.n_actions = capacity, obs_dim, n_actions
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros(capacity, dtype=np.int64)
        self.targets = np.zeros(capacity, dtype=np.float32)
        self.pos, self.full = 0, False

    def __len__(self) -> int:
        return self.capacity if self.full else self.pos

    def add(self, obs: np.ndarray, action: int, target: float) -> None:
        self.obs[self.pos] = np.asarray(obs, dtype=np.float32).reshape(-1)
        self.actions[self.pos], self.targets[self.pos] = action, target
        self.pos = (self.pos + 1) % self.capacity
        self.full = self.full or self.pos == 0

    def sample(self, rng: np.random.Generator, batch_size: int) -> dict[str, np.ndarray]:
        """A uniform minibatch (with replacement) of obs, actions and targets."""
        if len(self) == 0:
            raise ValueError("cannot sample from an empty replay")
        idx = rng.integers(0, len(self), size=batch_size)
        return {"obs": self.obs[idx], "actions": self.actions[idx], "targets": self.targets[idx]}

    # ---- checkpoints (a Stateful part): the filled rows ----
    def state_arrays(self) -> dict[str, np.ndarray]:
        n = len(self)
        return {
            "obs": self.obs[:n],
            "actions": self.actions[:n],
            "targets": self.targets[:n],
            "meta": np.array([self.pos, int(self.full)], dtype=np.int64),
        }

    def array_specs(self) -> dict[str, ArraySpec]:
        c = self.capacity
        return {
            "obs": ArraySpec((c, self.obs_dim), "float32", max_rows=c),
            "actions": ArraySpec((c,), "int64", max_rows=c, low=0, high=self.n_actions - 1),
            "targets": ArraySpec((c,), "float32", max_rows=c, low=-1e12, high=1e12),
            "meta": ArraySpec((2,), "int64", low=0, high=c),
        }

    def check_state_arrays(self, arrays: Mapping[str, np.ndarray], where: str, prefix: str) -> None:
        """The row counts agree with the position and full flag in ``meta``."""
        pos, full = (int(v) for v in arrays["meta"])
        if full not in (0, 1) or pos >= self.capacity:
            raise CheckpointError(
                f"{where}: array '{prefix}/meta' holds position {pos} and full={full}; expected a position "
                f"below {self.capacity} and full 0 or 1"
            )
        n = self.capacity if full else pos
        for k in ("obs", "actions", "targets"):
            if len(arrays[k]) != n:
                raise CheckpointError(
                    f"{where}: array '{prefix}/{k}' has {len(arrays[k])} rows, expected {n} (position {pos}, "
                    f"full={full} in '{prefix}/meta')"
                )

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        self.check_state_arrays(arrays, "replay state", "replay")
        pos, full = (int(v) for v in arrays["meta"])
        n = self.capacity if full else pos
        self.obs[:n], self.actions[:n], self.targets[:n] = arrays["obs"], arrays["actions"], arrays["targets"]
        self.pos, self.full = pos, bool(full)
