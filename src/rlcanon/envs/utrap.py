"""The deceptive U-trap: a 2-D point mass behind a three-sided wall (``rlcanon/UTrap-v0``).

A small stand-in for the Humanoid behind a three-sided wall of Conti et al. 2018 (Fig. 6), the
test bed of NS-ES, NSR-ES and NSRA-ES. The agent starts inside a "U" whose closed side faces the
goal, so the greedy direction (straight at the goal) ends against the wall: a local optimum that
only a detour out of the open side, away from the goal at first, escapes.

Layout (arena [-1, 1]^2; walls are thin segments that block motion, and the agent slides along them)::

    y = 0.8            G                 goal (0, 0.8)
    y = 0.3    +---------------+         closed side, x in [-0.4, 0.4]
               |       S       |         start (0, 0); side walls x = +-0.4, y in [-0.5, 0.3]
    y = -0.5   |               |         open side (away from the goal)

Actions are a velocity in [-1, 1]^2 scaled by ``max_speed``; dynamics are deterministic. The
reward is the step's progress towards the goal, d_{t-1} - d_t, so an episode's return is
d_0 - d_T whatever step limit cuts it: minus the final distance to the goal, up to a constant.
Against the closed side the return is 0.3 (distance 0.5); every return above 0.3 lies outside
the U. The behaviour characterisation (final (x, y)) is ``info["bc"]`` on every step and
:func:`behaviour` on the env.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.errors import ConfigError

ARENA = 1.0
"""Half-width of the square arena."""
START = (0.0, 0.0)
GOAL = (0.0, 0.8)
VERTICAL_WALLS = ((-0.4, -0.5, 0.3), (0.4, -0.5, 0.3))
"""(x, y_low, y_high) of each side wall."""
HORIZONTAL_WALLS = ((0.3, -0.4, 0.4),)
"""(y, x_low, x_high) of the closed side, between the start and the goal."""
WALL_GAP = 1e-6
"""How far from a wall a blocked move stops (never on the wall line, so crossings stay decidable)."""
TRAP_DISTANCE = 0.5
"""Distance to the goal of the best point inside the U (just below the middle of the closed side)."""


def _blocked(start: float, end: float, other: float, walls: tuple[tuple[float, float, float], ...]) -> float:
    """Where a move along one axis from ``start`` to ``end`` stops, the other coordinate being
    ``other``: at the first wall line it crosses (a closed segment), else at ``end``."""
    for line, low, high in walls:
        if low <= other <= high and (start - line) * (end - line) <= 0.0:
            end = line - WALL_GAP if start < line else line + WALL_GAP
    return end


class UTrapEnv(gym.Env):
    """Point mass in the U-trap; see the module docstring for the layout and the reward."""

    metadata = {"render_modes": []}  # noqa: RUF012 - the same mutable class attribute as gym.Env

    def __init__(self, max_speed: float = 0.05, goal_radius: float = 0.05) -> None:
        for name, value in (("max_speed", max_speed), ("goal_radius", goal_radius)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be a number in (0, 1]")
        self.max_speed, self.goal_radius = float(max_speed), float(goal_radius)
        self.observation_space = gym.spaces.Box(-ARENA, ARENA, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.x, self.y = START

    def _distance(self) -> float:
        return math.hypot(self.x - GOAL[0], self.y - GOAL[1])

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.y], dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        return {"bc": np.array([self.x, self.y]), "distance": self._distance()}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.x, self.y = START
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        a = np.asarray(action, dtype=np.float64).reshape(-1)
        if a.shape != (2,) or not np.isfinite(a).all():
            raise ConfigError(f"the U-trap takes a finite action of shape (2,); got {np.asarray(action)!r}")
        dx, dy = (float(v) * self.max_speed for v in np.clip(a, -1.0, 1.0))
        before = self._distance()
        # one axis at a time, each checked at the other's current value: the agent slides along a
        # wall, and the closed corners of the U leak nothing
        x = min(max(_blocked(self.x, self.x + dx, self.y, VERTICAL_WALLS), -ARENA), ARENA)
        y = min(max(_blocked(self.y, self.y + dy, x, HORIZONTAL_WALLS), -ARENA), ARENA)
        self.x, self.y = x, y
        after = self._distance()
        return self._obs(), before - after, after <= self.goal_radius, False, self._info()


def behaviour(env: gym.Env) -> np.ndarray:
    """The behaviour characterisation of the episode so far: the point's (x, y)."""
    inner = env.unwrapped
    if not isinstance(inner, UTrapEnv):
        raise ConfigError(f"behaviour() needs a U-trap env; got {type(inner).__name__}")
    return np.array([inner.x, inner.y])


def inside_trap(x: float, y: float) -> bool:
    """True for a point inside the U (between the side walls and below the closed side)."""
    (left, bottom, _), (right, _, _) = VERTICAL_WALLS
    return left < x < right and bottom <= y < HORIZONTAL_WALLS[0][0]


def utrap(**kwargs: Any) -> UTrapEnv:
    """Entry point of ``rlcanon/UTrap-v0``."""
    return UTrapEnv(**kwargs)
