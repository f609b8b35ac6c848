"""Activations with fast CPU kernels.

On the CPU builds of torch we measured, ``torch.tanh`` on a 256x64 float32 tensor takes ~40 us,
ten times NumPy's ``np.tanh`` (~4 us); in a PPO update for CartPole that one op was the largest
cost. :class:`FastTanh` computes tanh (and its gradient, 1 - y^2) with NumPy on CPU tensors and
falls back to ``torch.tanh`` elsewhere. ``benchmarks/bench_ops.py`` measures both.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class _NumpyTanh(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        y = torch.from_numpy(np.tanh(x.detach().numpy()))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        (y,) = ctx.saved_tensors
        y_np = y.numpy()
        return torch.from_numpy(grad.contiguous().numpy() * (1.0 - y_np * y_np))


def fast_tanh(x: torch.Tensor) -> torch.Tensor:
    if (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and not torch.is_grad_enabled()
        and not x.requires_grad
    ):
        return torch.from_numpy(np.tanh(x.numpy()))
    if x.device.type == "cpu" and x.dtype == torch.float32:
        return _NumpyTanh.apply(x)
    return torch.tanh(x)


class FastTanh(nn.Tanh):
    """``nn.Tanh`` with a NumPy kernel on CPU (same maths, same gradient)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fast_tanh(x)
