"""DQN (Mnih et al. 2015, "Human-level control through deep RL") with the Nature recipe:
experience replay with a FIFO capacity, a target network refreshed every C updates (or Polyak
averaging), the Huber loss (TD error clipped to [-1, 1]), a linear epsilon-greedy schedule, frame
stacking and the Nature CNN for pixels. Flags add Double DQN (van Hasselt et al. 2016), the dueling
head (Wang et al. 2016), n-step returns (Sutton & Barto ch. 7) and proportional prioritized replay
(Schaul et al. 2016)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcanon.buffers.prioritized import PrioritizedReplayBuffer
from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.core.config import check_positive, check_range
from rlcanon.core.device import resolve_device, to_numpy
from rlcanon.core.losses import huber_loss, huber_per_sample, polyak_update
from rlcanon.core.optim import adam
from rlcanon.core.run import RunConfig, TrainResult, train_run, use_kernels
from rlcanon.core.schedules import linear
from rlcanon.core.torch_state import load_module, load_optimizer, module_arrays, optimizer_state
from rlcanon.envs.collectors import VecStepper, episode_metrics
from rlcanon.envs.factory import EnvSpecLike, make_vec_env, obs_shape
from rlcanon.errors import ConfigError
from rlcanon.nets.kernels import FlatParams
from rlcanon.nets.q import QKernel, QNetwork


@dataclass(frozen=True)
class DQNConfig(RunConfig):
    """DQN settings. Defaults follow Stable-Baselines3's DQN defaults (themselves the Nature
    values scaled for quicker tasks); per-env presets come from the RL Zoo."""

    num_envs: int = 1
    """Parallel environments."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions; the oldest are overwritten first (FIFO)."""
    learning_rate: float = 1e-4
    """Adam step size."""
    batch_size: int = 32
    """Transitions per gradient step."""
    learning_starts: int = 100
    """Env steps of experience to gather before the first update."""
    gamma: float = 0.99
    """Discount factor."""
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
    frame_stack: int = 4
    """Frames stacked for pixel (Atari) observations."""

    def __post_init__(self) -> None:
        self._validate_run()
        for name in (
            "num_envs",
            "buffer_size",
            "learning_rate",
            "batch_size",
            "train_freq",
            "gradient_steps",
            "target_update_interval",
            "max_grad_norm",
            "n_step",
            "frame_stack",
        ):
            check_positive(name, getattr(self, name))
        check_positive("learning_starts", self.learning_starts, allow_zero=True)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("tau", self.tau, 1e-8, 1.0)
        check_range("exploration_fraction", self.exploration_fraction, 0.0, 1.0)
        for name in ("exploration_initial_eps", "exploration_final_eps", "per_alpha", "per_beta0"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                f"it must be <= buffer_size"
            )


