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
import typing
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcanon.errors import ConfigError
from rlcanon.nets import kernels

ACTIVATIONS = ("relu", "tanh")
FACTORISED_ROWS = 8
"""Up to this many rows the NumPy acting path applies the noise in factorised form (two products
with vectors, about 40% faster at one row); beyond, forming the noisy weight once is cheaper."""
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
        self._np_key: tuple[int, ...] | None = None
        self._np_views: list[np.ndarray] = []

    def resample(self, generator: torch.Generator) -> None:
        """Draw new ε_in and ε_out (on the generator's device, then moved: a CPU generator gives
        the same noise on any device)."""
        _resample([self], generator)

    def weight_noise(self) -> torch.Tensor:
        """ε_w = f(ε_out) f(ε_in)ᵀ, an (out, in) rank-one matrix."""
        return torch.outer(self.noise_out, self.noise_in)

    def set_noise(self, scaled: torch.Tensor) -> None:
        """Store already transformed noise: ``scaled`` is (f(ε_in), f(ε_out)) concatenated."""
        self.noise_in.copy_(scaled[: self.in_features])
        self.noise_out.copy_(scaled[self.in_features :])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.noise_enabled:
            return F.linear(x, self.weight_mu, self.bias_mu)
        weight = torch.addcmul(self.weight_mu, self.weight_sigma, self.weight_noise())
        bias = torch.addcmul(self.bias_mu, self.bias_sigma, self.noise_out)
        return F.linear(x, weight, bias)

    def numpy_forward(self, h: np.ndarray) -> np.ndarray:
        """The layer on a (B, in) float32 NumPy batch (CPU float32 only), without a graph."""
        w_mu, w_sigma, b_mu, b_sigma, n_in, n_out = self.numpy_views()
        if not self.noise_enabled:
            return h @ w_mu.T + b_mu  # type: ignore[no-any-return]
        if len(h) <= FACTORISED_ROWS:
            # (σ ⊙ uvᵀ) x = u ⊙ (σ (v ⊙ x)): vector ops instead of forming the (out, in) weight
            return h @ w_mu.T + n_out * ((h * n_in) @ w_sigma.T) + (b_mu + b_sigma * n_out)  # type: ignore[no-any-return]
        return h @ (w_mu + w_sigma * np.outer(n_out, n_in)).T + (b_mu + b_sigma * n_out)  # type: ignore[no-any-return]

    def numpy_views(self) -> list[np.ndarray]:
        """NumPy views of (μ_w, σ_w, μ_b, σ_b, f(ε_in), f(ε_out)) on the CPU, rebuilt when a tensor
        moved (``.to``); in-place changes (optimizer steps, ``load_state_dict``) show through."""
        params, buffers = self._parameters, self._buffers
        names = ("weight_mu", "weight_sigma", "bias_mu", "bias_sigma")
        tensors = [typing.cast(torch.Tensor, params[k]) for k in names]
        tensors += [buffers["noise_in"], buffers["noise_out"]]  # type: ignore[list-item]
        key = tuple(t.data_ptr() for t in tensors)
        if key != self._np_key:
            self._np_views = [t.detach().numpy() for t in tensors]
            self._np_key = key
        return self._np_views

    def fast_path(self) -> bool:
        """Whether the NumPy path can serve this layer (CPU, float32, fast path switched on)."""
        w = self._parameters["weight_mu"]
        return kernels.fast_path_enabled() and w.is_cpu and w.dtype == torch.float32  # type: ignore[union-attr]

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
        # plain references for the acting path (module attribute lookups cost microseconds there)
        self._layer_list: list[nn.Module] = layers
        self._noisy_list = [m for m in layers if isinstance(m, NoisyLinear)]
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
        """Draw new noise for every noisy layer (as :func:`resample_noise`)."""
        _resample(self._noisy_list, generator)

    def noise_off(self) -> contextlib.AbstractContextManager[nn.Module]:
        """Inside the block the network computes with its means only (deterministic evaluation)."""
        return noise_off(self)

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a NumPy batch under the current noise, without a graph: the acting path.

        On the CPU in float32 it runs in NumPy (a torch call per op costs more than the arithmetic
        of a small network at batch size 1); elsewhere, or with the fast path switched off
        (:func:`rlcanon.nets.kernels.set_fast_path`), it runs :meth:`forward`."""
        weight = self._noisy_list[-1].weight_mu
        if not self._noisy_list[-1].fast_path():
            with torch.no_grad():
                out = self(torch.as_tensor(np.asarray(x), dtype=weight.dtype, device=weight.device))
            return out.cpu().numpy()  # type: ignore[no-any-return]
        h = np.asarray(x, dtype=np.float32)
        for layer, act in zip(self._layer_list, self.acts):
            if isinstance(layer, NoisyLinear):
                h = layer.numpy_forward(h)
            else:
                assert isinstance(layer, nn.Linear)
                h = h @ layer.weight.detach().numpy().T + layer.bias.detach().numpy()
            if act == "relu":
                np.maximum(h, 0.0, out=h)
            elif act == "tanh":
                np.tanh(h, out=h)
        return h

    def extra_repr(self) -> str:
        return f"dims={self.dims}, acts={self.acts}"


def noisy_layers(module: nn.Module) -> list[NoisyLinear]:
    """Every :class:`NoisyLinear` inside ``module`` (itself included), in registration order."""
    return [m for m in module.modules() if isinstance(m, NoisyLinear)]


def resample_noise(module: nn.Module, generator: torch.Generator) -> None:
    """Draw new noise for every noisy layer in ``module`` (a NoisyMLP, a Q network holding several,
    ...) from ``generator``, in one draw split over the layers in registration order: the same
    generator state gives the same noise. The draw happens on the generator's device and is then
    moved, so a CPU generator gives the same noise on any device."""
    _resample(noisy_layers(module), generator)


def _resample(layers: Sequence[NoisyLinear], generator: torch.Generator) -> None:
    sizes = [layer.in_features + layer.out_features for layer in layers]
    with torch.no_grad():
        eps = torch.randn(sum(sizes), generator=generator, device=generator.device)
        if not eps.is_cpu:
            scaled = scaled_noise(eps)
        else:
            # f in NumPy for every layer device: its square root is correctly rounded, torch's
            # vectorised float32 one on the CPU can differ by an ulp
            draws = eps.numpy()
            scaled_array = np.copysign(np.sqrt(np.abs(draws)), draws)
            if all(layer.fast_path() for layer in layers):
                # write into the buffers' NumPy views: microseconds where torch ops cost tens
                start = 0
                for layer in layers:
                    views = layer.numpy_views()
                    middle = start + layer.in_features
                    end = middle + layer.out_features
                    views[4][...] = scaled_array[start:middle]
                    views[5][...] = scaled_array[middle:end]
                    start = end
                return
            scaled = torch.from_numpy(scaled_array)
        for layer, chunk in zip(layers, scaled.split(sizes)):
            layer.set_noise(chunk)


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
