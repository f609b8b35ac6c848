"""Multilayer perceptrons with the fast CPU path inside (:mod:`rlcanon.nets.kernels`).

An :class:`MLP` keeps all its weights and biases in one flat parameter, ``flat``. Layer k's weight
is a (out, in) view of it, as in ``nn.Linear``. One parameter per network makes the optimizer step
and gradient clipping one call each, and gives the kernels stable NumPy views of the weights.
The module is an ordinary ``nn.Module`` for everything else: ``state_dict``, ``.to(device)``,
``torch.func.functional_call``, higher-order gradients.

With ``ensemble_size=E`` the MLP is E independent members evaluated in one batched pass: weights
are (E, out, in), the input is (B, in) shared by every member or (E, B, in), and the output is
(E, B, out). Twin critics and bootstrapped heads use it.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from rlcanon.core.config import check_memory
from rlcanon.errors import ConfigError
from rlcanon.nets import kernels

ACTIVATIONS = ("relu", "tanh")


class Layout:
    """Where each layer's weight and bias sit in the flat parameter vector."""

    def __init__(self, dims: Sequence[int], ensemble_size: int) -> None:
        lead = (ensemble_size,) if ensemble_size else ()
        self.shapes: list[tuple[tuple[int, ...], tuple[int, ...]]] = [
            ((*lead, b, a), (*lead, b)) for a, b in itertools.pairwise(dims)
        ]
        self.size = sum(math.prod(w) + math.prod(b) for w, b in self.shapes)

    def _slices(self) -> list[tuple[slice, tuple[int, ...], slice, tuple[int, ...]]]:
        out, off = [], 0
        for w, b in self.shapes:
            nw, nb = math.prod(w), math.prod(b)
            out.append((slice(off, off + nw), w, slice(off + nw, off + nw + nb), b))
            off += nw + nb
        return out

    def views(self, flat: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """NumPy views (weights, biases) of a flat array (the parameters or a gradient buffer)."""
        parts = self._slices()
        return [flat[sw].reshape(w) for sw, w, _, _ in parts], [flat[sb].reshape(b) for _, _, sb, b in parts]

    def tensor_views(self, flat: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Differentiable torch views (weights, biases) of the flat parameter."""
        parts = self._slices()
        return [flat[sw].view(w) for sw, w, _, _ in parts], [flat[sb].view(b) for _, _, sb, b in parts]


class MLP(nn.Module):
    """Linear layers of sizes ``in_dim, *hidden, out_dim`` with ``activation`` between them and
    ``out_activation`` ('identity' or 'tanh') after the last.

    With ``orthogonal``, hidden layers use orthogonal init with gain sqrt(2) and the output layer
    ``out_gain`` (the PPO implementation detail of Engstrom et al. 2020 and Huang et al. 2022);
    otherwise layers get ``nn.Linear``'s default init, with the output weights scaled by
    ``out_gain`` when it is given.
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
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation={activation!r} is not allowed; choose one of {list(ACTIVATIONS)}")
        if out_activation not in ("identity", "tanh"):
            raise ConfigError(
                f"out_activation={out_activation!r} is not allowed; choose 'identity' or 'tanh'"
            )
        self.dims = [int(in_dim), *(int(h) for h in hidden), int(out_dim)]
        self.acts = [activation] * (len(self.dims) - 2) + [out_activation]
        self.ensemble_size = int(ensemble_size)
        self.layout = Layout(self.dims, self.ensemble_size)
        # weights, gradients, two Adam moments, a target copy and temporaries: about 6 copies
        check_memory("hidden", 6 * 4 * self.layout.size)
        self.flat = nn.Parameter(self._initial_flat(out_gain, orthogonal))
        self._np_key: tuple[int, torch.Size] | None = None
        self._np_views: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])
        self._grad_key: np.ndarray | None = None
        self._grad_views: tuple[list[np.ndarray], list[np.ndarray]] = ([], [])

    def _initial_flat(self, out_gain: float | None, orthogonal: bool) -> torch.Tensor:
        members = []
        for _ in range(max(self.ensemble_size, 1)):
            layers = []
            for k, (a, b) in enumerate(itertools.pairwise(self.dims)):
                layer = nn.Linear(a, b)
                last = k == len(self.dims) - 2
                gain = (out_gain or 1.0) if last else math.sqrt(2)
                if orthogonal:
                    nn.init.orthogonal_(layer.weight, gain)
                    nn.init.zeros_(layer.bias)
                elif last and out_gain is not None:
                    layer.weight.data.mul_(out_gain)
                layers.append(layer)
            members.append(layers)
        parts: list[torch.Tensor] = []
        for k in range(len(self.dims) - 1):
            weight = torch.stack([m[k].weight.data for m in members])
            bias = torch.stack([m[k].bias.data for m in members])
            if not self.ensemble_size:
                weight, bias = weight[0], bias[0]
            parts += [weight.reshape(-1), bias.reshape(-1)]
        return torch.cat(parts).float()

    @property
    def in_dim(self) -> int:
        return self.dims[0]

    @property
    def out_dim(self) -> int:
        return self.dims[-1]

    def numpy_views(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(weights, biases) as NumPy views of the CPU parameter (rebuilt if it moved)."""
        flat = self._parameters["flat"]
        key = (flat.data_ptr(), flat.shape)  # type: ignore[union-attr]
        if key != self._np_key:
            self._np_views = self.layout.views(flat.detach().numpy())  # type: ignore[union-attr]
            self._np_key = key
        return self._np_views

    def grad_views(self, grad: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(weight, bias) views of a flat gradient buffer (cached for the buffer last seen)."""
        if grad is not self._grad_key:
            self._grad_views = self.layout.views(grad)
            self._grad_key = grad
        return self._grad_views

    def torch_forward(self, x: torch.Tensor, flat: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """The reference forward pass in plain torch ops (any device, dtype or transform)."""
        weights, biases = self.layout.tensor_views(flat)
        if member is not None:
            weights, biases = [w[member] for w in weights], [b[member] for b in biases]
        h = x
        for w, b, act in zip(weights, biases, self.acts):
            h = F.linear(h, w, b) if w.dim() == 2 else torch.baddbmm(b.unsqueeze(1), _members(h, w), w.mT)
            if act == "relu":
                h = torch.relu(h)
            elif act == "tanh":
                h = torch.tanh(h)
        return h

    def forward(self, x: torch.Tensor, member: int | None = None) -> torch.Tensor:
        """The outputs for ``x``; of ensemble member ``member`` alone (B, out) when it is given
        (TD3's actor loss reads the first critic only)."""
        if member is not None and not 0 <= member < self.ensemble_size:
            raise ValueError(f"member={member} is not a member of an ensemble of {self.ensemble_size}")
        if x.dim() != 2 and not self.ensemble_size:  # (..., in): run as (N, in) and restore
            return self(x.reshape(-1, x.shape[-1])).reshape(*x.shape[:-1], self.out_dim)
        if not kernels.usable(x, self.flat):
            return self.torch_forward(x, self.flat, member)
        if torch.is_grad_enabled() and (x.requires_grad or self.flat.requires_grad):
            return kernels.MLPFunction.apply(x, self.flat, self, member)  # type: ignore[no-any-return]
        return torch.from_numpy(kernels.infer(self, x.numpy(), member))

    def infer(self, x: np.ndarray) -> np.ndarray:
        """Outputs for a NumPy batch, without a graph: the acting path (kernels on the CPU)."""
        if kernels.fast_path_enabled() and self._parameters["flat"].is_cpu:  # type: ignore[union-attr]
            return kernels.infer(self, x)
        with torch.no_grad():
            out = self(torch.as_tensor(np.asarray(x, dtype=np.float32), device=self.flat.device))
        return out.cpu().numpy()  # type: ignore[no-any-return]

    def extra_repr(self) -> str:
        members = f", ensemble_size={self.ensemble_size}" if self.ensemble_size else ""
        return f"dims={self.dims}, acts={self.acts}{members}"


@contextlib.contextmanager
def frozen(module: nn.Module) -> Iterator[nn.Module]:
    """``module``'s parameters as constants inside the block: a loss may differentiate through the
    module (an actor's loss through its critic) without computing the module's own parameter
    gradients, which the MLP kernels then skip. Their previous flags come back afterwards."""
    flags = [(p, p.requires_grad) for p in module.parameters()]
    module.requires_grad_(False)
    try:
        yield module
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _members(h: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """The input as (E, B, in): a shared (B, in) input is broadcast to every member."""
    return h.expand(w.shape[0], *h.shape) if h.dim() == 2 else h
