"""TD3: twin delayed deep deterministic policy gradient (Fujimoto, van Hoof & Meger 2018,
"Addressing Function Approximation Error in Actor-Critic Methods", Algorithm 1).

A deterministic actor mu(s) and Q(s, a) critics, trained off-policy from a replay buffer, with the
three changes the paper makes to DDPG:

- clipped double-Q learning (Sec. 4.2, eq. 10): the target takes the minimum of twin target critics,
  y = r + gamma (1 - terminated) min_{i=1,2} Qbar_i(s', a');
- target policy smoothing (Sec. 5.3, eq. 15): a' = clip(mubar(s') + clip(eps, -c, c), low, high),
  eps ~ N(0, sigma~^2), with sigma~ = 0.2 and c = 0.5 in units of the half-width of the action box;
- delayed policy updates (Sec. 5.2): the actor and the target networks are updated once every d = 2
  critic updates.

The actor ascends Q_1(s, mu(s)) (the deterministic policy gradient, Silver et al. 2014). Exploration
adds Gaussian noise (sigma in half-widths of the box) or Ornstein-Uhlenbeck noise to mu(s).

With n_critics = 1, policy_delay = 1 and no target smoothing this is DDPG (Lillicrap et al. 2016);
``rlcanon.algos.ddpg`` is that configuration with its own defaults.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcanon.core.config import check_choice, check_int, check_positive, check_range
from rlcanon.core.device import resolve_device
from rlcanon.core.losses import polyak_update
from rlcanon.core.optim import GradientStep
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import TrainingEnv
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import ContinuousQ
from rlcanon.nets.mlp import frozen
from rlcanon.run.config import OffPolicyConfig
from rlcanon.run.offpolicy import box_head_bounds, make_replay_buffer, replay_iterate, uniform_actions
from rlcanon.run.state import Parts


@dataclass(frozen=True)
class TD3Config(OffPolicyConfig):
    """TD3 settings. Defaults are Stable-Baselines3's, which are the paper's (Table 3) except the
    batch (256; the paper's is 100) and the warm-up (100 steps; the paper's is 10^4)."""

    env_id: str = "Pendulum-v1"
    """Gymnasium environment id with a continuous (Box) action space."""
    total_timesteps: int = 20_000
    """Environment steps to train for (summed over parallel envs)."""
    learning_rate: float = 1e-3
    """Adam step size of the actor and the critics (the paper's 1e-3)."""
    hidden: tuple[int, ...] = (400, 300)
    """Hidden layer sizes of the actor and of each critic (ReLU; the paper's 400-300)."""
    n_critics: int = 2
    """Q critics; the target takes their minimum (clipped double-Q). 1 turns it off."""
    policy_delay: int = 2
    """Critic updates per actor and target update (the paper's d)."""
    target_policy_noise: float = 0.2
    """Std of the target-smoothing noise, in half-widths of the action box (0 turns it off)."""
    target_noise_clip: float = 0.5
    """Clip of the target-smoothing noise, in half-widths of the action box (the paper's c)."""
    action_noise: str = "normal"
    """Exploration noise on mu(s): 'normal' (independent Gaussian) or 'ou' (Ornstein-Uhlenbeck)."""
    noise_std: float = 0.1
    """Exploration noise scale, in half-widths of the action box (the paper's 0.1)."""
    ou_theta: float = 0.15
    """Mean reversion of the Ornstein-Uhlenbeck noise (Lillicrap et al. 2016)."""
    ou_dt: float = 1e-2
    """Time step of the Ornstein-Uhlenbeck process (Stable-Baselines3's)."""

    def validate(self) -> None:
        check_int("n_critics", self.n_critics, 1, 10)
        check_int("policy_delay", self.policy_delay, 1, 10_000)
        check_range("target_policy_noise", self.target_policy_noise, 0.0, 10.0)
        check_range("target_noise_clip", self.target_noise_clip, 0.0, 10.0)
        check_choice("action_noise", self.action_noise, ["normal", "ou"])
        check_range("noise_std", self.noise_std, 0.0, 10.0)
        check_positive("ou_theta", self.ou_theta)
        check_range("ou_theta", self.ou_theta, 0.0, 100.0)
        check_positive("ou_dt", self.ou_dt)
        check_range("ou_dt", self.ou_dt, 0.0, 1.0)


# ---- losses (pure functions of tensors) ----------------------------------------------------------


def smoothed_target_actions(
    actions: torch.Tensor, noise: torch.Tensor, noise_clip: float, center: torch.Tensor, scale: torch.Tensor
) -> torch.Tensor:
    """a' = clip(mubar(s') + clip(eps, -c, c), low, high) (eq. 15), with ``noise`` eps and the clip c
    in half-widths ``scale`` of the box around ``center``."""
    eps = noise.clamp(-noise_clip, noise_clip) * scale
    return torch.maximum(torch.minimum(actions + eps, center + scale), center - scale)


def clipped_double_q_target(
    rewards: torch.Tensor, discounts: torch.Tensor, next_q: torch.Tensor
) -> torch.Tensor:
    """y = r + discount * min_i Qbar_i(s', a') (eq. 10); ``next_q`` is (n_critics, B) and
    ``discounts`` is gamma, or 0 where the episode terminated."""
    return rewards + discounts * next_q.min(0).values


def critic_loss(q: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum_i E[(Q_i(s, a) - y)^2] over the (n_critics, B) critics (the authors' code)."""
    return ((q - targets) ** 2).mean(1).sum()


def deterministic_policy_loss(q_first: torch.Tensor) -> torch.Tensor:
    """-E[Q_1(s, mu(s))]: its gradient is the deterministic policy gradient (Silver et al. 2014)."""
    return -q_first.mean()


class OUNoise:
    """Ornstein-Uhlenbeck noise per sub-env: x <- x + theta (0 - x) dt + sigma sqrt(dt) N(0, 1), reset
    to 0 when an episode starts (temporally correlated exploration, Lillicrap et al. 2016)."""

    def __init__(self, shape: tuple[int, int], theta: float, sigma: float, dt: float) -> None:
        self.x = np.zeros(shape)
        self.theta, self.sigma, self.dt = theta, sigma, dt

    def __call__(self, rng: np.random.Generator, episode_start: np.ndarray) -> np.ndarray:
        self.x[episode_start] = 0.0
        self.x += -self.theta * self.x * self.dt + self.sigma * np.sqrt(self.dt) * rng.standard_normal(
            self.x.shape
        )
        return self.x


# ---- agent ---------------------------------------------------------------------------------------


class TD3Agent:
    def __init__(self, config: TD3Config, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env = TrainingEnv(config, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        c, obs_dim = config, self.env.obs_dim
        kwargs: dict[str, Any] = {"head": "deterministic", "orthogonal": False, "out_gain": None}
        try:
            self.actor = Actor(obs_dim, self.action_space, c.hidden, "relu", **kwargs)
            self.bounds = box_head_bounds(self.actor.head, c.env_id)
        except Exception:
            self.envs.close()
            raise
        act_dim = len(self.bounds[0])
        self.critic = ContinuousQ(obs_dim, act_dim, c.hidden, ensemble_size=c.n_critics)
        self.device = resolve_device(c.device, pixels=False)
        self.actor.to(self.device)
        self.critic.to(self.device)
        # (centre, half-width) of the action box as tensors, for target smoothing
        self.box = tuple(torch.as_tensor(b, device=self.device) for b in self.bounds)
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_step = GradientStep(self.actor.parameters(), c.learning_rate)
        self.critic_step = GradientStep(self.critic.parameters(), c.learning_rate)
        self.ou = OUNoise((c.num_envs, act_dim), c.ou_theta, c.noise_std, c.ou_dt)
        self.buffer = make_replay_buffer(c, self.env, self.bounds)
        self.global_step = 0
        self.updates = 0
        self.budget_granularity = c.num_envs

    @property
    def progress(self) -> int:
        return self.global_step

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        actions = self.actor.act(obs, None)
        if not deterministic:  # Gaussian noise: a lone call has no episode for OU noise to follow
            actions = self._noisy(actions, self.cfg.noise_std * self.rng.standard_normal(actions.shape))
        return actions, state

    def explore(self, obs: np.ndarray) -> np.ndarray:
        """mu(s) plus the configured exploration noise, clipped to the action box."""
        actions = self.actor.act(obs, None)
        if self.cfg.action_noise == "ou":
            return self._noisy(actions, self.ou(self.rng, self.env.stepper.episode_start))
        return self._noisy(actions, self.cfg.noise_std * self.rng.standard_normal(actions.shape))

    def _noisy(self, actions: np.ndarray, noise: np.ndarray) -> np.ndarray:
        mid, half = self.bounds
        return np.clip(actions + half * noise, mid - half, mid + half).astype(np.float32)

    def iterate(self) -> dict[str, float]:
        return replay_iterate(
            self,
            explore=self.explore,
            random_actions=lambda n: uniform_actions(self.rng, *self.bounds, n),
            gradient_step=self.gradient_step,
        )

    def gradient_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Algorithm 1's update: critics every step; actor and targets every policy_delay steps."""
        c, head = self.cfg, self.actor.head
        batch = {k: v.to(self.device) for k, v in batch.items()}
        obs = batch["obs"]
        with torch.no_grad():
            next_actions = head.mode(self.actor_target(batch["next_obs"]))
            if c.target_policy_noise > 0:
                noise = torch.randn_like(next_actions) * c.target_policy_noise
                next_actions = smoothed_target_actions(next_actions, noise, c.target_noise_clip, *self.box)
            next_q = self.critic_target(batch["next_obs"], next_actions)
            y = clipped_double_q_target(batch["rewards"], batch["discounts"], next_q)
        q = self.critic(obs, batch["actions"])
        q_loss = critic_loss(q, y)
        self.critic_step(q_loss)
        stats = {"loss/critic": q_loss.detach(), "charts/q_mean": q.detach().mean()}
        if (self.updates + 1) % c.policy_delay == 0:
            with frozen(self.critic):  # the actor's loss goes through Q_1; only the actor steps
                q_first = self.critic(obs, head.mode(self.actor(obs)), member=0)
            pi_loss = deterministic_policy_loss(q_first)
            self.actor_step(pi_loss)
            polyak_update(self.critic_target, self.critic, c.tau)
            polyak_update(self.actor_target, self.actor, c.tau)
            stats["loss/actor"] = pi_loss.detach()
        return stats

    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={
                "actor": self.actor,
                "actor_target": self.actor_target,
                "critic": self.critic,
                "critic_target": self.critic_target,
            },
            optimizers={"actor": self.actor_step.optimizer, "critic": self.critic_step.optimizer},
            stateful={"replay": self.buffer, "env": self.env.state},
            counters=("global_step", "updates"),
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)
        self.buffer.mark_episode_boundary()  # the restarted episodes must not extend the stored ones
