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
from torch import nn

from rlcanon.core.config import check_positive, check_range
from rlcanon.core.device import resolve_device, to_numpy
from rlcanon.core.optim import adam
from rlcanon.core.returns import gae
from rlcanon.core.run import RunConfig, TrainResult, train_run, use_kernels
from rlcanon.core.running import RunningMeanStd
from rlcanon.core.torch_state import load_module, load_optimizer, module_arrays, optimizer_state
from rlcanon.envs.collectors import VecStepper, episode_metrics
from rlcanon.envs.factory import EnvSpecLike, make_vec_env, obs_shape
from rlcanon.nets.heads import make_head
from rlcanon.nets.kernels import FlatParams, MLPKernel
from rlcanon.nets.mlp import NumpySequential, mlp


@dataclass(frozen=True)
class PPOConfig(RunConfig):
    """PPO settings. Defaults are the PPO paper's MuJoCo/Atari-agnostic ones as used by CleanRL."""

    num_envs: int = 4
    """Parallel environments."""
    num_steps: int = 128
    """Steps per environment per rollout; a rollout holds num_envs * num_steps transitions."""
    learning_rate: float = 3e-4
    """Adam step size."""
    anneal_lr: bool = True
    """Decay the learning rate linearly to 0 over training."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 is Monte Carlo."""
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
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    target_kl: float = 0.0
    """Stop the epoch loop when the approximate KL exceeds 1.5 * target_kl (0 disables)."""
    norm_adv: bool = True
    """Normalise advantages within each minibatch."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the separate actor and critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian head (continuous actions)."""
    normalize_obs: bool = False
    """Normalise observations with running statistics."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return."""

    def __post_init__(self) -> None:
        self._validate_run()
        for name in (
            "num_envs",
            "num_steps",
            "learning_rate",
            "batch_size",
            "update_epochs",
            "vf_coef",
            "max_grad_norm",
        ):
            check_positive(name, getattr(self, name))
        for name in ("clip_coef", "value_clip", "ent_coef", "target_kl"):
            check_positive(name, getattr(self, name), allow_zero=True)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        from rlcanon.core.config import check_choice

        check_choice("activation", self.activation, ["tanh", "relu"])
        if self.batch_size > self.rollout_size:
            from rlcanon.errors import ConfigError

            raise ConfigError(
                f"batch_size={self.batch_size} is larger than the rollout "
                f"(num_envs * num_steps = {self.rollout_size}); it must be <= {self.rollout_size}"
            )

    @property
    def rollout_size(self) -> int:
        return self.num_envs * self.num_steps


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


def clipped_surrogate_grad(adv: np.ndarray, ratio: np.ndarray, clip_coef: float) -> tuple[float, np.ndarray]:
    """NumPy twin of :func:`clipped_surrogate`: the loss and d(loss)/d(ratio).

    The gradient flows only where the unclipped term is the minimum (inside the clip range the two
    terms are equal and both pass the same gradient)."""
    s1 = ratio * adv
    s2 = np.clip(ratio, 1.0 - clip_coef, 1.0 + clip_coef) * adv
    return float(-np.minimum(s1, s2).mean()), np.where(s1 <= s2, -adv / len(adv), 0.0)


def value_loss_grad(
    v: np.ndarray, old_v: np.ndarray, ret: np.ndarray, clip: float
) -> tuple[float, np.ndarray]:
    """NumPy twin of :func:`value_loss`: the loss and d(loss)/d(values)."""
    err = v - ret
    if clip <= 0:
        return float(np.mean(err * err)), 2.0 * err / len(v)
    delta = v - old_v
    err_c = old_v + np.clip(delta, -clip, clip) - ret
    use_c = err_c * err_c > err * err
    grad = np.where(use_c, 2.0 * err_c * (np.abs(delta) <= clip), 2.0 * err) / len(v)
    return float(np.mean(np.maximum(err * err, err_c * err_c))), grad


