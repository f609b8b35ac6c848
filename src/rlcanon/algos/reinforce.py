"""REINFORCE (Williams 1992, "Simple Statistical Gradient-Following Algorithms for Connectionist
Reinforcement Learning", the episodic algorithm; Sutton & Barto 2018, sections 13.3-13.4) with the
weight Psi_t of each score chosen among the forms of the policy gradient of Schulman et al. 2016
("High-Dimensional Continuous Control Using Generalized Advantage Estimation", eq. 1):

    g = E[ sum_t Psi_t grad log pi(a_t|s_t) ]

- ``psi='return'``: Psi_t = G_t = sum_{k>=t} gamma^(k-t) r_k, the Monte Carlo reward-to-go of the
  episode (eq. 1, form 2; Sutton & Barto eq. 13.8). No critic is built.
- ``psi='q'``: Psi_t = G^lambda_t, the lambda-return (Sutton & Barto section 12.1), an estimate of
  Q(s_t, a_t) (form 4); at lambda = 1 it is G_t, bootstrapped from V only where the rollout or a
  time limit cuts the episode.
- ``psi='advantage'``: Psi_t = G^lambda_t - V(s_t), the return less a learned baseline (form 3;
  Sutton & Barto eq. 13.11) at lambda = 1, and GAE(gamma, lambda) (eq. 16) below 1.

The critic V (for 'q' and 'advantage') regresses on G^lambda_t. As in the GAE paper, gamma discounts
the reward-to-go only (no gamma^t factor on the score). Every ``num_steps`` steps of ``num_envs``
envs, one Adam step on

    L = -mean_t(Psi_t log pi(a_t|s_t)) + vf_coef * mean_t((G^lambda_t - V(s_t))^2) - ent_coef * mean_t(H)

An episode still running when a rollout ends has no Monte Carlo return yet. With a critic, its
return is bootstrapped from V of the rollout's last observation (as at a time limit). Without one,
its steps are left out of this update (the next rollout continues the episode under the updated
policy and uses the steps it takes itself), so every Psi_t is a complete return of the policy that
acted; docs/reinforce.md measures what that costs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlcanon.buffers.rollout import RolloutBuffer
from rlcanon.core.config import check_choice
from rlcanon.core.device import resolve_device
from rlcanon.core.optim import GradientStep
from rlcanon.core.returns import gae
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import TrainingEnv
from rlcanon.errors import ConfigError
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import ValueCritic
from rlcanon.run.config import OnPolicyConfig
from rlcanon.run.state import Parts

PSI_CHOICES = ("return", "q", "advantage")


@dataclass(frozen=True)
class REINFORCEConfig(OnPolicyConfig):
    """REINFORCE settings. No paper or tuned public results give REINFORCE settings for these envs;
    the defaults are values chosen and measured here on CartPole-v1 (docs/reinforce.md)."""

    psi: str = "return"
    """Psi_t, the weight of each score (Schulman et al. 2016, eq. 1): 'return' (the Monte Carlo
    reward-to-go G_t; no critic), 'q' (the lambda-return, a Q estimate) or 'advantage' (the return
    less a learned baseline V(s_t); GAE when gae_lambda < 1)."""
    num_envs: int = 8
    """Parallel environments."""
    num_steps: int = 1250
    """Steps per environment per rollout (one gradient step each). Without a critic, the steps of an
    episode still running at a rollout's end are left out, so a rollout should span many episodes."""
    learning_rate: float = 1e-2
    """Adam step size (policy and critic)."""
    anneal_lr: bool = True
    gae_lambda: float = 1.0
    """lambda of the lambda-return and GAE (psi 'q' and 'advantage'): 1 is Monte Carlo. 'return'
    needs 1 (it has no V to bootstrap from)."""
    vf_coef: float = 0.5
    """Value loss coefficient (psi 'q' and 'advantage'). Only the critic's weights see this term, so
    under Adam it changes little beyond the clip and Adam's epsilon."""
    norm_adv: bool = True
    """Normalise Psi over each rollout (mean 0, std 1): a batch-mean baseline and a step-size scale."""
    max_grad_norm: float = 1e6
    """Global gradient-norm clip. REINFORCE has none: 1e6 is far above the norms measured on
    CartPole-v1 (below 1e3, the critic's included)."""

    def validate(self) -> None:
        check_choice("psi", self.psi, PSI_CHOICES)
        if self.psi == "return" and self.gae_lambda != 1.0:
            raise ConfigError(
                f"gae_lambda={self.gae_lambda!r} is not allowed with psi='return', which has no value "
                f"function to bootstrap from; use gae_lambda=1 or psi='q' or 'advantage'"
            )

    @property
    def uses_critic(self) -> bool:
        return self.psi != "return"


