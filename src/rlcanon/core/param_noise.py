"""Parameter-space noise (Plappert et al. 2018, "Parameter Space Noise for Exploration", ICLR).

The agent acts with a perturbed copy of its policy, θ̃ = θ + N(0, σ² I) (§2), resampled from time
to time, while learning updates θ itself. One σ fits every layer in the paper because its networks
put layer normalisation between the perturbed layers (§2, "Perturbing deep neural networks").
Our MLPs have none, so one σ meets layers of different scales; the adaptive scaling below keeps
the *effect* on the policy at the target either way, and the parameters of normalisation layers
(LayerNorm, GroupNorm, batch norms), where a network has them, are copied unperturbed.

Adaptive scaling (§2, "Adaptive noise scaling"), with α = 1.01:

    σ_{k+1} = α σ_k      if d(π, π̃) ≤ δ,
              σ_k / α    otherwise.

The distance d and its target δ depend on the policy (appendix C):

* DQN: d = KL(softmax Q(s, ·) ‖ softmax Q̃(s, ·)) averaged over states, and δ = −log(1 − ε + ε/|A|),
  the KL divergence of the greedy policy from the ε-greedy one, KL(greedy ‖ ε-greedy): the
  greedy action has probability 1 under the first and 1 − ε + ε/|A| under the second;
* DDPG (deterministic actors): d = sqrt(mean over states and action dimensions of (π(s) − π̃(s))²),
  and δ is the standard deviation of the action-space noise it replaces (0.2 in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from rlcanon.core.config import check_positive, check_range
from rlcanon.core.validate import Map, Num, check_json
from rlcanon.errors import CheckpointError, ConfigError

ADAPTATION_FACTOR = 1.01
"""α of the adaptive noise scaling (Plappert et al. 2018, §2: "we always use α = 1.01")."""
DDPG_ACTION_STD = 0.2
"""δ for deterministic actors: the action-space σ it stands in for (Plappert et al. 2018, appendix C)."""

_NORM_LAYERS = (nn.LayerNorm, nn.GroupNorm, nn.modules.batchnorm._NormBase)


def perturb_(perturbed: nn.Module, source: nn.Module, sigma: float, generator: torch.Generator) -> None:
    """Set ``perturbed``'s parameters to ``source``'s plus N(0, σ²) noise, in place.

    ``perturbed`` must have ``source``'s architecture (a deep copy made once). Buffers are copied
    exactly; parameters of normalisation layers are copied without noise. The noise is drawn on
    the generator's device and then moved, so the same generator state gives the same perturbation
    on any device.
    """
    check_positive("sigma", sigma, allow_zero=True)
    src = dict(source.named_parameters())
    dst = dict(perturbed.named_parameters())
    if src.keys() != dst.keys() or any(src[k].shape != dst[k].shape for k in src):
        raise ConfigError(
            "perturb_ needs two modules of the same architecture (make the perturbed one with "
            "copy.deepcopy(source)); their parameter names or shapes differ"
        )
    unperturbed = {
        f"{name}.{p}" if name else p
        for name, m in source.named_modules()
        if isinstance(m, _NORM_LAYERS)
        for p, _ in m.named_parameters(recurse=False)
    }
    with torch.no_grad():
        for name, target in dst.items():
            target.copy_(src[name])
            if name in unperturbed or sigma == 0:
                continue
            noise = torch.randn(target.shape, generator=generator, device=generator.device)
            target.add_(noise.to(target.device, target.dtype), alpha=sigma)
        src_buffers = dict(source.named_buffers())
        for name, buffer in perturbed.named_buffers():
            buffer.copy_(src_buffers[name])


def adapt_sigma(sigma: float, distance: float, target: float, factor: float = ADAPTATION_FACTOR) -> float:
    """σ·α when the perturbed policy is within ``target`` of the unperturbed one, σ/α when it is
    farther (Plappert et al. 2018, §2). A NaN distance counts as too far."""
    return sigma * factor if distance <= target else sigma / factor


def epsilon_greedy_kl_target(epsilon: float, n_actions: int) -> float:
    """δ = −log(1 − ε + ε/|A|) = KL(greedy ‖ ε-greedy) (Plappert et al. 2018, appendix C): the
    KL distance at which parameter noise explores as much as ε-greedy with this ε."""
    check_range("epsilon", epsilon, 0.0, 1.0)
    if isinstance(n_actions, bool) or not isinstance(n_actions, int) or n_actions < 1:
        raise ConfigError(f"n_actions={n_actions!r} is not allowed; it must be an integer >= 1")
    return -math.log1p(-epsilon + epsilon / n_actions)


def q_policy_distance(q_values: Any, perturbed_q_values: Any) -> float:
    """Mean over states of KL(softmax Q ‖ softmax Q̃) for (B, A) Q values of the unperturbed and
    the perturbed network (Plappert et al. 2018, appendix C); Q values may be tensors or arrays."""
    q, q_tilde = _pair(q_values, perturbed_q_values, "q_values")
    if q.dim() != 2:
        raise ConfigError(
            f"q_values of shape {tuple(q.shape)} are not allowed; they must be (batch, actions)"
        )
    log_p, log_p_tilde = F.log_softmax(q, dim=-1), F.log_softmax(q_tilde, dim=-1)
    kl = (log_p.exp() * (log_p - log_p_tilde)).sum(dim=-1)
    return float(kl.mean())


def action_distance(actions: Any, perturbed_actions: Any) -> float:
    """sqrt(mean over states and action dimensions of (π(s) − π̃(s))²) for the actions of a
    deterministic actor and of its perturbed copy (Plappert et al. 2018, appendix C)."""
    a, a_tilde = _pair(actions, perturbed_actions, "actions")
    return float(torch.sqrt(torch.mean((a - a_tilde) ** 2)))


def _pair(first: Any, second: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.as_tensor(first, dtype=torch.float64).detach().cpu()
    b = torch.as_tensor(second, dtype=torch.float64).detach().cpu()
    if a.shape != b.shape or a.numel() == 0:
        raise ConfigError(
            f"{name} of shapes {tuple(a.shape)} and {tuple(b.shape)} are not allowed; the "
            f"unperturbed and perturbed outputs must have the same, non-empty shape"
        )
    return a, b


@dataclass
class AdaptiveParamNoise:
    """The adaptive scale σ of parameter-space noise (Plappert et al. 2018, §2)."""

    sigma: float
    """The current standard deviation of the parameter perturbation."""
    target: float
    """δ: the policy distance the perturbation should keep (``epsilon_greedy_kl_target`` for DQN,
    ``DDPG_ACTION_STD`` for deterministic actors)."""
    factor: float = ADAPTATION_FACTOR
    """α: σ is multiplied or divided by it at each adaptation (the paper's 1.01)."""

    def __post_init__(self) -> None:
        check_positive("sigma", self.sigma)
        check_positive("target", self.target)
        if not (math.isfinite(self.factor) and self.factor >= 1.0):
            raise ConfigError(f"factor={self.factor!r} is not allowed; it must be a finite number >= 1")

    def adapt(self, distance: float) -> float:
        """Grow σ if ``distance`` ≤ δ, shrink it otherwise; returns the new σ."""
        self.sigma = adapt_sigma(self.sigma, float(distance), self.target, self.factor)
        return self.sigma

    def state_dict(self) -> dict[str, float]:
        return {"sigma": float(self.sigma), "target": float(self.target), "factor": float(self.factor)}

    def load_state_dict(self, state: dict[str, Any], where: str = "param_noise") -> None:
        """Restore from :meth:`state_dict`; every value must be finite, σ and δ > 0 and α ≥ 1."""
        check_json(where, state, Map({"sigma": Num(), "target": Num(), "factor": Num(low=1.0)}))
        for key in ("sigma", "target"):
            if state[key] <= 0:
                raise CheckpointError(f"{where}: field {key} is {state[key]!r}, expected a finite number > 0")
        self.sigma, self.target, self.factor = (float(state[k]) for k in ("sigma", "target", "factor"))
