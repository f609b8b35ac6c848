"""Train a tabular method on a discrete environment and write a run directory."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rlcanon.core.config import check_choice, check_int, check_range
from rlcanon.core.validate import MAX_INT, ArraySpec
from rlcanon.envs.factory import make_vec_env
from rlcanon.errors import ConfigError, NonFiniteError
from rlcanon.run.config import MAX_BUDGET, BaseConfig
from rlcanon.run.state import Parts
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
class TabularConfig(BaseConfig):
    """Settings of a tabular run."""

    BUDGET: ClassVar[str] = "episodes"
    UNIT: ClassVar[str] = "episode"

    method: str = "q-learning"
    """One of the tabular methods (see `rlcanon list`)."""
    env_id: str = "CliffWalking-v1"
    """FrozenLake-v1, CliffWalking-v1, Taxi-v4, or our rlcanon/Chain-v0, rlcanon/RiverSwim-v0,
    rlcanon/GridWorld-v0 (any env with Discrete observations and actions)."""
    episodes: int = 500
    """Training episodes (ignored by the DP methods)."""
    alpha: float = 0.5
    """Step size."""
    gamma: float = 1.0
    """Discount factor (1: Sutton & Barto's episodic examples; the DP methods need < 1, and the CLI
    gives them 0.99 when --gamma is not set)."""
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

    def validate(self) -> None:
        check_choice("method", self.method, list(METHODS))
        check_int("episodes", self.episodes, 1, MAX_BUDGET)
        check_range("alpha", self.alpha, 1e-12, 1.0)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_range("epsilon", self.epsilon, 0.0, 1.0)
        check_range("lam", self.lam, 0.0, 1.0)
        check_int("n", self.n, 1, 100_000)
        check_range("bonus_beta", self.bonus_beta, 0.0, 1e6)
        check_range("q_init", self.q_init, -1e12, 1e12)
        check_int("max_steps", self.max_steps, 0, 10**9)
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


def run_episode(
    cfg: TabularConfig, env: Any, learner: Any, rng: np.random.Generator, counts: np.ndarray, seed: int | None
) -> tuple[float, int]:
    """One episode: epsilon-greedy behaviour, optional count bonus, one observe() per step."""
    s, _ = env.reset(seed=seed)
    a = _act(learner.q[s], cfg.epsilon, rng)
    total, steps, done = 0.0, 0, False
    while not done:
        s2, r, terminated, truncated, _ = env.step(a)
        done = terminated or truncated
        total += r
        steps += 1
        if not math.isfinite(total):  # a non-finite reward, or rewards whose sum overflows
            raise NonFiniteError(f"the environment returned a non-finite reward ({r}) or return")
        if cfg.bonus_beta:
            counts[s, a] += 1
            r = r + cfg.bonus_beta / np.sqrt(counts[s, a])
        a2 = _act(learner.q[s2], cfg.epsilon, rng)
        learner.observe(s, a, r, s2, a2, terminated, done)
        s, a = s2, a2
    learner.end_episode()
    if not np.isfinite(learner.q).all():
        raise NonFiniteError("the Q table overflowed to a non-finite value; scale the rewards down")
    return total, steps


def run_episodes(
    cfg: TabularConfig, env: Any, learner: Any, rng: np.random.Generator
) -> tuple[list[float], list[int]]:
    """``cfg.episodes`` episodes (the first reset seeded with ``cfg.seed``): returns and lengths."""
    counts = np.zeros(discrete_sizes(env))
    out = [
        run_episode(cfg, env, learner, rng, counts, cfg.seed if ep == 0 else None)
        for ep in range(cfg.episodes)
    ]
    return [r for r, _ in out], [n for _, n in out]


class Tables:
    """The learner's tables and the bonus counts, as a checkpointed part."""

    def __init__(self, learner: Any) -> None:
        self.learner = learner

    def _owners(self) -> dict[str, tuple[Any, str]]:
        out = {"counts": (self.learner, "counts")}
        if self.learner.method_learner is not None:
            for name in TABLES.get(type(self.learner.method_learner).__name__, ("q",)):
                out[name] = (self.learner.method_learner, name)
        else:
            out["q"] = (self.learner, "q_dp")
        return out

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {k: getattr(obj, attr) for k, (obj, attr) in self._owners().items()}

    def array_specs(self) -> dict[str, ArraySpec]:
        specs = {k: ArraySpec.like(getattr(obj, attr)) for k, (obj, attr) in self._owners().items()}
        for key in NON_NEGATIVE:
            if key in specs:
                count = key in COUNTS
                high = float(MAX_INT) if count else None
                specs[key] = ArraySpec(specs[key].shape, specs[key].dtype, low=0.0, high=high, integer=count)
        return specs

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        for k, (obj, attr) in self._owners().items():
            getattr(obj, attr)[...] = arrays[k]


