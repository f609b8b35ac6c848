"""Rainbow (Hessel et al. 2018, "Rainbow: Combining Improvements in Deep Reinforcement Learning"):
C51's distributional head with Double DQN's action choice, the dueling head, prioritized replay
(priorities from the KL loss), n-step returns and NoisyNet, all turned on together as flags of the
one DQN loop (:mod:`rlcanon.algos.dqn`). No code of its own: the defaults below are the preset.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlcanon.algos.c51 import C51Config
from rlcanon.algos.dqn import DQNAgent

__all__ = ["DQNAgent", "RainbowConfig"]


@dataclass(frozen=True)
class RainbowConfig(C51Config):
    """C51 with every Rainbow flag on; the values are the paper's (Table 1) where they apply."""

    double_dqn: bool = True
    """Double DQN's online-net action choice at s' (on the mean of the distribution)."""
    dueling: bool = True
    """The dueling head, per atom (Hessel et al. 2018, eq. 5)."""
    prioritized: bool = True
    """Prioritized replay with the KL loss as the priority."""
    per_alpha: float = 0.5
    """Priority exponent (Table 1: 0.5)."""
    n_step: int = 3
    """Multi-step returns (Table 1: n = 3)."""
    noisy: bool = True
    """NoisyNet layers instead of epsilon-greedy (Table 1: sigma_0 = 0.5)."""
    exploration_initial_eps: float = 0.0
    """Epsilon is not used: the noisy layers explore."""
    exploration_final_eps: float = 0.0
    """Epsilon is not used: the noisy layers explore."""
