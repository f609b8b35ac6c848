"""Noisy networks (Fortunato et al. 2018, "Noisy Networks for Exploration", ICLR).

A noisy linear layer (§3) computes

    y = (μ_w + σ_w ⊙ ε_w) x + μ_b + σ_b ⊙ ε_b

with learnable means μ and scales σ. We use the paper's factorised Gaussian noise (§3, used for
DQN and Dueling): one standard normal vector ε_in over the p inputs and one ε_out over the q
outputs give

    ε_w = f(ε_out) f(ε_in)ᵀ,   ε_b = f(ε_out),   f(x) = sgn(x) √|x|,

so a layer draws p + q numbers instead of p q + q. Initialisation (§3.2, factorised case):
μ ~ U[-1/√p, 1/√p] and σ = σ0/√p with σ0 = 0.5.

The noise factors f(ε_in) and f(ε_out) are buffers: they travel in ``state_dict`` (and so in a
checkpoint) and are redrawn only by :func:`resample_noise`, with a generator the caller passes in.
A fresh layer holds zero noise, that is its means only, until the first resampling.

For DQN the paper makes the fully connected layers noisy and keeps the convolutions plain (§3.1),
draws new noise for the online and the target network independently for each replay step (the ε
and ε' of the NoisyNet-DQN loss and of Algorithm 1, appendix C) and acts greedily with respect to
the noisy online network.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcanon.errors import ConfigError

ACTIVATIONS = ("relu", "tanh")
SIGMA0 = 0.5
"""σ0 of the factorised initialisation σ = σ0/√p (Fortunato et al. 2018, §3.2)."""


def scaled_noise(eps: torch.Tensor) -> torch.Tensor:
    """f(x) = sgn(x) √|x|, the transform of the factorised noise (Fortunato et al. 2018, §3)."""
    return eps.sign() * eps.abs().sqrt()


class NoisyLinear(nn.Module):
    """A factorised-Gaussian noisy linear layer, (..., in_features) -> (..., out_features)."""

    noise_in: torch.Tensor
    noise_out: torch.Tensor

    def __init__(
        self,
        in_features: int,
        out_features: int,
        sigma0: float = SIGMA0,
        *,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ConfigError(
                f"a noisy layer of {in_features} inputs and {out_features} outputs is not allowed; "
                f"both must be at least 1"
            )
        _check_sigma0(sigma0)
        self.in_features, self.out_features = int(in_features), int(out_features)
        bound = 1.0 / math.sqrt(self.in_features)
        self.weight_mu = nn.Parameter(torch.empty(self.out_features, self.in_features))
        self.bias_mu = nn.Parameter(torch.empty(self.out_features))
        nn.init.uniform_(self.weight_mu, -bound, bound, generator=generator)
        nn.init.uniform_(self.bias_mu, -bound, bound, generator=generator)
        # one scale for every weight and bias of the layer at first: σ0/√p (§3.2)
        self.weight_sigma = nn.Parameter(torch.full_like(self.weight_mu, sigma0 * bound))
        self.bias_sigma = nn.Parameter(torch.full_like(self.bias_mu, sigma0 * bound))
        self.register_buffer("noise_in", torch.zeros(self.in_features))
        self.register_buffer("noise_out", torch.zeros(self.out_features))
        self.noise_enabled = True

    def resample(self, generator: torch.Generator) -> None:
        """Draw new ε_in and ε_out (on the generator's device, then moved: the same draws on any device)."""
        eps = torch.randn(self.in_features + self.out_features, generator=generator, device=generator.device)
        eps = scaled_noise(eps).to(self.noise_in.device, self.noise_in.dtype)
        self.noise_in.copy_(eps[: self.in_features])
        self.noise_out.copy_(eps[self.in_features :])

    def weight_noise(self) -> torch.Tensor:
        """ε_w = f(ε_out) f(ε_in)ᵀ, an (out, in) rank-one matrix."""
        return torch.outer(self.noise_out, self.noise_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.noise_enabled:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = self.weight_mu + self.weight_sigma * self.weight_noise()
        bias = self.bias_mu + self.bias_sigma * self.noise_out
        return F.linear(x, weight, bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}"


class NoisyMLP(nn.Module):
    """Layers of sizes ``in_dim, *hidden, out_dim`` with ``activation`` between them and
    ``out_activation`` ('identity' or 'tanh') after the last, as :class:`rlcanon.nets.mlp.MLP`.

    Every layer is a :class:`NoisyLinear` (the paper's DQN makes all fully connected layers noisy,
    §3.1); with ``noisy_hidden=False`` only the output layer is, the hidden ones being plain
    ``nn.Linear`` with the same U[-1/√p, 1/√p] init. ``out_gain`` scales the output layer's mean
    weights, as MLP does. ``generator`` seeds the initial means (torch's global generator without
    it, as ``nn.Linear``). Ensembles and orthogonal init are not offered: the paper's init is part
    of the method.
    """

    def __init__(
        self,
        in_dim: int,
        hidden: Sequence[int],
        out_dim: int,
        activation: str = "relu",
        *,
        out_activation: str = "identity",
        out_gain: float | None = None,
        orthogonal: bool = False,
        ensemble_size: int = 0,
        sigma0: float = SIGMA0,
        noisy_hidden: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation={activation!r} is not allowed; choose one of {list(ACTIVATIONS)}")
        if out_activation not in ("identity", "tanh"):
            raise ConfigError(
                f"out_activation={out_activation!r} is not allowed; choose 'identity' or 'tanh'"
            )
        if orthogonal:
            raise ConfigError(
                "orthogonal=True is not allowed for a noisy network; it uses the NoisyNet init "
                "(mu ~ U[-1/sqrt(p), 1/sqrt(p)], sigma = sigma0/sqrt(p))"
            )
        if ensemble_size:
            raise ConfigError(
                f"ensemble_size={ensemble_size} is not allowed for a noisy network; it must be 0 "
                f"(noisy layers have no ensemble form)"
            )
        self.dims = [int(in_dim), *(int(h) for h in hidden), int(out_dim)]
        self.acts = [activation] * (len(self.dims) - 2) + [out_activation]
        layers: list[nn.Module] = []
        for k in range(len(self.dims) - 1):
            a, b = self.dims[k], self.dims[k + 1]
            last = k == len(self.dims) - 2
            if last or noisy_hidden:
                layers.append(NoisyLinear(a, b, sigma0, generator=generator))
            else:
                layers.append(_plain_linear(a, b, generator))
        self.layers = nn.ModuleList(layers)
        if out_gain is not None:
            with torch.no_grad():
                layers[-1].weight_mu.mul_(out_gain)  # type: ignore[operator]

    @property
    def in_dim(self) -> int:
        return self.dims[0]

    @property
    def out_dim(self) -> int:
        return self.dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The outputs for ``x`` (..., in_dim) under the noise drawn last."""
        h = x
        for layer, act in zip(self.layers, self.acts):
            h = layer(h)
            if act == "relu":
                h = torch.relu(h)
            elif act == "tanh":
                h = torch.tanh(h)
        return h

    def resample_noise(self, generator: torch.Generator) -> None:
        """Draw new noise for every noisy layer."""
        resample_noise(self, generator)

    def noise_off(self) -> contextlib.AbstractContextManager[nn.Module]:
        """Inside the block the network computes with its means only (deterministic evaluation)."""
        return noise_off(self)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a NumPy batch under the current noise, without a graph: the acting path."""
        device = next(self.parameters()).device
        with torch.no_grad():
            out = self(torch.as_tensor(np.asarray(x, dtype=np.float32), device=device))
        return out.cpu().numpy()  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        return f"dims={self.dims}, acts={self.acts}"


def noisy_layers(module: nn.Module) -> list[NoisyLinear]:
    """Every :class:`NoisyLinear` inside ``module`` (itself included), in registration order."""
    return [m for m in module.modules() if isinstance(m, NoisyLinear)]


def resample_noise(module: nn.Module, generator: torch.Generator) -> None:
    """Draw new noise for every noisy layer in ``module`` (a NoisyMLP, a Q network holding several,
    ...), layer after layer from ``generator``: the same generator state gives the same noise."""
    with torch.no_grad():
        for layer in noisy_layers(module):
            layer.resample(generator)


@contextlib.contextmanager
def noise_off(module: nn.Module) -> Iterator[nn.Module]:
    """Every noisy layer in ``module`` computes y = μ_w x + μ_b inside the block; the previous
    switches come back afterwards. The noise buffers are left as they are."""
    layers = noisy_layers(module)
    flags = [layer.noise_enabled for layer in layers]
    for layer in layers:
        layer.noise_enabled = False
    try:
        yield module
    finally:
        for layer, flag in zip(layers, flags):
            layer.noise_enabled = flag


def _plain_linear(a: int, b: int, generator: torch.Generator | None) -> nn.Linear:
    layer = nn.Linear(a, b)
    bound = 1.0 / math.sqrt(a)
    nn.init.uniform_(layer.weight, -bound, bound, generator=generator)
    nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
    return layer


def _check_sigma0(sigma0: float) -> None:
    if not (isinstance(sigma0, (int, float)) and math.isfinite(sigma0) and sigma0 >= 0):
        raise ConfigError(
            f"sigma0={sigma0!r} is not allowed; it must be a finite number >= 0 (the paper uses 0.5)"
        )
