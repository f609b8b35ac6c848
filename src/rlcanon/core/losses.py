"""Loss functions shared by several algorithms (torch, pure)."""

from __future__ import annotations

import torch


def huber(td_error: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Elementwise Huber loss: quadratic inside [-delta, delta], linear outside.

    Its gradient with respect to the TD error is the error clipped to [-delta, delta], which is the
    "clip the error term to [-1, 1]" of the Nature DQN (Mnih et al. 2015, Methods).
    """
    abs_err = td_error.abs()
    quad = torch.clamp(abs_err, max=delta)
    return 0.5 * quad * quad + delta * (abs_err - quad)
