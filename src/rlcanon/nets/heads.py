"""Policy heads: every action-space difference lives here, never in an algorithm.

A head turns the actor network's output into a distribution. Torch methods serve the loss; NumPy
methods serve acting from a frozen snapshot during collection.
"""

from __future__ import annotations

import math
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
import torch
from torch import nn

from rlcanon.errors import ConfigError


class PolicyHead(Protocol):
    out_dim: int
    action_shape: tuple[int, ...]
    action_dtype: type

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor: ...
    def entropy(self, out: torch.Tensor) -> torch.Tensor: ...
    def sample_np(self, out: np.ndarray, rng: np.random.Generator) -> np.ndarray: ...
    def mode_np(self, out: np.ndarray) -> np.ndarray: ...
    def to_env(self, actions: np.ndarray) -> np.ndarray: ...
    def parameters(self) -> object: ...


class CategoricalHead(nn.Module):
    """Discrete actions: the actor outputs logits."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.out_dim = n
        self.action_shape: tuple[int, ...] = ()
        self.action_dtype = np.int64

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(out, dim=-1)
        return logp.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(out, dim=-1)
        return -(logp.exp() * logp).sum(-1)

    def sample_np(self, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        # Gumbel-max: argmax(logits + Gumbel noise) is an exact sample of softmax(logits).
        gumbel = -np.log(-np.log(rng.random(out.shape, dtype=np.float64)))
        return np.argmax(out + gumbel, axis=-1)

    def mode_np(self, out: np.ndarray) -> np.ndarray:
        return np.argmax(out, axis=-1)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return actions

    def logp_entropy_np(self, out: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        """log pi(a|s), entropy, and what :meth:`grad_np` needs (NumPy twin of the torch methods)."""
        z = out - out.max(axis=1, keepdims=True)
        logp_all = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        probs = np.exp(logp_all)
        ent = -(probs * logp_all).sum(axis=1)
        rows = np.arange(len(actions))
        return logp_all[rows, actions], ent, (probs, logp_all, ent, rows, actions)

    def grad_np(self, ctx: Any, dlogp: np.ndarray, dent: float, flat: Any) -> np.ndarray:
        """d(loss)/d(logits) given d(loss)/d(log pi(a|s)) per sample and d(loss)/d(entropy)."""
        probs, logp_all, ent, rows, actions = ctx
        dout = -probs * dlogp[:, None]  # d log softmax_a / d logits = onehot(a) - p
        dout[rows, actions] += dlogp
        if dent:  # dH/dlogits_j = -p_j (log p_j + H)
            dout -= dent * probs * (logp_all + ent[:, None])
        return dout.astype(np.float32, copy=False)


class GaussianHead(nn.Module):
    """Continuous actions: the actor outputs the mean; the log std is a state-independent parameter.

    Sampled actions are stored unclipped (so log-probabilities stay exact) and clipped to the action
    bounds only when sent to the env.
    """

    def __init__(self, space: gym.spaces.Box, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.out_dim = int(np.prod(space.shape))
        self.action_shape = (self.out_dim,)
        self.action_dtype = np.float32
        self.log_std = nn.Parameter(torch.full((self.out_dim,), float(log_std_init)))
        self.low = space.low.astype(np.float32).reshape(-1)
        self.high = space.high.astype(np.float32).reshape(-1)

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - out) * torch.exp(-self.log_std)
        return (-0.5 * z * z - self.log_std - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        ent = (0.5 + 0.5 * math.log(2 * math.pi) + self.log_std).sum()
        return ent.expand(out.shape[0])

    def sample_np(self, out: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        std = np.exp(self.log_std.detach().cpu().numpy())
        return (out + std * rng.standard_normal(out.shape)).astype(np.float32)

    def mode_np(self, out: np.ndarray) -> np.ndarray:
        return out.astype(np.float32)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions, self.low, self.high)

    def logp_entropy_np(self, out: np.ndarray, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, Any]:
        log_std = self.log_std.detach().cpu().numpy()
        z = (actions - out) * np.exp(-log_std)
        logp = (-0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)).sum(axis=1)
        ent = np.full(len(out), (0.5 + 0.5 * math.log(2 * math.pi) + log_std).sum())
        return logp, ent, z

    def grad_np(self, ctx: Any, dlogp: np.ndarray, dent: float, flat: Any) -> np.ndarray:
        """d(loss)/d(mean); also writes d(loss)/d(log_std) into the flat gradient."""
        z = ctx
        std = np.exp(self.log_std.detach().cpu().numpy())
        # d logp / d mean = z / std; d logp / d log_std = z^2 - 1; dH / d log_std = 1
        flat.grad_of(self.log_std)[:] = (dlogp[:, None] * (z * z - 1.0)).sum(axis=0) + dent * len(z)
        return (dlogp[:, None] * z / std).astype(np.float32, copy=False)


def make_head(space: gym.Space, log_std_init: float = 0.0) -> CategoricalHead | GaussianHead:
    """The head for an action space: the one place that branches on the space's type."""
    if isinstance(space, gym.spaces.Discrete):
        return CategoricalHead(int(space.n))
    if isinstance(space, gym.spaces.Box):
        return GaussianHead(space, log_std_init)
    raise ConfigError(f"action space {space} is not supported; Discrete or Box actions only")
