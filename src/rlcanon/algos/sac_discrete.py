"""SAC for discrete actions (Christodoulou 2019, "Soft Actor-Critic for Discrete Action Settings",
arXiv 1910.07207, Algorithm 1).

With a finite action set the expectations over the policy that continuous SAC estimates from one
reparameterised sample are exact sums over the actions:

- the critics output Q(s, .) for every action, and regress on the soft target with the exact soft
  state value (eqs. 3 and 10):
  y = r + gamma (1 - terminated) V(s'),  V(s) = pi(.|s)^T [min_i Qbar_i(s, .) - alpha log pi(.|s)];
- the policy minimises J_pi = E_s[pi(.|s)^T (alpha log pi(.|s) - min_i Q_i(s, .))] (eq. 12), with
  no reparameterisation;
- the temperature follows J(alpha) = E_s[-log alpha (pi(.|s)^T log pi(.|s) + target)] (eq. 11 on
  log alpha, as continuous SAC here), with the target entropy a fraction of the maximum, log |A|
  (the paper uses 0.98).

Everything else (the replay schedule, twin critics as one ensemble, Polyak targets, the lean Adam
steps, the checkpoint parts) is continuous SAC's, from the shared parts.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from rlcanon.algos.sac import Temperature, temperature_loss
from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.core.config import check_int, check_memory, check_range
from rlcanon.core.device import resolve_device
from rlcanon.core.losses import polyak_update
from rlcanon.core.optim import GradientStep
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import TrainingEnv
from rlcanon.errors import ConfigError
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import DiscreteQ
from rlcanon.nets.mlp import frozen
from rlcanon.run.config import OffPolicyConfig
from rlcanon.run.offpolicy import replay_iterate
from rlcanon.run.state import Parts


@dataclass(frozen=True)
class DiscreteSACConfig(OffPolicyConfig):
    """Discrete SAC settings. No tuned public settings exist for the classic-control envs: the
    defaults were chosen and measured here on CartPole-v1 (docs/actor-critic.md), from continuous
    SAC's with smaller networks and batches, a faster rate and target averaging, and a lower target
    entropy than the paper's 0.98 log |A| (with two actions, that asks for an entropy within 2% of
    the uniform policy's; it was not run here)."""

    total_timesteps: int = 30_000
    """Environment steps to train for (summed over parallel envs)."""
    learning_starts: int = 1_000
    """Env steps of uniformly random actions before the first update (the warm-up)."""
    batch_size: int = 128
    """Transitions per gradient step."""
    learning_rate: float = 1e-3
    """Adam step size of the actor, the critics and the temperature."""
    tau: float = 0.01
    """Polyak coefficient of the target critics."""
    hidden: tuple[int, ...] = (128, 128)
    """Hidden layer sizes of the actor and of each critic (ReLU)."""
    autotune: bool = True
    """Tune the temperature toward the target entropy; False keeps alpha fixed."""
    alpha: float = 0.1
    """The temperature: its initial value with autotune, else its fixed value."""
    target_entropy_scale: float = 0.2
    """The target entropy is target_entropy_scale * log |A| (the paper: 0.98 of that maximum)."""
    n_critics: int = 2
    """Q(s, .) critics; the soft value and the policy loss use their minimum."""

    def validate(self) -> None:
        check_range("alpha", self.alpha, 1e-8, 1e4)
        check_range("target_entropy_scale", self.target_entropy_scale, 0.0, 1.0)
        check_int("n_critics", self.n_critics, 1, 10)


# ---- losses (pure functions of tensors) ----------------------------------------------------------


def soft_state_value(
    probs: torch.Tensor, log_probs: torch.Tensor, q: torch.Tensor, alpha: Any
) -> torch.Tensor:
    """V(s) = pi(.|s)^T [min_i Q_i(s, .) - alpha log pi(.|s)] (eq. 10); ``q`` is (n_critics, B, A)."""
    return (probs * (q.min(0).values - alpha * log_probs)).sum(-1)


