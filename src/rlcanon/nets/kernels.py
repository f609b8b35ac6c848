"""NumPy forward/backward kernels for small MLPs, trained in place on torch parameters.

Why: for the networks RL uses on vector observations (2-3 layers of 64-256 units, batches of
32-256) a torch training step is dominated by per-op dispatch and autograd bookkeeping rather than
by arithmetic (single-threaded GEMMs run at the same speed in torch and NumPy here). A hand-written
backward for Linear + ReLU/Tanh stacks is short, exact, and checked against torch autograd in
``tests/unit/test_kernels.py``; ``benchmarks/bench_ops.py`` measures the step both ways.

How: :class:`FlatParams` rebinds every parameter of the given modules to a view of one contiguous
buffer (the modules stay ordinary ``nn.Module`` objects: state_dict, checkpoints and evaluation are
unchanged) and exposes one flat gradient buffer. :class:`MLPKernel` runs an ``nn.Sequential`` in
NumPy on those views and writes its gradients into the flat buffer, so one fused torch Adam step on
the flat parameter updates the whole model.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from torch import nn

from rlcanon.nets import gemm
from rlcanon.nets.activations import FastTanh


class FlatParams:
    """All parameters of ``modules`` as views of one flat float32 tensor, with a flat gradient."""

    def __init__(self, modules: Iterable[nn.Module]) -> None:
        params = [p for m in modules for p in m.parameters()]
        total = sum(p.numel() for p in params)
        flat = torch.zeros(total, dtype=torch.float32)
        self.offsets: dict[int, tuple[int, tuple[int, ...]]] = {}
        off = 0
        for p in params:
            n = p.numel()
            view = flat[off : off + n].view_as(p)
            view.copy_(p.data)
            p.data = view
            self.offsets[id(p)] = (off, tuple(p.shape))
            off += n
        self.param = nn.Parameter(flat)
        self.param.grad = torch.zeros(total, dtype=torch.float32)
        self.grad = self.param.grad.numpy()

    def grad_of(self, p: torch.Tensor) -> np.ndarray:
        off, shape = self.offsets[id(p)]
        return self.grad[off : off + int(np.prod(shape, dtype=np.int64))].reshape(shape)

    def clip_grad_norm(self, max_norm: float) -> float:
        """Scale the gradient to at most ``max_norm`` (same rule as torch's clip_grad_norm_)."""
        norm = float(np.sqrt(np.dot(self.grad, self.grad)))
        coef = max_norm / (norm + 1e-6)
        if coef < 1.0:
            self.grad *= coef
        return norm


_RELU, _TANH, _NONE = 0, 1, 2


def _activation_code(module: nn.Module) -> int:
    if isinstance(module, nn.ReLU):
        return _RELU
    if isinstance(module, (nn.Tanh, FastTanh)):
        return _TANH
    raise TypeError(f"no NumPy kernel for {type(module).__name__}")


class MLPKernel:
    """Forward and backward of an ``nn.Sequential`` of Linear layers with ReLU/Tanh between them."""

    def __init__(self, seq: nn.Sequential, flat: FlatParams | None = None) -> None:
        self.weights: list[np.ndarray] = []
        self.biases: list[np.ndarray] = []
        self.acts: list[int] = []
        self.grad_w: list[np.ndarray] = []
        self.grad_b: list[np.ndarray] = []
        for layer in seq:
            if isinstance(layer, nn.Linear):
                self.weights.append(layer.weight.detach().numpy())  # shares memory: (out, in)
                self.biases.append(layer.bias.detach().numpy())
                self.acts.append(_NONE)
                if flat is not None:
                    self.grad_w.append(flat.grad_of(layer.weight))
                    self.grad_b.append(flat.grad_of(layer.bias))
            else:
                self.acts[-1] = _activation_code(layer)

    @staticmethod
    def supports(seq: nn.Module) -> bool:
        if not isinstance(seq, nn.Sequential):
            return False
        try:
            for layer in seq:
                if not isinstance(layer, nn.Linear):
                    _activation_code(layer)
        except TypeError:
            return False
        return True

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """Output and the cache of layer inputs needed by :meth:`backward`."""
        inputs = [x]
        h = x
        for w, b, act in zip(self.weights, self.biases, self.acts):
            h = gemm.linear(h, w, b, relu=act == _RELU)
            if act == _TANH:
                np.tanh(h, out=h)
            inputs.append(h)
        return h, inputs

    def backward(self, inputs: list[np.ndarray], dout: np.ndarray) -> None:
        """Write d(loss)/d(parameters) into the flat gradient, given d(loss)/d(output)."""
        d = dout
        ones = np.ones(len(d), dtype=np.float32)
        for k in range(len(self.weights) - 1, -1, -1):
            gemm.grad_weight(d, inputs[k], self.grad_w[k])
            np.matmul(ones, d, out=self.grad_b[k])  # column sums; 3x faster than np.sum here
            if k == 0:
                break
            d = gemm.grad_input(d, self.weights[k])
            act = self.acts[k - 1]
            if act == _RELU:
                d *= inputs[k] > 0
            elif act == _TANH:
                d *= 1.0 - inputs[k] * inputs[k]
