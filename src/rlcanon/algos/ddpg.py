"""DDPG: deep deterministic policy gradient (Lillicrap et al. 2016, "Continuous control with deep
reinforcement learning", Algorithm 1).

A deterministic actor mu(s) ascends the deterministic policy gradient E[grad_a Q(s, a)|_{a=mu(s)}
grad mu(s)] (Silver et al. 2014) through one Q(s, a) critic, which regresses on
y = r + gamma (1 - terminated) Qbar(s', mubar(s')) with target networks that follow by Polyak
averaging (tau). Exploration adds Ornstein-Uhlenbeck or Gaussian noise to mu(s).

TD3 (``rlcanon.algos.td3``) is DDPG with twin critics, target smoothing and delayed updates, so
DDPG is TD3's update with those three turned off: one critic, the actor updated at every step, no
noise on the target action. The loop, losses and networks are TD3's functions; this file holds
DDPG's settings.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlcanon.algos.td3 import TD3Agent, TD3Config
from rlcanon.errors import ConfigError


@dataclass(frozen=True)
class DDPGConfig(TD3Config):
    """DDPG settings. Defaults are Stable-Baselines3's (lr 1e-3, batch 256, tau 0.005, 400-300
    ReLU networks, Gaussian noise 0.1). The paper's own: actor lr 1e-4, critic lr 1e-3 with L2
    weight decay 1e-2, batch 64, tau 0.001, Ornstein-Uhlenbeck noise (theta 0.15, sigma 0.2)."""

    n_critics: int = 1
    """Q critics (DDPG has one; more gives the minimum, as in TD3)."""
    policy_delay: int = 1
    """Critic updates per actor and target update (DDPG updates both at every step)."""
    target_policy_noise: float = 0.0
    """Std of the target-smoothing noise, in half-widths of the action box (DDPG has none)."""

    def validate(self) -> None:
        super().validate()
        if self.n_critics != 1 or self.policy_delay != 1 or self.target_policy_noise != 0:
            raise ConfigError(
                f"DDPG has one critic, no delay and no target smoothing (n_critics=1, policy_delay=1, "
                f"target_policy_noise=0); got {self.n_critics}, {self.policy_delay}, "
                f"{self.target_policy_noise}. Use 'td3' for those"
            )


DDPGAgent = TD3Agent
"""DDPG runs TD3's loop, which reads n_critics, policy_delay and target_policy_noise from the config."""
