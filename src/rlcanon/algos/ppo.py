"""PPO with the clipped surrogate (Schulman et al. 2017, eq. 7) and GAE (Schulman et al. 2016).

Implementation details follow "The 37 Implementation Details of PPO" (Huang et al. 2022):
orthogonal init, Adam eps 1e-5, learning-rate annealing, per-minibatch advantage normalisation,
optional value clipping, global gradient clipping, optional target-KL early stop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcanon.buffers.rollout import RolloutBuffer
from rlcanon.core.config import check_int, check_memory, check_positive, check_range
from rlcanon.core.device import resolve_device
from rlcanon.core.optim import GradientStep
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import TrainingEnv
from rlcanon.errors import ConfigError
from rlcanon.fused import accelerated
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import ValueCritic
from rlcanon.run.config import OnPolicyConfig
from rlcanon.run.state import Parts


@dataclass(frozen=True)
class PPOConfig(OnPolicyConfig):
    """PPO settings. Defaults are the PPO paper's MuJoCo/Atari-agnostic ones as used by CleanRL."""

    num_envs: int = 4
    """Parallel environments."""
    learning_rate: float = 3e-4
    """Adam step size."""
    anneal_lr: bool = True
    norm_adv: bool = True
    batch_size: int = 128
    """Minibatch size; each epoch splits the rollout into rollout_size / batch_size minibatches."""
    update_epochs: int = 4
    """Passes over each rollout."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    anneal_clip: bool = False
    """Decay clip_coef linearly to 0 over training (RL Zoo 'lin_' schedules)."""
    value_clip: float = 0.0
    """Clip value updates to this range around the old values (0 disables)."""
    target_kl: float = 0.0
    """Stop the epoch loop when the approximate KL exceeds 1.5 * target_kl (0 disables)."""
    ortho_init: bool = True
    """Orthogonal initialisation (gain sqrt 2 hidden, 0.01 policy output, 1 value output)."""

    def validate(self) -> None:
        check_int("batch_size", self.batch_size, 2, 10**7)
        check_int("update_epochs", self.update_epochs, 1, 10_000)
        for name, high in (("clip_coef", 10.0), ("value_clip", 1e12), ("target_kl", 1e6)):
            check_positive(name, getattr(self, name), allow_zero=True)
            check_range(name, getattr(self, name), 0.0, high)
        if self.batch_size > self.rollout_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than the rollout "
                f"(num_envs * num_steps = {self.rollout_size}); it must be <= {self.rollout_size}"
            )


def clipped_surrogate(advantages: torch.Tensor, ratio: torch.Tensor, clip_coef: float) -> torch.Tensor:
    """PPO's clipped policy loss (to minimise): -mean(min(r A, clip(r, 1-eps, 1+eps) A))."""
    unclipped = ratio * advantages
    clipped = torch.clamp(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * advantages
    return -torch.min(unclipped, clipped).mean()


def value_loss(
    values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, clip: float
) -> torch.Tensor:
    """Mean squared error to the returns; with ``clip`` > 0, the pessimistic max of the clipped and
    unclipped errors (the PPO2 baseline detail)."""
    err = (values - returns) ** 2
    if clip > 0:
        clipped = old_values + torch.clamp(values - old_values, -clip, clip)
        err = torch.max(err, (clipped - returns) ** 2)
    return err.mean()


@accelerated
def ppo_loss(
    actor: Actor,
    critic: ValueCritic,
    batch: dict[str, torch.Tensor],
    clip: float,
    value_clip: float,
    vf_coef: float,
    ent_coef: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The PPO loss, clipped surrogate + vf_coef * value loss - ent_coef * entropy (Schulman et al.
    2017, eq. 9), and its statistics [policy loss, value loss, entropy, approx KL, clip fraction].

    The batch holds observations, actions, their old log-probs, advantages, returns and old values."""
    head, out, values = actor.head, actor(batch["obs"]), critic(batch["obs"])
    log_ratio = head.log_prob(out, batch["act"]) - batch["logp"]
    ratio = log_ratio.exp()
    pg = clipped_surrogate(batch["adv"], ratio, clip)
    vl = value_loss(values, batch["val"], batch["ret"], value_clip)
    ent = head.entropy(out).mean()
    loss = pg + vf_coef * vl - ent_coef * ent
    r, lr = ratio.detach(), log_ratio.detach()
    approx_kl = ((r - 1) - lr).mean()  # Schulman's k3 estimator
    clip_frac = ((r - 1.0).abs() > clip).float().mean()
    stats = torch.stack([pg.detach(), vl.detach(), ent.detach(), approx_kl, clip_frac])
    return loss, stats


def normalize(x: torch.Tensor) -> torch.Tensor:
    """(x - mean) / (std + 1e-8), the sample std (ddof 1), as the PPO implementations do."""
    return (x - x.mean()) / (x.std() + 1e-8)


class PPOAgent:
    def __init__(self, config: PPOConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.env = TrainingEnv(config, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        in_dim = self.env.obs_dim
        ortho = config.ortho_init
        self.actor = Actor(
            in_dim,
            self.action_space,
            config.hidden,
            config.activation,
            log_std_init=config.log_std_init,
            orthogonal=ortho,
            out_gain=0.01 if ortho else None,
        )
        self.critic = ValueCritic(in_dim, config.hidden, config.activation, orthogonal=ortho)
        self.device = resolve_device(config.device, pixels=False)
        self.actor.to(self.device)
        self.critic.to(self.device)
        params = [*self.actor.parameters(), *self.critic.parameters()]
        self.update = GradientStep(params, config.learning_rate, eps=1e-5, max_grad_norm=config.max_grad_norm)
        head = self.actor.head
        check_memory("num_steps", 4 * (config.num_steps + 1) * config.num_envs * (in_dim + 8))
        self.buffer = RolloutBuffer(
            config.num_steps, config.num_envs, ((in_dim,), np.float32), (head.action_shape, head.action_dtype)
        )
        self.global_step = 0
        self.budget_granularity = config.rollout_size

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
        actions = self.actor.act(obs, None if deterministic else self.rng)
        return self.actor.head.to_env(actions), state

    def _collect(self) -> None:
        rng = self.rng
        self.buffer.collect(self.env.stepper, lambda obs: self.actor.act(obs, rng), self.actor.head.to_env)

    # ---- learning ----
    def iterate(self) -> dict[str, float]:
        cfg = self.cfg
        progress = min(self.global_step / cfg.total_timesteps, 1.0)
        self.update.lr = cfg.learning_rate * (1.0 - progress) if cfg.anneal_lr else cfg.learning_rate
        clip = cfg.clip_coef * (1.0 - progress) if cfg.anneal_clip else cfg.clip_coef
        self._collect()
        self.global_step += cfg.rollout_size
        metrics = self._update(clip)
        metrics["charts/learning_rate"] = self.update.lr
        metrics.update(episode_metrics(*self.env.stepper.pop_episodes()))
        return metrics

    def _prepare(self) -> dict[str, np.ndarray]:
        """Values, old log-probs, advantages and returns of the rollout, as flat arrays."""
        cfg, buf = self.cfg, self.buffer
        buf.fill_values(self.critic.infer)
        adv, ret = buf.advantages(cfg.gamma, cfg.gae_lambda)
        obs, acts = buf.flat("obs"), buf.flat("actions")
        with torch.inference_mode():
            logp = self.actor.head.log_prob(self.actor(self._tensor(obs)), self._tensor(acts))
        return {
            "obs": obs,
            "act": acts,
            "logp": logp.cpu().numpy(),
            "adv": adv.reshape(-1),
            "ret": ret.reshape(-1),
            "val": buf.flat("values"),
        }

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)  # no copy on the CPU
        return t if self.device.type == "cpu" else t.to(self.device)

    def _update(self, clip: float) -> dict[str, float]:
        cfg = self.cfg
        valid = np.flatnonzero(self.buffer["valid"].reshape(-1))
        if len(valid) == 0:  # every step was an autoreset slot (short rollouts): nothing to learn from
            return {}
        data = self._prepare()
        one_batch = round(self.buffer.size / cfg.batch_size) <= 1
        if one_batch and cfg.norm_adv and len(valid) > 1:
            # One minibatch per epoch: its advantages are the same every epoch; normalise once.
            data["adv"] = (data["adv"] - data["adv"][valid].mean()) / (data["adv"][valid].std(ddof=1) + 1e-8)
        coefs = (clip, cfg.value_clip, cfg.vf_coef, cfg.ent_coef)
        batches = []  # every epoch's minibatches, in order: one fit call runs the whole update
        if one_batch:  # every epoch's one minibatch is all valid steps; a mean loss ignores their order
            whole = {k: self._tensor(v[valid]) for k, v in data.items()}
            batches = [(self.actor, self.critic, whole, *coefs)] * cfg.update_epochs
        for _ in range(0 if one_batch else cfg.update_epochs):
            for mb in self.buffer.minibatches(self.rng, cfg.batch_size):
                batch = {k: self._tensor(v[mb]) for k, v in data.items()}
                if cfg.norm_adv and len(mb) > 1:
                    batch["adv"] = normalize(batch["adv"])
                batches.append((self.actor, self.critic, batch, *coefs))
        # the target-KL early stop (Huang et al. 2022) ends the update at the first minibatch whose
        # approximate KL exceeds 1.5 * target_kl, before its step
        done = self.update.fit(ppo_loss, batches, stop=self._kl_too_far if cfg.target_kl else None)
        stats = done[-1].tolist() if done else [float("nan")] * 5
        ret, val = data["ret"][valid], data["val"][valid]
        var_y = float(np.var(ret))
        explained = float("nan") if var_y == 0 else 1.0 - float(np.var(ret - val)) / var_y
        pg_l, v_l, ent_l, kl, cf = stats
        return {
            "loss/policy": pg_l,
            "loss/value": v_l,
            "loss/entropy": ent_l,
            "charts/approx_kl": kl,
            "charts/clip_fraction": cf,
            "charts/explained_variance": explained,
        }

    def _kl_too_far(self, stats: torch.Tensor) -> bool:
        """The target-KL early stop (Huang et al. 2022): approx KL above 1.5 * target_kl."""
        return float(stats[3]) > 1.5 * self.cfg.target_kl

    # ---- checkpoints ----
    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={"actor": self.actor, "critic": self.critic},
            optimizers={"ac": self.update.optimizer},
            stateful={"env": self.env.state},
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)


def train(config: PPOConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> Any:
    """Train PPO; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    from rlcanon.run.harness import train_run

    return train_run("ppo", config, PPOAgent, env=env, **kwargs)
