"""Atari preprocessing from the Nature DQN (Mnih et al. 2015, Methods): frame skip 4 with max-pool
over the last two frames, 84x84 greyscale, up to 30 no-op starts, and a stack of the last 4 frames."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym


def atari_env_fn(
    env_id: str, frame_stack: int = 4, kwargs: dict[str, Any] | None = None
) -> Callable[[], gym.Env]:
    """A factory for one preprocessed Atari env (used by the vector env builder)."""

    def make() -> gym.Env:
        # ALE v5 ids skip frames and act sticky by default; preprocessing does the skipping instead.
        extra: dict[str, Any] = {"frameskip": 1} if env_id.startswith("ALE/") else {}
        env = gym.make(env_id, **extra, **(kwargs or {}))
        env = gym.wrappers.AtariPreprocessing(
            env, noop_max=30, frame_skip=4, screen_size=84, grayscale_obs=True, scale_obs=False
        )
        return gym.wrappers.FrameStackObservation(env, stack_size=frame_stack)

    return make
