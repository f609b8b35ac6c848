"""Preallocated buffers: the (T, N) rollout buffer of on-policy algorithms, the replay buffer (any
action shape and dtype, extra fields, n-step targets, sequences) and prioritized replay."""

from rlcanon.buffers.transition import Transition

__all__ = ["Transition"]
