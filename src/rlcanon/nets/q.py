"""Q-value networks: a plain head or the dueling head (Wang et al. 2016, eq. 9)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from rlcanon.nets.cnn import NatureCNN
from rlcanon.nets.kernels import FlatParams, MLPKernel
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

    def trained_mlps(self) -> list[nn.Module]:
        """The sub-networks a NumPy kernel would train (the CNN encoder has no kernel)."""
        if self.pixels:
            return [self.encoder]
        return [self.value, self.advantage] if self.dueling else [self.q]

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


class QKernel:
    """NumPy forward/backward of a vector-observation :class:`QNetwork` (plain or dueling)."""

    def __init__(self, net: QNetwork, flat: FlatParams | None = None) -> None:
        self.dueling = net.dueling
        if net.dueling:
            self.v, self.a = MLPKernel(net.value, flat), MLPKernel(net.advantage, flat)
        else:
            self.q = MLPKernel(net.q, flat)

    def forward(self, obs: np.ndarray) -> tuple[np.ndarray, Any]:
        x = obs.reshape(len(obs), -1).astype(np.float32, copy=False)
        if not self.dueling:
            return self.q.forward(x)
        v, cv = self.v.forward(x)
        adv, ca = self.a.forward(x)
        return v + adv - adv.mean(axis=1, keepdims=True), (cv, ca)

    def backward(self, cache: Any, dq: np.ndarray) -> None:
        if not self.dueling:
            self.q.backward(cache, dq)
            return
        cv, ca = cache
        self.v.backward(cv, dq.sum(axis=1, keepdims=True))
        self.a.backward(ca, dq - dq.mean(axis=1, keepdims=True))
