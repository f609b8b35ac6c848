"""QR-DQN (Dabney, Rowland, Bellemare & Munos 2018, "Distributional Reinforcement Learning with
Quantile Regression"): each action's return as N quantiles theta_i at the midpoints
tau_i = (2i - 1) / 2N, the target quantiles r + gamma^n theta_j(s', a*) with a* greedy in the mean,
and the quantile Huber loss (eq. 10). A head and a loss on the one DQN loop
(:mod:`rlcanon.algos.dqn`)."""

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
from rlcanon.nets.critics import DiscreteQ

__all__ = ["DQNAgent", "QRDQNConfig", "Quantiles", "quantile_huber_loss", "quantile_midpoints"]


@dataclass(frozen=True)
class QRDQNConfig(DQNConfig):
    """QR-DQN settings: the DQN loop's, plus the quantiles."""

    n_quantiles: int = 200
    """Quantiles per action (200 in the paper's Atari runs, section 5; sb3-contrib's default 200)."""
    kappa: float = 1.0
    """Huber threshold of the quantile Huber loss (kappa = 1 in the paper)."""

    def validate(self) -> None:
        super().validate()
        check_int("n_quantiles", self.n_quantiles, 1, 10_000)
        check_range("kappa", self.kappa, 1e-6, 1e6)

    def variant(self) -> QVariant:
        return Quantiles(self)


def quantile_midpoints(n: int) -> np.ndarray:
    """tau_i = (2i - 1) / 2N, i = 1..N: the quantile levels that minimise the 1-Wasserstein error
    of an N-atom approximation (Dabney et al. 2018, Lemma 2)."""
    return ((2 * np.arange(n) + 1) / (2.0 * n)).astype(np.float32)


def quantile_huber_loss(
    quantiles: torch.Tensor, targets: torch.Tensor, taus: torch.Tensor, kappa: float = 1.0
) -> torch.Tensor:
    """Per-sample quantile Huber loss (Dabney et al. 2018, eq. 10): with u_ij = T theta_j - theta_i,
    sum_i mean_j |tau_i - 1{u_ij < 0}| L_kappa(u_ij) / kappa, where L_kappa is the Huber loss.
    ``quantiles`` (B, N), ``targets`` (B, N'), ``taus`` (N,); returns (B,)."""
    u = targets[:, None, :] - quantiles[:, :, None]  # (B, N, N'): target j minus prediction i
    huber = F.huber_loss(
        quantiles[:, :, None].expand_as(u), targets[:, None, :].expand_as(u), reduction="none", delta=kappa
    )
    weight = (taus[None, :, None] - (u.detach() < 0).to(u.dtype)).abs()
    return (weight * huber / kappa).mean(-1).sum(-1)


class Quantiles(QVariant):
    """The QR-DQN head: N quantiles per action; Q(s, a) is their mean."""

    def __init__(self, cfg: QRDQNConfig) -> None:
        self.cfg = cfg
        self.taus = torch.from_numpy(quantile_midpoints(cfg.n_quantiles))

    def build(self, obs_shape: tuple[int, ...], n_actions: int, **net_kwargs: Any) -> nn.Module:
        c = self.cfg
        return DiscreteQ(obs_shape, n_actions, c.hidden, c.dueling, atoms=c.n_quantiles, **net_kwargs)

    def loss(
        self,
        q: nn.Module,
        obs: torch.Tensor,
        actions: torch.Tensor,
        targets: torch.Tensor,
        weights: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch mean of the quantile Huber loss of the taken action's quantiles (importance-
        weighted under prioritized replay), and the per-sample loss (detached: the priorities)."""
        quantiles = q(obs)  # (B, A, N)
        taken = quantiles[torch.arange(len(actions), device=quantiles.device), actions]
        per_sample = quantile_huber_loss(taken, targets, self.taus.to(taken.device), self.cfg.kappa)
        loss = per_sample.mean() if weights is None else (weights * per_sample).mean()
        return loss, per_sample.detach()

    def q_values(self, out: np.ndarray) -> np.ndarray:
        return out.mean(-1)  # type: ignore[no-any-return]

    def td_target(
        self, batch: dict[str, np.ndarray], target_next: np.ndarray, online_next: np.ndarray | None
    ) -> np.ndarray:
        online_q = None if online_next is None else self.q_values(online_next)
        best = select_next(online_q, self.q_values(target_next))
        next_quantiles = take(target_next, best)  # (B, N)
        return (batch["rewards"][:, None] + batch["discounts"][:, None] * next_quantiles).astype(np.float32)

    def errors(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return stat  # the per-sample loss

    def loss_metric(self, errors: np.ndarray) -> float:
        return float(errors.mean())

    def q_taken(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
        return None
