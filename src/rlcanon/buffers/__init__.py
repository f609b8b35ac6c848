"""Preallocated buffers: rollout, replay (uniform, n-step) and prioritized replay (sum tree)."""