class DQNAgent:
    def __init__(self, config: DQNConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.envs = make_vec_env(env, config.num_envs, frame_stack=config.frame_stack)
        space = self.envs.single_action_space
        if not hasattr(space, "n"):
            raise ConfigError(f"DQN needs a discrete action space; {config.env_id} has {space}")
        self.n_actions = int(space.n)
        self.stepper = VecStepper(self.envs, seed=config.seed)
        o_space = self.envs.single_observation_space
        shape = obs_shape(o_space)
        self.q = QNetwork(shape, self.n_actions, config.hidden, config.dueling)
        self.device = resolve_device(config.device, pixels=self.q.pixels)
        self.q.to(self.device)
        self.q_target = copy.deepcopy(self.q)
        self.q_target.requires_grad_(False)
        self.flat: FlatParams | None = None
        if use_kernels(config.backend, self.device, *self.q.trained_mlps()):
            self.flat = FlatParams([self.q])  # one flat buffer: NumPy kernels + one fused Adam step
            self.kernel, self.target_kernel = QKernel(self.q, self.flat), QKernel(self.q_target)
            self.opt = adam([self.flat.param], lr=config.learning_rate)
        else:
            self.opt = adam(self.q.parameters(), lr=config.learning_rate)
        buffer_cls = PrioritizedReplayBuffer if config.prioritized else ReplayBuffer
        extra = {"alpha": config.per_alpha} if config.prioritized else {}
        self.buffer = buffer_cls(
            config.buffer_size,
            config.num_envs,
            shape,
            o_space.dtype or np.float32,
            n_step=config.n_step,
            gamma=config.gamma,
            **extra,
        )
        self.global_step = 0
        self.updates = 0
        self._q_np = self._acting_snapshot()
        self._rows = np.arange(config.batch_size)

    # ---- acting ----
    def _acting_snapshot(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """A NumPy copy of the Q network to act with (CPU MLPs), or None: act through torch."""
        return self.q.numpy_forward() if self.device.type == "cpu" else None

    def _greedy(self, obs: np.ndarray) -> np.ndarray:
        if self._q_np is not None:
            return np.argmax(self._q_np(obs.reshape(len(obs), -1)), axis=1)
        with torch.no_grad():
            return to_numpy(self.q(torch.as_tensor(obs, device=self.device)).argmax(1))

    def act_eval(self, obs: np.ndarray) -> np.ndarray:
        return self._greedy(np.asarray(obs))

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
        for t in range(n_steps):
            if explore[t].all():  # no greedy action is needed
                actions = random_actions[t]
            else:
                actions = np.where(explore[t], random_actions[t], self._greedy(self.stepper.obs))
            tr = self.stepper.step(actions)
            if self.cfg.clip_reward:  # after the stepper has counted the true episode return
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
                lr = c.learning_rate * (1.0 - self.global_step / c.total_timesteps)
                self.opt.param_groups[0]["lr"] = metrics["charts/learning_rate"] = lr
            metrics.update(self._train(c.gradient_steps))
            if self._q_np is not None:  # weights changed: refresh the acting snapshot
                self._q_np = self._acting_snapshot()
        metrics.update(episode_metrics(*self.stepper.pop_episodes()))
        return metrics

    def _q_values(self, obs: np.ndarray, target: bool) -> np.ndarray:
        if self.flat is not None:
            kernel = self.target_kernel if target else self.kernel
            # blocks of 1024 rows keep the activations in cache: ~30% faster than one 8192-row pass
            return np.concatenate([kernel.forward(obs[i : i + 1024])[0] for i in range(0, len(obs), 1024)])
        with torch.no_grad():
            return to_numpy((self.q_target if target else self.q)(torch.as_tensor(obs, device=self.device)))

    def _targets(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """r + discount * max_a Q_target(s', a) (Double DQN: a = argmax of the online net)."""
        q_next = self._q_values(batch["next_obs"], target=True)
        if self.cfg.double_dqn:
            best = self._q_values(batch["next_obs"], target=False).argmax(1)
            v_next = q_next[np.arange(len(best)), best]
        else:
            v_next = q_next.max(1)
        return (batch["rewards"] + batch["discounts"] * v_next).astype(np.float32)

    def _train(self, n_updates: int) -> dict[str, float]:
        c = self.cfg
        tds: list[np.ndarray] = []  # TD errors, targets and IS weights: the metrics are computed
        targets: list[np.ndarray] = []  # once per phase rather than once per gradient step
        weights: list[np.ndarray] = []
        done = 0
        while done < n_updates:
            # Within a chunk the target net is fixed, so with uniform replay and no Double DQN all
            # TD targets of the chunk come from one batched forward pass instead of one per step.
            chunk = min(n_updates - done, c.target_update_interval - self.updates % c.target_update_interval)
            if not c.double_dqn and not c.prioritized:
                idx = self.buffer.sample_indices(self.rng, chunk * c.batch_size)
                batch = self.buffer.batch(idx)
                y = self._targets(batch)
                obs, acts = batch["obs"], batch["actions"]
                for k in range(0, chunk * c.batch_size, c.batch_size):
                    sl = slice(k, k + c.batch_size)
                    tds.append(self._step(obs[sl], acts[sl], y[sl], None))
                targets.append(y)
            else:
                for _ in range(chunk):
                    td, y, w = self._sampled_step()
                    tds.append(td)
                    targets.append(y)
                    if w is not None:
                        weights.append(w)
            done += chunk
            self.updates += chunk
            if self.updates % c.target_update_interval == 0:
                polyak_update(self.q_target, self.q, c.tau)
        td_all = np.concatenate(tds)
        loss = huber_per_sample(td_all)
        if weights:
            loss *= np.concatenate(weights)
        q_taken = td_all + np.concatenate(targets)
        return {"loss/td": float(loss.mean()), "charts/q_mean": float(q_taken.mean())}

    def _sampled_step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One step on a freshly sampled batch: (TD errors, targets, IS weights or None)."""
        c = self.cfg
        weights = None
        if c.prioritized:
            beta = linear(c.per_beta0, 1.0, 1.0, self.global_step / c.total_timesteps)
            assert isinstance(self.buffer, PrioritizedReplayBuffer)
            idx, weights = self.buffer.sample_prioritized(self.rng, c.batch_size, beta)
        else:
            idx = self.buffer.sample_indices(self.rng, c.batch_size)
        batch = self.buffer.batch(idx)
        y = self._targets(batch)
        td = self._step(batch["obs"], batch["actions"], y, weights)
        if isinstance(self.buffer, PrioritizedReplayBuffer):
            self.buffer.update_priorities(idx, td)
        return td, y, weights

    def _step(
        self, obs: np.ndarray, acts: np.ndarray, target: np.ndarray, weights: np.ndarray | None
    ) -> np.ndarray:
        """One gradient step on the Huber TD loss; returns the TD errors Q(s, a) - target."""
        if self.flat is None:
            dev = self.device
            q = self.q(torch.as_tensor(obs, device=dev))
            q = q.gather(1, torch.as_tensor(acts, device=dev).long().unsqueeze(1)).squeeze(1)
            w = None if weights is None else torch.as_tensor(weights, device=dev)
            loss = huber_loss(q, torch.as_tensor(target, device=dev), w)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.q.parameters(), self.cfg.max_grad_norm, foreach=True)
            self.opt.step()
            return to_numpy(q) - target  # type: ignore[no-any-return]
        q_all, cache = self.kernel.forward(obs)
        rows = self._rows[: len(acts)]
        td = q_all[rows, acts] - target
        # d(Huber)/d(q) is the TD error clipped to [-1, 1] (Nature DQN's error clipping).
        grad = np.clip(td, -1.0, 1.0)
        grad *= 1.0 / len(acts) if weights is None else weights / len(acts)
        dq = np.zeros_like(q_all)
        dq[rows, acts] = grad
        self.kernel.backward(cache, dq)
        self.flat.clip_grad_norm(self.cfg.max_grad_norm)
        self.opt.step()
        return td  # type: ignore[no-any-return]

    # ---- checkpoints ----
    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays: dict[str, Any] = {**module_arrays("q", self.q), **module_arrays("q_target", self.q_target)}
        opt_arrays, opt_meta = optimizer_state("optim", self.opt)
        arrays.update(opt_arrays)
        arrays.update(self.buffer.state_arrays())
        return arrays, {"global_step": self.global_step, "updates": self.updates, "optim": opt_meta}

    def load_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        load_module("q", self.q, arrays)
        load_module("q_target", self.q_target, arrays)
        load_optimizer("optim", self.opt, arrays, state["optim"])
        self.buffer.load_state_arrays(arrays)
        self.global_step = int(state["global_step"])
        self.updates = int(state["updates"])
        self._q_np = self._acting_snapshot()
        # The envs cannot be restored; restart them from a seed tied to the step count.
        self.stepper = VecStepper(self.envs, seed=self.cfg.seed + self.global_step)


def train(config: DQNConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> TrainResult:
    """Train DQN; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    return train_run("dqn", config, DQNAgent, env=env, **kwargs)
