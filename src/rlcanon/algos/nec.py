"""Neural Episodic Control (Pritzel et al. 2017, "Neural Episodic Control").

An embedding network h = f(s) feeds one differentiable neural dictionary (DND) per action. A DND
read (Section 2, Eqs. 1-2) takes the p nearest stored keys h_i and returns

    Q(s, a) = sum_i w_i v_i,   w_i = k(h, h_i) / sum_j k(h, h_j),   k(h, h_i) = 1 / (||h - h_i||^2 + delta).

Each step's N-step target (Section 3, Eq. 3) is Q^N(s_t, a) = sum_{j<N} gamma^j r_{t+j} +
gamma^N max_a' Q(s_{t+N}, a'). Once known, (h_t, Q^N) is written into the DND of a_t (Section 3):
a key already stored moves its value by Q_i <- Q_i + alpha (Q^N - Q_i), any other key is appended,
replacing the least recently used entry of a full DND. (s_t, a_t, Q^N) also enters a replay
buffer, from which minibatches train the embedding and the retrieved keys and values on the squared
error between Q(s, a) and Q^N (Section 3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcanon.buffers.targets import TargetReplay
from rlcanon.core.config import check_int, check_range
from rlcanon.core.optim import GradientStep
from rlcanon.core.schedules import epsilon_greedy, linear
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import discrete_training_env
from rlcanon.errors import ConfigError
from rlcanon.nets.knn import ActionMemories
from rlcanon.nets.mlp import MLP
from rlcanon.run.config import RunConfig, check_hidden, check_rate
from rlcanon.run.state import Parts

BLOCK_STEPS = 64
"""Vector-env steps per :meth:`NECAgent.iterate` (the harness logs once per block)."""


@dataclass(frozen=True)
class NECConfig(RunConfig):
    """NEC settings. The DND constants are the paper's (Pritzel et al. 2017); the network, step sizes
    and horizon are chosen for small vector tasks such as CartPole, as each comment says."""

    num_neighbours: int = 50
    """p: neighbours each DND read weighs (p = 50, Section 2)."""
    kernel_delta: float = 1e-3
    """delta of the kernel 1 / (||h - h_i||^2 + delta) (delta = 10^-3, Section 2)."""
    tabular_learning_rate: float = 0.1
    """alpha of the write rule Q_i <- Q_i + alpha (Q^N - Q_i) (alpha = 0.1, Section 3)."""
    dnd_capacity: int = 500_000
    """Entries per action's DND; a full one replaces its least recently used (5 * 10^5, Section 4)."""
    key_size: int = 64
    """Dimension of the embedding h (our choice for vector observations)."""
    hidden: tuple[int, ...] = (64,)
    """Hidden layer sizes of the embedding MLP (ReLU; the paper's Atari net is the DQN CNN)."""
    n_step: int = 10
    """N of the N-step target. The paper uses N = 100 on Atari (Section 4); CartPole's episodes are
    shorter and its reward dense, so a shorter horizon (our choice) bootstraps sooner."""
    learning_rate: float = 1e-3
    """Adam step size of the embedding (the paper's RMSProp step on Atari is 7.92e-6, Section 4)."""
    dnd_learning_rate: float = 1e-2
    """Plain gradient step size of the retrieved keys and values (the paper steps them by its
    optimizer; a sparse step touches only the rows read)."""
    buffer_size: int = 100_000
    """Replay capacity in (s, a, Q^N) tuples (10^5, Section 4)."""
    batch_size: int = 32
    """Tuples per gradient step (32, Section 4)."""
    learning_starts: int = 1_000
    """Env steps before the first gradient step (our choice)."""
    train_freq: int = 16
    """Env steps between gradient steps (one step every 16 observations, Section 4)."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.01
    """Epsilon after the decay (our choice for CartPole)."""
    exploration_fraction: float = 0.05
    """Share of training over which epsilon decays linearly."""

    def validate(self) -> None:
        check_int("num_neighbours", self.num_neighbours, 1, 10_000)
        check_range("kernel_delta", self.kernel_delta, 1e-12, 1e6)
        check_range("tabular_learning_rate", self.tabular_learning_rate, 0.0, 1.0)
        check_int("dnd_capacity", self.dnd_capacity, 1, 10**8)
        check_int("key_size", self.key_size, 1, 4096)
        check_hidden("hidden", self.hidden)
        check_int("n_step", self.n_step, 1, 10_000)
        check_rate("learning_rate", self.learning_rate)
        check_range("dnd_learning_rate", self.dnd_learning_rate, 0.0, 10.0)
        check_int("buffer_size", self.buffer_size, 1, 10**9)
        check_int("batch_size", self.batch_size, 1, 65_536)
        check_int("learning_starts", self.learning_starts, 0, 10**12)
        check_int("train_freq", self.train_freq, 1, 10**9)
        for name in ("exploration_initial_eps", "exploration_final_eps", "exploration_fraction"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                f"it must be <= buffer_size"
            )


def kernel_read(h: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, delta: float) -> torch.Tensor:
    """Q = sum_i w_i v_i with normalised inverse-distance kernel weights (Eqs. 1-2): ``h`` (B, d),
    the retrieved ``keys`` (B, p, d) and ``values`` (B, p)."""
    kernel = 1.0 / (((h.unsqueeze(1) - keys) ** 2).sum(-1) + delta)
    weights = kernel / kernel.sum(1, keepdim=True)
    return (weights * values).sum(1)


def n_step_targets(rewards: np.ndarray, bootstrap: float, gamma: float) -> np.ndarray:
    """Q^N of every step of a stretch of rewards that ends where ``bootstrap`` (max_a Q of the next
    state; 0 after termination) takes over (Eq. 3): sum_{m>=t} gamma^(m-t) r_m + gamma^(L-t) bootstrap."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = float(bootstrap)
    for t in range(len(rewards) - 1, -1, -1):
        running = float(rewards[t]) + gamma * running
        out[t] = running
    return out


