"""Model-Free Episodic Control (Blundell et al. 2016, "Model-Free Episodic Control").

The agent keeps, per action, a table Q^EC of (key, best return) pairs. A key is a fixed Gaussian
random projection of the observation, phi(s) = A s (Section 3, "random projections"). After each
episode every visited (phi(s_t), a_t) is written with its discounted Monte Carlo return R_t
(Section 2, Eq. 2):

    Q^EC(phi(s_t), a_t) <- max(Q^EC(phi(s_t), a_t), R_t)   if the key is stored,
                           R_t                              otherwise (a new entry).

Reading (Eq. 3): a stored key returns its own value; any other key the mean value of its k nearest
stored keys (k = 11, Section 4). Actions are epsilon-greedy in these estimates. A table holds at
most ``capacity`` entries and drops the least recently used (Section 4)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcanon.core.config import check_int, check_memory, check_range
from rlcanon.core.schedules import epsilon_greedy, linear
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import discrete_training_env
from rlcanon.nets.knn import ActionMemories
from rlcanon.run.config import RunConfig
from rlcanon.run.state import Parts

BLOCK_STEPS = 64
"""Vector-env steps per :meth:`MFECAgent.iterate` (the harness logs once per block)."""


@dataclass(frozen=True)
class MFECConfig(RunConfig):
    """MFEC settings. Defaults are the paper's (Blundell et al. 2016, Section 4) except where a
    comment says otherwise."""

    projection_dim: int = 64
    """Dimension of the random projection phi(s) = A s that keys the tables (the paper projects
    Atari frames to 64 dimensions, Section 4)."""
    num_neighbours: int = 11
    """k: an unseen key reads the mean value of its k nearest stored keys (k = 11, Section 4)."""
    capacity: int = 1_000_000
    """Entries per action's table; a full table replaces its least recently used entry (10^6 per
    action, Section 4)."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start. The paper acts with a fixed epsilon; a short decay from 1 fills both
    tables before the estimates are trusted (an empty table reads 0)."""
    exploration_final_eps: float = 0.005
    """Epsilon after the decay (the paper's epsilon = 0.005, Section 4)."""
    exploration_fraction: float = 0.05
    """Share of training over which epsilon decays linearly (our choice; see above)."""

    def validate(self) -> None:
        check_int("projection_dim", self.projection_dim, 1, 4096)
        check_int("num_neighbours", self.num_neighbours, 1, 10_000)
        check_int("capacity", self.capacity, 1, 10**8)
        for name in ("exploration_initial_eps", "exploration_final_eps", "exploration_fraction"):
            check_range(name, getattr(self, name), 0.0, 1.0)


def discounted_returns(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """R_t = sum_j gamma^j r_{t+j} for every step of one episode (no bootstrap: MFEC's returns are
    Monte Carlo, Eq. 2)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


def read_values(
    memories: ActionMemories, action: int, keys: torch.Tensor, k: int
) -> tuple[torch.Tensor, Any]:
    """Q^EC(key, action) for a batch of keys (Eq. 3): the stored value on an exact match, else the
    mean of the k nearest values; 0 for an empty table. Also the slots read (None if empty)."""
    stored_keys, stored_values = memories.stored(action)
    if not len(stored_keys):
        return torch.zeros(len(keys)), None
    idx = memories.search(action, keys, k)
    exact = (stored_keys[idx[:, 0]] == keys).all(1)
    neighbour_mean = stored_values[idx].mean(1)
    return torch.where(exact, stored_values[idx[:, 0]], neighbour_mean), idx


def update_table(memories: ActionMemories, action: int, keys: torch.Tensor, returns: np.ndarray) -> None:
    """The max-return write of Eq. 2 for one action's (key, return) pairs of an episode. Repeated
    keys within the episode count once, with their largest return."""
    unique, inverse = np.unique(keys.numpy(), axis=0, return_inverse=True)
    best = np.full(len(unique), -np.inf)
    np.maximum.at(best, inverse.reshape(-1), returns)
    unique_keys = torch.from_numpy(unique)
    slots = memories.find_exact(action, unique_keys)
    found = slots >= 0
    if found.any():
        old = memories.values[action][slots[found]]
        new = torch.maximum(old, torch.from_numpy(best[found]).float())
        memories.values[action][slots[found]] = new
        memories.touch(action, slots[found])
    for i in np.flatnonzero(~found):
        memories.write(action, unique_keys[i], float(best[i]))


class MFECAgent:
    def __init__(self, config: MFECConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env, self.n_actions = discrete_training_env(config, env, "MFEC")
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        check_memory("capacity", self.n_actions * config.capacity * (config.projection_dim + 2) * 8)
        # A is a fixed Gaussian matrix (Section 3); kept as a frozen module so checkpoints hold it
        self.projection = torch.nn.Linear(self.env.obs_dim, config.projection_dim, bias=False)
        gen = torch.Generator().manual_seed(int(rng.integers(2**63)))
        weight = torch.randn(self.projection.weight.shape, generator=gen)
        self.projection.weight = torch.nn.Parameter(weight, requires_grad=False)
        self.memories = ActionMemories(self.n_actions, config.capacity, config.projection_dim)
        self.episodes: list[list[tuple[torch.Tensor, int, float]]] = [[] for _ in range(config.num_envs)]
        self.global_step = 0
        self.budget_granularity = config.num_envs

    @property
    def progress(self) -> int:
        return self.global_step

    def keys(self, obs: np.ndarray) -> torch.Tensor:
        flat = torch.as_tensor(np.asarray(obs, dtype=np.float32)).reshape(len(obs), -1)
        return self.projection(flat)  # type: ignore[no-any-return]

    def q_values(self, keys: torch.Tensor, touch: bool = False) -> np.ndarray:
        """(B, n_actions) estimates; with ``touch`` the neighbours read count as used (LRU)."""
        columns = []
        for a in range(self.n_actions):
            q, slots = read_values(self.memories, a, keys, self.cfg.num_neighbours)
            if touch and slots is not None:
                self.memories.touch(a, slots.numpy())
            columns.append(q)
        return torch.stack(columns, 1).numpy()

    # ---- acting ----
    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        greedy = np.argmax(self.q_values(self.keys(obs)), axis=1)
        if deterministic:
            return greedy, state
        return epsilon_greedy(greedy, self.epsilon(), self.n_actions, self.rng), state

    def epsilon(self) -> float:
        c = self.cfg
        progress = self.global_step / c.total_timesteps
        return linear(c.exploration_initial_eps, c.exploration_final_eps, c.exploration_fraction, progress)

    # ---- learning ----
    def iterate(self) -> dict[str, float]:
        c, stepper = self.cfg, self.env.stepper
        remaining = -(-(c.total_timesteps - self.global_step) // c.num_envs)
        for _ in range(max(1, min(BLOCK_STEPS, remaining))):
            keys = self.keys(stepper.obs)
            explore = self.rng.random(c.num_envs) < self.epsilon()
            random_actions = self.rng.integers(0, self.n_actions, c.num_envs)
            if explore.all():
                actions = random_actions
            else:
                actions = np.where(explore, random_actions, self.q_values(keys, touch=True).argmax(1))
            tr = stepper.step(actions)
            self.global_step += c.num_envs
            for i in np.flatnonzero(tr.valid):
                self.episodes[i].append((keys[i], int(actions[i]), float(tr.rewards[i])))
                if tr.terminated[i] or tr.truncated[i]:
                    self._write_episode(int(i))
        metrics = {"charts/epsilon": self.epsilon(), "charts/memory_size": float(self.memories.sizes.sum())}
        metrics.update(episode_metrics(*stepper.pop_episodes()))
        return metrics

    def _write_episode(self, env_index: int) -> None:
        """Write sub-env ``env_index``'s finished episode into the tables (Eq. 2)."""
        steps, self.episodes[env_index] = self.episodes[env_index], []
        returns = discounted_returns(np.array([r for _, _, r in steps]), self.cfg.gamma)
        actions = np.array([a for _, a, _ in steps])
        keys = torch.stack([k for k, _, _ in steps])
        for a in np.unique(actions):
            rows = np.flatnonzero(actions == a)
            update_table(self.memories, int(a), keys[rows], returns[rows])

    # ---- checkpoints ----
    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={"projection": self.projection},
            stateful={"memory": self.memories, "env": self.env.state},
            counters=("global_step",),
        )

    def on_restore(self) -> None:
        # the envs restart, so the unfinished episodes can no longer be completed
        self.episodes = [[] for _ in range(self.cfg.num_envs)]
        self.env.restart(self.global_step)


def train(config: MFECConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> Any:
    """Train MFEC; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    from rlcanon.run.harness import train_run

    return train_run("mfec", config, MFECAgent, env=env, **kwargs)
