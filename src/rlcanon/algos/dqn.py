"""DQN (Mnih et al. 2015, "Human-level control through deep RL") with the Nature recipe:
experience replay with a FIFO capacity, a target network refreshed every C updates (or Polyak
averaging), the Huber loss (its gradient is the TD error clipped to [-1, 1]), a linear
epsilon-greedy schedule, frame stacking and the Nature CNN for pixels. Flags add Double DQN
(van Hasselt et al. 2016), the dueling head (Wang et al. 2016), n-step returns (Sutton & Barto
ch. 7) and proportional prioritized replay (Schaul et al. 2016)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcanon.buffers.prioritized import PrioritizedReplayBuffer
from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.core.config import check_int, check_memory, check_range
from rlcanon.core.device import resolve_device
from rlcanon.core.losses import huber_loss, polyak_update
from rlcanon.core.optim import GradientStep
from rlcanon.core.schedules import linear
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import TrainingEnv
from rlcanon.errors import ConfigError
from rlcanon.fused import accelerated
from rlcanon.nets.critics import DiscreteQ
from rlcanon.run.config import RunConfig, check_hidden, check_rate
from rlcanon.run.state import Parts


@dataclass(frozen=True)
class DQNConfig(RunConfig):
    """DQN settings. Defaults follow Stable-Baselines3's DQN defaults (themselves the Nature
    values scaled for quicker tasks); per-env presets come from the RL Zoo."""

    buffer_size: int = 1_000_000
    """Replay capacity in transitions; the oldest are overwritten first (FIFO)."""
    learning_rate: float = 1e-4
    """Adam step size."""
    batch_size: int = 32
    """Transitions per gradient step."""
    learning_starts: int = 100
    """Env steps of experience to gather before the first update."""
    train_freq: int = 4
    """Env steps between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    target_update_interval: int = 10_000
    """Copy the online net into the target net every this many gradient steps (Nature's C)."""
    tau: float = 1.0
    """Polyak coefficient: every target_update_interval gradient steps the target net moves this
    fraction toward the online net. 1 is the hard copy; e.g. 0.005 with target_update_interval=1
    is per-step soft averaging."""
    exploration_fraction: float = 0.1
    """Share of training over which epsilon decays linearly."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip."""
    clip_reward: bool = False
    """Store sign(reward) in the replay buffer, as the Nature DQN does on Atari; logged returns stay
    unclipped."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over training."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the Q MLP (vector observations)."""
    double_dqn: bool = False
    """Choose the bootstrap action with the online net and score it with the target net."""
    dueling: bool = False
    """Dueling head: Q = V + A - mean(A)."""
    n_step: int = 1
    """Steps of real reward before bootstrapping."""
    prioritized: bool = False
    """Proportional prioritized replay with importance-sampling weights."""
    per_alpha: float = 0.6
    """Priority exponent alpha (Schaul et al. 2016, Table 3)."""
    per_beta0: float = 0.4
    """Initial importance-sampling exponent beta, annealed linearly to 1."""

    def validate(self) -> None:
        check_int("buffer_size", self.buffer_size, 1, 10**9)
        check_int("batch_size", self.batch_size, 1, 65_536)
        check_int("learning_starts", self.learning_starts, 0, 10**12)
        check_int("train_freq", self.train_freq, 1, 10**9)
        check_int("gradient_steps", self.gradient_steps, 1, 10**6)
        check_int("target_update_interval", self.target_update_interval, 1, 10**12)
        check_int("n_step", self.n_step, 1, 1000)
        check_rate("learning_rate", self.learning_rate)
        check_rate("max_grad_norm", self.max_grad_norm, 1e12)
        check_range("tau", self.tau, 1e-8, 1.0)
        for name in ("exploration_fraction", "exploration_initial_eps", "exploration_final_eps"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("per_alpha", self.per_alpha, 0.0, 1.0)
        check_range("per_beta0", self.per_beta0, 0.0, 1.0)
        check_hidden("hidden", self.hidden)
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                f"it must be <= buffer_size"
            )


