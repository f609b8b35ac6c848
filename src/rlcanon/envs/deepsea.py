"""DeepSea (``rlcanon/DeepSea-v0``), the deep-exploration test of the Behaviour Suite (Osband et al.
2020, "Behaviour Suite for Reinforcement Learning", ICLR; first in Osband et al. 2019, "Deep
Exploration via Randomized Value Functions", JMLR), with the suite's scoring.

The definition follows bsuite's ``bsuite/environments/deep_sea.py`` and the scoring its
``bsuite/experiments/deep_sea/analysis.py`` (with ``sweep.py`` and the episode logging schedule of
``bsuite/utils/wrappers.py``); this is an independent rewrite for Gymnasium 1.x.

The agent starts at the top-left cell of an N x N grid. Every step moves it one row down and one
column left or right (clipped at the left edge), so an episode lasts exactly N steps. Which of the
two actions means "right" is drawn per cell, once, from ``mapping_seed``. Moving right costs
``unscaled_move_cost / N``; moving right from the last column pays 1 (the treasure). Only the path
that goes right at every step reaches the bottom-right corner, so the optimal return is
``1 - unscaled_move_cost`` = 0.99, and a dithering agent finds it with probability 2^-N per episode.

An episode is *bad* if the agent ever moves left while on the diagonal (row == column): after that
the treasure is out of reach. ``info["bad_episode"]`` and ``info["total_bad_episodes"]`` are given on
the episode's last step; the scoring functions below read a run's sequence of bad flags.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from rlcanon.envs.toy import _check_number, _check_size
from rlcanon.errors import ConfigError

MAX_SIZE = 100
"""Largest N: an episode lasts N steps, under the 200-step limit every own env is registered with."""
SWEEP_MAPPING_SEED = 42
"""The mapping seed of every setting of bsuite's DeepSea sweep (``experiments/deep_sea/sweep.py``)."""
SOLVED_THRESHOLD = 0.9
"""A run has learned once its running fraction of bad episodes drops below this
(``find_solution(thresh=0.9)`` in ``analysis.py``)."""
FORGIVENESS = 100
"""A size counts as solved if learned before episode 2^N + 100 (``score(forgiveness=100.)``)."""
LOG_RATIOS_TENTHS = (10, 12, 14, 17, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100)
"""bsuite logs a run at episodes ratio * 10^k only (``_logarithmic_logging`` in
``utils/wrappers.py``: ratios 1, 1.2, 1.4, 1.7, 2, 2.5, 3, ..., 10), here in tenths."""


