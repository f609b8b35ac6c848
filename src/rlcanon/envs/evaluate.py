"""Evaluation: separate episodes with the deterministic (greedy or mean) policy."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcanon.envs.factory import EnvSpecLike, make_vec_env


def evaluate(
    act: Callable[[np.ndarray], np.ndarray],
    env: EnvSpecLike,
    episodes: int,
    seed: int,
    max_steps: int = 100_000,
    max_parallel: int = 16,
) -> np.ndarray:
    """Run ``episodes`` episodes in parallel sub-envs and return their undiscounted returns.

    ``act`` maps a batch of observations to a batch of actions. Each sub-env contributes the
    episodes it finishes until ``episodes`` are done; seeds differ from training seeds.
    """
    n = max(1, min(episodes, max_parallel))
    vec = make_vec_env(env, n)
    try:
        obs, _ = vec.reset(seed=seed)
        ep_ret = np.zeros(n)
        autoreset = np.zeros(n, dtype=bool)
        returns: list[float] = []
        # With NEXT_STEP autoreset, each sub-env runs its episodes back to back.
        quota = np.full(n, episodes // n)
        quota[: episodes % n] += 1
        for _ in range(max_steps):
            obs, rew, term, trunc, _ = vec.step(act(np.asarray(obs)))
            valid = ~autoreset & (quota > 0)
            ep_ret += np.where(valid, rew, 0.0)
            done = (np.asarray(term) | np.asarray(trunc)) & valid
            for i in np.flatnonzero(done):
                returns.append(float(ep_ret[i]))
                ep_ret[i] = 0.0
                quota[i] -= 1
            autoreset = np.asarray(term) | np.asarray(trunc)
            if len(returns) >= episodes:
                break
        return np.asarray(returns[:episodes], dtype=np.float64)
    finally:
        vec.close()
