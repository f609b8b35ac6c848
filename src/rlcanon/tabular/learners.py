"""Model-free tabular control (Sutton & Barto 2018, ch. 5-7 and 12). Each learner keeps its tables
and is told each transition; the episode loop and the behaviour policy live in ``learn.py``.

    observe(s, a, r, s2, a2, terminated, done)   a2 = the behaviour's next action at s2
    end_episode()
"""

from __future__ import annotations

from collections import deque

import numpy as np


def epsilon_greedy_probs(q_row: np.ndarray, epsilon: float) -> np.ndarray:
    """pi(.|s) of the epsilon-greedy policy; ties for the max share the greedy mass."""
    best = q_row == q_row.max()
    return epsilon / len(q_row) + (1 - epsilon) * best / best.sum()


class TDControl:
    """One-step TD control: SARSA, Expected SARSA or Q-learning (eqs. 6.7, 6.9, 6.8)."""

    def __init__(
        self, n_s: int, n_a: int, kind: str, alpha: float, gamma: float, epsilon: float, q_init: float = 0.0
    ) -> None:
        self.q = np.full((n_s, n_a), q_init)
        self.kind, self.alpha, self.gamma, self.epsilon = kind, alpha, gamma, epsilon

    def bootstrap(self, s2: int, a2: int) -> float:
        row = self.q[s2]
        if self.kind == "sarsa":
            return float(row[a2])
        if self.kind == "expected-sarsa":
            return float(epsilon_greedy_probs(row, self.epsilon) @ row)
        return float(row.max())

    def observe(self, s: int, a: int, r: float, s2: int, a2: int, terminated: bool, done: bool) -> None:
        target = r if terminated else r + self.gamma * self.bootstrap(s2, a2)
        self.q[s, a] += self.alpha * (target - self.q[s, a])

    def end_episode(self) -> None:
        pass


class DoubleQ:
    """Double Q-learning (van Hasselt 2010): two tables; each update picks one at random, takes the
    argmax with it and evaluates that action with the other. Acting uses Q1 + Q2."""

    def __init__(
        self, n_s: int, n_a: int, alpha: float, gamma: float, rng: np.random.Generator, q_init: float = 0.0
    ) -> None:
        self.q1 = np.full((n_s, n_a), q_init)
        self.q2 = np.full((n_s, n_a), q_init)
        self.alpha, self.gamma, self.rng = alpha, gamma, rng

    @property
    def q(self) -> np.ndarray:
        return self.q1 + self.q2

    def observe(self, s: int, a: int, r: float, s2: int, a2: int, terminated: bool, done: bool) -> None:
        upd, other = (self.q1, self.q2) if self.rng.random() < 0.5 else (self.q2, self.q1)
        target = r if terminated else r + self.gamma * other[s2, int(np.argmax(upd[s2]))]
        upd[s, a] += self.alpha * (target - upd[s, a])

    def end_episode(self) -> None:
        pass


class NStepSarsa:
    """n-step SARSA (eq. 7.4): G = r_t + ... + gamma^(n-1) r_{t+n-1} + gamma^n Q(s_{t+n}, a_{t+n})."""

    def __init__(self, n_s: int, n_a: int, n: int, alpha: float, gamma: float, q_init: float = 0.0) -> None:
        self.q = np.full((n_s, n_a), q_init)
        self.n, self.alpha, self.gamma = n, alpha, gamma
        self.window: deque[tuple[int, int, float]] = deque()

    def _update_oldest(self, tail: float) -> None:
        s, a, _ = self.window[0]
        g = sum(self.gamma**i * r for i, (_, _, r) in enumerate(self.window)) + tail
        self.q[s, a] += self.alpha * (g - self.q[s, a])
        self.window.popleft()

    def observe(self, s: int, a: int, r: float, s2: int, a2: int, terminated: bool, done: bool) -> None:
        self.window.append((s, a, r))
        if done:  # flush: truncation bootstraps from (s2, a2), termination does not
            while self.window:
                tail = 0.0 if terminated else self.gamma ** len(self.window) * self.q[s2, a2]
                self._update_oldest(tail)
        elif len(self.window) == self.n:
            self._update_oldest(self.gamma**self.n * self.q[s2, a2])

    def end_episode(self) -> None:
        self.window.clear()


class SarsaLambda:
    """SARSA(lambda) with eligibility traces (sec. 12.7), accumulating or replacing."""

    def __init__(
        self,
        n_s: int,
        n_a: int,
        lam: float,
        alpha: float,
        gamma: float,
        replacing: bool = False,
        q_init: float = 0.0,
    ) -> None:
        self.q = np.full((n_s, n_a), q_init)
        self.e = np.zeros((n_s, n_a))
        self.lam, self.alpha, self.gamma, self.replacing = lam, alpha, gamma, replacing

    def observe(self, s: int, a: int, r: float, s2: int, a2: int, terminated: bool, done: bool) -> None:
        delta = r - self.q[s, a] + (0.0 if terminated else self.gamma * self.q[s2, a2])
        if self.replacing:
            self.e[s, a] = 1.0
        else:
            self.e[s, a] += 1.0
        self.q += self.alpha * delta * self.e
        self.e *= self.gamma * self.lam

    def end_episode(self) -> None:
        self.e[:] = 0.0


class MonteCarlo:
    """On-policy Monte Carlo control with an epsilon-soft policy (sec. 5.4), first-visit or
    every-visit, with sample-average updates (or a constant ``alpha``)."""

    def __init__(
        self,
        n_s: int,
        n_a: int,
        gamma: float,
        first_visit: bool,
        alpha: float | None = None,
        q_init: float = 0.0,
    ) -> None:
        self.q = np.full((n_s, n_a), q_init)
        self.n = np.zeros((n_s, n_a))
        self.gamma, self.first_visit, self.alpha = gamma, first_visit, alpha
        self.episode: list[tuple[int, int, float]] = []

    def observe(self, s: int, a: int, r: float, s2: int, a2: int, terminated: bool, done: bool) -> None:
        self.episode.append((s, a, r))

    def end_episode(self) -> None:
        g = 0.0
        first: dict[tuple[int, int], int] = {}
        if self.first_visit:
            for t, (s, a, _) in enumerate(self.episode):
                first.setdefault((s, a), t)
        for t in range(len(self.episode) - 1, -1, -1):
            s, a, r = self.episode[t]
            g = self.gamma * g + r
            if self.first_visit and first[(s, a)] != t:
                continue
            self.n[s, a] += 1
            step = self.alpha if self.alpha is not None else 1.0 / self.n[s, a]
            self.q[s, a] += step * (g - self.q[s, a])
        self.episode = []
