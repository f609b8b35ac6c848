"""Actors: an MLP from observations to a policy head's parameters, with a NumPy acting path."""

from __future__ import annotations

from collections.abc import Sequence

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcanon.nets.heads import PolicyHead, make_head
from rlcanon.nets.mlp import MLP


class Actor(nn.Module):
    """pi(a | s) for vector observations: ``head`` reads the MLP's outputs.

    ``out_gain`` scales the initial output layer (0.01 makes the initial policy close to uniform or
    zero-mean, the PPO detail of Huang et al. 2022)."""

    def __init__(
        self,
        obs_dim: int,
        action_space: gym.Space,
        hidden: Sequence[int],
        activation: str = "tanh",
        *,
        head: str = "auto",
        log_std_init: float = 0.0,
        orthogonal: bool = True,
        out_gain: float | None = 0.01,
    ) -> None:
        super().__init__()
        self.head: PolicyHead = make_head(action_space, head, log_std_init)  # type: ignore[assignment]
        self.net = MLP(
            obs_dim, hidden, self.head.out_dim, activation, out_gain=out_gain, orthogonal=orthogonal
        )
        # plain references for the acting path (module attribute lookups cost microseconds there)
        self._acting = (self.net, self.head)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """The head's parameters (logits, mean, ...) for a batch of observations."""
        return self.net(obs.reshape(len(obs), -1))  # type: ignore[no-any-return]

    def act(self, obs: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Actions in stored form for a NumPy batch: sampled with ``rng``, or the mode if None."""
        net, head = self._acting
        out = net.infer(np.asarray(obs, dtype=np.float32).reshape(len(obs), -1))
        return head.act(out, rng).astype(head.action_dtype, copy=False)
