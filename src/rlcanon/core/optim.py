"""Optimizer construction with the fastest CPU kernel available."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch


class LeanAdam(torch.optim.Adam):
    """``torch.optim.Adam(fused=True)`` whose step calls the fused kernel directly.

    Same kernel, same arithmetic and the same ``state_dict`` as the stock optimizer (a test checks
    bit equality), minus ~20 us of per-step Python bookkeeping, which is about half the cost of a
    step on a 67k-parameter network here. Anything unusual (a closure, AMSGrad, several groups,
    a missing gradient, a first step that still has to create the state) goes through the stock
    ``step``. The lean step is bound on the instance, so it also skips torch's profiler wrapper
    and step hooks (rlcanon registers none).
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self._lean = lean_step_works()
        self.step = self._lean_step  # type: ignore[method-assign]

    def _lean_step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is not None or len(self.param_groups) != 1 or not self._lean:
            return torch.optim.Adam.step(self, closure)
        group = self.param_groups[0]
        if group["amsgrad"] or group["maximize"] or group.get("decoupled_weight_decay", False):
            return torch.optim.Adam.step(self, closure)
        for p in group["params"]:
            if p.grad is None or not self.state.get(p):
                return torch.optim.Adam.step(self, closure)
        self._fused_step(group)
        return None

    def _fused_step(self, group: dict[str, Any]) -> None:
        params, grads, avgs, sqs, steps = [], [], [], [], []
        for p in group["params"]:
            state = self.state[p]
            params.append(p)
            grads.append(p.grad)
            avgs.append(state["exp_avg"])
            sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
        if all(t.is_cpu for t in steps):  # a NumPy add on the 0-d step counters is cheaper
            for t in steps:
                t.numpy()[...] += 1
        else:
            torch._foreach_add_(steps, 1)
        torch._fused_adam_(
            params,
            grads,
            avgs,
            sqs,
            [],
            steps,
            amsgrad=False,
            lr=float(group["lr"]),
            beta1=float(beta1),
            beta2=float(beta2),
            weight_decay=float(group["weight_decay"]),
            eps=float(group["eps"]),
            maximize=False,
            grad_scale=None,
            found_inf=None,
        )


@functools.cache
def lean_step_works() -> bool:
    """Whether this torch's private fused-Adam call gives the stock optimizer's result (checked once
    on a small tensor); if not, :class:`LeanAdam` always takes the stock step."""
    try:
        a = torch.nn.Parameter(torch.linspace(-1.0, 1.0, 16))
        b = torch.nn.Parameter(a.detach().clone())
        stock = torch.optim.Adam([b], lr=0.1, fused=True)
        lean = LeanAdam.__new__(LeanAdam)
        torch.optim.Adam.__init__(lean, [a], lr=0.1, fused=True)
        for k in range(3):
            a.grad = torch.full((16,), 0.5 - k)
            b.grad = a.grad.clone()
            stock.step()
            if k == 0:
                torch.optim.Adam.step(lean)  # creates the state, as the lean step requires
            else:
                LeanAdam._fused_step(lean, lean.param_groups[0])
        return bool(torch.equal(a, b))
    except (AttributeError, RuntimeError, TypeError, KeyError):
        return False


