"""Critics: state values V(s), action values Q(s, .) for discrete actions, Q(s, a) for continuous
actions, and ensembles of either evaluated in one batched pass (``ensemble_size``).

Pixel observations ([C, 84, 84]) go through the Nature CNN encoder (Mnih et al. 2015), vector
observations straight into the MLP. The dueling head (Wang et al. 2016, eq. 9) is
Q = V + A - mean(A).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcanon.errors import ConfigError
from rlcanon.nets.cnn import NatureCNN
from rlcanon.nets.mlp import MLP


def is_pixels(obs_shape: tuple[int, ...]) -> bool:
    return len(obs_shape) == 3


def flat_dim(obs_shape: tuple[int, ...]) -> int:
    return int(np.prod(obs_shape))


class ValueCritic(nn.Module):
    """V(s) for vector observations: an MLP with one output, returned as shape (B,)."""

    def __init__(
        self, obs_dim: int, hidden: Sequence[int], activation: str = "tanh", orthogonal: bool = True
    ) -> None:
        super().__init__()
        self.net = MLP(obs_dim, hidden, 1, activation, out_gain=1.0, orthogonal=orthogonal)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs).squeeze(-1)

    def infer(self, obs: np.ndarray) -> np.ndarray:
        """Values of a NumPy batch without a graph."""
        return self.net.infer(obs)[..., 0]


class DiscreteQ(nn.Module):
    """Q(s, .) for discrete actions: (B, A), or (E, B, A) with ``ensemble_size`` E; with ``atoms``
    K > 1 each action gets K outputs (a return distribution's logits or quantiles): (B, A, K).

    ``layer`` builds each MLP (``MLP``'s signature); NoisyNet passes its noisy MLP here."""

    def __init__(
        self,
        obs_shape: tuple[int, ...],
        n_actions: int,
        hidden: Sequence[int],
        dueling: bool = False,
        ensemble_size: int = 0,
        atoms: int = 1,
        layer: Callable[..., nn.Module] = MLP,
    ) -> None:
        super().__init__()
        self.dueling = dueling
        self.atoms = int(atoms)
        self.n_actions = int(n_actions)
        self.pixels = is_pixels(obs_shape)
        if self.pixels:
            if tuple(obs_shape[1:]) != (84, 84):
                raise ConfigError(
                    f"image observations must be channels-first 84x84 frames (C, 84, 84), as the Atari "
                    f"preprocessing gives; got shape {tuple(obs_shape)} (resize them and put channels first, "
                    f"or flatten them with the 'flatten-observation' wrapper)"
                )
            self.encoder: nn.Module = NatureCNN(obs_shape[0])
            feat, hidden = 512, []
        else:
            self.encoder = nn.Flatten()
            feat = flat_dim(obs_shape)
        extra = {"ensemble_size": ensemble_size} if ensemble_size else {}
        if dueling:
            self.value = layer(feat, hidden, self.atoms, **extra)
            self.advantage = layer(feat, hidden, n_actions * self.atoms, **extra)
        else:
            self.q = layer(feat, hidden, n_actions * self.atoms, **extra)
        # plain references for the acting path (module attribute lookups cost microseconds there)
        self._mlps: tuple[Any, ...] = (self.value, self.advantage) if dueling else (self.q,)

    def _combine(self, outs: Sequence[Any]) -> Any:
        """The heads' raw outputs (torch or NumPy) as Q values, or per-atom values (..., A, K)."""
        if self.atoms > 1:
            outs = [o.reshape(*o.shape[:-1], -1, self.atoms) for o in outs]
        if not self.dueling:
            return outs[0]
        # Wang et al. 2016, eq. 9; per atom for distributions (Hessel et al. 2018, eq. 5)
        value, adv = outs
        action_axis = -1 if self.atoms == 1 else -2
        return value + adv - _mean(adv, action_axis)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        feat = self.encoder(obs)
        return self._combine([m(feat) for m in self._mlps])  # type: ignore[no-any-return]

    def infer(self, obs: np.ndarray) -> np.ndarray:
        """Q values of a NumPy batch without a graph (the acting and target path)."""
        if self.pixels:
            with torch.no_grad():
                device = next(self.parameters()).device
                return self(torch.as_tensor(obs, device=device)).cpu().numpy()  # type: ignore[no-any-return]
        x = obs.reshape(len(obs), -1)
        return self._combine([m.infer(x) for m in self._mlps])  # type: ignore[operator, no-any-return]


def _mean(x: Any, axis: int) -> Any:
    """Mean over ``axis`` keeping it, for a tensor or an array."""
    if isinstance(x, torch.Tensor):
        return x.mean(dim=axis, keepdim=True)
    return x.mean(axis=axis, keepdims=True)


class ContinuousQ(nn.Module):
    """Q(s, a) for continuous actions: an MLP on [obs, action]; (B,), or (E, B) with
    ``ensemble_size`` E (twin critics are E = 2)."""

    def __init__(self, obs_dim: int, action_dim: int, hidden: Sequence[int], ensemble_size: int = 0) -> None:
        super().__init__()
        self.net = MLP(obs_dim + action_dim, hidden, 1, "relu", ensemble_size=ensemble_size)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """Q(s, a) of every critic, or of critic ``member`` alone (B,)."""
        x = torch.cat([obs.reshape(len(obs), -1), actions.reshape(len(actions), -1)], dim=-1)
        return self.net(x, member).squeeze(-1)
