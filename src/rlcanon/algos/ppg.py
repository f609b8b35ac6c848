"""PPG: Phasic Policy Gradient (Cobbe, Hilton, Klimov & Schulman 2020, arXiv 2009.04416).

Training alternates two phases (Algorithm 1). The policy phase is PPO for ``policy_iterations``
rollouts (N_pi): E_pi epochs of L_clip + entropy bonus on the policy network and E_V epochs of
L_value = 1/2 E[(V(s) - V_targ)^2] on the value network; the states and value targets of every
rollout are kept. The auxiliary phase then fixes pi_old on all kept states and runs E_aux epochs of

    L_joint = L_aux + beta_clone * E[KL(pi_old(.|s) || pi_theta(.|s))]
    L_aux   = 1/2 E[(V_aux(s) - V_targ)^2]

on the policy network (V_aux is a value head on it), and of L_value on the value network. The
distillation gives the policy network the value's features; the KL term holds the policy still.

``arch``: 'separate' (the paper's default: a policy network with policy and auxiliary value heads,
and a disjoint value network) or 'shared' (the paper's single-network PPG: one trunk with a policy
and a value head; the value gradient is stopped at the trunk in the policy phase and flows through
all of it in the auxiliary phase, where the value head is V_aux).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol, cast

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcanon.algos.ppo import clipped_surrogate, ppo_loss, value_loss
from rlcanon.buffers.rollout import RolloutBuffer
from rlcanon.core.config import check_choice, check_int, check_memory, check_positive, check_range
from rlcanon.core.device import resolve_device
from rlcanon.core.optim import GradientStep
from rlcanon.core.validate import ArraySpec
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.envs.training import TrainingEnv
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.nets.critics import ValueCritic
from rlcanon.nets.heads import PolicyHead, make_head
from rlcanon.nets.mlp import MLP
from rlcanon.run.config import OnPolicyConfig
from rlcanon.run.state import Parts


@dataclass(frozen=True)
class PPGConfig(OnPolicyConfig):
    """PPG settings. Defaults are the paper's (Cobbe et al. 2020, Appendix A, Procgen), with 8 envs
    instead of 4 x 64 and a gradient-norm clip the paper does not use."""

    num_envs: int = 8
    """Parallel environments (the paper: 64 per worker, 4 workers)."""
    num_steps: int = 256
    """Steps per environment per rollout (the paper's 256)."""
    learning_rate: float = 5e-4
    """Adam step size of both phases (the paper's 5e-4; each phase has its own Adam state)."""
    gamma: float = 0.999
    """Discount factor (the paper's 0.999)."""
    ent_coef: float = 0.01
    """Entropy bonus coefficient (the paper's 0.01)."""
    norm_adv: bool = True
    """Normalise the advantages over each rollout (the authors' code; PPO here does it per minibatch)."""
    batch_size: int = 256
    """Policy-phase minibatch size (the paper: 8 minibatches per epoch)."""
    clip_coef: float = 0.2
    """Surrogate clipping epsilon."""
    policy_iterations: int = 32
    """N_pi: policy-phase iterations (rollouts) per auxiliary phase; all are stored until it runs."""
    policy_epochs: int = 1
    """E_pi: passes of the clipped surrogate over each rollout."""
    value_epochs: int = 1
    """E_V: passes of the value loss over each rollout in the policy phase."""
    aux_epochs: int = 6
    """E_aux: passes of L_joint and L_value over all stored states in the auxiliary phase."""
    beta_clone: float = 1.0
    """Weight of KL(pi_old || pi) in L_joint (the behavioural-cloning term)."""
    aux_batch_size: int = 128
    """Auxiliary-phase minibatch size (the paper: 16 minibatches per stored rollout per epoch)."""
    arch: str = "separate"
    """'separate': policy network (policy + auxiliary value heads) and value network; 'shared': one
    trunk, value gradient stopped at the trunk in the policy phase (the paper's single network)."""

    def validate(self) -> None:
        check_int("batch_size", self.batch_size, 2, self.rollout_size)
        check_int("aux_batch_size", self.aux_batch_size, 2, self.policy_iterations * self.rollout_size)
        for name in ("policy_iterations", "policy_epochs", "value_epochs", "aux_epochs"):
            check_int(name, getattr(self, name), 1, 10_000)
        check_range("clip_coef", self.clip_coef, 0.0, 10.0)
        check_positive("beta_clone", self.beta_clone, allow_zero=True)
        check_range("beta_clone", self.beta_clone, 0.0, 1e6)
        check_choice("arch", self.arch, ["separate", "shared"])
        if not self.hidden:
            raise ConfigError("hidden=[] is not allowed; PPG's heads share a trunk of at least one layer")


class DistillableHead(PolicyHead, Protocol):
    """A policy head with the KL that the auxiliary phase needs (categorical, diagonal Gaussian)."""

    def dist_params(self, out: torch.Tensor) -> torch.Tensor: ...
    def kl(self, old: torch.Tensor, out: torch.Tensor) -> torch.Tensor: ...


class PhasicNet(nn.Module):
    """A trunk MLP with a policy head and a value head on its last hidden layer (Figure 1).

    Calling it gives the policy head's parameters (so PPO's loss takes it as an actor);
    :meth:`value` gives V_aux ('separate') or V ('shared'), with the trunk's gradient stopped on
    request. Orthogonal init with gains sqrt 2 (trunk), 0.01 (policy) and 1 (value)."""

    def __init__(
        self, obs_dim: int, space: gym.Space, hidden: tuple[int, ...], activation: str, log_std_init: float
    ) -> None:
        super().__init__()
        self.head = cast(DistillableHead, make_head(space, "auto", log_std_init))
        width = hidden[-1]
        self.trunk = MLP(obs_dim, hidden[:-1], width, activation, out_gain=math.sqrt(2), orthogonal=True)
        self.policy_out = MLP(width, (), self.head.out_dim, out_gain=0.01, orthogonal=True)
        self.value_out = MLP(width, (), 1, out_gain=1.0, orthogonal=True)
        # the trunk's last layer is linear in the MLP; its activation is applied here
        self._torch_act = torch.tanh if activation == "tanh" else torch.relu
        self._np_act = np.tanh if activation == "tanh" else partial(np.maximum, 0.0)

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self._torch_act(self.trunk(obs.reshape(len(obs), -1)))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy_out(self.features(obs))  # type: ignore[no-any-return]

    def value(self, obs: torch.Tensor, stop_trunk: bool = False) -> torch.Tensor:
        h = self.features(obs)
        return self.value_out(h.detach() if stop_trunk else h).squeeze(-1)  # type: ignore[no-any-return]

    def heads(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(policy outputs, value head) from one pass through the trunk."""
        h = self.features(obs)
        return self.policy_out(h), self.value_out(h).squeeze(-1)

    def _infer_features(self, obs: np.ndarray) -> np.ndarray:
        return self._np_act(self.trunk.infer(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)))

    def act(self, obs: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Actions in stored form for a NumPy batch: sampled with ``rng``, or the mode if None."""
        out = self.policy_out.infer(self._infer_features(obs))
        return self.head.act(out, rng).astype(self.head.action_dtype, copy=False)

    def infer_value(self, obs: np.ndarray) -> np.ndarray:
        return self.value_out.infer(self._infer_features(obs))[..., 0]  # type: ignore[no-any-return]


def policy_phase_loss(
    net: PhasicNet,
    critic: Any,
    batch: dict[str, torch.Tensor],
    clip: float,
    vf_coef: float,
    ent_coef: float,
    epoch: tuple[bool, bool],
) -> tuple[torch.Tensor, torch.Tensor]:
    """One policy-phase step (Algorithm 1, the epochs of L_clip and of L_value): PPO's loss in
    epochs that train both networks (all of them when E_pi = E_V, the paper's default), else the
    surrogate and entropy alone or the value loss alone. With vf_coef 0.5 the value term is L_value.
    Statistics [policy loss, value loss, entropy, approx KL, clip fraction], NaN for terms not
    computed. ``epoch`` says (train the policy, train the value)."""
    policy, value = epoch
    if policy and value:  # ppo_loss reads only actor.head, actor(obs) and critic(obs)
        return ppo_loss(net, critic, batch, clip, 0.0, vf_coef, ent_coef)  # type: ignore[arg-type]
    nan = batch["ret"].new_full((), float("nan"))
    if value:
        vl = value_loss(critic(batch["obs"]), batch["val"], batch["ret"], 0.0)
        return vf_coef * vl, torch.stack([nan, vl.detach(), nan, nan, nan])
    out = net(batch["obs"])
    log_ratio = net.head.log_prob(out, batch["act"]) - batch["logp"]
    ratio = log_ratio.exp()
    pg, ent = clipped_surrogate(batch["adv"], ratio, clip), net.head.entropy(out).mean()
    r, lr = ratio.detach(), log_ratio.detach()
    kl, clip_frac = ((r - 1) - lr).mean(), ((r - 1.0).abs() > clip).float().mean()
    return pg - ent_coef * ent, torch.stack([pg.detach(), nan, ent.detach(), kl, clip_frac])


def aux_phase_loss(
    net: PhasicNet, critic: ValueCritic | None, batch: dict[str, torch.Tensor], beta_clone: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The auxiliary-phase loss L_joint + L_value (Algorithm 1, the auxiliary phase) and its
    statistics [L_aux, KL, L_value].

    The batch holds states ``obs``, their value targets ``ret`` and pi_old as ``old``
    (``net.head.dist_params`` before the phase). With ``critic`` None ('shared') the value head is
    V_aux itself, trained through the whole trunk, so L_value is L_aux and is counted once."""
    out, aux_value = net.heads(batch["obs"])
    l_aux = 0.5 * ((aux_value - batch["ret"]) ** 2).mean()
    kl = net.head.kl(batch["old"], out).mean()
    loss = l_aux + beta_clone * kl
    l_value = l_aux
    if critic is not None:
        l_value = 0.5 * ((critic(batch["obs"]) - batch["ret"]) ** 2).mean()
        loss = loss + l_value
    return loss, torch.stack([l_aux, kl, l_value]).detach()


class PhaseStore:
    """The buffer B of Algorithm 1: states and value targets of the phase's rollouts, preallocated
    for N_pi of them. It is checkpointed, so a run resumed mid-phase keeps its stored rollouts."""

    def __init__(self, rollouts: int, rollout_size: int, obs_dim: int) -> None:
        self.rollouts = rollouts
        self.obs = np.zeros((rollouts, rollout_size, obs_dim), dtype=np.float32)
        self.targets = np.zeros((rollouts, rollout_size), dtype=np.float32)
        self.valid = np.zeros((rollouts, rollout_size), dtype=bool)
        self.count = 0

    @property
    def full(self) -> bool:
        return self.count == self.rollouts

    def add(self, obs: np.ndarray, targets: np.ndarray, valid: np.ndarray) -> None:
        self.obs[self.count], self.targets[self.count], self.valid[self.count] = obs, targets, valid
        self.count += 1

    def take(self) -> tuple[np.ndarray, np.ndarray]:
        """The stored valid states and targets (copies), emptying the store."""
        keep = self.valid[: self.count]
        obs, targets = self.obs[: self.count][keep], self.targets[: self.count][keep]
        self.count = 0
        return obs, targets

    def state_arrays(self) -> dict[str, np.ndarray]:
        n = self.count
        return {"obs": self.obs[:n], "targets": self.targets[:n], "valid": self.valid[:n]}

    def array_specs(self) -> dict[str, ArraySpec]:
        r = self.rollouts
        return {
            "obs": ArraySpec(self.obs.shape, "float32", max_rows=r),
            "targets": ArraySpec(self.targets.shape, "float32", max_rows=r),
            "valid": ArraySpec(self.valid.shape, "uint8", max_rows=r, low=0, high=1),
        }

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        """All three arrays hold the same number of rollouts, fewer than N_pi (a full store is
        used up in the iteration that fills it, before any checkpoint)."""
        n = len(arrays["obs"])
        for key in ("targets", "valid"):
            if len(arrays[key]) != n:
                raise CheckpointError(
                    f"{where}: array '{prefix}/{key}' has {len(arrays[key])} rollouts and '{prefix}/obs' "
                    f"{n}; expected the same number"
                )
        if n >= self.rollouts:
            raise CheckpointError(
                f"{where}: array '{prefix}/obs' holds {n} rollouts; expected fewer than "
                f"policy_iterations={self.rollouts}"
            )

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.check_state_arrays(arrays, "phase state", "phase")
        self.count = n = len(arrays["obs"])
        self.obs[:n], self.targets[:n], self.valid[:n] = arrays["obs"], arrays["targets"], arrays["valid"]


class PPGAgent:
    def __init__(self, config: PPGConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        cfg = self.cfg = config
        self.rng = rng
        self.env = TrainingEnv(cfg, env)
        self.envs, self.observation_space, self.action_space = self.env.envs, *self.env.spaces
        in_dim = self.env.obs_dim
        self.policy = PhasicNet(in_dim, self.action_space, cfg.hidden, cfg.activation, cfg.log_std_init)
        self.modules: dict[str, nn.Module] = {"policy": self.policy}
        self.critic: ValueCritic | None = None
        if cfg.arch == "separate":
            self.critic = self.modules["critic"] = ValueCritic(in_dim, cfg.hidden, cfg.activation)
        self.device = resolve_device(cfg.device, pixels=False)
        params = [p for m in self.modules.values() for p in m.to(self.device).parameters()]
        # V_aux ('separate') learns in the auxiliary phase only: the policy phase's Adam leaves it out
        aux_only = self.policy.value_out.flat if self.critic is not None else None
        step = partial(GradientStep, lr=cfg.learning_rate, eps=1e-5, max_grad_norm=cfg.max_grad_norm)
        # each phase has its own Adam state, as in the authors' code: the phases' losses differ
        self.update, self.aux_update = step([p for p in params if p is not aux_only]), step(params)
        head = self.policy.head
        # the store, its tensor copy in the auxiliary phase, and pi_old (at most 2 floats per output)
        rows = cfg.policy_iterations * cfg.rollout_size
        check_memory("policy_iterations", rows * (8 * in_dim + 8 * head.out_dim + 9))
        self.buffer = RolloutBuffer(
            cfg.num_steps, cfg.num_envs, ((in_dim,), np.float32), (head.action_shape, head.action_dtype)
        )
        self.phase = PhaseStore(cfg.policy_iterations, cfg.rollout_size, in_dim)
        self.global_step = 0
        self.budget_granularity = cfg.rollout_size

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
        actions = self.policy.act(obs, None if deterministic else self.rng)
        return self.policy.head.to_env(actions), state

    def _value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s) as the policy phase trains it: the value network, or the shared trunk's value head
        with the trunk's gradient stopped."""
        return self.critic(obs) if self.critic is not None else self.policy.value(obs, stop_trunk=True)

    def _tensor(self, x: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(x)  # no copy on the CPU
        return t if self.device.type == "cpu" else t.to(self.device)

    def iterate(self) -> dict[str, float]:
        """One policy-phase iteration, then the auxiliary phase when it was the N_pi-th."""
        cfg, rng = self.cfg, self.rng
        if cfg.anneal_lr:
            lr = cfg.learning_rate * max(1.0 - self.global_step / cfg.total_timesteps, 0.0)
            self.update.lr = self.aux_update.lr = lr
        self.buffer.collect(self.env.stepper, lambda obs: self.policy.act(obs, rng), self.policy.head.to_env)
        self.global_step += cfg.rollout_size
        metrics = self._policy_phase()
        if self.phase.full:
            metrics.update(self._aux_phase())
        metrics["charts/learning_rate"] = self.update.lr
        metrics["charts/phase_iteration"] = float(self.phase.count)
        metrics.update(episode_metrics(*self.env.stepper.pop_episodes()))
        return metrics

    def _rollout_data(self) -> dict[str, np.ndarray]:
        """The rollout as flat arrays; its states and value targets go into the phase store."""
        cfg, buf = self.cfg, self.buffer
        infer = self.critic.infer if self.critic is not None else self.policy.infer_value
        buf.fill_values(infer)
        adv, ret = buf.advantages(cfg.gamma, cfg.gae_lambda)
        obs, acts, valid = buf.flat("obs"), buf.flat("actions"), buf["valid"].reshape(-1)
        self.phase.add(obs, ret.reshape(-1), valid)
        with torch.inference_mode():
            logp = self.policy.head.log_prob(self.policy(self._tensor(obs)), self._tensor(acts))
        adv = adv.reshape(-1)
        if cfg.norm_adv and valid.sum() > 1:
            adv = (adv - adv[valid].mean()) / (adv[valid].std(ddof=1) + 1e-8)
        data = {"obs": obs, "act": acts, "logp": logp.cpu().numpy(), "adv": adv, "ret": ret.reshape(-1)}
        data["val"] = buf.flat("values")
        return data

    def _policy_phase(self) -> dict[str, float]:
        cfg = self.cfg
        data = self._rollout_data()
        if not self.buffer["valid"].any():  # a rollout of autoreset slots only: nothing to learn from
            return {}
        stats = np.full(5, np.nan)
        for epoch in range(max(cfg.policy_epochs, cfg.value_epochs)):
            terms = (epoch < cfg.policy_epochs, epoch < cfg.value_epochs)
            for mb in self.buffer.minibatches(self.rng, cfg.batch_size):
                batch = {k: self._tensor(v[mb]) for k, v in data.items()}
                loss, step_stats = policy_phase_loss(
                    self.policy, self._value, batch, cfg.clip_coef, cfg.vf_coef, cfg.ent_coef, terms
                )
                self.update(loss)
                new = step_stats.cpu().numpy()
                stats = np.where(np.isnan(new), stats, new)  # each statistic from its last step
        pg, vl, ent, kl, cf = (float(s) for s in stats)
        return {
            "loss/policy": pg,
            "loss/value": vl,
            "loss/entropy": ent,
            "charts/approx_kl": kl,
            "charts/clip_fraction": cf,
        }

    def _aux_phase(self) -> dict[str, float]:
        """Algorithm 1, the auxiliary phase: pi_old on every stored state, then E_aux epochs of L_joint and
        L_value over random minibatches of all of them."""
        cfg = self.cfg
        obs_np, targets = self.phase.take()
        if len(obs_np) == 0:
            return {}
        obs = self._tensor(obs_np)
        with torch.no_grad():
            old = self.policy.head.dist_params(self.policy(obs))
        data = {"obs": obs, "ret": self._tensor(targets), "old": old}
        n_mb = max(1, round(len(obs_np) / cfg.aux_batch_size))
        stats = torch.full((3,), float("nan"))
        for _ in range(cfg.aux_epochs):
            for mb in np.array_split(self.rng.permutation(len(obs_np)), n_mb):
                idx = self._tensor(mb)
                batch = {k: v[idx] for k, v in data.items()}
                loss, stats = aux_phase_loss(self.policy, self.critic, batch, cfg.beta_clone)
                self.aux_update(loss)
        l_aux, kl, l_value = stats.tolist()
        return {"loss/aux_value": l_aux, "loss/aux_kl": kl, "loss/aux_true_value": l_value}

    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules=dict(self.modules),
            optimizers={"policy_phase": self.update.optimizer, "aux_phase": self.aux_update.optimizer},
            stateful={"env": self.env.state, "phase": self.phase},
        )

    def on_restore(self) -> None:
        self.env.restart(self.global_step)


def train(config: PPGConfig, env: EnvSpecLike | None = None, **kwargs: Any) -> Any:
    """Train PPG; ``env`` (an id, env, factory or vector env) overrides ``config.env_id``."""
    from rlcanon.run.harness import train_run

    return train_run("ppg", config, PPGAgent, env=env, **kwargs)
