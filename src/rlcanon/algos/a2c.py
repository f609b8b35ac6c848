"""A2C: the synchronous advantage actor-critic (Mnih et al. 2016, "Asynchronous Methods for Deep
Reinforcement Learning", Algorithm S3, run synchronously on vector envs as OpenAI Baselines and
Stable-Baselines3 do).

Every ``num_steps`` steps of ``num_envs`` envs, one gradient step on

    L = -mean(log pi(a_t|s_t) A_t) + vf_coef * mean((R_t - V(s_t))^2) - ent_coef * mean(H[pi(.|s_t)])

with R_t the bootstrapped n-step return (GAE with lambda = 1, the paper's estimator; lambda < 1
gives GAE, Schulman et al. 2016) and A_t = R_t - V(s_t). RMSProp as in the paper, with
Stable-Baselines3's settings (alpha 0.99, eps 1e-5, lr 7e-4). Discrete and continuous actions differ
only in the policy head.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from rlcanon.buffers.rollout import RolloutBuffer
from rlcanon.core.config import check_choice, check_range
from rlcanon.core.device import resolve_device
from rlcanon.core.optim import GradientStep
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import TrainingEnv
from rlcanon.fused import accelerated
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import ValueCritic
from rlcanon.run.config import OnPolicyConfig, check_rate
from rlcanon.run.state import Parts


@dataclass(frozen=True)
class A2CConfig(OnPolicyConfig):
    """A2C settings. Defaults are Stable-Baselines3's (the paper's t_max = 5 and RMSProp)."""

    num_envs: int = 8
    """Parallel environments (the synchronous stand-in for the paper's actor-learner threads)."""
    num_steps: int = 5
    """Steps per environment between updates (the paper's t_max)."""
    learning_rate: float = 7e-4
    """RMSProp (or Adam) step size."""
    gae_lambda: float = 1.0
    """1: bootstrapped n-step returns (the paper); below 1: GAE."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient (the paper's beta is 0.01)."""
    optimizer: str = "rmsprop"
    """'rmsprop' (the paper) or 'adam'."""
    rms_alpha: float = 0.99
    """RMSProp smoothing constant."""
    optimizer_eps: float = 1e-5
    """The optimizer's epsilon."""

    def validate(self) -> None:
        check_range("rms_alpha", self.rms_alpha, 0.0, 1.0)
        check_rate("optimizer_eps", self.optimizer_eps, 1.0)
        check_choice("optimizer", self.optimizer, ["rmsprop", "adam"])


@accelerated
def a2c_loss(
    actor: Actor, critic: ValueCritic, batch: dict[str, torch.Tensor], vf_coef: float, ent_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The A2C loss (Mnih et al. 2016, Algorithm S3: the policy gradient with the advantage as
    baseline-corrected return, the value regression, the entropy bonus) and its statistics
    [policy loss, value loss, entropy]."""
    out = actor(batch["obs"])
    policy_loss = -(actor.head.log_prob(out, batch["act"]) * batch["adv"]).mean()
    value_loss = F.mse_loss(critic(batch["obs"]), batch["ret"])
    entropy = actor.head.entropy(out).mean()
    loss = policy_loss + vf_coef * value_loss - ent_coef * entropy
    return loss, torch.stack([policy_loss, value_loss, entropy]).detach()


class A2CAgent:
    def __init__(self, config: A2CConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env = TrainingEnv(config, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        in_dim = self.env.obs_dim
        self.actor = Actor(
            in_dim, self.action_space, config.hidden, config.activation, log_std_init=config.log_std_init
        )
        self.critic = ValueCritic(in_dim, config.hidden, config.activation)
        self.device = resolve_device(config.device, pixels=False)
        self.actor.to(self.device)
        self.critic.to(self.device)
        self.update = GradientStep(
            [*self.actor.parameters(), *self.critic.parameters()],
            config.learning_rate,
            eps=config.optimizer_eps,
            max_grad_norm=config.max_grad_norm,
            optimizer=config.optimizer,
            alpha=config.rms_alpha,
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
        buf.fill_values(self.critic.infer)
        adv, ret = buf.advantages(cfg.gamma, cfg.gae_lambda)
        valid = np.flatnonzero(buf["valid"].reshape(-1))  # autoreset steps are no transitions
        if len(valid) == 0:  # a short rollout of autoreset slots only: no update this time
            return {"charts/learning_rate": self.update.lr, **episode_metrics(*step.pop_episodes())}
        adv = adv.reshape(-1)[valid]
        if cfg.norm_adv and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std(ddof=1) + 1e-8)
        batch = {
            "obs": buf.flat("obs")[valid],
            "act": buf.flat("actions")[valid],
            "adv": adv,
            "ret": ret.reshape(-1)[valid],
        }
        tensors = {k: torch.as_tensor(v, device=self.device) for k, v in batch.items()}
        loss, stats = a2c_loss(self.actor, self.critic, tensors, cfg.vf_coef, cfg.ent_coef)
        self.update(loss)
        pg, vl, ent = stats.tolist()
        metrics = {
            "loss/policy": pg,
            "loss/value": vl,
            "loss/entropy": ent,
            "charts/learning_rate": self.update.lr,
        }
        metrics.update(episode_metrics(*step.pop_episodes()))
        return metrics

    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={"actor": self.actor, "critic": self.critic},
            optimizers={"ac": self.update.optimizer},
            stateful={"env": self.env.state},
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)