@accelerated
def td_loss(
    q: DiscreteQ,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The Huber loss between Q(s, a) and its TD target (Mnih et al. 2015, Methods; weighted by the
    importance weights of prioritized replay), and Q(s, a) (detached, for the TD errors)."""
    q_taken = q(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    return huber_loss(q_taken, targets, weights), q_taken.detach()


class DQNAgent:
    def __init__(self, config: DQNConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env = TrainingEnv(config, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        if not isinstance(self.action_space, gym.spaces.Discrete):
            self.env.envs.close()
            raise ConfigError(f"DQN needs a discrete action space; {config.env_id} has {self.action_space}")
        self.n_actions = int(self.action_space.n)
        o_space = self.envs.single_observation_space
        shape = self.env.agent_obs_shape
        self.q = DiscreteQ(shape, self.n_actions, config.hidden, config.dueling)
        self.device = resolve_device(config.device, pixels=self.q.pixels)
        self.q.to(self.device)
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.update = GradientStep(
            self.q.parameters(), config.learning_rate, max_grad_norm=config.max_grad_norm
        )
        # pixels keep their bytes; vector observations (including integer ones, such as a flattened
        # one-hot) are stored as the float32 the network takes
        obs_dtype = np.uint8 if self.q.pixels and o_space.dtype == np.uint8 else np.float32
        check_memory(
            "buffer_size", 2 * config.buffer_size * int(np.prod(shape)) * np.dtype(obs_dtype).itemsize
        )
        buffer_cls = PrioritizedReplayBuffer if config.prioritized else ReplayBuffer
        extra: dict[str, Any] = {"alpha": config.per_alpha} if config.prioritized else {}
        self.buffer = buffer_cls(
            config.buffer_size,
            config.num_envs,
            (shape, obs_dtype),
            ((), np.int64),
            n_step=config.n_step,
            gamma=config.gamma,
            action_bounds=(0, self.n_actions - 1),
            **extra,
        )
        self.global_step = 0
        self.updates = 0
        self.budget_granularity = config.num_envs

    @property
    def progress(self) -> int:
        return self.global_step

    # ---- acting ----
    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        greedy = np.argmax(self.q.infer(np.asarray(obs)), axis=1)
        if deterministic:
            return greedy, state
        explore = self.rng.random(len(greedy)) < self.epsilon()
        return np.where(explore, self.rng.integers(0, self.n_actions, len(greedy)), greedy), state

    def epsilon(self) -> float:
        return self.epsilon_at(self.global_step)

    def epsilon_at(self, step: int) -> float:
        c = self.cfg
        progress = step / c.total_timesteps
        return linear(c.exploration_initial_eps, c.exploration_final_eps, c.exploration_fraction, progress)

    def _collect(self, n_steps: int) -> None:
        n = self.cfg.num_envs
        # The phase's exploration draws, and epsilon at each of its steps, in one call each.
        eps = [self.epsilon_at(self.global_step + t * n) for t in range(n_steps)]
        explore = self.rng.random((n_steps, n)) < np.asarray(eps)[:, None]
        random_actions = self.rng.integers(0, self.n_actions, size=(n_steps, n))
        stepper = self.env.stepper
        for t in range(n_steps):
            if explore[t].all():  # no greedy action is needed
                actions = random_actions[t]
            else:
                greedy = np.argmax(self.q.infer(stepper.obs), axis=1)
                actions = np.where(explore[t], random_actions[t], greedy)
            tr = stepper.step(actions)
            if self.cfg.clip_reward:  # the episode statistics have seen the true reward
                tr.rewards = np.sign(tr.rewards).astype(tr.rewards.dtype)
            self.buffer.add(tr)
            # Like PPO (and SB3), count every env step, autoreset steps included.
            self.global_step += n

    # ---- learning ----
    def iterate(self) -> dict[str, float]:
        c = self.cfg
        remaining = -(-(c.total_timesteps - self.global_step) // c.num_envs)
        self._collect(max(1, min(c.train_freq // c.num_envs, remaining)))
        metrics: dict[str, float] = {"charts/epsilon": self.epsilon()}
        if self.global_step >= c.learning_starts and len(self.buffer) >= c.batch_size:
            if c.anneal_lr:
                self.update.lr = c.learning_rate * max(1.0 - self.global_step / c.total_timesteps, 0.0)
                metrics["charts/learning_rate"] = self.update.lr
            metrics.update(self._train(c.gradient_steps))
        metrics.update(episode_metrics(*self.env.stepper.pop_episodes()))
        return metrics

    def _targets(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """r + discount * max_a Q_target(s', a) (Double DQN: a = argmax of the online net)."""
        q_next = self.q_target.infer(batch["next_obs"])
        if self.cfg.double_dqn:
            best = self.q.infer(batch["next_obs"]).argmax(1)
            v_next = q_next[np.arange(len(best)), best]
        else:
            v_next = q_next.max(1)
        return (batch["rewards"] + batch["discounts"] * v_next).astype(np.float32)

    def _train(self, n_updates: int) -> dict[str, float]:
        c = self.cfg
        tds: list[np.ndarray] = []  # TD errors and targets: the metrics are computed once per phase
        targets: list[np.ndarray] = []
        done = 0
        while done < n_updates:
            # Within a chunk the target net is fixed, so with uniform replay and no Double DQN all
            # TD targets of the chunk come from one batched forward pass instead of one per step.
            chunk = min(n_updates - done, c.target_update_interval - self.updates % c.target_update_interval)
            if not c.double_dqn and not c.prioritized:
                batch = self.buffer.batch(self.buffer.sample_indices(self.rng, chunk * c.batch_size))
                y = self._targets(batch)
                obs, acts, y_t = self._tensor(batch["obs"]), self._tensor(batch["actions"]), self._tensor(y)
                steps = [slice(k, k + c.batch_size) for k in range(0, chunk * c.batch_size, c.batch_size)]
                q_taken = self.update.fit(td_loss, [(self.q, obs[s], acts[s], y_t[s], None) for s in steps])
                tds.append(torch.cat(q_taken).cpu().numpy() - y)
                targets.append(y)
            else:
                for _ in range(chunk):
                    td, y = self._sampled_step()
                    tds.append(td)
                    targets.append(y)
            done += chunk
            self.updates += chunk
            if self.updates % c.target_update_interval == 0:
                polyak_update(self.q_target, self.q, c.tau)
        td_all, y_all = torch.from_numpy(np.concatenate(tds)), np.concatenate(targets)
        # logged: the unweighted Huber loss of the phase's TD errors, and the mean Q(s, a)
        loss = float(huber_loss(td_all, torch.zeros_like(td_all)))
        return {"loss/td": loss, "charts/q_mean": float((td_all.numpy() + y_all).mean())}

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device)

    def _sampled_step(self) -> tuple[np.ndarray, np.ndarray]:
        """One step on a freshly sampled batch: (TD errors, targets)."""
        c = self.cfg
        weights = None
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            beta = linear(c.per_beta0, 1.0, 1.0, self.global_step / c.total_timesteps)
            idx, w = self.buffer.sample_prioritized(self.rng, c.batch_size, beta)
            weights = self._tensor(w)
        else:
            idx = self.buffer.sample_indices(self.rng, c.batch_size)
        batch = self.buffer.batch(idx)
        y = self._targets(batch)
        td = self._step(self._tensor(batch["obs"]), self._tensor(batch["actions"]), self._tensor(y), weights)
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            self.buffer.update_priorities(idx, td)
        return td, y

    def _step(
        self, obs: torch.Tensor, acts: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None
    ) -> np.ndarray:
        """One gradient step on the TD loss; returns the TD errors Q(s, a) - target."""
        loss, q_taken = td_loss(self.q, obs, acts, targets, weights)
        self.update(loss)
        return q_taken.cpu().numpy() - targets.cpu().numpy()  # type: ignore[no-any-return]

    # ---- checkpoints ----
    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={"q": self.q, "q_target": self.q_target},
            optimizers={"q": self.update.optimizer},
            stateful={"replay": self.buffer, "env": self.env.state},
            counters=("global_step", "updates"),
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)
        self.buffer.mark_episode_boundary()  # the restarted episodes must not extend the stored ones


def train(config: DQNConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> Any:
    """Train DQN; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    from rlcanon.run.harness import train_run

    return train_run("dqn", config, DQNAgent, env=env, **kwargs)
