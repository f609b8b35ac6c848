"""Return and advantage computations as pure NumPy functions, checked against hand computation.

Conventions (Gymnasium 1.x): ``terminated`` means the MDP ended, so the next state has value 0;
``truncated`` means a time limit cut the episode, so the next state's value is bootstrapped.
"""

from __future__ import annotations

import numpy as np


def gae(
    rewards: np.ndarray,
    values: np.ndarray,
    terminated: np.ndarray,
    dones: np.ndarray,
    gamma: float,
    gae_lambda: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalized advantage estimation (Schulman et al. 2016, eq. 16), over a [T, N] rollout.

    ``values`` has T+1 rows: ``values[t]`` is V(s_t) and ``values[T]`` the value of the state after
    the last step. ``terminated[t]`` zeroes the bootstrap of step t; ``dones[t]`` (terminated or
    truncated) stops the recursion, so advantages never leak across episodes.

        delta_t = r_t + gamma * (1 - terminated_t) * V(s_{t+1}) - V(s_t)
        A_t     = delta_t + gamma * lambda * (1 - done_t) * A_{t+1}

    Returns (advantages [T, N], returns = advantages + values[:T]).
    """
    T = rewards.shape[0]
    not_term = 1.0 - terminated.astype(np.float32)
    not_done = 1.0 - dones.astype(np.float32)
    deltas = rewards + gamma * not_term * values[1:] - values[:-1]
    advantages = np.zeros_like(deltas, dtype=np.float32)
    last = np.zeros(deltas.shape[1:], dtype=np.float32)
    decay = gamma * gae_lambda
    for t in range(T - 1, -1, -1):
        last = deltas[t] + decay * not_done[t] * last
        advantages[t] = last
    return advantages, advantages + values[:-1]


def n_step_returns(
    rewards: np.ndarray, terminated: np.ndarray, dones: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fold a window of n consecutive transitions into one n-step transition.

    Inputs have shape [n, ...], row 0 being the transition the target is for. The sum stops at the
    first step that ends the episode (terminated or truncated). Returns

    - ``reward``: sum_{k<m} gamma^k r_k over the m steps actually used;
    - ``discount``: gamma^m times 0 if the episode terminated inside the window, else 1;
    - ``last``: the index m-1 of the step whose next observation is bootstrapped.

    The TD target is then ``reward + discount * max_a Q(s_{last+1}, a)`` (Sutton & Barto, eq. 7.1).
    """
    n = rewards.shape[0]
    shape = rewards.shape[1:]
    reward = np.zeros(shape, dtype=np.float64)
    discount = np.ones(shape, dtype=np.float64)
    alive = np.ones(shape, dtype=bool)
    last = np.zeros(shape, dtype=np.int64)
    for k in range(n):
        reward = np.where(alive, reward + discount * rewards[k], reward)
        last = np.where(alive, k, last)
        discount = np.where(alive, discount * gamma, discount)
        ended_term = alive & terminated[k].astype(bool)
        discount = np.where(ended_term, 0.0, discount)
        alive = alive & ~dones[k].astype(bool)
    return reward, discount, last