def policy_gradient_targets(
    rewards: np.ndarray,
    values: np.ndarray | None,
    terminated: np.ndarray,
    dones: np.ndarray,
    valid: np.ndarray,
    psi: str,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Psi_t, the critic's target G^lambda_t and the mask of steps an update uses, all [T, N].

    ``values`` (T + 1 rows, V of the state after the last step included) is None without a critic.
    GAE (Schulman et al. 2016, eq. 16) gives G^lambda_t = A_t + V(s_t), which stops at every episode
    end and bootstraps from V after a truncation or the rollout's last step, not after a termination.
    With V = 0 and lambda = 1 it is the plain discounted reward-to-go G_t of each episode; a step
    then counts only if its episode ended (terminated or truncated) inside the rollout."""
    if (values is None) != (psi == "return"):
        raise ValueError(f"psi={psi!r} needs values exactly when it is not 'return'")
    used = valid.astype(bool)
    if values is None:
        values = np.zeros((rewards.shape[0] + 1, *rewards.shape[1:]), dtype=np.float32)
        # ended[t]: a step at or after t ends an episode; the first such step ends t's own episode
        ended = np.flip(np.logical_or.accumulate(np.flip(dones.astype(bool), 0), axis=0), 0)
        used = used & ended
    advantages, returns = gae(rewards, values, terminated, dones, gamma, gae_lambda)
    return (advantages if psi == "advantage" else returns), returns, used


def reinforce_loss(
    actor: Actor,
    critic: ValueCritic | None,
    batch: dict[str, torch.Tensor],
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The REINFORCE loss, -mean(Psi_t log pi(a_t|s_t)), whose gradient is minus the policy-gradient
    estimate of Schulman et al. 2016, eq. 1 (averaged over the batch's steps), plus the critic's
    squared error to ``batch['ret']`` (when there is a critic) and the entropy bonus; and
    its statistics [policy loss, value loss (0 without a critic), entropy]."""
    out = actor(batch["obs"])
    policy_loss = -(actor.head.log_prob(out, batch["act"]) * batch["psi"]).mean()
    entropy = actor.head.entropy(out).mean()
    loss = policy_loss - ent_coef * entropy
    value_loss = torch.zeros((), device=policy_loss.device)
    if critic is not None:
        value_loss = F.mse_loss(critic(batch["obs"]), batch["ret"])
        loss = loss + vf_coef * value_loss
    return loss, torch.stack([policy_loss, value_loss, entropy]).detach()


class REINFORCEAgent:
    def __init__(self, config: REINFORCEConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env = TrainingEnv(config, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        in_dim = self.env.obs_dim
        self.actor = Actor(
            in_dim, self.action_space, config.hidden, config.activation, log_std_init=config.log_std_init
        )
        self.critic = ValueCritic(in_dim, config.hidden, config.activation) if config.uses_critic else None
        self.device = resolve_device(config.device, pixels=False)
        modules = [m for m in (self.actor, self.critic) if m is not None]
        for module in modules:
            module.to(self.device)
        self.update = GradientStep(
            [p for m in modules for p in m.parameters()],
            config.learning_rate,
            max_grad_norm=config.max_grad_norm,
        )
        head = self.actor.head
        self.buffer = RolloutBuffer(
            config.num_steps, config.num_envs, ((in_dim,), np.float32), (head.action_shape, head.action_dtype)
        )
        self.global_step = 0
        self.budget_granularity = config.rollout_size

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
        return self.actor.head.to_env(self.actor.act(obs, None if deterministic else self.rng)), state

    def iterate(self) -> dict[str, float]:
        cfg, buf, step = self.cfg, self.buffer, self.env.stepper
        if cfg.anneal_lr:
            self.update.lr = cfg.learning_rate * max(1.0 - self.global_step / cfg.total_timesteps, 0.0)
        rng = self.rng
        buf.collect(step, lambda obs: self.actor.act(obs, rng), self.actor.head.to_env)
        self.global_step += cfg.rollout_size
        if self.critic is not None:
            buf.fill_values(self.critic.infer)
        psi, ret, used = policy_gradient_targets(
            buf["rewards"],
            buf["values"] if self.critic is not None else None,
            buf["terminated"],
            buf["dones"],
            buf["valid"],
            cfg.psi,
            cfg.gamma,
            cfg.gae_lambda,
        )
        metrics = {"charts/learning_rate": self.update.lr}
        metrics.update(episode_metrics(*step.pop_episodes()))
        idx = np.flatnonzero(used.reshape(-1))
        metrics["charts/used_fraction"] = len(idx) / max(int(buf["valid"].sum()), 1)
        if len(idx) == 0:  # no step has a return yet (no episode ended, or autoreset slots only)
            return metrics
        metrics.update(self._learn(buf, psi.reshape(-1)[idx], ret.reshape(-1)[idx], idx))
        return metrics

    def _learn(
        self, buf: RolloutBuffer, psi: np.ndarray, ret: np.ndarray, idx: np.ndarray
    ) -> dict[str, float]:
        if self.cfg.norm_adv and len(psi) > 1:
            psi = (psi - psi.mean()) / (psi.std(ddof=1) + 1e-8)
        batch = {"obs": buf.flat("obs")[idx], "act": buf.flat("actions")[idx], "psi": psi, "ret": ret}
        tensors = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        loss, stats = reinforce_loss(self.actor, self.critic, tensors, self.cfg.vf_coef, self.cfg.ent_coef)
        grad_norm = self.update(loss)
        pg, vl, ent = stats.tolist()
        metrics = {"loss/policy": pg, "loss/entropy": ent, "charts/grad_norm": grad_norm}
        if self.critic is not None:
            metrics["loss/value"] = vl
        return metrics

    def checkpoint_parts(self) -> Parts:
        modules: dict[str, torch.nn.Module] = {"actor": self.actor}
        if self.critic is not None:
            modules["critic"] = self.critic
        return Parts(
            modules=modules, optimizers={"pg": self.update.optimizer}, stateful={"env": self.env.state}
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)
