"""Bootstrapped DQN (Osband, Blundell, Pritzel & Van Roy 2016, "Deep Exploration via Bootstrapped
DQN") with randomized prior functions (Osband, Aslanides & Cassirer 2018, "Randomized Prior Functions
for Deep Reinforcement Learning").

K Q heads on one network, evaluated in one batched pass; each stored transition carries a bootstrap
mask m ~ Bernoulli(p)^K drawn at insertion, and head k trains only on transitions with m_k = 1. One
head, drawn uniformly at the start of each episode, acts greedily for the whole episode (Algorithm 1),
which is what makes the exploration deep. With priors each head is Q_k = f_k + beta * p_k, with p_k a
fixed, randomly initialised network of the same shape that is never trained (2018, section 4).
Evaluation takes the heads' majority vote (the ensemble policy of the 2016 paper). A head and a loss
on the one DQN loop (:mod:`rlcanon.algos.dqn`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcanon.algos.dqn import DQNAgent, DQNConfig
from rlcanon.algos.qvariant import QVariant, select_next, take
from rlcanon.core.config import check_int, check_range
from rlcanon.core.validate import ArraySpec
from rlcanon.errors import ConfigError
from rlcanon.nets.critics import DiscreteQ
from rlcanon.nets.mlp import MLP
from rlcanon.run.config import check_hidden

__all__ = ["BootstrappedDQNConfig", "BootstrappedHeads", "DQNAgent", "PriorQ", "bootstrapped_loss"]


@dataclass(frozen=True)
class BootstrappedDQNConfig(DQNConfig):
    """Bootstrapped DQN settings. Deep exploration comes from the heads, so epsilon is 0 by default
    (Osband et al. 2016 and bsuite's boot_dqn baseline act greedily on the episode's head)."""

    n_heads: int = 10
    """K, the number of bootstrapped heads (10 in Osband et al. 2016)."""
    bootstrap_prob: float = 1.0
    """p of the masks m_k ~ Bernoulli(p); 1 trains every head on every transition (the 2016 paper
    found p = 1 about as good on Atari; the heads still differ by their initialisation and prior)."""
    torso: tuple[int, ...] = ()
    """Hidden layers shared by every head before the per-head layers (``hidden``); () makes the heads
    independent networks (as bsuite's ensemble). Pixels always share the Nature CNN, as in the paper."""
    prior_scale: float = 5.0
    """beta of Q_k = f_k + beta * p_k; 0 turns the prior off (5 as in bsuite's boot_dqn baseline,
    ``bsuite/baselines/*/boot_dqn/agent.py`` default_agent)."""
    exploration_initial_eps: float = 0.0
    """Epsilon at the start (0: the episode's head explores)."""
    exploration_final_eps: float = 0.0
    """Epsilon after the decay."""

    def validate(self) -> None:
        super().validate()
        check_int("n_heads", self.n_heads, 1, 1000)
        check_hidden("torso", self.torso)
        check_range("bootstrap_prob", self.bootstrap_prob, 1e-6, 1.0)
        check_range("prior_scale", self.prior_scale, 0.0, 1e6)
        if self.noisy or self.param_noise:
            raise ConfigError(
                "bootstrapped DQN explores through its heads; noisy and param_noise must be off"
            )

    def variant(self) -> QVariant:
        return BootstrappedHeads(self)


class TorsoHeads(nn.Module):
    """A shared MLP torso (ReLU on its output) feeding the K heads: (K, B, A)."""

    def __init__(self, torso: MLP, heads: DiscreteQ) -> None:
        super().__init__()
        self.torso, self.heads = torso, heads
        self.pixels = False

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.heads(torch.relu(self.torso(obs.reshape(len(obs), -1))))  # type: ignore[no-any-return]

    def infer(self, obs: np.ndarray) -> np.ndarray:
        return self.heads.infer(np.maximum(self.torso.infer(obs.reshape(len(obs), -1)), 0.0))


class PriorQ(nn.Module):
    """Q_k(s, .) = f_k(s, .) + beta * p_k(s, .) for all K heads, (K, B, A); the prior p is frozen."""

    def __init__(self, trained: Any, prior: Any, prior_scale: float) -> None:
        super().__init__()
        self.trained, self.prior = trained, prior.requires_grad_(False)
        self.prior_scale = prior_scale
        self.pixels = trained.pixels

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        # the prior's parameters are frozen (requires_grad False), so it adds no gradient path
        return self.trained(obs) + self.prior_scale * self.prior(obs)  # type: ignore[no-any-return]

    def infer(self, obs: np.ndarray) -> np.ndarray:
        return self.trained.infer(obs) + self.prior_scale * self.prior.infer(obs)  # type: ignore[no-any-return]


def bootstrapped_loss(
    q: nn.Module,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """sum_k mean_b m_bk h(Q_k(s_b, a_b) - y_bk), with h the Huber loss and ``weights`` (B, K) the
    bootstrap masks (times any importance weights): head k gets no gradient from a transition it
    masks out. Summing over heads gives each head the gradient scale of a single DQN. Returns the
    loss and Q_k(s, a) as (B, K) (detached)."""
    q_all = q(obs)  # (K, B, A)
    index = actions.view(1, -1, 1).expand(q_all.shape[0], -1, 1)
    q_taken = q_all.gather(2, index).squeeze(2).T  # (B, K)
    elementwise = F.huber_loss(q_taken, targets, reduction="none", delta=1.0)
    masked = elementwise if weights is None else weights * elementwise
    return masked.sum(1).mean(), q_taken.detach()


class BootstrappedHeads(QVariant):
    """K heads on a shared torso (an ensemble MLP, one batched pass), masks in the replay buffer."""

    loss = staticmethod(bootstrapped_loss)

    def __init__(self, cfg: BootstrappedDQNConfig) -> None:
        self.cfg = cfg
        self.active = np.zeros(cfg.num_envs, dtype=np.int64)  # the acting head of each sub-env

    def build(self, obs_shape: tuple[int, ...], n_actions: int, **net_kwargs: Any) -> nn.Module:
        c = self.cfg

        def make() -> nn.Module:
            if not c.torso or len(obs_shape) == 3:
                return DiscreteQ(obs_shape, n_actions, c.hidden, c.dueling, ensemble_size=c.n_heads)
            heads = DiscreteQ((c.torso[-1],), n_actions, c.hidden, c.dueling, ensemble_size=c.n_heads)
            return TorsoHeads(MLP(int(np.prod(obs_shape)), c.torso[:-1], c.torso[-1]), heads)

        trained = make()
        return trained if c.prior_scale == 0 else PriorQ(trained, make(), c.prior_scale)

    def td_target(
        self, batch: dict[str, np.ndarray], target_next: np.ndarray, online_next: np.ndarray | None
    ) -> np.ndarray:
        """y_bk = r_b + discount_b * Q_target,k(s'_b, a*_bk), one target per head: (B, K)."""
        best = select_next(online_next, target_next)  # (K, B)
        next_v = take(target_next, best)  # (K, B)
        return (batch["rewards"][None] + batch["discounts"][None] * next_v).T.astype(np.float32)

    def errors(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return (stat - targets).mean(-1)  # type: ignore[no-any-return]

    def q_taken(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
        return stat

    # ---- acting ----
    def q_values(self, out: np.ndarray) -> np.ndarray:
        return out.mean(0)  # type: ignore[no-any-return]

    def greedy(self, out: np.ndarray) -> np.ndarray:
        """The heads' majority vote; ties go to the lowest action."""
        votes = np.argmax(out, axis=-1)  # (K, B)
        counts = (votes[..., None] == np.arange(out.shape[-1])).sum(0)  # (B, A)
        return np.argmax(counts, axis=-1)

    def behaviour(self, out: np.ndarray) -> np.ndarray:
        """Each sub-env acts greedily on its episode's head."""
        return np.argmax(out[self.active, np.arange(out.shape[1])], axis=-1)

    def episodes_started(self, starts: np.ndarray, rng: np.random.Generator) -> None:
        self.active = np.where(starts, rng.integers(0, self.cfg.n_heads, len(starts)), self.active)

    # ---- replay ----
    def replay_fields(self) -> dict[str, tuple[tuple[int, ...], Any]]:
        return {"masks": ((self.cfg.n_heads,), np.float32)}

    def draw_fields(self, rng: np.random.Generator, num_envs: int) -> dict[str, np.ndarray]:
        p = self.cfg.bootstrap_prob
        shape = (num_envs, self.cfg.n_heads)
        masks = np.ones(shape, np.float32) if p >= 1.0 else (rng.random(shape) < p).astype(np.float32)
        return {"masks": masks}

    def weights(self, batch: dict[str, np.ndarray], importance: np.ndarray | None) -> np.ndarray | None:
        masks = batch["masks"]
        return masks if importance is None else masks * importance[:, None]

    def stateful(self) -> dict[str, Any]:
        return {"heads": _ActiveHeads(self)}


class _ActiveHeads:
    """The acting head of each sub-env, checkpointed."""

    def __init__(self, heads: BootstrappedHeads) -> None:
        self.heads = heads

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"active": self.heads.active.copy()}

    def array_specs(self) -> dict[str, ArraySpec]:
        n = self.heads.cfg
        return {"active": ArraySpec((n.num_envs,), "int64", low=0, high=n.n_heads - 1, integer=True)}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.heads.active = np.asarray(arrays["active"], dtype=np.int64).copy()
