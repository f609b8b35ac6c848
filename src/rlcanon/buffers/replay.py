"""Experience replay with a fixed capacity (FIFO): any action shape and dtype, optional extra fields
(bootstrap masks, goals, intrinsic rewards, ...), n-step targets folded at sample time, and
sequences of consecutive steps for recurrent agents.

Storage is [rows, num_envs]: one row per vector step, so each sub-env's transitions stay in order
and n-step windows and sequences are contiguous. Autoreset steps are stored with ``valid=False``
and never drawn as transitions.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from rlcanon.buffers.transition import Transition
from rlcanon.core.returns import n_step_returns
from rlcanon.core.validate import ArraySpec, stored_dtype
from rlcanon.errors import CheckpointError

FieldSpec = tuple[tuple[int, ...], Any]
"""(shape of one entry, dtype) of a stored field."""

_BASE = ("rewards", "terminated", "dones", "valid")


class ReplayBuffer:
    """Transitions of ``num_envs`` sub-envs, at most ``capacity`` in all (rounded up to whole rows).

    ``extras`` maps a field name to (shape, dtype); :meth:`add` then takes that field for every
    sub-env and :meth:`batch` returns it."""

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs: FieldSpec,
        actions: FieldSpec,
        *,
        n_step: int = 1,
        gamma: float = 0.99,
        extras: Mapping[str, FieldSpec] | None = None,
        action_bounds: tuple[float, float] | None = None,
    ) -> None:
        self.capacity = capacity
        self.num_envs = num_envs
        self.rows = max(1, math.ceil(capacity / num_envs))
        self.n_step = n_step
        self.gamma = gamma
        self.action_bounds = action_bounds
        self.fields: dict[str, FieldSpec] = {
            "obs": obs,
            "next_obs": obs,
            "actions": actions,
            "rewards": ((), np.float32),
            "terminated": ((), np.bool_),
            "dones": ((), np.bool_),
            "valid": ((), np.bool_),
            **dict(extras or {}),
        }
        self.data = {k: np.zeros((self.rows, num_envs, *s), dtype=d) for k, (s, d) in self.fields.items()}
        self.pos = 0
        self.full = False

    def __getattr__(self, name: str) -> np.ndarray:  # buffer.obs, buffer.rewards, ...
        data = self.__dict__.get("data")
        if data is not None and name in data:
            return data[name]  # type: ignore[no-any-return]
        raise AttributeError(name)

    @property
    def filled_rows(self) -> int:
        return self.rows if self.full else self.pos

    def __len__(self) -> int:
        return int(self.data["valid"][: self.filled_rows].sum())

    def add(self, t: Transition, **extras: np.ndarray) -> int:
        """Store one vector step (overwriting the oldest row when full); returns the row index."""
        row, d = self.pos, self.data
        d["obs"][row] = t.obs
        d["next_obs"][row] = t.next_obs
        d["actions"][row] = t.actions
        d["rewards"][row] = t.rewards
        d["terminated"][row] = t.terminated
        d["dones"][row] = t.terminated | t.truncated
        d["valid"][row] = t.valid
        for name, value in extras.items():
            d[name][row] = value
        self.pos = (self.pos + 1) % self.rows
        self.full = self.full or self.pos == 0
        return row

    def mark_episode_boundary(self) -> None:
        """End every sub-env's stored episode at its newest row (as a truncation: the target still
        bootstraps from that row's next observation). Call it when the environments restart without
        the buffer knowing, as after a restore, so no n-step window joins two episodes."""
        if self.filled_rows:
            self.data["dones"][(self.pos - 1) % self.rows] = True

    def sample_indices(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        """Flat indices (row * num_envs + env) of valid transitions, drawn uniformly with replacement."""
        if len(self) == 0:
            raise ValueError("cannot sample from a replay buffer with no valid transition")
        high = self.filled_rows * self.num_envs
        flat_valid = self.data["valid"].reshape(-1)
        idx = rng.integers(0, high, size=batch_size)
        bad = np.logical_not(flat_valid[idx])
        while bad.any():  # autoreset slots are rare (one per episode); redraw them
            idx[bad] = rng.integers(0, high, size=int(bad.sum()))
            bad = np.logical_not(flat_valid[idx])
        return idx

    def batch(self, flat_idx: np.ndarray) -> dict[str, np.ndarray]:
        """obs, actions, extras, the (n-step) reward, the bootstrap discount and observation.

        The TD target is ``reward + discount * V(next_obs)``."""
        rows, envs = np.divmod(flat_idx, self.num_envs)
        d = self.data
        out = {k: d[k][rows, envs] for k in self.fields if k not in (*_BASE, "next_obs")}
        if self.n_step == 1:
            out["rewards"] = d["rewards"][rows, envs]
            out["discounts"] = (self.gamma * np.logical_not(d["terminated"][rows, envs])).astype(np.float32)
            out["next_obs"] = d["next_obs"][rows, envs]
            return out
        k = np.arange(self.n_step)[:, None]
        window = (rows[None, :] + k) % self.rows  # [n, B]
        newest = (self.pos - 1) % self.rows
        age = (newest - rows) % self.rows  # rows stored after this one
        reward, discount, last = n_step_returns(
            d["rewards"][window, envs],
            d["terminated"][window, envs],
            d["dones"][window, envs] | (k == age[None, :]),
            self.gamma,
        )
        out["rewards"] = reward.astype(np.float32)
        out["discounts"] = discount.astype(np.float32)
        out["next_obs"] = d["next_obs"][window[last, np.arange(len(rows))], envs]
        return out

    def sample_sequences(
        self, rng: np.random.Generator, batch_size: int, length: int
    ) -> dict[str, np.ndarray]:
        """``batch_size`` windows of ``length`` consecutive stored steps of one sub-env, as
        [B, L, ...] arrays of every field, plus ``episode_start`` ([B, L]: the step begins an
        episode, so a recurrent state must be reset before it) and ``mask`` ([B, L]: a valid step
        of the same stretch of experience). Windows never run past the newest row."""
        filled = self.filled_rows
        if filled < length:
            raise ValueError(f"the buffer holds {filled} rows, fewer than a sequence of {length}")
        oldest = self.pos if self.full else 0
        starts = (oldest + rng.integers(0, filled - length + 1, size=batch_size)) % self.rows
        envs = rng.integers(0, self.num_envs, size=batch_size)
        rows = (starts[:, None] + np.arange(length)[None, :]) % self.rows  # [B, L]
        e = envs[:, None]
        out = {k: v[rows, e] for k, v in self.data.items()}
        prev_done = np.zeros((batch_size, length), dtype=bool)
        prev_done[:, 1:] = out["dones"][:, :-1]
        out["episode_start"] = prev_done | ~out["valid"]
        out["episode_start"][:, 0] = True
        out["mask"] = out["valid"].copy()
        return out

    # ---- checkpoints ----
    def state_arrays(self) -> dict[str, np.ndarray]:
        n = self.filled_rows
        arrays = {f"{k}": v[:n] for k, v in self.data.items()}
        arrays["meta"] = np.array([self.pos, int(self.full)], dtype=np.int64)
        return arrays

    def array_specs(self) -> dict[str, ArraySpec]:
        specs = {
            k: ArraySpec((self.rows, self.num_envs, *s), stored_dtype(d), max_rows=self.rows)
            for k, (s, d) in self.fields.items()
        }
        for k in ("terminated", "dones", "valid"):
            specs[k] = ArraySpec(specs[k].shape, "uint8", max_rows=self.rows, low=0, high=1)
        if self.action_bounds is not None:  # e.g. discrete actions index a Q row: [0, n - 1]
            low, high = self.action_bounds
            spec = specs["actions"]
            specs["actions"] = ArraySpec(spec.shape, spec.dtype, max_rows=self.rows, low=low, high=high)
        specs["meta"] = ArraySpec((2,), "int64", low=0, high=self.rows)
        return specs

    def check_state_arrays(self, arrays: Mapping[str, np.ndarray], where: str, prefix: str) -> None:
        """Checks across arrays already checked against :meth:`array_specs`: the row counts agree
        with each other and with the position and full flag in ``meta``."""
        pos, full = (int(v) for v in arrays["meta"])
        if full not in (0, 1) or pos >= self.rows:
            raise CheckpointError(
                f"{where}: array '{prefix}/meta' holds position {pos} and full={full}; expected a position "
                f"below {self.rows} and full 0 or 1"
            )
        n = self.rows if full else pos
        for k in self.fields:
            if len(arrays[k]) != n:
                raise CheckpointError(
                    f"{where}: array '{prefix}/{k}' has {len(arrays[k])} rows, expected {n} (the rows "
                    f"'{prefix}/meta' says are stored: position {pos}, full={full})"
                )

    def load_state_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Restore contents checked against :meth:`array_specs` and :meth:`check_state_arrays`."""
        self.check_state_arrays(arrays, "replay state", "replay")
        pos, full = (int(v) for v in arrays["meta"])
        n = self.rows if full else pos
        for k, v in self.data.items():
            v[:n] = arrays[k]
        self.pos, self.full = pos, bool(full)
