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

import numpy as np
import torch
from torch import nn

from rlcanon.algos.dqn_explore import Exploration, noisy_kwargs
from rlcanon.algos.qvariant import QVariant, select_next, take
from rlcanon.buffers.prioritized import PrioritizedReplayBuffer
from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.core.config import check_int, check_memory, check_range
from rlcanon.core.device import resolve_device
from rlcanon.core.losses import huber_loss, polyak_update
from rlcanon.core.optim import GradientStep
from rlcanon.core.schedules import epsilon_greedy, linear
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import discrete_training_env
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
    noisy: bool = False
    """NoisyNet (Fortunato et al. 2018): factorised Gaussian noisy layers, noise drawn afresh at each
    acting step and, independently for the online and target nets, at each gradient step; it
    replaces epsilon-greedy (epsilon is 0)."""
    noisy_sigma0: float = 0.5
    """NoisyNet's sigma_0: the noise scales start at sigma_0 / sqrt(fan-in) (paper section 3.2)."""
    param_noise: bool = False
    """Parameter-space noise (Plappert et al. 2018): act with a perturbed copy of the Q net, redrawn
    when an episode ends, its scale adapted so that the perturbed policy stays at the KL distance
    of the scheduled epsilon-greedy policy; epsilon-greedy itself is then off."""
    param_noise_adapt_interval: int = 50
    """Env steps between adaptations of the parameter-noise scale (Plappert et al. 2018, C.1)."""

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
        check_range("noisy_sigma0", self.noisy_sigma0, 0.0, 10.0)
        check_int("param_noise_adapt_interval", self.param_noise_adapt_interval, 1, 10**9)
        if self.noisy and self.param_noise:
            raise ConfigError("noisy=True and param_noise=True together are not allowed; choose one")
        check_hidden("hidden", self.hidden)
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                f"it must be <= buffer_size"
            )

    def variant(self) -> QVariant:
        """The Q head, TD target and loss of this member of the family: DQN's scalar Q values."""
        return ScalarQ(self)


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


def q_learning_target(
    rewards: np.ndarray, discounts: np.ndarray, target_next: np.ndarray, online_next: np.ndarray | None
) -> np.ndarray:
    """y = r + discount * Q_target(s', a*) with a* = argmax_a Q_target(s', a) (Mnih et al. 2015),
    or argmax_a Q_online(s', a) for Double DQN; ``discount`` is gamma^n, 0 after a termination."""
    best = select_next(online_next, target_next)
    return (rewards + discounts * take(target_next, best)).astype(np.float32)


class ScalarQ(QVariant):
    """DQN's head: one Q value per action, the Huber TD loss."""

    loss = staticmethod(td_loss)

    def __init__(self, cfg: DQNConfig) -> None:
        self.cfg = cfg

    def build(self, obs_shape: tuple[int, ...], n_actions: int, **net_kwargs: Any) -> nn.Module:
        return DiscreteQ(obs_shape, n_actions, self.cfg.hidden, self.cfg.dueling, **net_kwargs)

    def td_target(
        self, batch: dict[str, np.ndarray], target_next: np.ndarray, online_next: np.ndarray | None
    ) -> np.ndarray:
        return q_learning_target(batch["rewards"], batch["discounts"], target_next, online_next)


