"""Optimizer construction with the fastest CPU kernel available."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

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
        self.step = self._lean_step  # type: ignore[method-assign]

    def _lean_step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is not None or len(self.param_groups) != 1:
            return torch.optim.Adam.step(self, closure)
        group = self.param_groups[0]
        if group["amsgrad"] or group["maximize"] or group["decoupled_weight_decay"]:
            return torch.optim.Adam.step(self, closure)
        params, grads, avgs, sqs, steps = [], [], [], [], []
        for p in group["params"]:
            state = self.state.get(p)
            if p.grad is None or not state:
                return torch.optim.Adam.step(self, closure)
            params.append(p)
            grads.append(p.grad)
            avgs.append(state["exp_avg"])
            sqs.append(state["exp_avg_sq"])
            steps.append(state["step"])
        beta1, beta2 = group["betas"]
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
        return None


def adam(params: Iterable[torch.nn.Parameter], lr: float, eps: float = 1e-8) -> torch.optim.Adam:
    """Adam on torch's fused kernel where it exists (:class:`LeanAdam`, about 2x faster per step
    than the stock fused optimizer on small nets here), falling back to the multi-tensor one."""
    params = list(params)
    try:
        return LeanAdam(params, lr=lr, eps=eps, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, eps=eps, foreach=True)
