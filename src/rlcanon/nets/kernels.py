"""The fast CPU path of :class:`~rlcanon.nets.mlp.MLP`: NumPy/oneDNN forward and backward kernels
behind a ``torch.autograd.Function``.

Why: for the networks RL uses on vector observations (2-3 layers of 64-256 units, batches of
32-256) a torch training step is dominated by per-op dispatch and autograd bookkeeping rather than
by arithmetic. One autograd node for the whole MLP, whose forward and backward are a handful of
GEMM calls (:mod:`rlcanon.nets.gemm`), removes most of that. Losses stay ordinary torch code: the
node's backward is the MLP's own chain rule, exact, and checked against torch autograd in
``tests/unit/test_mlp.py``; ``benchmarks/bench_ops.py`` measures both paths.

When the kernels cannot serve, :class:`~rlcanon.nets.mlp.MLP` runs plain torch ops instead:
on devices other than the CPU, for dtypes other than float32, under ``torch.func`` transforms
(``grad``, ``vmap``) and while tracing or compiling. A backward that must itself be differentiable
(``create_graph=True``) recomputes the layer in torch, so higher-order gradients are exact.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from rlcanon.nets import gemm

if TYPE_CHECKING:
    from rlcanon.nets.mlp import MLP

RELU, TANH, IDENTITY = "relu", "tanh", "identity"
INFERENCE_BLOCK = 1024
"""Rows per block when a large batch goes through the kernels without a graph: blocks of 1024 rows
keep the activations in cache (about 30% faster than one 8192-row pass for a 256-unit MLP)."""

_enabled = True


def set_fast_path(enabled: bool) -> None:
    """Switch the NumPy kernels on or off process-wide (off: every MLP runs plain torch ops).
    Tests and benchmarks use it to compare the two paths."""
    global _enabled
    _enabled = enabled


def fast_path_enabled() -> bool:
    return _enabled


@functools.cache
def _transform_probe() -> Callable[[], bool] | None:
    """A function telling whether a ``torch.func`` transform is active, or None when this torch has
    no way to tell (then the kernels are never used under autograd, which is always correct)."""
    try:
        peek = torch._C._functorch.peek_interpreter_stack
        if peek() is not None:  # nothing is active at import time; anything else means another API
            return None
        return lambda: peek() is not None
    except (AttributeError, RuntimeError):
        return None


def usable(x: torch.Tensor, flat: torch.Tensor) -> bool:
    """Whether the kernels can run this forward pass (else the caller runs torch ops)."""
    if not (_enabled and x.device.type == "cpu" and flat.device.type == "cpu"):
        return False
    if x.dtype != torch.float32 or flat.dtype != torch.float32 or x.layout != torch.strided:
        return False
    probe = _transform_probe()
    if probe is None or probe():
        return False
    return not (torch.jit.is_tracing() or _is_compiling())


def _is_compiling() -> bool:
    """``torch.compiler.is_compiling`` (torch >= 2.3), or its older home in ``torch._dynamo``."""
    check: Callable[[], bool] | None = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    if check is None:
        check = getattr(getattr(torch, "_dynamo", None), "is_compiling", lambda: False)
    return bool(check()) if check is not None else False


# ---- kernels on NumPy arrays ----------------------------------------------------------------


def forward(
    weights: list[np.ndarray], biases: list[np.ndarray], acts: list[str], x: np.ndarray
) -> tuple[np.ndarray, list[Any]]:
    """Output of the MLP and the inputs of every layer (what :func:`backward` needs).

    ``weights[k]`` is (out, in) as in ``nn.Linear``, or (E, out, in) for an ensemble of E members,
    whose input is (B, in), shared by all members, or (E, B, in)."""
    if weights[0].ndim == 3:
        return _ensemble_forward(weights, biases, acts, x)
    inputs = [x]
    h = x
    for w, b, act in zip(weights, biases, acts):
        h = gemm.linear(h, w, b, relu=act == RELU)
        if act == TANH:
            np.tanh(h, out=h)
        inputs.append(h)
    return h, inputs


def _ensemble_forward(
    weights: list[np.ndarray], biases: list[np.ndarray], acts: list[str], x: np.ndarray
) -> tuple[np.ndarray, list[Any]]:
    """Each member as its own MLP: one oneDNN product per member and layer is ~1.7x faster than
    NumPy's stacked matmul here, and no (E, B, hidden) array is assembled between the layers. The
    cache is [whether the input is shared, each member's cache]."""
    outs, caches = [], []
    for e in range(len(weights[0])):
        out, cache = forward([w[e] for w in weights], [b[e] for b in biases], acts, _member(x, e))
        outs.append(out)
        caches.append(cache)
    return np.stack(outs), [x.ndim == 2, *caches]


def backward(
    weights: list[np.ndarray],
    acts: list[str],
    inputs: list[Any],
    dout: np.ndarray,
    grad_w: list[np.ndarray],
    grad_b: list[np.ndarray],
    need_dx: bool,
    need_params: bool = True,
) -> np.ndarray | None:
    """Write d(loss)/d(weights and biases) into ``grad_w`` and ``grad_b`` given d(loss)/d(output)
    (unless ``need_params`` is False: a loss that differentiates through a frozen network, such as
    an actor's loss through its critic, needs only the input gradient); return d(loss)/d(input)
    when ``need_dx``. ``inputs`` is the cache :func:`forward` returned."""
    if weights[0].ndim == 3:
        return _ensemble_backward(weights, acts, inputs, dout, grad_w, grad_b, need_dx, need_params)
    d = dout
    ones = np.ones(len(d), dtype=np.float32)  # (bias gradients as column sums)
    for k in range(len(weights) - 1, -1, -1):
        act, y = acts[k], inputs[k + 1]
        out = None if d is dout else d  # never write into the caller's array
        if act == RELU:
            d = np.multiply(d, y > 0, out=out)
        elif act == TANH:
            d = np.multiply(d, 1.0 - y * y, out=out)
        if need_params:
            gemm.grad_weight(d, inputs[k], grad_w[k])
            np.matmul(ones, d, out=grad_b[k])  # column sums; 3x faster than np.sum here
        if k == 0 and not need_dx:
            return None
        d = gemm.grad_input(d, weights[k])
    return d


def _ensemble_backward(
    weights: list[np.ndarray],
    acts: list[str],
    inputs: list[Any],
    dout: np.ndarray,
    grad_w: list[np.ndarray],
    grad_b: list[np.ndarray],
    need_dx: bool,
    need_params: bool,
) -> np.ndarray | None:
    shared, caches = inputs[0], inputs[1:]
    dxs: list[np.ndarray] = []
    for e, cache in enumerate(caches):
        gw = [g[e] for g in grad_w] if need_params else []
        gb = [g[e] for g in grad_b] if need_params else []
        dx = backward([w[e] for w in weights], acts, cache, dout[e], gw, gb, need_dx, need_params)
        if dx is not None:
            dxs.append(dx)
    if not need_dx:
        return None
    if not shared:
        return np.stack(dxs)
    total = dxs[0]
    for dx in dxs[1:]:
        total = total + dx
    return total


def _member(x: np.ndarray, e: int) -> np.ndarray:
    """Ensemble member e's input: a (B, in) input is shared by every member, an (E, B, in) one is not."""
    return x if x.ndim == 2 else x[e]


def member_views(
    views: tuple[list[np.ndarray], list[np.ndarray]], member: int | None
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The (weights, biases) of one ensemble member (all of them when ``member`` is None)."""
    if member is None:
        return views
    return [w[member] for w in views[0]], [b[member] for b in views[1]]


def infer(mlp: MLP, x: np.ndarray, member: int | None = None) -> np.ndarray:
    """Forward pass with no graph, in blocks of :data:`INFERENCE_BLOCK` rows (of one ensemble
    ``member`` only, when given)."""
    weights, biases = member_views(mlp.numpy_views(), member)
    if x.dtype != np.float32 or not x.flags.c_contiguous:
        x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or len(x) <= INFERENCE_BLOCK:
        return forward(weights, biases, mlp.acts, x)[0]
    rows = range(0, len(x), INFERENCE_BLOCK)
    return np.concatenate([forward(weights, biases, mlp.acts, x[i : i + INFERENCE_BLOCK])[0] for i in rows])


# ---- the autograd node -----------------------------------------------------------------------


class MLPFunction(torch.autograd.Function):
    """``mlp(x)`` as one autograd node: ``apply(x, flat, mlp, member)`` with ``flat`` the MLP's
    parameter and ``member`` one ensemble member to run (None: the whole MLP)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, flat: torch.Tensor, mlp: MLP, member: int | None) -> torch.Tensor:
        weights, biases = member_views(mlp.numpy_views(), member)
        out, inputs = forward(weights, biases, mlp.acts, x.detach().numpy())
        ctx.mlp, ctx.inputs, ctx.member = mlp, inputs, member
        ctx.save_for_backward(x, flat)  # also guards against weights changed before backward
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, flat = ctx.saved_tensors
        mlp: MLP = ctx.mlp
        need_x, need_flat = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        member = ctx.member
        if torch.is_grad_enabled():  # create_graph=True: recompute in torch so the grads have a graph
            return _differentiable_backward(mlp, x, flat, grad_out, need_x, need_flat, member)
        # the kernels write every element of a whole network's gradient; other members' stay 0
        alloc = np.empty if member is None else np.zeros
        grad_flat = alloc(flat.shape if need_flat else 0, dtype=np.float32)
        grad_w, grad_b = member_views(mlp.layout.views(grad_flat), member) if need_flat else ([], [])
        weights, _ = member_views(mlp.numpy_views(), member)
        dout = grad_out.numpy() if grad_out.is_contiguous() else grad_out.contiguous().numpy()
        dx = backward(weights, mlp.acts, ctx.inputs, dout, grad_w, grad_b, need_x, need_flat)
        return (
            torch.from_numpy(dx) if dx is not None else None,
            torch.from_numpy(grad_flat) if need_flat else None,
            None,
            None,
        )


def _differentiable_backward(
    mlp: MLP,
    x: torch.Tensor,
    flat: torch.Tensor,
    grad_out: torch.Tensor,
    need_x: bool,
    need_flat: bool,
    member: int | None,
) -> tuple[torch.Tensor | None, ...]:
    wrt = [t for t, need in ((x, need_x), (flat, need_flat)) if need]
    out = mlp.torch_forward(x, flat, member)
    grads = iter(torch.autograd.grad(out, wrt, grad_out, create_graph=True, allow_unused=True))
    dx, dflat = (next(grads) if need_x else None), (next(grads) if need_flat else None)
    if need_flat and dflat is None:  # allow_unused: a member's graph may not reach every element
        dflat = torch.zeros_like(flat)
    return (dx, dflat, None, None)