class DQNAgent:
    """The one loop of the DQN family; the config's :meth:`~DQNConfig.variant` supplies the head,
    the TD target and the loss."""

    def __init__(self, config: DQNConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env, self.n_actions = discrete_training_env(config, env, "DQN")
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        o_space = self.envs.single_observation_space
        shape = self.env.agent_obs_shape
        self.variant = config.variant()
        self.variant.episodes_started(np.ones(config.num_envs, dtype=bool), rng)
        self.q: Any = self.variant.build(shape, self.n_actions, **noisy_kwargs(config))
        self.device = resolve_device(config.device, pixels=bool(self.q.pixels))
        self.q.to(self.device)
        self.q_target: Any = copy.deepcopy(self.q).requires_grad_(False)
        trained = [p for p in self.q.parameters() if p.requires_grad]  # not a fixed prior network
        self.update = GradientStep(trained, config.learning_rate, max_grad_norm=config.max_grad_norm)
        self.explore = Exploration(config, self.q, self.n_actions, self.variant.q_values, rng)
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
            extras=self.variant.replay_fields(),
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
        obs = np.asarray(obs)
        if deterministic:
            with self.explore.evaluation():
                return self.variant.greedy(self.q.infer(obs)), state
        greedy = self.variant.behaviour(self.explore.acting_net().infer(obs))
        return epsilon_greedy(greedy, self.epsilon(), self.n_actions, self.rng), state

    def epsilon(self) -> float:
        return self.explore.epsilon(self.epsilon_at(self.global_step))

    def epsilon_at(self, step: int) -> float:
        """The scheduled epsilon (NoisyNet and parameter noise act with epsilon 0 instead)."""
        c = self.cfg
        progress = step / c.total_timesteps
        return linear(c.exploration_initial_eps, c.exploration_final_eps, c.exploration_fraction, progress)

    def _collect(self, n_steps: int) -> None:
        n = self.cfg.num_envs
        # The phase's exploration draws, and epsilon at each of its steps, in one call each.
        eps = [self.explore.epsilon(self.epsilon_at(self.global_step + t * n)) for t in range(n_steps)]
        explore = self.rng.random((n_steps, n)) < np.asarray(eps)[:, None]
        random_actions = self.rng.integers(0, self.n_actions, size=(n_steps, n))
        stepper = self.env.stepper
        for t in range(n_steps):
            if explore[t].all():  # no greedy action is needed
                actions = random_actions[t]
            else:
                greedy = self.variant.behaviour(self.explore.acting_net().infer(stepper.obs))
                actions = np.where(explore[t], random_actions[t], greedy)
            tr = stepper.step(actions)
            if self.cfg.clip_reward:  # the episode statistics have seen the true reward
                tr.rewards = np.sign(tr.rewards).astype(tr.rewards.dtype)
            self.buffer.add(tr, **self.variant.draw_fields(self.rng, n))
            # Like PPO (and SB3), count every env step, autoreset steps included.
            self.global_step += n
            ended = tr.terminated | tr.truncated
            if ended.any():
                self.variant.episodes_started(ended, self.rng)
            self.explore.after_step(ended, self.global_step, self.epsilon_at(self.global_step), self.buffer)

    # ---- learning ----
    def iterate(self) -> dict[str, float]:
        c = self.cfg
        remaining = -(-(c.total_timesteps - self.global_step) // c.num_envs)
        self._collect(max(1, min(c.train_freq // c.num_envs, remaining)))
        metrics: dict[str, float] = {"charts/epsilon": self.epsilon(), **self.explore.metrics()}
        if self.global_step >= c.learning_starts and len(self.buffer) >= c.batch_size:
            if c.anneal_lr:
                self.update.lr = c.learning_rate * max(1.0 - self.global_step / c.total_timesteps, 0.0)
                metrics["charts/learning_rate"] = self.update.lr
            metrics.update(self._train(c.gradient_steps))
        metrics.update(episode_metrics(*self.env.stepper.pop_episodes()))
        return metrics

    def _targets(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The variant's TD targets from the target net at s' (and the online net's, for Double DQN)."""
        online_next = self.q.infer(batch["next_obs"]) if self.cfg.double_dqn else None
        return self.variant.td_target(batch, self.q_target.infer(batch["next_obs"]), online_next)

    def _train(self, n_updates: int) -> dict[str, float]:
        c = self.cfg
        stats: list[np.ndarray] = []  # per-sample statistics and targets: metrics once per phase
        targets: list[np.ndarray] = []
        # Within a chunk the target net is fixed, so with uniform replay, no Double DQN and no noise
        # redrawn per step, all TD targets of the chunk come from one batched forward pass.
        batched = not (c.double_dqn or c.prioritized or c.noisy)
        done = 0
        while done < n_updates:
            chunk = min(n_updates - done, c.target_update_interval - self.updates % c.target_update_interval)
            if batched:
                batch = self.buffer.batch(self.buffer.sample_indices(self.rng, chunk * c.batch_size))
                y = self._targets(batch)
                w = self.variant.weights(batch, None)
                obs, acts, y_t = self._tensor(batch["obs"]), self._tensor(batch["actions"]), self._tensor(y)
                w_t = None if w is None else self._tensor(w)
                steps = [slice(k, k + c.batch_size) for k in range(0, chunk * c.batch_size, c.batch_size)]
                args = [(self.q, obs[s], acts[s], y_t[s], None if w_t is None else w_t[s]) for s in steps]
                stats.append(torch.cat(self.update.fit(self.variant.loss, args)).cpu().numpy())
                targets.append(y)
            else:
                for _ in range(chunk):
                    stat, y = self._sampled_step()
                    stats.append(stat)
                    targets.append(y)
            done += chunk
            self.updates += chunk
            if self.updates % c.target_update_interval == 0:
                polyak_update(self.q_target, self.q, c.tau)
        stat_all, y_all = np.concatenate(stats), np.concatenate(targets)
        metrics = {"loss/td": self.variant.loss_metric(self.variant.errors(stat_all, y_all))}
        q_taken = self.variant.q_taken(stat_all, y_all)
        if q_taken is not None:
            metrics["charts/q_mean"] = float(q_taken.mean())
        return metrics

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, device=self.device)

    def _sampled_step(self) -> tuple[np.ndarray, np.ndarray]:
        """One step on a freshly sampled batch: (the loss's per-sample statistic, targets)."""
        c = self.cfg
        importance = None
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            beta = linear(c.per_beta0, 1.0, 1.0, self.global_step / c.total_timesteps)
            idx, importance = self.buffer.sample_prioritized(self.rng, c.batch_size, beta)
        else:
            idx = self.buffer.sample_indices(self.rng, c.batch_size)
        batch = self.buffer.batch(idx)
        self.explore.before_update(self.q, self.q_target)  # NoisyNet: fresh noise for both nets
        y = self._targets(batch)
        w = self.variant.weights(batch, importance)
        stat = self._step(
            self._tensor(batch["obs"]),
            self._tensor(batch["actions"]),
            self._tensor(y),
            None if w is None else self._tensor(w),
        )
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            self.buffer.update_priorities(idx, self.variant.errors(stat, y))
        return stat, y

    def _step(
        self, obs: torch.Tensor, acts: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None
    ) -> np.ndarray:
        """One gradient step on the variant's loss; returns its per-sample statistic."""
        loss, stat = self.variant.loss(self.q, obs, acts, targets, weights)
        self.update(loss)
        return stat.cpu().numpy()  # type: ignore[no-any-return]

    # ---- checkpoints ----
    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={"q": self.q, "q_target": self.q_target, **self.explore.modules()},
            optimizers={"q": self.update.optimizer},
            stateful={
                "replay": self.buffer,
                "env": self.env.state,
                **self.variant.stateful(),
                **self.explore.stateful(),
            },
            counters=("global_step", "updates"),
            json_parts=self.explore.json_parts(),
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)
        self.buffer.mark_episode_boundary()  # the restarted episodes must not extend the stored ones
        self.variant.episodes_started(np.ones(self.cfg.num_envs, dtype=bool), self.rng)


def train(config: DQNConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> Any:
    """Train DQN; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    from rlcanon.run.harness import train_run

    return train_run("dqn", config, DQNAgent, env=env, **kwargs)