class PPOAgent:
    def __init__(self, config: PPOConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.envs = make_vec_env(env, config.num_envs)
        self.stepper = VecStepper(self.envs, seed=config.seed)
        space = self.envs.single_observation_space
        shape = obs_shape(space)
        in_dim = int(np.prod(shape))
        self.head = make_head(self.envs.single_action_space, config.log_std_init)
        self.actor = mlp(in_dim, config.hidden, self.head.out_dim, config.activation, 0.01, True)
        self.critic = mlp(in_dim, config.hidden, 1, config.activation, 1.0, True)
        self.device = resolve_device(config.device, pixels=False)
        for net in (self.actor, self.critic, self.head):
            net.to(self.device)
        self.flat: FlatParams | None = None
        if use_kernels(config.backend, self.device, self.actor, self.critic):
            # One flat parameter buffer trained by NumPy kernels and a single fused Adam step.
            self.flat = FlatParams([self.actor, self.critic, self.head])
            self.actor_k, self.critic_k = MLPKernel(self.actor, self.flat), MLPKernel(self.critic, self.flat)
            self.params = [self.flat.param]
        else:
            self.params = [*self.actor.parameters(), *self.critic.parameters(), *self.head.parameters()]
        self.opt = adam(self.params, lr=config.learning_rate, eps=1e-5)
        self.obs_rms = RunningMeanStd(shape) if config.normalize_obs else None
        self.ret_rms = RunningMeanStd(()) if config.normalize_reward else None
        self.disc_return = np.zeros(config.num_envs)
        self.global_step = 0
        T, N = config.num_steps, config.num_envs
        self.buf_obs = np.zeros((T + 1, N, in_dim), dtype=np.float32)
        self.buf_act = np.zeros((T, N, *self.head.action_shape), dtype=self.head.action_dtype)
        self.buf_rew = np.zeros((T, N), dtype=np.float32)
        self.buf_term = np.zeros((T, N), dtype=bool)
        self.buf_done = np.zeros((T, N), dtype=bool)
        self.buf_valid = np.zeros((T, N), dtype=bool)

    # ---- acting ----
    def _prep(self, obs: np.ndarray, update: bool = False) -> np.ndarray:
        flat = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        if self.obs_rms is None:
            return flat
        if update:
            self.obs_rms.update(flat)
        return self.obs_rms.normalize(flat)

    def act_eval(self, obs: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = to_numpy(self.actor(torch.from_numpy(self._prep(obs)).to(self.device)))
        return self.head.to_env(self.head.mode_np(out))

    def _scale_rewards(self, rew: np.ndarray, done: np.ndarray, valid: np.ndarray) -> np.ndarray:
        if self.ret_rms is None:
            return rew
        self.disc_return = self.disc_return * self.cfg.gamma + rew
        self.ret_rms.update(self.disc_return[valid])
        self.disc_return[done] = 0.0
        return np.clip(rew / np.sqrt(self.ret_rms.var + 1e-8), -10, 10).astype(np.float32)

    def _collect(self) -> None:
        # Weights are fixed for the whole rollout: act through NumPy, not torch.
        actor_np = (lambda x: self.actor_k.forward(x)[0]) if self.flat else NumpySequential(self.actor)
        head, step = self.head, self.stepper
        for t in range(self.cfg.num_steps):
            obs = self._prep(step.obs, update=True)
            self.buf_obs[t] = obs
            actions = head.sample_np(actor_np(obs), self.rng).astype(head.action_dtype)
            tr = step.step(head.to_env(actions))
            self.buf_act[t] = actions
            done = tr.terminated | tr.truncated
            self.buf_rew[t] = self._scale_rewards(tr.rewards, done, tr.valid)
            self.buf_term[t], self.buf_done[t], self.buf_valid[t] = tr.terminated, done, tr.valid
        # With NEXT_STEP autoreset the observation after a final step is the final observation,
        # so values[t+1] bootstraps truncated episodes correctly.
        self.buf_obs[-1] = self._prep(step.obs)

    # ---- learning ----
    def iterate(self) -> dict[str, float]:
        cfg = self.cfg
        progress = min(self.global_step / cfg.total_timesteps, 1.0)
        lr = cfg.learning_rate * (1.0 - progress) if cfg.anneal_lr else cfg.learning_rate
        for group in self.opt.param_groups:
            group["lr"] = lr
        clip = cfg.clip_coef * (1.0 - progress) if cfg.anneal_clip else cfg.clip_coef
        self._collect()
        self.global_step += cfg.rollout_size
        metrics = self._update(clip)
        metrics["charts/learning_rate"] = lr
        metrics.update(episode_metrics(*self.stepper.pop_episodes()))
        return metrics

    def _forward_all(self) -> tuple[np.ndarray, np.ndarray]:
        """Values of all T+1 observations and log-probs of the taken actions, one batched pass."""
        T, N = self.cfg.num_steps, self.cfg.num_envs
        obs = self.buf_obs.reshape((T + 1) * N, -1)
        acts = self.buf_act.reshape(T * N, *self.head.action_shape)
        if self.flat is not None:
            values = self.critic_k.forward(obs)[0][:, 0]
            logp = self.head.logp_entropy_np(self.actor_k.forward(obs[: T * N])[0], acts)[0]
        else:
            with torch.no_grad():
                ot = torch.from_numpy(obs).to(self.device)
                values = to_numpy(self.critic(ot).squeeze(-1))
                act_t = torch.from_numpy(acts).to(self.device)
                logp = to_numpy(self.head.log_prob(self.actor(ot[: T * N]), act_t))
        return values.reshape(T + 1, N), logp.astype(np.float32)

    def _update(self, clip: float) -> dict[str, float]:
        cfg = self.cfg
        T, N = cfg.num_steps, cfg.num_envs
        values, old_logp = self._forward_all()
        adv, ret = gae(self.buf_rew, values, self.buf_term, self.buf_done, cfg.gamma, cfg.gae_lambda)
        valid = np.flatnonzero(self.buf_valid.reshape(-1))
        data = {
            "obs": self.buf_obs[:-1].reshape(T * N, -1),
            "act": self.buf_act.reshape(T * N, *self.head.action_shape),
            "logp": old_logp,
            "adv": adv.reshape(-1),
            "ret": ret.reshape(-1),
            "val": values[:-1].reshape(-1),
        }
        n_mb = max(1, round(cfg.rollout_size / cfg.batch_size))
        if n_mb == 1 and cfg.norm_adv and len(valid) > 1:
            # One minibatch per epoch: its advantages are the same every epoch; normalise once.
            v_adv = data["adv"][valid]
            data["adv"] = (data["adv"] - v_adv.mean()) / (v_adv.std(ddof=1) + 1e-8)
        norm_each = cfg.norm_adv and n_mb > 1
        stats = [float("nan")] * 5
        for epoch in range(cfg.update_epochs):
            stop = False
            for mb in np.array_split(self.rng.permutation(valid), n_mb):
                batch = {k: v[mb] for k, v in data.items()}
                if norm_each and len(mb) > 1:
                    batch["adv"] = (batch["adv"] - batch["adv"].mean()) / (batch["adv"].std(ddof=1) + 1e-8)
                step = self._kernel_step if self.flat is not None else self._torch_step
                out = step(batch, clip, check_kl=bool(cfg.target_kl))
                if out is None:  # target-KL early stop: the policy moved too far from the data's
                    stop = True
                    break
                if epoch == cfg.update_epochs - 1:
                    stats = out
            if stop:
                break
        var_y = float(np.var(ret))
        explained = float("nan") if var_y == 0 else 1.0 - float(np.var(ret - values[:-1])) / var_y
        pg_l, v_l, ent_l, kl, cf = stats
        return {
            "loss/policy": pg_l,
            "loss/value": v_l,
            "loss/entropy": ent_l,
            "charts/approx_kl": kl,
            "charts/clip_fraction": cf,
            "charts/explained_variance": explained,
        }

    def _torch_step(self, b: dict[str, np.ndarray], clip: float, check_kl: bool) -> list[float] | None:
        """One minibatch step with torch autograd (the reference the NumPy kernels are tested against)."""
        cfg = self.cfg
        t = {k: torch.from_numpy(v).to(self.device) for k, v in b.items()}
        out = self.actor(t["obs"])
        log_ratio = self.head.log_prob(out, t["act"]) - t["logp"]
        ratio = log_ratio.exp()
        approx_kl = float(((ratio - 1) - log_ratio).detach().mean())
        if check_kl and approx_kl > 1.5 * cfg.target_kl:
            return None
        pg = clipped_surrogate(t["adv"], ratio, clip)
        vl = value_loss(self.critic(t["obs"]).squeeze(-1), t["val"], t["ret"], cfg.value_clip)
        ent = self.head.entropy(out).mean()
        loss = pg + cfg.vf_coef * vl - cfg.ent_coef * ent
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.params, cfg.max_grad_norm, foreach=True)
        self.opt.step()
        clip_frac = float(((ratio.detach() - 1.0).abs() > clip).float().mean())
        return [float(pg.detach()), float(vl.detach()), float(ent.detach()), approx_kl, clip_frac]

    def _kernel_step(self, b: dict[str, np.ndarray], clip: float, check_kl: bool) -> list[float] | None:
        """The same step as :meth:`_torch_step` with hand-written gradients (NumPy kernels)."""
        cfg, n = self.cfg, len(b["adv"])
        out, actor_cache = self.actor_k.forward(b["obs"])
        logp, ent, head_ctx = self.head.logp_entropy_np(out, b["act"])
        log_ratio = logp - b["logp"]
        ratio = np.exp(log_ratio)
        approx_kl = float(((ratio - 1) - log_ratio).mean())
        if check_kl and approx_kl > 1.5 * cfg.target_kl:
            return None
        pg, d_ratio = clipped_surrogate_grad(b["adv"], ratio, clip)
        head_grad = self.head.grad_np(head_ctx, d_ratio * ratio, -cfg.ent_coef / n, self.flat)
        self.actor_k.backward(actor_cache, head_grad)
        v, critic_cache = self.critic_k.forward(b["obs"])
        vl, d_v = value_loss_grad(v[:, 0], b["val"], b["ret"], cfg.value_clip)
        self.critic_k.backward(critic_cache, (cfg.vf_coef * d_v)[:, None].astype(np.float32))
        assert self.flat is not None  # only called on the kernel path
        self.flat.clip_grad_norm(cfg.max_grad_norm)
        self.opt.step()
        clip_frac = float((np.abs(ratio - 1.0) > clip).mean())
        return [pg, vl, float(ent.mean()), approx_kl, clip_frac]

    # ---- checkpoints ----
    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        arrays: dict[str, Any] = {
            **module_arrays("actor", self.actor),
            **module_arrays("critic", self.critic),
            **module_arrays("head", self.head),
        }
        opt_arrays, opt_meta = optimizer_state("optim", self.opt)
        arrays.update(opt_arrays)
        for name, rms in (("obs_rms", self.obs_rms), ("ret_rms", self.ret_rms)):
            if rms is not None:
                arrays.update({f"{name}/{k}": v for k, v in rms.state_dict().items()})
        arrays["disc_return"] = self.disc_return
        return arrays, {"global_step": self.global_step, "optim": opt_meta}

    def load_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        load_module("actor", self.actor, arrays)
        load_module("critic", self.critic, arrays)
        load_module("head", self.head, arrays)
        load_optimizer("optim", self.opt, arrays, state["optim"])
        for name, rms in (("obs_rms", self.obs_rms), ("ret_rms", self.ret_rms)):
            if rms is not None:
                rms.load_state_dict({k: arrays[f"{name}/{k}"] for k in ("mean", "var", "count")})
        self.disc_return = np.array(arrays["disc_return"], dtype=np.float64)
        self.global_step = int(state["global_step"])
        # The envs cannot be restored; restart them from a seed tied to the step count.
        self.stepper = VecStepper(self.envs, seed=self.cfg.seed + self.global_step)


def train(config: PPOConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> TrainResult:
    """Train PPO; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    return train_run("ppo", config, PPOAgent, env=env, **kwargs)