TABLES = {"DoubleQ": ("q1", "q2"), "SarsaLambda": ("q", "e"), "MonteCarlo": ("q", "n")}
"""The arrays each learner keeps (the others keep only ``q``)."""
NON_NEGATIVE = ("counts", "n", "e")
"""Tables of visit counts and eligibility traces: every value >= 0 (values are any finite number)."""
COUNTS = ("counts", "n")
"""Visit counts: whole numbers up to MAX_INT."""


class TabularLearner:
    """One episode per iteration (DP methods solve the model in their first iteration)."""

    def __init__(self, config: TabularConfig, env: Any, rng: np.random.Generator) -> None:
        if not isinstance(env, str):
            raise ConfigError("tabular learners need an env id")
        self.cfg, self.rng = config, rng
        self.env = make_tabular_env(env, config.max_steps or None, config.env_kwargs, config.wrappers)
        n_s, n_a = discrete_sizes(self.env)
        self.observation_space, self.action_space = self.env.observation_space, self.env.action_space
        self._reseed = False
        self.counts = np.zeros((n_s, n_a))
        self.dp = config.method in DP_METHODS
        self.method_learner = None if self.dp else make_learner(config, n_s, n_a, rng)
        self.q_dp = np.zeros((n_s, n_a))
        self.episode = 0
        self.global_step = 0
        self.budget_granularity = 1
        self.returns: list[float] = []

    @property
    def progress(self) -> int:
        return self.episode

    @property
    def q(self) -> np.ndarray:
        return self.q_dp if self.method_learner is None else self.method_learner.q

    def iterate(self) -> dict[str, float]:
        cfg = self.cfg
        if self.dp:
            solve = value_iteration if cfg.method == "value-iteration" else policy_iteration
            model = model_of(self.env)
            v, _policy = solve(model, cfg.gamma)
            self.q_dp[...] = model.R + cfg.gamma * model.P @ v
            self.episode = cfg.episodes
            return {}
        seed = cfg.seed + self.episode if self.episode == 0 or self._reseed else None
        self._reseed = False
        ret, length = run_episode(cfg, self.env, self.method_learner, self.rng, self.counts, seed)
        self.episode += 1
        self.global_step += length
        self.returns.append(ret)
        return {
            "episode": float(self.episode),
            "charts/episodic_return": ret,
            "charts/episodic_length": float(length),
        }

    def on_restore(self) -> None:
        self._reseed = True  # the env's own state cannot be restored: reseed it from the episode count

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        return np.argmax(self.q[np.asarray(obs, dtype=np.int64)], axis=1), state

    def eval_env(self, num_envs: int) -> Any:
        cfg = self.cfg
        return make_vec_env(
            lambda: make_tabular_env(cfg.env_id, cfg.max_steps or None, cfg.env_kwargs, cfg.wrappers),
            num_envs,
        )

    def checkpoint_parts(self) -> Parts:
        return Parts(stateful={"tables": Tables(self)}, counters=("global_step", "episode"))

    def summary_extra(self) -> dict[str, Any]:
        last = self.returns[-10:]
        return {"method": self.cfg.method, "train_return_last10": float(np.mean(last)) if last else None}

    def close(self) -> None:
        self.env.close()


@dataclass
class TabularResult:
    q: np.ndarray
    returns: list[float]
    summary: dict[str, Any]
    run_dir: Path | None


def train(
    cfg: TabularConfig, run_dir: str | Path | None = None, write: bool = True, **kwargs: Any
) -> TabularResult:
    """Train (or solve, for DP). With ``write`` the run goes through the harness and writes a run
    directory; without, it only learns (for figures and sweeps) and returns the table and returns."""
    if write:
        from rlcanon.run.harness import train_run

        res = train_run("tabular", cfg, TabularLearner, run_dir=run_dir, **kwargs)
        return TabularResult(res.agent.q, res.agent.returns, res.summary, res.run_dir)
    from rlcanon.envs.evaluate import evaluate

    learner = TabularLearner(cfg, cfg.env_id, np.random.default_rng(cfg.seed))
    try:
        while learner.progress < cfg.episodes:
            learner.iterate()
        n = min(cfg.eval_episodes, 16)
        returns = evaluate(learner.predict, learner.eval_env(n), cfg.eval_episodes, cfg.seed + 10_000)
    finally:
        learner.close()
    summary = {"eval_return_mean": float(returns.mean()), "eval_return_std": float(returns.std())}
    return TabularResult(learner.q, learner.returns, summary, None)
