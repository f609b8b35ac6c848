"""The Nature DQN encoder (Mnih et al. 2015): three conv layers and a 512-unit dense layer."""

from __future__ import annotations

import torch
from torch import nn


class NatureCNN(nn.Module):
    """Maps uint8 frames [B, C, 84, 84] to 512 features; scales pixels to [0, 1] inside."""

    def __init__(self, in_channels: int, features: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 32, 8, stride=4),
            nn.ReLU(),
            nn.Conv2d(32, 64, 4, stride=2),
            nn.ReLU(),
            nn.Conv2d(64, 64, 3, stride=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 7 * 7, features),
            nn.ReLU(),
        )
        self.out_dim = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.float() / 255.0)
