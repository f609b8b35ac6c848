"""Our own small environments, registered as Gymnasium ids in the ``rlcanon/`` namespace
(``gym.make("rlcanon/Chain-v0", n=10)``) whenever rlcanon is imported.

Each exposes its model the way Gymnasium's toy-text envs do: ``env.unwrapped.P[s][a]`` is a list of
``(probability, next_state, reward, terminated)``, so tabular dynamic programming can solve it.
"""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np

from rlcanon.errors import ConfigError

MAX_STATES = 100_000
"""The largest state count of our own envs (their models are Python tables)."""


def _check_size(name: str, value: object, low: int, high: int = MAX_STATES) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is not allowed; it must be an integer in [{low}, {high}]")
    return value


def _check_number(name: str, value: object, low: float = -1e12, high: float = 1e12) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} is not allowed; it must be a finite number")
    if not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is not allowed; it must lie in [{low}, {high}]")
    return float(value)


Transitions = dict[int, dict[int, list[tuple[float, int, float, bool]]]]


class ModelEnv(gym.Env):
    """A discrete environment defined by its transition table ``P`` and a start distribution."""

    metadata = {"render_modes": []}  # noqa: RUF012 - the same mutable class attribute as gym.Env

    def __init__(self, P: Transitions, n_states: int, n_actions: int, start: np.ndarray) -> None:
        self.P = P
        self.observation_space = gym.spaces.Discrete(n_states)
        self.action_space = gym.spaces.Discrete(n_actions)
        self.start = np.asarray(start, dtype=np.float64)
        self.s = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[int, dict]:
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(len(self.start), p=self.start))
        return self.s, {}

    def step(self, action: int) -> tuple[int, float, bool, bool, dict]:
        outcomes = self.P[self.s][int(action)]
        i = self.np_random.choice(len(outcomes), p=[o[0] for o in outcomes]) if len(outcomes) > 1 else 0
        _, s2, reward, terminated = outcomes[i]
        self.s = int(s2)
        return self.s, float(reward), bool(terminated), False, {}


def chain(n: int = 5, reward: float = 1.0) -> ModelEnv:
    """Deterministic chain 0..n-1 starting at 0; 'right' (1) moves on, 'left' (0) moves back;
    reaching n-1 ends the episode with ``reward``. Every other step gives 0."""
    n = _check_size("n", n, 2)
    reward = _check_number("reward", reward)
    P: Transitions = {}
    for s in range(n):
        left, right = max(s - 1, 0), min(s + 1, n - 1)
        if s == n - 1:
            P[s] = {0: [(1.0, s, 0.0, True)], 1: [(1.0, s, 0.0, True)]}
        else:
            P[s] = {
                0: [(1.0, left, 0.0, False)],
                1: [(1.0, right, reward if right == n - 1 else 0.0, right == n - 1)],
            }
    start = np.zeros(n)
    start[0] = 1.0
    return ModelEnv(P, n, 2, start)


def river_swim(n: int = 6) -> ModelEnv:
    """RiverSwim (Strehl & Littman 2008), with rewards scaled as in Osband et al. 2013: swimming
    left always works and pays 0.005 at the left bank; swimming right against the current
    succeeds with probability 0.3 (0.6 at the left bank), and staying at the right bank pays 1."""
    n = _check_size("n", n, 3)
    P: Transitions = {}
    for s in range(n):
        left = [(1.0, max(s - 1, 0), 0.005 if s == 0 else 0.0, False)]
        if s == 0:
            right = [(0.4, 0, 0.0, False), (0.6, 1, 0.0, False)]
        elif s == n - 1:
            right = [(0.3, n - 2, 0.0, False), (0.7, n - 1, 1.0, False)]
        else:
            right = [(0.1, s - 1, 0.0, False), (0.6, s, 0.0, False), (0.3, s + 1, 0.0, False)]
        P[s] = {0: left, 1: right}
    start = np.zeros(n)
    start[:2] = 0.5
    return ModelEnv(P, n, 2, start)


def gridworld(
    rows: int = 4,
    cols: int = 4,
    goal: tuple[int, int] | None = None,
    walls: tuple[tuple[int, int], ...] = (),
    step_reward: float = -1.0,
    slip: float = 0.0,
) -> ModelEnv:
    """A rows x cols grid, start at the top-left, episode ends at ``goal`` (default bottom-right).
    Actions 0-3 = up, right, down, left; with probability ``slip`` a random other direction is taken.
    Moving into a wall or the border leaves the agent in place. Each step costs ``step_reward``."""
    rows, cols = _check_size("rows", rows, 1, 1000), _check_size("cols", cols, 1, 1000)
    if rows * cols < 2 or rows * cols > MAX_STATES:
        raise ConfigError(f"rows x cols = {rows * cols} is not allowed; it must be in [2, {MAX_STATES}]")
    step_reward = _check_number("step_reward", step_reward)
    slip = _check_number("slip", slip, 0.0, 1.0)
    cell: tuple[int, ...] = tuple(goal) if goal is not None else (rows - 1, cols - 1)
    if len(cell) != 2 or not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
        raise ConfigError(f"goal={goal!r} is not allowed; it must be a cell (row, col) of the grid")
    goal_row, goal_col = cell
    walls = tuple(tuple(w) for w in walls)  # type: ignore[misc]
    moves = [(-1, 0), (0, 1), (1, 0), (0, -1)]
    blocked = set(walls)

    def target(r: int, c: int, a: int) -> tuple[int, int]:
        nr, nc = r + moves[a][0], c + moves[a][1]
        if not (0 <= nr < rows and 0 <= nc < cols) or (nr, nc) in blocked:
            return r, c
        return nr, nc

    P: Transitions = {}
    for r in range(rows):
        for c in range(cols):
            s = r * cols + c
            if (r, c) == (goal_row, goal_col) or (r, c) in blocked:
                P[s] = {a: [(1.0, s, 0.0, True)] for a in range(4)}
                continue
            P[s] = {}
            for a in range(4):
                probs: dict[int, float] = {}
                for b in range(4):
                    p = (1.0 - slip) if b == a else slip / 3
                    if p > 0:
                        nr, nc = target(r, c, b)
                        probs[nr * cols + nc] = probs.get(nr * cols + nc, 0.0) + p
                P[s][a] = [(p, s2, step_reward, s2 == goal_row * cols + goal_col) for s2, p in probs.items()]
    start = np.zeros(rows * cols)
    start[0] = 1.0
    return ModelEnv(P, rows * cols, 4, start)
