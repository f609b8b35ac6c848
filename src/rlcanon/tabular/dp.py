"""Exact dynamic programming on a known model (Sutton & Barto 2018, ch. 4)."""

from __future__ import annotations

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.tabular.mdp import TabularModel


def q_from_v(model: TabularModel, v: np.ndarray, gamma: float) -> np.ndarray:
    """Q(s, a) = R(s, a) + gamma sum_s' P(s' | s, a) V(s')."""
    return model.R + gamma * model.P @ v


def policy_evaluation(
    model: TabularModel, policy: np.ndarray, gamma: float, tol: float = 1e-10, max_iter: int = 100_000
) -> np.ndarray:
    """Iterative evaluation of a stochastic policy pi[s, a] until the largest change is < tol."""
    v = np.zeros(model.n_states)
    for _ in range(max_iter):
        new = (policy * q_from_v(model, v, gamma)).sum(axis=1)
        if np.max(np.abs(new - v)) < tol:
            return new
        v = new
    raise ConfigError(f"policy evaluation did not converge in {max_iter} sweeps (is gamma < 1?)")


def _exact_evaluation(model: TabularModel, actions: np.ndarray, gamma: float) -> np.ndarray:
    """Solve (I - gamma P_pi) V = R_pi for a deterministic policy."""
    idx = np.arange(model.n_states)
    P_pi = model.P[idx, actions]
    R_pi = model.R[idx, actions]
    return np.linalg.solve(np.eye(model.n_states) - gamma * P_pi, R_pi)


def policy_iteration(
    model: TabularModel, gamma: float, max_iter: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """Howard's policy iteration: exact evaluation, greedy improvement, until the policy is stable.
    Returns (V*, greedy policy)."""
    actions = np.zeros(model.n_states, dtype=np.int64)
    for _ in range(max_iter):
        v = _exact_evaluation(model, actions, gamma)
        q = q_from_v(model, v, gamma)
        # keep the current action on ties so the loop cannot cycle between equal actions
        best = np.where(
            q[np.arange(len(actions)), actions] >= q.max(axis=1) - 1e-12, actions, q.argmax(axis=1)
        )
        if np.array_equal(best, actions):
            return v, actions
        actions = best
    raise ConfigError(f"policy iteration did not stabilise in {max_iter} iterations")


def value_iteration(
    model: TabularModel, gamma: float, tol: float = 1e-12, max_iter: int = 1_000_000
) -> tuple[np.ndarray, np.ndarray]:
    """V <- max_a Q(s, a) until the largest change is < tol * (1 - gamma) / (2 gamma), which bounds
    the error of V by tol (Puterman 1994, Thm 6.3.1). Returns (V, greedy policy)."""
    v = np.zeros(model.n_states)
    stop = tol * (1 - gamma) / (2 * gamma) if 0 < gamma < 1 else tol
    for _ in range(max_iter):
        q = q_from_v(model, v, gamma)
        new = q.max(axis=1)
        if np.max(np.abs(new - v)) < stop:
            return new, q_from_v(model, new, gamma).argmax(axis=1)
        v = new
    raise ConfigError(f"value iteration did not converge in {max_iter} sweeps")
