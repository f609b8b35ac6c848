"""What the ES-RL hybrids (CEM-RL, ERL) share: settings, a deterministic actor as one flat vector,
whole-episode rollouts of any member whose every transition goes into one replay buffer, and the
TD3 / DDPG critic and actor steps written as functions of the shared critic.

A population member is a flat float32 vector: the actor's MLP keeps all its weights in one
parameter (:class:`rlcanon.nets.mlp.MLP`), so a member is loaded into a scratch actor by one copy.
The losses and targets are TD3's (:mod:`rlcanon.algos.td3`: eq. 10 and 15 of Fujimoto et al.
2018); DDPG is the same step with one critic and no target smoothing.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcanon.algos.td3 import (
    clipped_double_q_target,
    critic_loss,
    deterministic_policy_loss,
    smoothed_target_actions,
)
from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.buffers.transition import Transition
from rlcanon.core.config import check_int, check_memory, check_range
from rlcanon.core.losses import polyak_update
from rlcanon.core.optim import GradientStep
from rlcanon.envs.factory import EnvSpecLike, make_env, make_vec_env
from rlcanon.errors import ConfigError, NonFiniteError
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import ContinuousQ
from rlcanon.nets.mlp import frozen
from rlcanon.run.config import MAX_BUDGET, BaseConfig, check_hidden, check_rate


@dataclass(frozen=True)
class HybridConfig(BaseConfig):
    """Settings every ES-RL hybrid has: the env, the budget in env steps, the replay buffer and the
    shared critic's targets. A method redeclares a field to change its default."""

    env_id: str = "Pendulum-v1"
    """Gymnasium environment id with a continuous (Box) action space."""
    total_timesteps: int = 50_000
    """Environment steps to train for, summed over every member's episodes."""
    max_episode_steps: int = 0
    """Step limit per episode (0: the env's own)."""
    buffer_size: int = 1_000_000
    """Replay capacity in transitions (FIFO)."""
    batch_size: int = 100
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor of the critic's target."""
    tau: float = 0.005
    """Polyak coefficient of the target networks: target <- tau * online + (1 - tau) * target."""
    hidden: tuple[int, ...] = (400, 300)
    """Hidden layer sizes of the actor and of each critic (ReLU)."""
    learning_starts: int = 10_000
    """Env steps stored before the first gradient step (the population still evolves meanwhile)."""
    torch_threads: int = 1
    """Torch intra-op threads. One is fastest for small networks (0 keeps torch's choice)."""

    def _validate_base(self) -> None:
        super()._validate_base()
        check_int("total_timesteps", self.total_timesteps, 1, MAX_BUDGET)
        check_int("max_episode_steps", self.max_episode_steps, 0, 10**9)
        check_int("buffer_size", self.buffer_size, 1, 10**9)
        check_int("batch_size", self.batch_size, 1, 65_536)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("tau", self.tau, 1e-8, 1.0)
        check_hidden("hidden", self.hidden)
        check_int("learning_starts", self.learning_starts, 0, MAX_BUDGET)
        check_int("torch_threads", self.torch_threads, 0, 256)
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                f"it must be <= buffer_size"
            )


def check_rates(config: Any, *names: str) -> None:
    for name in names:
        check_rate(name, getattr(config, name))


# ---- actors as flat vectors ----------------------------------------------------------------------


def flat_of(actor: Actor) -> np.ndarray:
    """The actor's parameters as one float32 vector (a copy)."""
    return actor.net.flat.detach().cpu().numpy().copy()  # type: ignore[no-any-return]


def load_flat(actor: Actor, vector: np.ndarray) -> None:
    """Put a flat parameter vector into the actor (in place, so its optimizer keeps its parameter)."""
    with torch.no_grad():
        actor.net.flat.copy_(torch.as_tensor(np.asarray(vector, dtype=np.float32)))


def episode_seed(run_seed: int, generation: int, member: int) -> int:
    """The reset seed of one member's episode: fixed by (run seed, generation, member), so the same
    run replays the same episodes and a resumed run continues with the next ones."""
    return int(np.random.SeedSequence([run_seed, generation, member]).generate_state(1)[0])


# ---- the env side --------------------------------------------------------------------------------


