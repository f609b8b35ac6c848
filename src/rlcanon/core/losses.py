"""Loss functions shared by several algorithms (torch, pure)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def huber_loss(
    pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None = None, delta: float = 1.0
) -> torch.Tensor:
    """Mean Huber loss: quadratic for |error| <= delta, linear beyond.

    Its gradient with respect to the prediction is the TD error clipped to [-delta, delta]: the
    "clip the error term to [-1, 1]" of the Nature DQN (Mnih et al. 2015, Methods). ``weights``
    (importance-sampling weights of prioritized replay) scale each sample's loss.
    """
    if weights is None:
        return F.huber_loss(pred, target, delta=delta)
    return (weights * F.huber_loss(pred, target, reduction="none", delta=delta)).mean()


def polyak_update(target: torch.nn.Module, online: torch.nn.Module, tau: float) -> None:
    """target <- tau * online + (1 - tau) * target; tau = 1 copies (a hard update)."""
    with torch.no_grad():
        t_params: list[torch.Tensor] = list(target.parameters())
        o_params: list[torch.Tensor] = list(online.parameters())
        # the private fused calls where this torch has them (every 2.x from 2.2 on, as far as we
        # know); a loop over the public ops otherwise
        copy_all, lerp_all = getattr(torch, "_foreach_copy_", None), getattr(torch, "_foreach_lerp_", None)
        if tau >= 1.0 and copy_all is not None:
            copy_all(t_params, o_params)
        elif tau < 1.0 and lerp_all is not None:
            lerp_all(t_params, o_params, tau)
        else:
            for t, o in zip(t_params, o_params, strict=True):
                t.copy_(o) if tau >= 1.0 else t.lerp_(o, tau)
