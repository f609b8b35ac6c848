"""Gymnasium ids for our own environments: ``rlcanon/<Name>-v<N>``, usable by every family."""

from __future__ import annotations

OWN_ENVS = {
    "rlcanon/Chain-v0": "rlcanon.envs.toy:chain",
    "rlcanon/RiverSwim-v0": "rlcanon.envs.toy:river_swim",
    "rlcanon/GridWorld-v0": "rlcanon.envs.toy:gridworld",
    "rlcanon/UTrap-v0": "rlcanon.envs.utrap:utrap",
    "rlcanon/DeepSea-v0": "rlcanon.envs.deepsea:deep_sea",
}
MAX_EPISODE_STEPS = 200


def register_envs() -> None:
    """Register every id of :data:`OWN_ENVS` (once; later calls do nothing)."""
    import gymnasium as gym

    for env_id, entry_point in OWN_ENVS.items():
        if env_id not in gym.registry:
            gym.register(id=env_id, entry_point=entry_point, max_episode_steps=MAX_EPISODE_STEPS)