def dnd_write(memories: ActionMemories, action: int, key: torch.Tensor, target: float, alpha: float) -> None:
    """The DND write of Section 3: an exact key already stored moves its value by alpha (Q^N - Q_i),
    any other key is appended (replacing the least recently used entry when the DND is full)."""
    slot = int(memories.find_exact(action, key[None])[0])
    if slot >= 0:
        memories.values[action][slot] += alpha * (target - memories.values[action][slot])
        memories.touch(action, np.array([slot]))
    else:
        memories.write(action, key, target)


def retrieve(memories: ActionMemories, action: int, h: torch.Tensor, p: int) -> tuple[Any, Any, Any]:
    """(slots, keys, values) of the p nearest entries of ``h`` (B, d) in one DND, as leaf copies
    that take gradients; (None, None, None) for an empty DND."""
    stored_keys, stored_values = memories.stored(action)
    if not len(stored_keys):
        return None, None, None
    idx = memories.search(action, h, p)
    return idx, stored_keys[idx].requires_grad_(True), stored_values[idx].requires_grad_(True)


def nec_loss(
    embed: MLP,
    memories: ActionMemories,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    cfg: Any,
) -> tuple[torch.Tensor, list[tuple[int, Any, Any, Any]]]:
    """The squared error (Q(s, a) - Q^N)^2 averaged over the batch (Section 3), and per action the
    retrieved (slots, keys, values) whose gradients then step the DND."""
    h = embed(obs)
    q = torch.zeros(len(obs))
    retrieved = []
    for a in torch.unique(actions).tolist():
        rows = actions == a
        slots, keys, values = retrieve(memories, a, h[rows], cfg.num_neighbours)
        if slots is None:
            continue
        q = q.index_put((rows.nonzero()[:, 0],), kernel_read(h[rows], keys, values, cfg.kernel_delta))
        retrieved.append((a, slots, keys, values))
    return ((q - targets) ** 2).mean(), retrieved


