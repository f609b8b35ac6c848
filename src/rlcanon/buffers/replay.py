"""Experience replay with a fixed capacity (FIFO), n-step targets folded at sample time.

Storage is [rows, num_envs]: one row per vector step, so each sub-env's transitions stay in order
and n-step windows are contiguous. Autoreset steps are stored with ``valid=False`` and never drawn.
"""

from __future__ import annotations

import math

import numpy as np

from rlcanon.core.returns import n_step_returns
from rlcanon.envs.collectors import Transition

_FIELDS = ("obs", "next_obs", "actions", "rewards", "terminated", "dones", "valid")


class ReplayBuffer:
    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype | type,
        n_step: int = 1,
        gamma: float = 0.99,
    ) -> None:
        self.capacity = capacity
        self.num_envs = num_envs
        self.rows = max(1, math.ceil(capacity / num_envs))
        self.n_step = n_step
        self.gamma = gamma
        shape = (self.rows, num_envs)
        self.obs = np.zeros(shape + obs_shape, dtype=obs_dtype)
        self.next_obs = np.zeros(shape + obs_shape, dtype=obs_dtype)
        self.actions = np.zeros(shape, dtype=np.int64)
        self.rewards = np.zeros(shape, dtype=np.float32)
        self.terminated = np.zeros(shape, dtype=bool)
        self.dones = np.zeros(shape, dtype=bool)
        self.valid = np.zeros(shape, dtype=bool)
        self.pos = 0
        self.full = False

    @property
    def filled_rows(self) -> int:
        return self.rows if self.full else self.pos

    def __len__(self) -> int:
        return int(self.valid[: self.filled_rows].sum())

    def add(self, t: Transition) -> int:
        """Store one vector step (overwriting the oldest row when full); returns the row index."""
        row = self.pos
        self.obs[row] = t.obs
        self.next_obs[row] = t.next_obs
        self.actions[row] = t.actions
        self.rewards[row] = t.rewards
        self.terminated[row] = t.terminated
        self.dones[row] = t.terminated | t.truncated
        self.valid[row] = t.valid
        self.pos = (self.pos + 1) % self.rows
        self.full = self.full or self.pos == 0
        return row

    def sample_indices(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """Flat indices (row * num_envs + env) of valid transitions, drawn uniformly with replacement."""
        high = self.filled_rows * self.num_envs
        flat_valid = self.valid.reshape(-1)
        idx = rng.integers(0, high, size=batch_size)
        bad = ~flat_valid[idx]
        while bad.any():  # autoreset slots are rare (one per episode); redraw them
            idx[bad] = rng.integers(0, high, size=int(bad.sum()))
            bad = ~flat_valid[idx]
        return idx

    def batch(self, flat_idx: np.ndarray) -> dict[str, np.ndarray]:
        """obs, actions, the (n-step) reward, the bootstrap discount and the bootstrap observation.

        The TD target is ``reward + discount * max_a Q_target(next_obs, a)``.
        """
        rows, envs = np.divmod(flat_idx, self.num_envs)
        out = {"obs": self.obs[rows, envs], "actions": self.actions[rows, envs]}
        if self.n_step == 1:
            out["rewards"] = self.rewards[rows, envs]
            out["discounts"] = (self.gamma * ~self.terminated[rows, envs]).astype(np.float32)
            out["next_obs"] = self.next_obs[rows, envs]
            return out
        k = np.arange(self.n_step)[:, None]
        window = (rows[None, :] + k) % self.rows  # [n, B]
        newest = (self.pos - 1) % self.rows
        age = (newest - rows) % self.rows  # rows stored after this one
        stop_at_head = k == age[None, :]
        reward, discount, last = n_step_returns(
            self.rewards[window, envs],
            self.terminated[window, envs],
            self.dones[window, envs] | stop_at_head,
            self.gamma,
        )
        last_rows = window[last, np.arange(len(rows))]
        out["rewards"] = reward.astype(np.float32)
        out["discounts"] = discount.astype(np.float32)
        out["next_obs"] = self.next_obs[last_rows, envs]
        return out

    def state_arrays(self) -> dict[str, np.ndarray]:
        n = self.filled_rows
        arrays = {f"replay/{name}": getattr(self, name)[:n] for name in _FIELDS}
        arrays["replay/meta"] = np.array([self.pos, int(self.full)], dtype=np.int64)
        return arrays

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        pos, full = (int(v) for v in arrays["replay/meta"])
        for name in _FIELDS:
            data = arrays[f"replay/{name}"]
            getattr(self, name)[: len(data)] = data.astype(getattr(self, name).dtype)
        self.pos, self.full = pos, bool(full)
