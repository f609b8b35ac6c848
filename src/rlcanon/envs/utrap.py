"""The deceptive U-trap: a 2-D point mass behind a three-sided wall (``rlcanon/UTrap-v0``).

A small stand-in for the Humanoid behind a three-sided wall of Conti et al. 2018 (Fig. 6), the
test bed of NS-ES, NSR-ES and NSRA-ES. The agent starts inside a "U" whose closed side faces the
goal, so the greedy direction (straight at the goal) ends against the wall: a local optimum that
only a detour out of the open side, away from the goal at first, escapes.

Layout (walls are thin segments that block motion; the agent slides along them)::

    y = 1.0            G                 goal (0, 1)
    y = 0.3    +---------------+         closed side, x in [-0.5, 0.5]
               |       S       |         start (0, 0); side walls x = +-0.5, y in [-1, 0.3]
    y = -1.0   |               |         open side (away from the goal)

Actions are a velocity in [-1, 1]^2 scaled by ``max_speed`` (0.08); dynamics are deterministic,
and the env truncates its own episodes after ``max_steps`` steps (60: a path of at most 4.8,
against about 2.8 to pass the closed side by a detour and 4 to reach the goal). Observations are
(x, y, t / max_steps). The reward is the step's progress towards the goal, d_{t-1} - d_t, so an
episode's return is d_0 - d_T whatever step limit cuts it: minus the final distance to the goal,
up to a constant. Against the closed side the return is 0.3 (distance 0.7); every return above
0.3 lies outside the U. The behaviour characterisation (final (x, y)) is ``info["bc"]`` on every
step and :func:`behaviour` on the env.
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.errors import ConfigError

ARENA = 6.0
"""Half-width of the square arena: beyond the reach of an episode (60 x 0.08 = 4.8 from the start
only along a detour), so no corner of the arena absorbs a policy, and every final position moves
with the policy's parameters (novelty search needs that gradient)."""
START = (0.0, 0.0)
GOAL = (0.0, 1.0)
VERTICAL_WALLS = ((-0.5, -1.0, 0.3), (0.5, -1.0, 0.3))
"""(x, y_low, y_high) of each side wall."""
HORIZONTAL_WALLS = ((0.3, -0.5, 0.5),)
"""(y, x_low, x_high) of the closed side, between the start and the goal."""
WALL_GAP = 1e-6
"""How far from a wall a blocked move stops (never on the wall line, so crossings stay decidable)."""
TRAP_DISTANCE = 0.7
"""Distance to the goal of the best point inside the U (just below the middle of the closed side)."""


def _blocked(start: float, end: float, other: float, walls: tuple[tuple[float, float, float], ...]) -> float:
    """Where a move along one axis from ``start`` to ``end`` stops, the other coordinate being
    ``other``: just before the nearest wall line it crosses (closed segments), else at ``end``.
    Each clamp shortens the move, so a farther wall checked first is undone by the nearer one."""
    for line, low, high in walls:
        if low <= other <= high and (start - line) * (end - line) <= 0.0:
            end = line - WALL_GAP if start < line else line + WALL_GAP
    return end


class UTrapEnv(gym.Env):
    """Point mass in the U-trap; see the module docstring for the layout and the reward."""

    metadata = {"render_modes": []}  # noqa: RUF012 - the same mutable class attribute as gym.Env

    def __init__(self, max_speed: float = 0.08, goal_radius: float = 0.05, max_steps: int = 60) -> None:
        for name, value in (("max_speed", max_speed), ("goal_radius", goal_radius)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise ConfigError(f"{name}={value!r} is not allowed; it must be a number in (0, 1]")
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or not 1 <= max_steps <= 10**6:
            raise ConfigError(f"max_steps={max_steps!r} is not allowed; it must be an integer in [1, 10**6]")
        self.max_speed, self.goal_radius, self.max_steps = float(max_speed), float(goal_radius), max_steps
        self.steps = 0
        # the position and the elapsed fraction of the episode: a policy may act by time as well as
        # by place (a detour "down first, then up" is then one unit away)
        low = np.array([-ARENA, -ARENA, 0.0], dtype=np.float32)
        self.observation_space = gym.spaces.Box(low, np.array([ARENA, ARENA, 1.0], dtype=np.float32))
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.x, self.y = START

    def _distance(self) -> float:
        return math.hypot(self.x - GOAL[0], self.y - GOAL[1])

    def _obs(self) -> np.ndarray:
        return np.array([self.x, self.y, self.steps / self.max_steps], dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        return {"bc": np.array([self.x, self.y]), "distance": self._distance()}

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.x, self.y, self.steps = START[0], START[1], 0
        return self._obs(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        try:  # plain floats: this runs once per step, and NumPy's per-call cost dominates here
            ax, ay = (float(v) for v in action)
        except (TypeError, ValueError):
            ax = ay = math.nan
        if not (math.isfinite(ax) and math.isfinite(ay)):
            raise ConfigError(f"the U-trap takes a finite action of shape (2,); got {action!r}")
        dx = min(max(ax, -1.0), 1.0) * self.max_speed
        dy = min(max(ay, -1.0), 1.0) * self.max_speed
        before = self._distance()
        # one axis at a time, each checked at the other's current value: the agent slides along a
        # wall, and the closed corners of the U leak nothing
        x = min(max(_blocked(self.x, self.x + dx, self.y, VERTICAL_WALLS), -ARENA), ARENA)
        y = min(max(_blocked(self.y, self.y + dy, x, HORIZONTAL_WALLS), -ARENA), ARENA)
        self.x, self.y, self.steps = x, y, self.steps + 1
        after = self._distance()
        truncated = self.steps >= self.max_steps
        return self._obs(), before - after, after <= self.goal_radius, truncated, self._info()


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