class LeanRMSprop(torch.optim.RMSprop):
    """``torch.optim.RMSprop(foreach=True)`` whose plain step (one group, no momentum, not centred,
    no weight decay, state already created) calls the same multi-tensor kernels directly, in the
    stock order, without the per-step bookkeeping (about 100 us a step here, a tenth of an A2C
    iteration on CartPole). Anything else goes through the stock ``step``; a test checks bit
    equality with the stock optimizer."""

    def __init__(self, params: Iterable[torch.nn.Parameter], **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.step = self._lean_step  # type: ignore[method-assign]

    def _lean_step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is not None or len(self.param_groups) != 1:
            return torch.optim.RMSprop.step(self, closure)
        group = self.param_groups[0]
        if group["momentum"] or group["centered"] or group["weight_decay"] or group["maximize"]:
            return torch.optim.RMSprop.step(self, closure)
        params, grads, squares, steps = [], [], [], []
        for p in group["params"]:
            state = self.state.get(p)
            if p.grad is None or not state or p.grad.is_sparse or torch.is_complex(p):
                return torch.optim.RMSprop.step(self, closure)
            params.append(p)
            grads.append(p.grad)
            squares.append(state["square_avg"])
            steps.append(state["step"])
        alpha, eps, lr = float(group["alpha"]), float(group["eps"]), float(group["lr"])
        with torch.no_grad():
            torch._foreach_add_(steps, 1)
            torch._foreach_mul_(squares, alpha)
            torch._foreach_addcmul_(squares, grads, grads, value=1 - alpha)
            avg = torch._foreach_sqrt(squares)
            torch._foreach_add_(avg, eps)
            torch._foreach_addcdiv_(params, grads, avg, value=-lr)
        return None


def adam(params: Iterable[torch.nn.Parameter], lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam on torch's fused kernel where it exists (:class:`LeanAdam`, about 2x faster per step
    than the stock fused optimizer on small nets here), falling back to the multi-tensor one."""
    params = list(params)
    try:
        return LeanAdam(params, lr=lr, eps=eps, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, eps=eps, foreach=True)


class GradientStep:
    """One optimisation step on a loss: clear the gradients, backpropagate, clip the global gradient
    norm to ``max_grad_norm`` (the rule of ``torch.nn.utils.clip_grad_norm_``), step the optimizer.

    Every algorithm updates through one of these (an agent may hold several, each with its own
    parameters and learning rate). ``optimizer`` is 'adam' (the lean fused step) or 'rmsprop'
    (``alpha`` its smoothing constant). The norm of CPU float32 gradients is one NumPy dot product
    per parameter, which costs less than torch's multi-tensor kernels on small networks."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        lr: float,
        eps: float = 1e-8,
        max_grad_norm: float = math.inf,
        optimizer: str = "adam",
        alpha: float = 0.99,
    ) -> None:
        self.params = list(params)
        if optimizer == "adam":
            self.optimizer: torch.optim.Optimizer = adam(self.params, lr=lr, eps=eps)
        elif optimizer == "rmsprop":
            self.optimizer = LeanRMSprop(self.params, lr=lr, alpha=alpha, eps=eps, foreach=True)
        else:
            raise ValueError(f"optimizer={optimizer!r}; choose 'adam' or 'rmsprop'")
        self.max_grad_norm = max_grad_norm

    @property
    def lr(self) -> float:
        return float(self.optimizer.param_groups[0]["lr"])

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = value

    def __call__(self, loss: torch.Tensor) -> float:
        """Apply one step for ``loss``; returns the gradient norm before clipping."""
        grads = eager_gradients(loss, self.params)
        for p, g in zip(self.params, grads or [None] * len(self.params)):
            p.grad = g
        if grads is None:
            loss.backward()
        norm = clip_grad_norm(self.params, self.max_grad_norm)
        self.optimizer.step()
        return norm

    def fit(
        self,
        loss_fn: Callable[..., tuple[torch.Tensor, Any]],
        batches: list[tuple[Any, ...]],
        stop: Callable[[Any], bool] | None = None,
    ) -> list[Any]:
        """One step per argument tuple, in order: ``loss, aux = loss_fn(*args)``, then, unless
        ``stop(aux)`` says to end the loop there, ``self(loss)``. Returns the ``aux`` of the steps
        taken. An accelerator registered for ``loss_fn`` (:mod:`rlcanon.fused`) may run the whole
        loop fused, with the same result."""
        fused = getattr(loss_fn, "fused_fit", None)  # set by rlcanon.fused.accelerated
        fast = fused(self, batches, stop) if fused is not None and batches else None
        if fast is not None:
            return fast
        out = []
        for args in batches:
            loss, aux = loss_fn(*args)
            if stop is not None and stop(aux):
                break
            self(loss)
            out.append(aux)
        return out


def eager_gradients(loss: torch.Tensor, params: list[torch.nn.Parameter]) -> list[Any] | None:
    """The gradients of ``loss`` for ``params`` if ``loss`` is the direct output of a fused loss
    node that computed them already (``rlcanon.fused.EagerLoss`` puts them on the node as
    ``eager_grads``) and every one of them is for a tensor in ``params``; else None."""
    grads = getattr(loss.grad_fn, "eager_grads", None)
    if grads is None:
        return None
    out = [grads.get(id(p)) for p in params]
    if sum(g is not None for g in out) != len(grads):  # a gradient for a tensor outside params
        return None
    return out


def clip_grad_norm(params: list[torch.nn.Parameter], max_norm: float) -> float:
    """Scale all gradients together so their global L2 norm is at most ``max_norm``; returns the
    norm before scaling (``torch.nn.utils.clip_grad_norm_``'s rule, with its 1e-6)."""
    arrays = []
    for p in params:
        g = p.grad
        if g is None:
            continue
        if not (g.is_cpu and g.dtype == torch.float32 and g.is_contiguous()):
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=True))
        arrays.append(g.numpy().reshape(-1))
    return clip_arrays(arrays, max_norm)


def clip_arrays(arrays: list[np.ndarray], max_norm: float) -> float:
    """Scale flat float32 gradient arrays in place so their global L2 norm is at most ``max_norm``
    (``torch.nn.utils.clip_grad_norm_``'s rule, with its 1e-6); returns the norm before scaling."""
    with np.errstate(over="ignore"):
        norm = math.sqrt(sum(float(np.dot(a, a)) for a in arrays))
    if math.isinf(norm):  # float32 sums of squares overflow first: redo them in float64
        norm = math.sqrt(sum(float(np.dot(a.astype(np.float64), a)) for a in arrays))
    if norm > max_norm:
        coef = max_norm / (norm + 1e-6)
        for a in arrays:
            a *= coef
    return norm
