"""The replay-based schedule of the off-policy actor-critics (SAC, TD3, DDPG), written once.

Each call of :func:`replay_iterate` runs a block of vector-env steps. Before ``learning_starts``
env steps the actions are uniform in the action box (the warm-up of Stable-Baselines3 and of the
TD3 paper's "start timesteps"); after it the agent's own exploration acts. Every ``train_freq``
vector steps, once the warm-up is over, the agent takes ``gradient_steps`` gradient steps on
minibatches drawn uniformly from the replay buffer. An algorithm supplies only its exploration and
its gradient step; they are plain functions, so the algorithms share this code without sharing a
parent class.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import torch

from rlcanon.buffers.replay import ReplayBuffer
from rlcanon.envs.episodes import episode_metrics
from rlcanon.envs.training import TrainingEnv
from rlcanon.errors import ConfigError

BLOCK_STEPS = 64
"""Vector-env steps per :func:`replay_iterate` call (whole training phases, at most the budget
left): the harness logs and checks its intervals once per block instead of once per step."""


class ReplayAgent(Protocol):
    cfg: Any
    env: TrainingEnv
    buffer: ReplayBuffer
    rng: np.random.Generator
    global_step: int
    updates: int


def box_head_bounds(head: Any, env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """(centre, half-width) of a continuous action box, from the actor's head; a one-line refusal
    for discrete action spaces."""
    if not hasattr(head, "half_np"):
        raise ConfigError(
            f"this algorithm needs a continuous (Box) action space; {env_id} has discrete actions"
        )
    return head.mid_np, head.half_np


def uniform_actions(rng: np.random.Generator, mid: np.ndarray, half: np.ndarray, n: int) -> np.ndarray:
    """n actions drawn uniformly from the box [mid - half, mid + half]."""
    return (mid + half * rng.uniform(-1.0, 1.0, size=(n, len(mid)))).astype(np.float32)


def make_replay_buffer(config: Any, env: TrainingEnv, bounds: tuple[np.ndarray, np.ndarray]) -> ReplayBuffer:
    """The replay buffer of vector observations and actions in the box ``bounds`` (a checkpoint
    whose stored actions leave the box is refused)."""
    from rlcanon.core.config import check_memory

    mid, half = bounds
    check_memory("buffer_size", 2 * config.buffer_size * (env.obs_dim + len(mid)) * 4)
    return ReplayBuffer(
        config.buffer_size,
        config.num_envs,
        ((env.obs_dim,), np.float32),
        ((len(mid),), np.float32),
        action_bounds=(float((mid - half).min()), float((mid + half).max())),
    )


def replay_iterate(
    agent: ReplayAgent,
    explore: Callable[[np.ndarray], np.ndarray],
    random_actions: Callable[[int], np.ndarray],
    gradient_step: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]],
) -> dict[str, float]:
    """One block of collection and training; returns the block's mean statistics and episodes.

    ``explore(obs)`` gives the actions to take after the warm-up, ``random_actions(n)`` during it.
    ``gradient_step(batch)`` takes one step on a batch of tensors (obs, actions, rewards,
    discounts, next_obs) and returns its statistics (0-d tensors; a step may leave some out, such
    as TD3's delayed actor loss); each is averaged over the steps that gave it."""
    c, stepper = agent.cfg, agent.env.stepper
    n = c.num_envs
    remaining = -(-(c.total_timesteps - agent.global_step) // n)
    block = min(max(BLOCK_STEPS // c.train_freq, 1) * c.train_freq, remaining)
    stats: dict[str, list[torch.Tensor]] = {}
    for t in range(1, block + 1):
        warm = agent.global_step < c.learning_starts
        actions = random_actions(n) if warm else explore(stepper.obs)
        agent.buffer.add(stepper.step(actions))
        agent.global_step += n
        if t % c.train_freq == 0 and agent.global_step >= c.learning_starts:
            for _ in range(c.gradient_steps):
                for name, value in gradient_step(sample(agent)).items():
                    stats.setdefault(name, []).append(value)
                agent.updates += 1
    metrics = episode_metrics(*stepper.pop_episodes())
    metrics.update({name: float(torch.stack(values).mean()) for name, values in stats.items()})
    return metrics


def sample(agent: ReplayAgent) -> dict[str, torch.Tensor]:
    """A uniform minibatch of transitions as tensors (no copies on the CPU)."""
    buffer = agent.buffer
    batch = buffer.batch(buffer.sample_indices(agent.rng, agent.cfg.batch_size))
    return {k: torch.from_numpy(v) for k, v in batch.items()}
