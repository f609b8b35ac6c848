"""Train a tabular method on a discrete environment and write a run directory."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlcanon.core import checkpoint as ckpt
from rlcanon.core.config import check_choice, check_positive, check_range, to_dict
from rlcanon.core.logger import MetricsLogger
from rlcanon.core.rundir import default_run_dir, write_config, write_summary
from rlcanon.errors import ConfigError
from rlcanon.tabular.dp import policy_iteration, value_iteration
from rlcanon.tabular.learners import (
    DoubleQ,
    MonteCarlo,
    NStepSarsa,
    SarsaLambda,
    TDControl,
    epsilon_greedy_probs,
)
from rlcanon.tabular.mdp import discrete_sizes, make_tabular_env, model_of

METHODS = {
    "value-iteration": "exact DP: V <- max_a [R + gamma P V] (needs the model)",
    "policy-iteration": "exact DP: evaluate, improve greedily, repeat (needs the model)",
    "mc-first-visit": "on-policy first-visit Monte Carlo control, epsilon-soft",
    "mc-every-visit": "on-policy every-visit Monte Carlo control, epsilon-soft",
    "sarsa": "on-policy one-step TD control",
    "expected-sarsa": "one-step TD with the expectation over the epsilon-greedy policy",
    "q-learning": "off-policy one-step TD control (max bootstrap)",
    "double-q": "Double Q-learning: two tables, decoupled argmax and evaluation",
    "nstep-sarsa": "n-step SARSA",
    "sarsa-lambda": "SARSA(lambda) with eligibility traces (TD(lambda) control)",
}
DP_METHODS = ("value-iteration", "policy-iteration")


@dataclass(frozen=True)
class TabularConfig:
    """Settings of a tabular run."""

    method: str = "q-learning"
    """One of the tabular methods (see `rlcanon list`)."""
    env_id: str = "CliffWalking-v1"
    """FrozenLake-v1, CliffWalking-v1, Taxi-v4, or our Chain-v0, RiverSwim-v0, GridWorld-v0."""
    episodes: int = 500
    """Training episodes (ignored by the DP methods)."""
    alpha: float = 0.5
    """Step size."""
    gamma: float = 1.0
    """Discount factor (DP needs gamma < 1 or an absorbing goal)."""
    epsilon: float = 0.1
    """Exploration rate of the epsilon-greedy behaviour policy."""
    n: int = 4
    """n for n-step SARSA."""
    lam: float = 0.9
    """lambda for SARSA(lambda)."""
    replacing_traces: bool = False
    """Replacing instead of accumulating eligibility traces."""
    bonus_beta: float = 0.0
    """Count bonus beta / sqrt(N(s, a)) added to every reward (MBIE-EB, Strehl & Littman 2008)."""
    q_init: float = 0.0
    """Initial action values."""
    max_steps: int = 0
    """Step limit per episode (0: the env's own; 200 for our envs)."""
    eval_episodes: int = 20
    """Greedy-policy episodes in the final evaluation."""
    seed: int = 0
    """Seed of the env and the behaviour policy."""

    def __post_init__(self) -> None:
        check_choice("method", self.method, list(METHODS))
        check_positive("episodes", self.episodes)
        check_range("alpha", self.alpha, 1e-12, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("epsilon", self.epsilon, 0.0, 1.0)
        check_range("lam", self.lam, 0.0, 1.0)
        check_positive("n", self.n)
        check_positive("bonus_beta", self.bonus_beta, allow_zero=True)
        check_positive("eval_episodes", self.eval_episodes)
        if self.method in DP_METHODS and self.gamma >= 1.0:
            raise ConfigError(f"{self.method} needs gamma < 1 here; got gamma={self.gamma}")


def make_learner(cfg: TabularConfig, n_s: int, n_a: int, rng: np.random.Generator) -> Any:
    m, kw = cfg.method, {"q_init": cfg.q_init}
    if m in ("sarsa", "expected-sarsa", "q-learning"):
        return TDControl(n_s, n_a, m, cfg.alpha, cfg.gamma, cfg.epsilon, **kw)
    if m == "double-q":
        return DoubleQ(n_s, n_a, cfg.alpha, cfg.gamma, rng, **kw)
    if m == "nstep-sarsa":
        return NStepSarsa(n_s, n_a, cfg.n, cfg.alpha, cfg.gamma, **kw)
    if m == "sarsa-lambda":
        return SarsaLambda(n_s, n_a, cfg.lam, cfg.alpha, cfg.gamma, cfg.replacing_traces, **kw)
    return MonteCarlo(n_s, n_a, cfg.gamma, first_visit=m == "mc-first-visit", **kw)


def _act(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    return int(rng.choice(len(q_row), p=epsilon_greedy_probs(q_row, epsilon)))


def run_episodes(
    cfg: TabularConfig, env: Any, learner: Any, rng: np.random.Generator, on_episode: Any = None
) -> tuple[list[float], list[int]]:
    """The episode loop: epsilon-greedy behaviour, optional count bonus, one observe() per step."""
    n_s, n_a = discrete_sizes(env)
    counts = np.zeros((n_s, n_a))
    returns, lengths = [], []
    for ep in range(cfg.episodes):
        s, _ = env.reset(seed=cfg.seed if ep == 0 else None)
        a = _act(learner.q[s], cfg.epsilon, rng)
        total, steps, done = 0.0, 0, False
        while not done:
            s2, r, terminated, truncated, _ = env.step(a)
            done = terminated or truncated
            total += r
            steps += 1
            if cfg.bonus_beta:
                counts[s, a] += 1
                r = r + cfg.bonus_beta / np.sqrt(counts[s, a])
            a2 = _act(learner.q[s2], cfg.epsilon, rng)
            learner.observe(s, a, r, s2, a2, terminated, done)
            s, a = s2, a2
        learner.end_episode()
        returns.append(total)
        lengths.append(steps)
        if on_episode is not None:
            on_episode(ep, total, steps)
    return returns, lengths


def greedy_returns(env: Any, q: np.ndarray, episodes: int, seed: int) -> np.ndarray:
    out = []
    for ep in range(episodes):
        s, _ = env.reset(seed=seed + ep)
        total, done = 0.0, False
        while not done:
            s, r, terminated, truncated, _ = env.step(int(np.argmax(q[s])))
            total += r
            done = terminated or truncated
        out.append(total)
    return np.asarray(out)


@dataclass
class TabularResult:
    q: np.ndarray
    returns: list[float]
    summary: dict[str, Any]
    run_dir: Path | None


def train(cfg: TabularConfig, run_dir: str | Path | None = None, write: bool = True) -> TabularResult:
    """Train (or solve, for DP) and, when ``write``, save config, metrics, Q table and summary."""
    rng = np.random.default_rng(cfg.seed)
    env = make_tabular_env(cfg.env_id, cfg.max_steps or None)
    n_s, n_a = discrete_sizes(env)
    path = Path(run_dir) if run_dir else default_run_dir(cfg.method, cfg.env_id, cfg.seed)
    start = time.perf_counter()
    logger = None
    if write:
        path.mkdir(parents=True, exist_ok=True)
        write_config(path, "tabular", to_dict(cfg))
        logger = MetricsLogger(path, ["charts/episodic_length", "episode"])
    returns: list[float] = []
    if cfg.method in DP_METHODS:
        solve = value_iteration if cfg.method == "value-iteration" else policy_iteration
        model = model_of(env)
        v, _policy = solve(model, cfg.gamma)
        q = model.R + cfg.gamma * model.P @ v
    else:
        learner = make_learner(cfg, n_s, n_a, rng)
        step_total = [0]

        def log(ep: int, ret: float, length: int) -> None:
            step_total[0] += length
            if logger is not None:
                logger.log(
                    {
                        "global_step": step_total[0],
                        "episode": ep + 1,
                        "charts/episodic_return": ret,
                        "charts/episodic_length": length,
                        "time/sps": step_total[0] / max(time.perf_counter() - start, 1e-9),
                    }
                )

        returns, _ = run_episodes(cfg, env, learner, rng, log)
        q = learner.q
    wall = time.perf_counter() - start
    evals = greedy_returns(env, q, cfg.eval_episodes, cfg.seed + 10_000)
    summary = {
        "algo": cfg.method,
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "episodes": 0 if cfg.method in DP_METHODS else cfg.episodes,
        "wall_time_s": round(wall, 3),
        "eval_return_mean": float(evals.mean()),
        "eval_return_std": float(evals.std()),
        "eval_episodes": len(evals),
        "train_return_last10": float(np.mean(returns[-10:])) if returns else None,
    }
    if logger is not None:
        logger.close()
        ckpt.save_checkpoint(path, len(returns), {"q": q}, {"algo": "tabular", "method": cfg.method})
        write_summary(path, summary)
    return TabularResult(q, returns, summary, path if write else None)


def evaluate_tabular_run(run_dir: str | Path, episodes: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Greedy-policy returns of a tabular run's saved Q table (same keys as summary.json)."""
    from rlcanon.core.config import from_dict
    from rlcanon.core.rundir import read_config

    cfg = from_dict(TabularConfig, read_config(run_dir)["config"])
    arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    env = make_tabular_env(cfg.env_id, cfg.max_steps or None)
    n = episodes or cfg.eval_episodes
    returns = greedy_returns(env, arrays["q"], n, cfg.seed + 20_000 + seed)
    return {
        "run_dir": str(run_dir),
        "env_id": cfg.env_id,
        "checkpoint_step": int(state["step"]),
        "eval_return_mean": float(returns.mean()),
        "eval_return_std": float(returns.std()),
        "eval_episodes": n,
    }
