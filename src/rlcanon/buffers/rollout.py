"""The (T, N) rollout buffer of on-policy algorithms: T steps of N sub-envs, refilled every iteration.

Each field is a preallocated [T, N, ...] array (observations and values have a T+1-th row: the
state after the last step, which bootstraps the last advantages). Autoreset steps are stored with
``valid=False`` and left out of every minibatch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from rlcanon.buffers.transition import Transition
from rlcanon.core.returns import gae

FieldSpec = tuple[tuple[int, ...], Any]


class RolloutBuffer:
    def __init__(
        self,
        num_steps: int,
        num_envs: int,
        obs: FieldSpec,
        actions: FieldSpec,
        extras: Mapping[str, FieldSpec] | None = None,
    ) -> None:
        self.num_steps, self.num_envs = num_steps, num_envs
        T, N = num_steps, num_envs
        self.data: dict[str, np.ndarray] = {
            "obs": np.zeros((T + 1, N, *obs[0]), dtype=obs[1]),
            "actions": np.zeros((T, N, *actions[0]), dtype=actions[1]),
            "rewards": np.zeros((T, N), dtype=np.float32),
            "terminated": np.zeros((T, N), dtype=bool),
            "dones": np.zeros((T, N), dtype=bool),
            "valid": np.zeros((T, N), dtype=bool),
            "values": np.zeros((T + 1, N), dtype=np.float32),
        }
        for name, (shape, dtype) in (extras or {}).items():
            self.data[name] = np.zeros((T, N, *shape), dtype=dtype)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.data[name]

    @property
    def size(self) -> int:
        return self.num_steps * self.num_envs

    def add(self, t: int, obs: np.ndarray, actions: np.ndarray, tr: Transition, **extras: np.ndarray) -> None:
        """Store step ``t``: the observation acted on, the actions and what the env returned."""
        d = self.data
        d["obs"][t] = obs
        d["actions"][t] = actions
        d["rewards"][t] = tr.rewards
        d["terminated"][t] = tr.terminated
        d["dones"][t] = tr.terminated | tr.truncated
        d["valid"][t] = tr.valid
        for name, value in extras.items():
            d[name][t] = value

    def flat(self, name: str) -> np.ndarray:
        """A field's first T rows as one [T * N, ...] batch (a view)."""
        arr = self.data[name][: self.num_steps]
        return arr.reshape(self.size, *arr.shape[2:])

    def collect(
        self, stepper: Any, act: Callable[[np.ndarray], np.ndarray], to_env: Callable[[Any], Any]
    ) -> None:
        """Fill the buffer with ``num_steps`` vector steps of ``stepper`` (a VecStepper): the flat
        observations, ``act(obs)`` as stored, and ``to_env`` of it sent to the envs; the last row
        of ``obs`` is the observation to bootstrap from."""
        n = stepper.num_envs
        for t in range(self.num_steps):
            obs = stepper.obs.reshape(n, -1)
            actions = act(obs)
            self.add(t, obs, actions, stepper.step(to_env(actions)))
        self.data["obs"][-1] = stepper.obs.reshape(n, -1)

    def fill_values(self, value_fn: Callable[[np.ndarray], np.ndarray]) -> None:
        """``values`` (T + 1 rows) from a batch value function of flat observations."""
        T, N = self.num_steps, self.num_envs
        self.data["values"][:] = value_fn(self.data["obs"].reshape((T + 1) * N, -1)).reshape(T + 1, N)

    def advantages(self, gamma: float, gae_lambda: float) -> tuple[np.ndarray, np.ndarray]:
        """GAE advantages and returns [T, N] from the stored rewards and ``values`` (T + 1 rows).

        With NEXT_STEP autoreset the observation after a final step is the final observation, so
        ``values[t + 1]`` bootstraps truncated episodes correctly."""
        d = self.data
        return gae(d["rewards"], d["values"], d["terminated"], d["dones"], gamma, gae_lambda)

    def minibatches(self, rng: np.random.Generator, batch_size: int) -> Iterator[np.ndarray]:
        """A random partition of the valid steps into round(T N / batch_size) minibatches of flat
        indices (sizes differ by at most one)."""
        valid = np.flatnonzero(self.data["valid"].reshape(-1))
        n_mb = max(1, round(self.size / batch_size))
        yield from np.array_split(rng.permutation(valid), n_mb)
