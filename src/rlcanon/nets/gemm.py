"""The three matrix products of a Linear layer's training step, on the fastest fp32 GEMM at hand.

NumPy's GEMM is OpenBLAS. torch's default CPU GEMM is MKL, which on non-Intel CPUs takes its AVX2
path. torch also bundles oneDNN, whose fp32 matmul uses AVX-512 wherever the CPU has it; on this
project's reference machine it runs a 64x256x256 product in ~55 us against ~80 us for OpenBLAS and
~90 us for MKL (``benchmarks/bench_ops.py`` measures it). oneDNN costs ~15 us more per call, so it
is used only for products of at least :data:`ONEDNN_MIN_MACS` multiply-adds or
:data:`ONEDNN_MIN_OUTPUTS` output elements.

torch reaches oneDNN's fp32 linear through ``torch.ops.mkldnn._linear_pointwise``, the operator its
CPU compiler emits. It is a private operator, so :func:`onednn_available` checks that it exists and
agrees with NumPy before anything uses it, and everything falls back to NumPy otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch

ONEDNN_MIN_MACS = 3_000_000
"""Products smaller than this (rows x in x out) stay on NumPy: oneDNN's per-call cost outweighs
its faster inner loop below ~2-3M multiply-adds (measured crossover on 64/128/256-wide layers)."""

ONEDNN_MIN_OUTPUTS = 65_536
"""Wide, shallow products (a 4-input first layer over 1024 rows) are bound by writing the output:
oneDNN writes it once with bias and ReLU fused (37 us for 1024x4->256) where NumPy makes three
passes (160 us)."""

_enabled = True


@cache
def _onednn_op() -> Callable[..., torch.Tensor] | None:
    try:
        if not torch.backends.mkldnn.is_available():
            return None
        op: Any = torch.ops.mkldnn._linear_pointwise
        rng = np.random.default_rng(0)
        x = rng.standard_normal((8, 16), dtype=np.float32)
        w = rng.standard_normal((12, 16), dtype=np.float32)
        b = rng.standard_normal(12, dtype=np.float32)
        got = op(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), "relu", [], "").numpy()
        want = np.maximum(x.astype(np.float64) @ w.T.astype(np.float64) + b, 0.0)
        if got.shape != want.shape or not np.allclose(got, want, rtol=1e-4, atol=1e-4):
            return None
        return op  # type: ignore[no-any-return]
    except (AttributeError, RuntimeError, TypeError):
        return None


def onednn_available() -> bool:
    """Whether oneDNN GEMMs are in use (present, numerically checked, and not switched off)."""
    return _enabled and _onednn_op() is not None


def set_onednn(enabled: bool) -> None:
    """Switch the oneDNN path on or off (off gives pure NumPy; tests compare the two)."""
    global _enabled
    _enabled = enabled


def _op_for(rows: int, inner: int, cols: int) -> Callable[..., torch.Tensor] | None:
    """The oneDNN operator when a (rows x inner) @ (inner x cols) product should use it, else None."""
    if (rows * inner * cols < ONEDNN_MIN_MACS and rows * cols < ONEDNN_MIN_OUTPUTS) or not _enabled:
        return None
    return _onednn_op()


def linear(x: np.ndarray, w: np.ndarray, b: np.ndarray, relu: bool) -> np.ndarray:
    """``x @ w.T + b``, then ReLU in place when ``relu``; ``w`` is (out, in) as in ``nn.Linear``."""
    op = _op_for(x.shape[0], x.shape[1], w.shape[0])
    if op is not None:
        post_op = "relu" if relu else "none"
        t = op(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), post_op, [], "")
        return t.numpy()  # type: ignore[no-any-return]
    h = x @ w.T
    h += b
    if relu:
        np.maximum(h, 0.0, out=h)
    return h


def grad_weight(d: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """``out[...] = d.T @ x``: the weight gradient from output gradients ``d`` and inputs ``x``."""
    op = _op_for(d.shape[1], d.shape[0], x.shape[1])
    if op is not None:
        # a contiguous d.T costs ~3 us and saves ~10 us inside oneDNN
        d_t = torch.from_numpy(np.ascontiguousarray(d.T))
        out[...] = op(d_t, torch.from_numpy(x).T, None, "none", [], "").numpy()
    else:
        np.matmul(d.T, x, out=out)


def grad_input(d: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``d @ w``: the gradient with respect to a Linear layer's input."""
    op = _op_for(d.shape[0], d.shape[1], w.shape[1])
    if op is not None:
        t = op(torch.from_numpy(d), torch.from_numpy(w).T, None, "none", [], "")
        return t.numpy()  # type: ignore[no-any-return]
    return d @ w
