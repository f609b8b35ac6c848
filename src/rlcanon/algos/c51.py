"""C51 (Bellemare, Dabney & Munos 2017, "A Distributional Perspective on Reinforcement Learning"):
the return of each action as a categorical distribution on N fixed atoms z_i evenly spaced in
[v_min, v_max]; the Bellman target r + gamma^n z_j projected back onto the atoms (Algorithm 1), and
the cross-entropy between the projected target and the predicted distribution as the loss. A head
and a loss on the one DQN loop (:mod:`rlcanon.algos.dqn`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcanon.algos.dqn import DQNAgent, DQNConfig
from rlcanon.algos.qvariant import QVariant, select_next, take
from rlcanon.core.config import check_int
from rlcanon.errors import ConfigError
from rlcanon.nets.critics import DiscreteQ

__all__ = ["C51Config", "Categorical", "DQNAgent", "categorical_loss", "categorical_projection"]


@dataclass(frozen=True)
class C51Config(DQNConfig):
    """C51 settings: the DQN loop's, plus the support of the return distribution."""

    n_atoms: int = 51
    """Atoms of the categorical distribution (51 in the paper, hence the name)."""
    v_min: float = -10.0
    """Lowest atom (the paper's Atari value, section 5)."""
    v_max: float = 10.0
    """Highest atom."""

    def validate(self) -> None:
        super().validate()
        check_int("n_atoms", self.n_atoms, 2, 10_000)
        if not (np.isfinite(self.v_min) and np.isfinite(self.v_max) and self.v_min < self.v_max):
            raise ConfigError(
                f"v_min={self.v_min} and v_max={self.v_max} are not allowed; they must be finite with "
                f"v_min < v_max"
            )

    def variant(self) -> QVariant:
        return Categorical(self)


def categorical_projection(
    rewards: np.ndarray, discounts: np.ndarray, next_probs: np.ndarray, support: np.ndarray
) -> np.ndarray:
    """Algorithm 1 of Bellemare et al. 2017: the distribution of r + discount * Z(s', a*) with
    Z(s', a*) ~ ``next_probs`` (B, N) on ``support`` (N,), projected onto the support. Each shifted
    atom Tz_j, clipped to [v_min, v_max], splits its mass between its two neighbouring atoms in
    proportion to closeness; an atom that lands exactly on z_i gives it all of its mass."""
    v_min, v_max = float(support[0]), float(support[-1])
    n = len(support)
    delta_z = (v_max - v_min) / (n - 1)
    tz = np.clip(rewards[:, None] + discounts[:, None] * support[None, :], v_min, v_max)
    b = (tz - v_min) / delta_z  # fractional atom index, in [0, N - 1]
    lower = np.clip(np.floor(b).astype(np.int64), 0, n - 1)
    upper_share = b - lower  # 0 when Tz_j is exactly atom `lower`
    upper = np.minimum(lower + 1, n - 1)
    rows = np.arange(len(rewards))[:, None] * n
    out = np.zeros(len(rewards) * n, dtype=np.float64)
    np.add.at(out, (rows + lower).ravel(), (next_probs * (1.0 - upper_share)).ravel())
    np.add.at(out, (rows + upper).ravel(), (next_probs * upper_share).ravel())
    return out.reshape(len(rewards), n).astype(np.float32)


def categorical_loss(
    q: nn.Module,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy -sum_i m_i log p_i(s, a) between the projected target m and the predicted
    distribution of the taken action (Bellemare et al. 2017, Algorithm 1), importance-weighted under
    prioritized replay; and the per-sample cross-entropy (detached: Rainbow's priorities)."""
    logits = q(obs)  # (B, A, N)
    taken = logits[torch.arange(len(actions), device=logits.device), actions]  # (B, N)
    per_sample = -(targets * F.log_softmax(taken, dim=-1)).sum(-1)
    loss = per_sample.mean() if weights is None else (weights * per_sample).mean()
    return loss, per_sample.detach()


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)  # type: ignore[no-any-return]


class Categorical(QVariant):
    """The C51 head: N logits per action; Q(s, a) = sum_i z_i p_i(s, a)."""

    loss = staticmethod(categorical_loss)

    def __init__(self, cfg: C51Config) -> None:
        self.cfg = cfg
        self.support = np.linspace(cfg.v_min, cfg.v_max, cfg.n_atoms, dtype=np.float32)

    def build(self, obs_shape: tuple[int, ...], n_actions: int, **net_kwargs: Any) -> nn.Module:
        c = self.cfg
        return DiscreteQ(obs_shape, n_actions, c.hidden, c.dueling, atoms=c.n_atoms, **net_kwargs)

    def q_values(self, out: np.ndarray) -> np.ndarray:
        return _softmax(out) @ self.support  # type: ignore[no-any-return]

    def td_target(
        self, batch: dict[str, np.ndarray], target_next: np.ndarray, online_next: np.ndarray | None
    ) -> np.ndarray:
        probs = _softmax(target_next)  # (B, A, N)
        online_q = None if online_next is None else self.q_values(online_next)
        best = select_next(online_q, probs @ self.support)
        return categorical_projection(batch["rewards"], batch["discounts"], take(probs, best), self.support)

    def errors(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """KL(m || p) = cross-entropy - entropy of m: Rainbow's priority (Hessel et al. 2018, section
        3); it differs from the loss by a constant of the target, so the gradients are the same."""
        m = targets.astype(np.float64)
        neg_entropy = np.where(m > 0, m * np.log(np.where(m > 0, m, 1.0)), 0.0).sum(-1)
        return np.maximum(stat + neg_entropy, 0.0)  # type: ignore[no-any-return]

    def loss_metric(self, errors: np.ndarray) -> float:
        return float(errors.mean())

    def q_taken(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
        return None
