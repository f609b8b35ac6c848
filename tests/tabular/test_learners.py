"""Model-free learners: convergence to the DP optimum, the cliff behaviour, bonuses, bad input."""

from dataclasses import replace

import numpy as np
import pytest

from rlcanon.envs.toy import chain
from rlcanon.errors import ConfigError
from rlcanon.tabular import METHODS, TabularConfig, train
from rlcanon.tabular.dp import value_iteration
from rlcanon.tabular.learn import run_episodes
from rlcanon.tabular.mdp import make_tabular_env, model_of


def test_q_learning_converges_to_dp_optimum():
    cfg = TabularConfig(
        method="q-learning",
        env_id="rlcanon/Chain-v0",
        episodes=400,
        alpha=0.5,
        gamma=0.9,
        epsilon=0.5,
        max_steps=50,
        seed=1,
    )
    res = train(cfg, write=False)
    model = model_of(chain(5))
    v, _ = value_iteration(model, 0.9)
    q_star = model.R + 0.9 * model.P @ v
    np.testing.assert_allclose(res.q[:4], q_star[:4], atol=1e-3)  # state 4 is terminal


@pytest.mark.parametrize("method", ["double-q", "expected-sarsa", "nstep-sarsa", "sarsa-lambda"])
def test_other_td_methods_find_the_optimal_chain_policy(method):
    cfg = TabularConfig(
        method=method,
        env_id="rlcanon/Chain-v0",
        episodes=300,
        alpha=0.3,
        gamma=0.9,
        epsilon=0.3,
        max_steps=50,
        seed=2,
    )
    res = train(cfg, write=False)
    assert np.argmax(res.q[:4], axis=1).tolist() == [1, 1, 1, 1]


def test_sarsa_safe_path_q_learning_optimal_path():
    from rlcanon.tabular.figures import cliff_comparison

    data = cliff_comparison(runs=5, episodes=500, seed=0)
    q_lengths, s_lengths = data["q-learning"]["path_lengths"], data["sarsa"]["path_lengths"]
    assert all(n == 13 for n in q_lengths)  # along the cliff edge: the optimal path
    assert np.median(s_lengths) > 13  # a detour away from the edge
    sarsa_rows = [divmod(s, 12)[0] for s in data["sarsa"]["path"]]
    assert min(sarsa_rows) <= 1  # climbs at least two rows above the cliff
    # online (epsilon-greedy) return: SARSA's safe path pays better while exploring
    assert data["sarsa"]["returns"][-100:].mean() > data["q-learning"]["returns"][-100:].mean() + 5


def test_monte_carlo_learns_frozen_lake_better_than_random():
    res = train(
        TabularConfig(
            method="mc-first-visit",
            env_id="FrozenLake-v1",
            episodes=3000,
            gamma=0.99,
            epsilon=0.2,
            seed=0,
            eval_episodes=100,
        ),
        write=False,
    )
    assert res.summary["eval_return_mean"] > 0.4  # a random policy succeeds ~1.5% of the time


class Spy:
    def __init__(self, n_s, n_a):
        self.q = np.zeros((n_s, n_a))
        self.rewards = []

    def observe(self, s, a, r, s2, a2, terminated, done):
        self.rewards.append((s, a, r))

    def end_episode(self):
        pass


def test_count_bonus_is_beta_over_sqrt_n():
    env = make_tabular_env("rlcanon/Chain-v0", max_steps=3)
    spy = Spy(5, 2)
    cfg = TabularConfig(
        method="q-learning", env_id="rlcanon/Chain-v0", episodes=2, epsilon=1.0, bonus_beta=0.5
    )
    run_episodes(cfg, env, spy, np.random.default_rng(0))
    seen = {}
    for s, a, r in spy.rewards:
        seen[(s, a)] = seen.get((s, a), 0) + 1
        base = 1.0 if (s, a) == (3, 1) else 0.0
        assert r == pytest.approx(base + 0.5 / np.sqrt(seen[(s, a)]))


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_runs_and_is_deterministic(method, tmp_path):
    gamma = 0.9 if "iteration" in method else 1.0
    cfg = TabularConfig(
        method=method, env_id="rlcanon/GridWorld-v0", episodes=30, gamma=gamma, seed=3, eval_episodes=2
    )
    a = train(cfg, run_dir=tmp_path / "a")
    b = train(cfg, write=False)
    np.testing.assert_array_equal(a.q, b.q)
    assert a.returns == b.returns
    assert (tmp_path / "a" / "summary.json").exists() and (tmp_path / "a" / "metrics.csv").exists()
    if method not in ("value-iteration", "policy-iteration"):
        c = train(replace(cfg, seed=4), write=False)
        assert a.returns != c.returns


def test_bad_input():
    with pytest.raises(ConfigError, match="method"):
        TabularConfig(method="td-zero-point-five")
    with pytest.raises(ConfigError, match="gamma < 1"):
        TabularConfig(method="value-iteration", gamma=1.0)
    with pytest.raises(ConfigError, match="not tabular"):
        train(TabularConfig(env_id="CartPole-v1"), write=False)
    with pytest.raises(ConfigError, match="alpha"):
        TabularConfig(alpha=0.0)
