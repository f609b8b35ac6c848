"""Q-value networks: a plain head or the dueling head (Wang et al. 2016, eq. 9)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import nn

from rlcanon.nets.cnn import NatureCNN
from rlcanon.nets.mlp import NumpySequential, mlp


class QNetwork(nn.Module):
    """Q(s, .) for discrete actions. Pixel observations ([C, 84, 84]) use the Nature CNN encoder,
    vector observations an MLP. With ``dueling``, Q = V + A - mean(A)."""

    def __init__(
        self, obs_shape: tuple[int, ...], n_actions: int, hidden: Sequence[int], dueling: bool
    ) -> None:
        super().__init__()
        self.dueling = dueling
        self.pixels = len(obs_shape) == 3
        if self.pixels:
            self.encoder: nn.Module = NatureCNN(obs_shape[0])
            feat = 512
            hidden = []
        else:
            self.encoder = nn.Identity()
            feat = int(np.prod(obs_shape))
        if dueling:
            self.value = mlp(feat, hidden, 1)
            self.advantage = mlp(feat, hidden, n_actions)
        else:
            self.q = mlp(feat, hidden, n_actions)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        feat = self.encoder(obs)
        if self.dueling:
            adv = self.advantage(feat)
            return self.value(feat) + adv - adv.mean(dim=-1, keepdim=True)
        return self.q(feat)

    def numpy_forward(self) -> Callable[[np.ndarray], np.ndarray] | None:
        """A frozen NumPy copy for acting, or None when the net has a CNN encoder."""
        if self.pixels:
            return None
        if self.dueling:
            v, a = NumpySequential(self.value), NumpySequential(self.advantage)

            def dueling_q(x: np.ndarray) -> np.ndarray:
                adv = a(x)
                return v(x) + adv - adv.mean(axis=-1, keepdims=True)

            return dueling_q
        return NumpySequential(self.q)
