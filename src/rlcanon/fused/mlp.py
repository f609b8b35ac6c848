"""MLP kernels as fused losses use them: forward with a cache, backward into a fresh flat gradient."""

from __future__ import annotations

import numpy as np

from rlcanon.nets import kernels
from rlcanon.nets.mlp import MLP


def mlp_forward(mlp: MLP, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    weights, biases = mlp.numpy_views()
    return kernels.forward(weights, biases, mlp.acts, x)


def mlp_backward(
    mlp: MLP, cache: list[np.ndarray], dout: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """d(loss)/d(mlp.flat) given d(loss)/d(output), written into ``out`` if given (a loop of steps
    reuses one buffer: fresh 100-kB buffers cost page faults every step)."""
    grad = np.empty(mlp.layout.size, dtype=np.float32) if out is None else out  # every element is written
    grad_w, grad_b = mlp.grad_views(grad)
    kernels.backward(mlp.numpy_views()[0], mlp.acts, cache, dout, grad_w, grad_b, False)
    return grad
