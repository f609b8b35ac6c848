"""SAC: soft actor-critic with twin Q critics and automatic temperature tuning (Haarnoja et al.
2018, "Soft Actor-Critic Algorithms and Applications", arXiv 1812.05905, Algorithm 1).

Maximum-entropy RL: the policy maximises E[sum_t r_t + alpha H(pi(.|s_t))]. Per gradient step, on a
minibatch from the replay buffer:

- the critics regress on the soft target (Sec. 4.2, eqs. 3 and 5, with the minimum of the twin
  target critics, Sec. 5):
  y = r + gamma (1 - terminated) (min_i Qbar_i(s', a') - alpha log pi(a'|s')),  a' ~ pi(.|s');
  J_Q = sum_i 1/2 E[(Q_i(s, a) - y)^2];
- the policy minimises J_pi = E[alpha log pi(a~|s) - min_i Q_i(s, a~)] with a~ = f(eps; s)
  reparameterised (eqs. 7 and 8): a tanh-squashed Gaussian whose log-probability carries the
  change-of-variables correction (Appendix C, eq. 21; :class:`rlcanon.nets.heads.SquashedGaussianHead`);
- the temperature follows the constraint E[-log pi] >= target entropy (Sec. 5, eq. 18), taken on
  log alpha as the authors' code does: J(alpha) = -E[log alpha (log pi(a~|s) + target)];
- the target critics move by Polyak averaging with tau.

The order within a step (temperature, critics, then the policy through the updated critics) and
every default are Stable-Baselines3's, so the benchmarks compare like with like.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcanon.core.config import check_int, check_range
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
class SACConfig(OffPolicyConfig):
    """SAC settings. Defaults are Stable-Baselines3's (the paper's Table 1: Adam 3e-4, batch 256,
    two 256-unit ReLU layers, tau 0.005, one gradient step per env step)."""

    env_id: str = "Pendulum-v1"
    """Gymnasium environment id with a continuous (Box) action space."""
    total_timesteps: int = 20_000
    """Environment steps to train for (summed over parallel envs)."""
    autotune: bool = True
    """Tune the temperature toward the target entropy (Sec. 5); False keeps alpha fixed."""
    alpha: float = 1.0
    """The temperature: its initial value with autotune, else its fixed value."""
    target_entropy_scale: float = 1.0
    """The target entropy is -target_entropy_scale * dim(A) (the paper's -dim(A) at 1)."""
    n_critics: int = 2
    """Q critics; the soft target and the policy loss use their minimum (Sec. 5)."""

    def validate(self) -> None:
        check_range("alpha", self.alpha, 1e-8, 1e4)
        check_range("target_entropy_scale", self.target_entropy_scale, -100.0, 100.0)
        check_int("n_critics", self.n_critics, 1, 10)


# ---- losses (pure functions of tensors) ----------------------------------------------------------


def soft_q_target(
    rewards: torch.Tensor,
    discounts: torch.Tensor,
    next_q: torch.Tensor,
    next_log_prob: torch.Tensor,
    alpha: torch.Tensor | float,
) -> torch.Tensor:
    """y = r + discount * (min_i Qbar_i(s', a') - alpha log pi(a'|s')) (eqs. 3 and 5); ``next_q``
    is (n_critics, B) and ``discounts`` is gamma, or 0 where the episode terminated."""
    return rewards + discounts * (next_q.min(0).values - alpha * next_log_prob)


def twin_q_loss(q: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """J_Q = sum_i 1/2 E[(Q_i(s, a) - y)^2] (eq. 5, for each of the (n_critics, B) critics)."""
    return 0.5 * ((q - targets) ** 2).mean(1).sum()


def policy_loss(log_prob: torch.Tensor, q_pi: torch.Tensor, alpha: torch.Tensor | float) -> torch.Tensor:
    """J_pi = E[alpha log pi(a~|s) - min_i Q_i(s, a~)] at reparameterised actions a~ (eq. 7)."""
    return (alpha * log_prob - q_pi.min(0).values).mean()


def temperature_loss(log_alpha: torch.Tensor, log_prob: torch.Tensor, target_entropy: float) -> torch.Tensor:
    """J = -E[log alpha (log pi(a~|s) + target entropy)] (eq. 18 on log alpha): alpha rises while
    the policy's entropy -E[log pi] is below the target and falls while it is above."""
    return -(log_alpha * (log_prob.detach() + target_entropy)).mean()


class Temperature(nn.Module):
    """log alpha as a module, so it is checkpointed like every other parameter."""

    def __init__(self, alpha: float) -> None:
        super().__init__()
        self.log_alpha = nn.Parameter(torch.tensor([float(np.log(alpha))]))


# ---- agent ---------------------------------------------------------------------------------------


class SACAgent:
    def __init__(self, config: SACConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env = TrainingEnv(config, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        c, obs_dim = config, self.env.obs_dim
        kwargs: dict[str, Any] = {"head": "squashed", "orthogonal": False, "out_gain": None}
        try:
            self.actor = Actor(obs_dim, self.action_space, c.hidden, "relu", **kwargs)
            self.bounds = box_head_bounds(self.actor.head, c.env_id)
        except Exception:
            self.envs.close()
            raise
        act_dim = len(self.bounds[0])
        self.critic = ContinuousQ(obs_dim, act_dim, c.hidden, ensemble_size=c.n_critics)
        self.temperature = Temperature(c.alpha)
        self.device = resolve_device(c.device, pixels=False)
        for module in (self.actor, self.critic, self.temperature):
            module.to(self.device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.actor_step = GradientStep(self.actor.parameters(), c.learning_rate)
        self.critic_step = GradientStep(self.critic.parameters(), c.learning_rate)
        self.alpha_step = GradientStep(self.temperature.parameters(), c.learning_rate)
        self.target_entropy = -c.target_entropy_scale * act_dim
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
        return self.actor.act(obs, None if deterministic else self.rng), state

    def iterate(self) -> dict[str, float]:
        metrics = replay_iterate(
            self,
            explore=lambda obs: self.actor.act(obs, self.rng),
            random_actions=lambda n: uniform_actions(self.rng, *self.bounds, n),
            gradient_step=self.gradient_step,
        )
        metrics["charts/alpha"] = float(self.temperature.log_alpha.detach().exp())
        return metrics

    def gradient_step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Algorithm 1's gradient step: temperature, critics, policy, target critics."""
        c, head = self.cfg, self.actor.head
        batch = {k: v.to(self.device) for k, v in batch.items()}
        obs = batch["obs"]
        actions_pi, log_prob = head.sample(self.actor(obs))
        log_alpha = self.temperature.log_alpha
        alpha = log_alpha.detach().exp()
        stats = {}
        if c.autotune:
            loss = temperature_loss(log_alpha, log_prob, self.target_entropy)
            self.alpha_step(loss)
            stats["loss/alpha"] = loss.detach()
        with torch.no_grad():
            next_actions, next_log_prob = head.sample(self.actor(batch["next_obs"]))
            next_q = self.critic_target(batch["next_obs"], next_actions)
            y = soft_q_target(batch["rewards"], batch["discounts"], next_q, next_log_prob, alpha)
        q = self.critic(obs, batch["actions"])
        q_loss = twin_q_loss(q, y)
        self.critic_step(q_loss)
        with frozen(self.critic):  # the policy's loss goes through the critics; only the actor steps
            pi_loss = policy_loss(log_prob, self.critic(obs, actions_pi), alpha)
        self.actor_step(pi_loss)
        polyak_update(self.critic_target, self.critic, c.tau)
        stats["loss/critic"] = q_loss.detach()
        stats["loss/actor"] = pi_loss.detach()
        stats["charts/q_mean"] = q.detach().mean()
        stats["charts/entropy"] = -log_prob.detach().mean()
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
