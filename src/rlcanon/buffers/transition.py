"""One vector step of experience, as the collector hands it to a buffer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Transition:
    """One vector step: arrays with a leading num_envs axis.

    ``valid`` is False for Gymnasium's autoreset steps (NEXT_STEP mode), which are not transitions
    of the MDP; buffers never sample them and rollout losses mask them out."""

    obs: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_obs: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    valid: np.ndarray
    infos: dict[str, Any] = field(default_factory=dict)