class NECAgent:
    def __init__(self, config: NECConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env, self.n_actions = discrete_training_env(config, env, "NEC")
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        self.embed = MLP(self.env.obs_dim, config.hidden, config.key_size, "relu")
        self.update = GradientStep(self.embed.parameters(), config.learning_rate)
        self.memories = ActionMemories(self.n_actions, config.dnd_capacity, config.key_size)
        self.replay = TargetReplay(config.buffer_size, self.env.obs_dim, self.n_actions)
        # per sub-env, the steps whose N-step target is not known yet: (obs, h, action, reward)
        self.pending: list[list[tuple[np.ndarray, torch.Tensor, int, float]]] = [
            [] for _ in range(config.num_envs)
        ]
        self.ended = np.zeros(config.num_envs, dtype=np.int8)  # 0 running, 1 terminated, 2 truncated
        self.global_step = 0
        self.updates = 0
        self.budget_granularity = config.num_envs

    @property
    def progress(self) -> int:
        return self.global_step

    def embeddings(self, obs: np.ndarray) -> torch.Tensor:
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return torch.from_numpy(np.ascontiguousarray(self.embed.infer(flat)))

    def q_values(self, h: torch.Tensor, touch: bool = False) -> np.ndarray:
        """(B, n_actions) DND reads (0 for an empty DND); ``touch`` marks the neighbours used."""
        columns = []
        for a in range(self.n_actions):
            slots, keys, values = retrieve(self.memories, a, h, self.cfg.num_neighbours)
            if slots is None:
                columns.append(torch.zeros(len(h)))
                continue
            if touch:
                self.memories.touch(a, slots.numpy())
            columns.append(kernel_read(h, keys.detach(), values.detach(), self.cfg.kernel_delta))
        return torch.stack(columns, 1).numpy()

    # ---- acting ----
    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        greedy = np.argmax(self.q_values(self.embeddings(obs)), axis=1)
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
        losses = []
        for _ in range(max(1, min(BLOCK_STEPS, remaining))):
            h = self.embeddings(stepper.obs)
            q = self.q_values(h, touch=True)
            self._settle_targets(q.max(1))
            explore = self.rng.random(c.num_envs) < self.epsilon()
            actions = np.where(explore, self.rng.integers(0, self.n_actions, c.num_envs), q.argmax(1))
            tr = stepper.step(actions)
            self.global_step += c.num_envs
            for i in np.flatnonzero(tr.valid):
                self.pending[i].append((tr.obs[i], h[i], int(actions[i]), float(tr.rewards[i])))
                self.ended[i] = 1 if tr.terminated[i] else 2 if tr.truncated[i] else 0
            for i in np.flatnonzero(self.ended == 1):  # no bootstrap after termination
                self._flush(int(i), 0.0)
            ready = self.global_step >= c.learning_starts and len(self.replay) >= c.batch_size
            if ready and (self.global_step // c.num_envs) % max(c.train_freq // c.num_envs, 1) == 0:
                losses.append(self._train_step())
        metrics = {"charts/epsilon": self.epsilon(), "charts/dnd_size": float(self.memories.sizes.sum())}
        if losses:
            metrics["loss/q"] = float(np.mean(losses))
        metrics.update(episode_metrics(*stepper.pop_episodes()))
        return metrics

    def _settle_targets(self, v_next: np.ndarray) -> None:
        """Before acting on each sub-env's observation (whose max_a Q is ``v_next``): a truncated
        episode's steps bootstrap from its final observation (now in ``obs``), and a running
        episode's oldest step gets its target once N rewards follow it."""
        for i in range(self.cfg.num_envs):
            if self.ended[i] == 2:
                self._flush(i, float(v_next[i]))
            elif len(self.pending[i]) >= self.cfg.n_step:
                self._settle(i, 1, float(v_next[i]))

    def _flush(self, i: int, bootstrap: float) -> None:
        self._settle(i, len(self.pending[i]), bootstrap)
        self.ended[i] = 0

    def _settle(self, i: int, count: int, bootstrap: float) -> None:
        """Give the oldest ``count`` pending steps of sub-env i their targets (the rest of the
        pending rewards, then ``bootstrap``), write them to the DNDs and the replay buffer."""
        steps = self.pending[i]
        targets = n_step_targets(np.array([r for *_, r in steps]), bootstrap, self.cfg.gamma)
        for (obs, h, a, _), y in zip(steps[:count], targets[:count]):
            dnd_write(self.memories, a, h, float(y), self.cfg.tabular_learning_rate)
            self.replay.add(obs, a, float(y))
        self.pending[i] = steps[count:]

    def _train_step(self) -> float:
        c = self.cfg
        batch = self.replay.sample(self.rng, c.batch_size)
        obs, actions = torch.from_numpy(batch["obs"]), torch.from_numpy(batch["actions"])
        loss, retrieved = nec_loss(
            self.embed, self.memories, obs, actions, torch.from_numpy(batch["targets"]), c
        )
        self.update(loss)
        with torch.no_grad():  # a plain gradient step on the rows read (repeats add up)
            for a, slots, keys, values in retrieved:
                flat = slots.reshape(-1)
                self.memories.keys[a].index_add_(
                    0, flat, keys.grad.reshape(-1, c.key_size), alpha=-c.dnd_learning_rate
                )
                self.memories.values[a].index_add_(
                    0, flat, values.grad.reshape(-1), alpha=-c.dnd_learning_rate
                )
                self.memories.refresh_norms(a, torch.unique(flat))
        self.updates += 1
        return float(loss.detach())

    # ---- checkpoints ----
    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={"embed": self.embed},
            optimizers={"embed": self.update.optimizer},
            stateful={"memory": self.memories, "replay": self.replay, "env": self.env.state},
            counters=("global_step", "updates"),
        )

    def on_restore(self) -> None:
        # the envs restart, so the unfinished N-step windows can no longer be completed
        self.pending = [[] for _ in range(self.cfg.num_envs)]
        self.ended[:] = 0
        self.env.restart(self.global_step)


def train(config: NECConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> Any:
    """Train NEC; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    from rlcanon.run.harness import train_run

    return train_run("nec", config, NECAgent, env=env, **kwargs)