def discrete_q_loss(q: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """sum_i 1/2 E[(Q_i(s, a) - y)^2] over the (n_critics, B, A) critics at the taken actions."""
    index = actions.long().view(1, -1, 1).expand(q.shape[0], -1, 1)
    return 0.5 * ((q.gather(2, index).squeeze(2) - targets) ** 2).mean(1).sum()


def discrete_policy_loss(
    probs: torch.Tensor, log_probs: torch.Tensor, q: torch.Tensor, alpha: Any
) -> torch.Tensor:
    """J_pi = E_s[pi(.|s)^T (alpha log pi(.|s) - min_i Q_i(s, .))] (eq. 12)."""
    return (probs * (alpha * log_probs - q.min(0).values)).sum(-1).mean()


# ---- agent ---------------------------------------------------------------------------------------


class DiscreteSACAgent:
    def __init__(self, config: DiscreteSACConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env = TrainingEnv(config, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        c, obs_dim = config, self.env.obs_dim
        if not isinstance(self.action_space, gym.spaces.Discrete):
            self.envs.close()
            raise ConfigError(
                f"sac-discrete needs a discrete action space; {c.env_id} has {self.action_space} "
                f"(use 'sac' for a Box action space)"
            )
        self.actor = Actor(obs_dim, self.action_space, c.hidden, "relu", orthogonal=False, out_gain=None)
        self.n_actions = int(self.action_space.n)
        self.critic = DiscreteQ((obs_dim,), self.n_actions, c.hidden, ensemble_size=c.n_critics)
        self.temperature = Temperature(c.alpha)
        self.device = resolve_device(c.device, pixels=False)
        for module in (self.actor, self.critic, self.temperature):
            module.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_step = GradientStep(self.actor.parameters(), c.learning_rate)
        self.critic_step = GradientStep(self.critic.parameters(), c.learning_rate)
        self.alpha_step = GradientStep(self.temperature.parameters(), c.learning_rate)
        self.target_entropy = c.target_entropy_scale * math.log(self.n_actions)
        check_memory("buffer_size", 2 * c.buffer_size * obs_dim * 4)
        self.buffer = ReplayBuffer(
            c.buffer_size,
            c.num_envs,
            ((obs_dim,), np.float32),
            ((), np.int64),
            action_bounds=(0, self.n_actions - 1),
        )
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
        return self.actor.act(obs, None if deterministic else self.rng), state

    def iterate(self) -> dict[str, float]:
        metrics = replay_iterate(
            self,
            explore=lambda obs: self.actor.act(obs, self.rng),
            random_actions=lambda n: self.rng.integers(0, self.n_actions, size=n),
            gradient_step=self.gradient_step,
        )
        metrics["charts/alpha"] = float(self.temperature.log_alpha.detach().exp())
        return metrics

    def gradient_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Algorithm 1's step, in continuous SAC's order: temperature, critics, policy, targets."""
        c = self.cfg
        batch = {k: v.to(self.device) for k, v in batch.items()}
        obs = batch["obs"]
        log_probs = torch.log_softmax(self.actor(obs), dim=-1)
        probs = log_probs.exp()
        log_alpha = self.temperature.log_alpha
        alpha = log_alpha.detach().exp()
        expected_log_prob = (probs * log_probs).sum(-1)
        stats = {}
        if c.autotune:
            loss = temperature_loss(log_alpha, expected_log_prob, self.target_entropy)
            self.alpha_step(loss)
            stats["loss/alpha"] = loss.detach()
        with torch.no_grad():
            next_log_probs = torch.log_softmax(self.actor(batch["next_obs"]), dim=-1)
            next_v = soft_state_value(
                next_log_probs.exp(), next_log_probs, self.critic_target(batch["next_obs"]), alpha
            )
            y = batch["rewards"] + batch["discounts"] * next_v
        q = self.critic(obs)
        q_loss = discrete_q_loss(q, batch["actions"], y)
        self.critic_step(q_loss)
        with frozen(self.critic):  # the policy's loss takes Q(s, .) as constants (eq. 12)
            q_now = self.critic(obs)
        pi_loss = discrete_policy_loss(probs, log_probs, q_now, alpha)
        self.actor_step(pi_loss)
        polyak_update(self.critic_target, self.critic, c.tau)
        stats["loss/critic"] = q_loss.detach()
        stats["loss/actor"] = pi_loss.detach()
        stats["charts/entropy"] = -expected_log_prob.detach().mean()
        return stats

    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={
                "actor": self.actor,
                "critic": self.critic,
                "critic_target": self.critic_target,
                "temperature": self.temperature,
            },
            optimizers={
                "actor": self.actor_step.optimizer,
                "critic": self.critic_step.optimizer,
                "alpha": self.alpha_step.optimizer,
            },
            stateful={"replay": self.buffer, "env": self.env.state},
            counters=("global_step", "updates"),
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)
        self.buffer.mark_episode_boundary()  # the restarted episodes must not extend the stored ones