class DeepSeaEnv(gym.Env):
    """DeepSea; see the module docstring for the dynamics and where each constant comes from."""

    metadata = {"render_modes": []}  # noqa: RUF012 - the same mutable class attribute as gym.Env

    def __init__(
        self,
        size: int = 10,
        deterministic: bool = True,
        unscaled_move_cost: float = 0.01,
        randomize_actions: bool = True,
        mapping_seed: int | None = SWEEP_MAPPING_SEED,
    ) -> None:
        self.size = _check_size("size", size, 1, MAX_SIZE)
        for name, flag in (("deterministic", deterministic), ("randomize_actions", randomize_actions)):
            if not isinstance(flag, bool):
                raise ConfigError(f"{name}={flag!r} is not allowed; it must be True or False")
        self.deterministic, self.randomize_actions = deterministic, randomize_actions
        self.unscaled_move_cost = _check_number("unscaled_move_cost", unscaled_move_cost, 0.0, 1.0)
        if mapping_seed is not None:
            _check_size("mapping_seed", mapping_seed, 0, 2**32 - 1)
        self.mapping_seed = mapping_seed
        self.observation_space = gym.spaces.Box(0.0, 1.0, (self.size, self.size), np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.action_mapping = self._fixed_mapping()
        """``action_mapping[row, column]`` is the action that moves right in that cell."""
        self._drawn = False  # whether reset() has drawn the mapping (mapping_seed=None only)
        self.row = self.column = 0
        self.bad_episode = False
        self.total_bad_episodes = 0
        """Bad episodes over the env's life (bsuite's ``total_bad_episodes``; resets keep it)."""

    def _fixed_mapping(self) -> np.ndarray:
        if not self.randomize_actions:  # bsuite's debug mode: action 1 is right everywhere
            return np.ones((self.size, self.size), dtype=np.int64)
        if self.mapping_seed is None:  # a placeholder: reset() draws the mapping
            return np.zeros((self.size, self.size), dtype=np.int64)
        # The legacy generator, drawn the way bsuite draws it, so that a mapping seed gives bsuite's
        # own mapping (its sweep uses seed 42); it is local to the env, never the global one.
        mapping = np.random.RandomState(self.mapping_seed).binomial(1, 0.5, (self.size, self.size))
        return np.asarray(mapping, dtype=np.int64)

    def _observation(self) -> np.ndarray:
        obs = np.zeros((self.size, self.size), dtype=np.float32)
        if self.row < self.size:  # after the last step: the all-zero observation, as in bsuite
            obs[self.row, self.column] = 1.0
        return obs

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.randomize_actions and self.mapping_seed is None and (seed is not None or not self._drawn):
            # no fixed mapping seed: the first reset, and every seeded one, draws the mapping from the
            # env's generator, so the reset seed fixes the MDP as well as the noise
            self._drawn = True
            self.action_mapping = self.np_random.integers(0, 2, (self.size, self.size), dtype=np.int64)
        self.row = self.column = 0
        self.bad_episode = False
        return self._observation(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.row >= self.size:
            raise ConfigError("step() after the episode ended; call reset() first")
        if action not in (0, 1):
            raise ConfigError(f"DeepSea takes action 0 or 1; got {action!r}")
        n = self.size
        right = int(action) == self.action_mapping[self.row, self.column]
        reward = 0.0
        if right and self.column == n - 1:  # the treasure (reachable on the last row only)
            reward += 1.0
        if not self.deterministic and self.row == n - 1 and self.column in (0, n - 1):
            reward += float(self.np_random.standard_normal())  # noisy ends of the stochastic variant
        if right:
            # the stochastic variant's current: "right" fails with probability 1/N (then no move)
            if self.deterministic or self.np_random.random() > 1.0 / n:
                self.column = min(self.column + 1, n - 1)
            reward -= self.unscaled_move_cost / n  # paid whether or not the move succeeded
        else:
            if self.row == self.column:  # left the diagonal: the treasure is now out of reach
                self.bad_episode = True
            self.column = max(self.column - 1, 0)
        self.row += 1
        terminated = self.row == n
        info: dict[str, Any] = {}
        if terminated:
            self.total_bad_episodes += int(self.bad_episode)
            info = {"bad_episode": self.bad_episode, "total_bad_episodes": self.total_bad_episodes}
        return self._observation(), reward, terminated, False, info

    def optimal_actions(self) -> list[int]:
        """The actions of the optimal path (right at every cell of the diagonal)."""
        return [int(self.action_mapping[i, i]) for i in range(self.size)]


def deep_sea(size: int = 10, **kwargs: Any) -> DeepSeaEnv:
    """The ``rlcanon/DeepSea-v0`` entry point: ``gym.make("rlcanon/DeepSea-v0", size=12)``."""
    return DeepSeaEnv(size, **kwargs)


# ---- scoring (bsuite/experiments/deep_sea/analysis.py) ----


def bsuite_logged(episode: int) -> bool:
    """Whether bsuite logs a run after ``episode`` (1-based): 1..10, 12, 14, 17, 20, 25, 30, 40, ..."""
    power = 10 ** (len(str(episode)) - 1)
    return any(episode * 10 == power * tenths for tenths in LOG_RATIOS_TENTHS)


def episodes_to_learn(
    bad_flags: Sequence[bool],
    threshold: float = SOLVED_THRESHOLD,
    every_episode: bool = False,
) -> tuple[int, bool]:
    """bsuite's ``find_solution`` for one run: the first episode e (1-based) at which the fraction of
    bad episodes so far, total_bad(e) / e, is below ``threshold``, checked where bsuite logs (or at
    every episode). Returns (e, True), or (the last episode, False) if it never drops below."""
    flags = np.asarray(bad_flags, dtype=bool)
    if flags.ndim != 1 or len(flags) == 0:
        raise ConfigError(f"bad_flags must be a non-empty sequence of booleans; got shape {flags.shape}")
    if isinstance(threshold, bool) or not 0.0 < threshold <= 1.0:
        raise ConfigError(f"threshold={threshold!r} is not allowed; it must lie in (0, 1]")
    episodes = np.arange(1, len(flags) + 1)
    below = np.cumsum(flags) / episodes < threshold
    if not every_episode:
        below &= np.array([bsuite_logged(int(e)) for e in episodes])
    hits = np.flatnonzero(below)
    if len(hits) == 0:
        return len(flags), False
    return int(episodes[hits[0]]), True


def beats_dithering(size: int, episode: int, solved: bool, forgiveness: float = FORGIVENESS) -> bool:
    """bsuite's per-size criterion in ``score``: learned before episode 2^N + forgiveness."""
    return solved and episode < 2**size + forgiveness


def suite_score(runs: dict[int, Sequence[bool]], every_episode: bool = False) -> float:
    """The DeepSea score: the fraction of sizes (``{N: bad flags of that run}``) whose run beats
    dithering (bsuite's ``score``, a mean over the sweep's settings)."""
    if not runs:
        raise ConfigError("suite_score needs at least one run; got none")
    hits = [
        beats_dithering(n, *episodes_to_learn(flags, every_episode=every_episode))
        for n, flags in runs.items()
    ]
    return float(np.mean(hits))
