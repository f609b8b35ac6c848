"""Optional accelerators: hand-fused versions of a few torch losses, each one autograd node.

On small networks a training step's time goes to torch's per-op dispatch and autograd bookkeeping,
not to arithmetic: PPO's loss is about twenty ops, each costing microseconds forward and backward.
A fused loss computes the same value and gradient in a few NumPy calls inside one
``torch.autograd.Function``.

The rules:

- The torch function is the definition. An algorithm states its loss once, in torch, and marks it
  ``@accelerated``; it never calls an accelerator and never branches on one.
- An accelerator registers under the loss's qualified name, says when it applies (CPU float32
  tensors and the heads it knows; never under ``create_graph``, ``torch.func`` or when switched
  off), and otherwise the torch function runs.
- ``tests/unit/test_fused.py`` checks every registered accelerator against autograd on the torch
  function: the same loss, statistics and gradients.

A fused loss takes the networks, not their outputs, so the whole forward and backward (network
kernels and loss) is one node; it computes its parameters' gradients already in the forward pass
(:class:`EagerLoss`). :class:`~rlcanon.core.optim.GradientStep` then assigns them directly when the
loss it is given is that node's output, skipping the autograd engine; any other loss (a sum of
terms, a graph through other tensors) takes the ordinary ``backward()``.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import torch

from rlcanon.core.optim import clip_arrays
from rlcanon.nets.kernels import usable

F = TypeVar("F", bound=Callable[..., Any])

_enabled = True
_MODULES = ("rlcanon.fused.ppo", "rlcanon.fused.td", "rlcanon.fused.a2c")


@dataclass(frozen=True)
class Accelerator:
    applies: Callable[..., bool]
    """Whether the fused version can compute this call (same arguments as the loss)."""
    run: Callable[..., Any]
    """The fused version (same arguments and results as the loss)."""
    examples: Callable[[int], list[tuple[tuple[Any, ...], dict[str, Any]]]]
    """Random argument sets (seeded) on which the tests compare the two versions."""
    fit: Callable[..., list[Any] | None] | None = None
    """Optional: ``fit(update, batches, stop)`` runs :meth:`GradientStep.fit` fused (same steps and
    results), or returns None where it does not apply."""


REGISTRY: dict[str, Accelerator] = {}


def register(name: str, accelerator: Accelerator) -> None:
    REGISTRY[name] = accelerator


def set_fused(enabled: bool) -> None:
    """Switch every accelerator on or off (off: the torch definitions run)."""
    global _enabled
    _enabled = enabled


def fused_enabled() -> bool:
    return _enabled


@functools.cache
def _load() -> None:
    for module in _MODULES:
        importlib.import_module(module)


def accelerated(fn: F) -> F:
    """Mark a torch loss that a registered accelerator may compute instead."""
    name = f"{fn.__module__}.{fn.__qualname__}"

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _enabled:
            _load()
            acc = REGISTRY.get(name)
            if acc is not None and acc.applies(*args, **kwargs):
                return acc.run(*args, **kwargs)
        return fn(*args, **kwargs)

    def fit(update: Any, batches: list[tuple[Any, ...]], stop: Any) -> list[Any] | None:
        return fused_fit(wrapper, update, batches, stop)

    wrapper.reference = fn  # type: ignore[attr-defined]
    wrapper.qualified_name = name  # type: ignore[attr-defined]
    wrapper.fused_fit = fit  # type: ignore[attr-defined]  # GradientStep.fit looks for it
    return wrapper  # type: ignore[return-value]


def fused_fit(loss_fn: Any, update: Any, batches: list[tuple[Any, ...]], stop: Any) -> list[Any] | None:
    """The fused loop of :meth:`rlcanon.core.optim.GradientStep.fit`, or None (run it plainly)."""
    name = getattr(loss_fn, "qualified_name", None)
    if not (_enabled and name and batches):
        return None
    _load()
    acc = REGISTRY.get(name)
    return acc.fit(update, batches, stop) if acc is not None and acc.fit is not None else None


class FitStep:
    """The end of every fused gradient step: clip the global norm of the gradient buffers (the rule
    of ``torch.nn.utils.clip_grad_norm_``) and step the optimizer. The buffers are the parameters'
    ``.grad`` for the whole loop, so the norm is one dot product each."""

    def __init__(self, update: Any, buffers: list[np.ndarray]) -> None:
        self.update, self.flat = update, [b.reshape(-1) for b in buffers]
        self.max_norm = float(update.max_grad_norm)

    def __call__(self) -> None:
        clip_arrays(self.flat, self.max_norm)
        self.update.optimizer.step()


def cpu_float32(*tensors: Any) -> bool:
    """All tensors (None skipped) are plain CPU float32, and the kernels may run now (no
    ``torch.func`` transform, tracing or compiling: :func:`rlcanon.nets.kernels.usable`)."""
    first = None
    for t in tensors:
        if t is None:
            continue
        if t.dtype != torch.float32 or t.device.type != "cpu":
            return False
        first = first if first is not None else t
    return first is None or usable(first, first)


class EagerLoss(torch.autograd.Function):
    """Base of fused losses: ``compute(ctx, *args)`` returns (loss, stats, {param: grad}) with the
    gradients of the loss with respect to the parameters among the inputs; backward scales them.

    Subclasses implement ``compute`` and ``reference(*args)`` (the torch definition, differentiated
    instead when a backward must itself be differentiable)."""

    @staticmethod
    def compute(ctx: Any, *args: Any) -> tuple[float, torch.Tensor, dict[int, np.ndarray]]:
        raise NotImplementedError

    @classmethod
    def forward(cls, ctx: Any, *args: Any) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        loss, stats, grads = cls.compute(ctx, *args)
        ctx.args = args
        ctx.eager_grads = {
            id(a): torch.from_numpy(grads[id(a)])
            for a in args
            if isinstance(a, torch.Tensor) and a.requires_grad
        }
        ctx.mark_non_differentiable(stats)
        return torch.from_numpy(np.array(loss, dtype=np.float32)), stats

    @classmethod
    def backward(cls, ctx: Any, grad_loss: torch.Tensor, _grad_stats: torch.Tensor) -> tuple[Any, ...]:
        args = ctx.args
        tensors = [a if isinstance(a, torch.Tensor) and a.requires_grad else None for a in args]
        if torch.is_grad_enabled():  # create_graph=True: differentiate the torch definition instead
            loss, _ = cls.reference(*args)  # type: ignore[attr-defined]
            wrt = [t for t in tensors if t is not None]
            grads = iter(torch.autograd.grad(loss, wrt, grad_loss, create_graph=True, allow_unused=True))
            return tuple(next(grads) if t is not None else None for t in tensors)
        g = float(grad_loss)
        return tuple(ctx.eager_grads[id(t)] * g if t is not None else None for t in tensors)
