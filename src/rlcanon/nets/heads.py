"""Policy heads: every action-space difference lives here, never in an algorithm.

A head turns the actor network's output ``out`` into a distribution over actions. Every head
implements :class:`PolicyHead`; algorithms are typed against that Protocol and never branch on
the action space. The torch methods serve losses; :meth:`PolicyHead.act` draws actions from NumPy
network outputs during collection (acting needs no graph, and NumPy skips torch's dispatch).

Heads:

- :class:`CategoricalHead` (discrete actions; ``out`` are logits);
- :class:`DiagGaussianHead` (``out`` is the mean; a state-independent log std parameter; PPO);
- :class:`SquashedGaussianHead` (``out`` is mean and log std; tanh squashing with the log-prob
  correction of Haarnoja et al. 2018, Appendix C, eq. 21; SAC);
- :class:`DeterministicHead` (``out`` through tanh to the action box; DDPG/TD3).
"""

from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcanon.errors import ConfigError

LOG_2PI = math.log(2 * math.pi)


@runtime_checkable
class PolicyHead(Protocol):
    out_dim: int
    """Network outputs the head reads per observation."""
    action_shape: tuple[int, ...]
    """Shape of one action as stored in buffers."""
    action_dtype: type
    """NumPy dtype of stored actions."""

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log pi(a | s) per row."""

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        """Entropy per row (an estimate where no closed form exists)."""

    def sample(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(actions, their log-probs); reparameterised where the distribution allows it."""

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        """The most likely (deterministic) action."""

    def act(self, out: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        """Actions from NumPy outputs: sampled with ``rng``, or the mode when ``rng`` is None."""

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Stored actions as the env takes them (clipped to the bounds where needed)."""


class CategoricalHead(nn.Module):
    """Discrete actions: the actor outputs logits."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self.out_dim = n
        self.action_shape: tuple[int, ...] = ()
        self.action_dtype = np.int64

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return -F.cross_entropy(out, actions.long(), reduction="none")

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(out, dim=-1)
        return -(logp.exp() * logp).sum(-1)

    def sample(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        actions = torch.multinomial(torch.softmax(out.detach(), dim=-1), 1).squeeze(-1)
        return actions, self.log_prob(out, actions)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out.argmax(-1)

    def act(self, out: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if rng is None:
            return np.argmax(out, axis=-1)
        # Gumbel-max: argmax(logits + Gumbel noise) is an exact sample of softmax(logits).
        gumbel = -np.log(-np.log(rng.random(out.shape, dtype=np.float64)))
        return np.argmax(out + gumbel, axis=-1)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return actions

    def dist_params(self, out: torch.Tensor) -> torch.Tensor:
        """Everything that fixes pi(.|s) per row (here the logits), for :meth:`kl`."""
        return out

    def kl(self, old: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """KL[pi_old(.|s) || pi(.|s)] per row, pi_old given by ``dist_params`` of earlier outputs."""
        logp_old = torch.log_softmax(old, dim=-1)
        return (logp_old.exp() * (logp_old - torch.log_softmax(out, dim=-1))).sum(-1)


class _BoxHead(nn.Module):
    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__()
        self.action_dim = int(np.prod(space.shape))
        self.action_shape: tuple[int, ...] = (self.action_dim,)
        self.action_dtype = np.float32
        low = np.broadcast_to(space.low, space.shape).astype(np.float32).reshape(-1)
        high = np.broadcast_to(space.high, space.shape).astype(np.float32).reshape(-1)
        self.low, self.high = low, high
        bounded = np.isfinite(low) & np.isfinite(high)
        # a box with infinite bounds is squashed to [-1, 1] (the env sees the raw tanh output)
        self.half_np = np.where(bounded, (high - low) / 2, 1.0).astype(np.float32)
        self.mid_np = np.where(bounded, (high + low) / 2, 0.0).astype(np.float32)
        self.scale: torch.Tensor
        self.center: torch.Tensor
        self.register_buffer("scale", torch.from_numpy(self.half_np.copy()), persistent=False)
        self.register_buffer("center", torch.from_numpy(self.mid_np.copy()), persistent=False)

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        return np.clip(actions, self.low, self.high)


class DiagGaussianHead(_BoxHead):
    """Continuous actions: the actor outputs the mean; the log std is a state-independent parameter.

    Sampled actions are stored unclipped (so log-probabilities stay exact) and clipped to the action
    bounds only when sent to the env."""

    def __init__(self, space: gym.spaces.Box, log_std_init: float = 0.0) -> None:
        super().__init__(space)
        self.out_dim = self.action_dim
        self.log_std = nn.Parameter(torch.full((self.out_dim,), float(log_std_init)))

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        z = (actions - out) * torch.exp(-self.log_std)
        return (-0.5 * z * z).sum(-1) - (self.log_std.sum() + 0.5 * LOG_2PI * self.out_dim)

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        ent = self.log_std.sum() + (0.5 + 0.5 * LOG_2PI) * self.out_dim
        return ent.expand(out.shape[0])

    def sample(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        actions = out + torch.exp(self.log_std) * torch.randn_like(out)
        return actions, self.log_prob(out, actions)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return out

    def act(self, out: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        if rng is None:
            return out.astype(np.float32)
        std = np.exp(self.log_std.detach().cpu().numpy())
        return (out + std * rng.standard_normal(out.shape)).astype(np.float32)

    def dist_params(self, out: torch.Tensor) -> torch.Tensor:
        """Everything that fixes pi(.|s) per row, for :meth:`kl`: the mean and the log std."""
        return torch.cat([out, self.log_std.expand_as(out)], dim=-1)

    def kl(self, old: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """KL[pi_old(.|s) || pi(.|s)] per row, pi_old given by ``dist_params`` of earlier outputs:
        the sum over dimensions of 1/2 (s^2 + z^2 - 1 - log s^2), with s = sigma_old / sigma and
        z = (mu_old - mu) / sigma."""
        mean_old, log_std_old = old.chunk(2, dim=-1)
        log_ratio = 2.0 * (log_std_old - self.log_std)
        z = (mean_old - out) * torch.exp(-self.log_std)
        return 0.5 * (log_ratio.exp() + z * z - 1.0 - log_ratio).sum(-1)


class SquashedGaussianHead(_BoxHead):
    """A Gaussian on u squashed by tanh and scaled to the action box: a = mid + half * tanh(u).

    The actor outputs the mean and the log std of u (state-dependent, clamped to
    [``log_std_min``, ``log_std_max``]). log pi(a|s) = log N(u; mu, sigma) - sum log(half (1 -
    tanh(u)^2)) (Haarnoja et al. 2018, Appendix C, eq. 21), with log(1 - tanh(u)^2) computed
    stably as 2 (log 2 - u - softplus(-2u)). Stored actions are env actions."""

    def __init__(self, space: gym.spaces.Box, log_std_min: float = -20.0, log_std_max: float = 2.0) -> None:
        super().__init__(space)
        self.out_dim = 2 * self.action_dim
        self.log_std_min, self.log_std_max = log_std_min, log_std_max

    def _split(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = out.chunk(2, dim=-1)
        return mean, log_std.clamp(self.log_std_min, self.log_std_max)

    def _log_prob_u(self, mean: torch.Tensor, log_std: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        z = (u - mean) * torch.exp(-log_std)
        gauss = (-0.5 * z * z - log_std).sum(-1) - 0.5 * LOG_2PI * self.action_dim
        log_det = (2.0 * (math.log(2.0) - u - F.softplus(-2.0 * u))).sum(-1)
        return gauss - log_det - torch.log(self.scale).sum()

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = self._split(out)
        y = ((actions - self.center) / self.scale).clamp(-1.0 + 1e-6, 1.0 - 1e-6)
        return self._log_prob_u(mean, log_std, torch.atanh(y))

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        """A one-sample estimate, -log pi(a|s) at a reparameterised sample (no closed form)."""
        return -self.sample(out)[1]

    def sample(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self._split(out)
        u = mean + torch.exp(log_std) * torch.randn_like(mean)
        return self.center + self.scale * torch.tanh(u), self._log_prob_u(mean, log_std, u)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return self.center + self.scale * torch.tanh(self._split(out)[0])

    def act(self, out: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        mean, log_std = np.split(out, 2, axis=-1)
        u = mean
        if rng is not None:
            std = np.exp(np.clip(log_std, self.log_std_min, self.log_std_max))
            u = mean + std * rng.standard_normal(mean.shape)
        return (self.mid_np + self.half_np * np.tanh(u)).astype(np.float32)


class DeterministicHead(_BoxHead):
    """a = mid + half * tanh(out): a deterministic policy in the action box. Exploration noise is
    the algorithm's (DDPG adds Gaussian or Ornstein-Uhlenbeck noise to the env action)."""

    def __init__(self, space: gym.spaces.Box) -> None:
        super().__init__(space)
        self.out_dim = self.action_dim

    def log_prob(self, out: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise ConfigError("a deterministic policy has no log-probabilities; use a stochastic head")

    def entropy(self, out: torch.Tensor) -> torch.Tensor:
        raise ConfigError("a deterministic policy has no entropy; use a stochastic head")

    def sample(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mode(out), torch.zeros(out.shape[0], device=out.device)

    def mode(self, out: torch.Tensor) -> torch.Tensor:
        return self.center + self.scale * torch.tanh(out)

    def act(self, out: np.ndarray, rng: np.random.Generator | None) -> np.ndarray:
        return (self.mid_np + self.half_np * np.tanh(out)).astype(np.float32)


HEAD_KINDS = ("auto", "gaussian", "squashed", "deterministic")


def make_head(space: gym.Space, kind: str = "auto", log_std_init: float = 0.0) -> nn.Module:
    """The head for an action space: the one place that branches on the space's type.

    ``kind``: 'auto' (categorical for Discrete, diagonal Gaussian for Box), or for Box spaces
    'gaussian', 'squashed' or 'deterministic'."""
    if kind not in HEAD_KINDS:
        raise ConfigError(f"head kind {kind!r} is not allowed; choose one of {list(HEAD_KINDS)}")
    if isinstance(space, gym.spaces.Discrete):
        if kind not in ("auto",):
            raise ConfigError(f"a {kind} head needs a Box action space; this env has {space}")
        return CategoricalHead(int(space.n))
    if isinstance(space, gym.spaces.Box):
        if kind == "squashed":
            return SquashedGaussianHead(space)
        if kind == "deterministic":
            return DeterministicHead(space)
        return DiagGaussianHead(space, log_std_init)
    raise ConfigError(f"action space {space} is not supported; Discrete or Box actions only")