class EpisodeRunner:
    """One env that plays whole episodes of any actor and stores every transition in ``buffer``."""

    def __init__(self, config: HybridConfig, env: EnvSpecLike) -> None:
        if not isinstance(env, str):
            raise ConfigError("an ES-RL hybrid needs an env id (it rebuilds the env for evaluation)")
        self.cfg = config
        self.env = make_env(env, config.env_kwargs, (*config.wrappers, *self._limit()))
        self.observation_space, self.action_space = self.env.observation_space, self.env.action_space
        if not isinstance(self.action_space, gym.spaces.Box):
            self.env.close()
            raise ConfigError(
                f"this method needs a continuous (Box) action space; {env} has {self.action_space}"
            )
        self.obs_dim = int(np.prod(self.observation_space.shape or (1,)))
        self.act_dim = int(np.prod(self.action_space.shape))
        low, high = self.action_space.low.astype(np.float64), self.action_space.high.astype(np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            self.env.close()
            raise ConfigError(f"the action box of {env} must be bounded; got low={low}, high={high}")
        self.mid, self.half = (high + low) / 2, (high - low) / 2
        check_memory("buffer_size", 2 * config.buffer_size * (self.obs_dim + self.act_dim) * 4)
        self.buffer = ReplayBuffer(
            config.buffer_size,
            1,
            ((self.obs_dim,), np.float32),
            ((self.act_dim,), np.float32),
            gamma=config.gamma,
            action_bounds=(float(low.min()), float(high.max())),
        )

    def _limit(self) -> tuple[str, ...]:
        steps = self.cfg.max_episode_steps
        return (f"time-limit:max_episode_steps={steps}",) if steps else ()

    def eval_env(self, num_envs: int) -> Any:
        cfg = self.cfg
        return make_vec_env(
            cfg.env_id, num_envs, env_kwargs=cfg.env_kwargs, wrappers=(*cfg.wrappers, *self._limit())
        )

    def run(self, actor: Actor, seed: int, max_steps: int, noise: Any = None) -> tuple[float, int, bool]:
        """One episode of ``actor`` (plus ``noise()`` in half-widths of the box, if given), cut at
        ``max_steps`` (a cut is stored as a truncation, so the critic still bootstraps). Every step
        goes into the buffer. Returns (return, steps, whether the episode ended on its own)."""
        obs, _ = self.env.reset(seed=seed)
        total, steps, ended = 0.0, 0, False
        lo, hi = self.mid - self.half, self.mid + self.half
        while steps < max_steps and not ended:
            x = np.asarray(obs, dtype=np.float32).reshape(1, -1)
            action = actor.act(x, None)
            if noise is not None:
                action = np.clip(action + self.half * noise(), lo, hi).astype(np.float32)
            next_obs, reward, terminated, truncated, _ = self.env.step(
                action[0].reshape(self.action_space.shape)
            )
            steps += 1
            ended = bool(terminated or truncated)
            if (
                not np.isfinite(float(reward))
                or not np.isfinite(np.asarray(next_obs, dtype=np.float64)).all()
            ):
                raise NonFiniteError(f"the environment returned a non-finite value after {steps} steps")
            total += float(reward)
            cut = steps >= max_steps and not ended
            self.buffer.add(
                Transition(
                    x,
                    action,
                    np.array([reward], dtype=np.float32),
                    np.asarray(next_obs, dtype=np.float32).reshape(1, -1),
                    np.array([bool(terminated)]),
                    np.array([bool(truncated) or cut]),
                    np.ones(1, dtype=bool),
                )
            )
            obs = next_obs
        return total, steps, ended

    def close(self) -> None:
        self.env.close()


# ---- networks and gradient steps -----------------------------------------------------------------


def make_actor(runner: EpisodeRunner, hidden: tuple[int, ...]) -> Actor:
    """A deterministic actor a = centre + half-width * tanh(MLP(s)) with ReLU hidden layers and
    ``nn.Linear``'s default init (as TD3's)."""
    kwargs: dict[str, Any] = {"head": "deterministic", "orthogonal": False, "out_gain": None}
    return Actor(runner.obs_dim, runner.action_space, hidden, "relu", **kwargs)


class SharedCritic:
    """Q critics (twin for TD3, one for DDPG) with Polyak-averaged targets and their optimizer."""

    def __init__(
        self, runner: EpisodeRunner, hidden: tuple[int, ...], n_critics: int, lr: float, max_grad_norm: float
    ) -> None:
        self.q = ContinuousQ(runner.obs_dim, runner.act_dim, hidden, ensemble_size=n_critics)
        self.target = copy.deepcopy(self.q).requires_grad_(False)
        self.step = GradientStep(self.q.parameters(), lr, max_grad_norm=max_grad_norm)
        # (centre, half-width) of the action box as tensors, for target smoothing
        self.box = (torch.as_tensor(runner.mid).float(), torch.as_tensor(runner.half).float())


def critic_step(
    critic: SharedCritic,
    actor_target: Actor,
    batch: dict[str, torch.Tensor],
    tau: float,
    target_noise: float = 0.0,
    noise_clip: float = 0.5,
) -> torch.Tensor:
    """One regression of the critics on y = r + gamma (1 - terminated) min_i Qbar_i(s', a') (TD3
    eq. 10), a' the target actor's action with clipped smoothing noise (eq. 15) when
    ``target_noise`` > 0; then the target critics follow by Polyak averaging. Returns the loss."""
    with torch.no_grad():
        next_actions = actor_target.head.mode(actor_target(batch["next_obs"]))
        if target_noise > 0:
            noise = torch.randn_like(next_actions) * target_noise
            next_actions = smoothed_target_actions(next_actions, noise, noise_clip, *critic.box)
        next_q = critic.target(batch["next_obs"], next_actions)  # (n_critics, B)
        y = clipped_double_q_target(batch["rewards"], batch["discounts"], next_q)
    q = critic.q(batch["obs"], batch["actions"])
    loss = critic_loss(q, y)
    critic.step(loss)
    polyak_update(critic.target, critic.q, tau)
    return loss.detach()


def actor_step(
    actor: Actor, actor_target: Actor, step: GradientStep, critic: SharedCritic, obs: torch.Tensor, tau: float
) -> torch.Tensor:
    """One ascent of Q_1(s, mu(s)) by the actor (the deterministic policy gradient, the critics held
    constant), then the target actor follows by Polyak averaging. Returns -E[Q_1]."""
    with frozen(critic.q):  # the loss goes through Q_1 only, as the TD3 paper's
        q_first = critic.q(obs, actor.head.mode(actor(obs)), member=0)
    loss = deterministic_policy_loss(q_first)
    step(loss)
    polyak_update(actor_target, actor, tau)
    return loss.detach()


def sample_batch(buffer: ReplayBuffer, rng: np.random.Generator, batch_size: int) -> dict[str, torch.Tensor]:
    """A uniform minibatch of stored transitions as tensors."""
    batch = buffer.batch(buffer.sample_indices(rng, batch_size))
    return {k: torch.from_numpy(v) for k, v in batch.items()}
