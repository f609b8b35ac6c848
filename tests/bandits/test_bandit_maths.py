"""Bandit maths against hand computation: regret, the UCB1 index, Beta posterior updates."""

import math

import numpy as np
import pytest

from rlcanon.bandits import BanditProblem, lai_robbins_constant, make_solver, simulate
from rlcanon.bandits.problems import bernoulli_kl
from rlcanon.errors import ConfigError


class Scripted:
    """A fake solver that pulls a fixed sequence of arms (to check regret by hand)."""

    def __init__(self, arms):
        self.arms = arms

    def reset(self, runs, k, rng):
        self.runs = runs

    def select(self, t):
        return np.full(self.runs, self.arms[t - 1])

    def update(self, arms, rewards):
        pass


def test_pseudo_regret_by_hand():
    problem = BanditProblem((0.2, 0.5, 0.9))
    res = simulate(Scripted([0, 1, 2, 2, 0]), problem, horizon=5, runs=3, seed=0)
    # gaps 0.7 + 0.4 + 0 + 0 + 0.7 = 1.8; optimal pulls at steps 3 and 4
    np.testing.assert_allclose(res.final, 1.8)
    np.testing.assert_allclose(res.mean_regret, [0.7, 1.1, 1.1, 1.1, 1.8])
    np.testing.assert_allclose(res.optimal_fraction, [0, 0, 1, 1, 0])
    assert res.summary()["optimal_action_fraction"] == pytest.approx(0.4)


def test_ucb1_index_by_hand():
    solver = make_solver("ucb1")
    solver.reset(1, 2, np.random.default_rng(0))
    solver.update(np.array([0]), np.array([1.0]))
    solver.update(np.array([1]), np.array([0.0]))
    solver.update(np.array([0]), np.array([0.0]))
    # t = 4: arm 0 has Q = 0.5, N = 2 -> 0.5 + 1.1774; arm 1 has Q = 0, N = 1 -> 1.6651
    idx = solver.index(4)[0]
    assert idx[0] == pytest.approx(0.5 + math.sqrt(2 * math.log(4) / 2))
    assert idx[1] == pytest.approx(0.0 + math.sqrt(2 * math.log(4) / 1))
    assert solver.select(4)[0] == 0
    # t = 6: arm 0 -> 0.5 + 1.3386 = 1.8386 < arm 1 -> 1.8930
    assert solver.select(6)[0] == 1


def test_ucb1_pulls_every_arm_once_first():
    solver = make_solver("ucb1")
    solver.reset(2, 4, np.random.default_rng(0))
    pulled = []
    for t in range(1, 5):
        arms = solver.select(t)
        pulled.append(arms.tolist())
        solver.update(arms, np.ones(2))
    assert sorted(a for a, _ in pulled) == [0, 1, 2, 3]


def test_beta_posterior_updates():
    solver = make_solver("thompson")
    solver.reset(2, 3, np.random.default_rng(0))
    solver.update(np.array([0, 2]), np.array([1.0, 0.0]))
    solver.update(np.array([0, 2]), np.array([1.0, 1.0]))
    np.testing.assert_array_equal(solver.alpha, [[3, 1, 1], [1, 1, 2]])
    np.testing.assert_array_equal(solver.beta, [[1, 1, 1], [1, 1, 2]])


def test_bayes_ucb_index_is_posterior_quantile():
    from scipy.stats import beta

    solver = make_solver("bayes-ucb", refresh=1.0)
    solver.reset(1, 2, np.random.default_rng(0))
    solver.select(1)
    solver.update(np.array([0]), np.array([1.0]))
    solver.select(5)  # refresh at level 1 - 1/5
    assert solver.index[0, 0] == pytest.approx(beta.ppf(0.8, 2, 1))
    assert solver.index[0, 1] == pytest.approx(beta.ppf(0.8, 1, 1))


def test_gradient_bandit_update_by_hand():
    solver = make_solver("gradient", alpha=0.5)
    solver.reset(1, 2, np.random.default_rng(0))
    solver.update(np.array([0]), np.array([1.0]))
    # baseline 0 before the update; pi = (0.5, 0.5): H0 += 0.5 * 1 * 0.5, H1 -= 0.5 * 1 * 0.5
    np.testing.assert_allclose(solver.prefs, [[0.25, -0.25]])
    assert solver.avg_reward[0] == 1.0


def test_lai_robbins_constant_two_arms():
    c = lai_robbins_constant((0.5, 0.6))
    kl = 0.5 * math.log(0.5 / 0.6) + 0.5 * math.log(0.5 / 0.4)
    assert c == pytest.approx(0.1 / kl)
    assert float(bernoulli_kl(0.3, 0.3)) == pytest.approx(0.0, abs=1e-12)


def test_sliding_window_forgets_old_pulls():
    solver = make_solver("sw-ucb", window=3)
    solver.reset(1, 2, np.random.default_rng(0))
    for arm, r in [(0, 1.0), (0, 1.0), (1, 0.0), (1, 1.0)]:
        solver.update(np.array([arm]), np.array([r]))
    # only the last 3 pulls remain: (0, 1), (1, 0), (1, 1)
    np.testing.assert_array_equal(solver.counts, [[1, 2]])
    np.testing.assert_array_equal(solver.sums, [[1, 1]])


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"means": (0.1, 1.2)}, "Bernoulli means must lie in"),
        ({"means": (0.5,)}, "K >= 2"),
        ({"means": (0.1, 0.2), "kind": "poisson"}, "kind"),
    ],
)
def test_bad_problems(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        BanditProblem(**kwargs)


def test_bad_horizon_and_solver():
    with pytest.raises(ConfigError, match="horizon"):
        simulate(make_solver("ucb1"), BanditProblem((0.1, 0.2)), horizon=0, runs=2, seed=0)
    with pytest.raises(ConfigError, match="unknown bandit solver"):
        make_solver("nope")


class NaiveBayesUCB:
    """Reference: every arm's Beta quantile at level 1 - 1/t, recomputed at every step."""

    def reset(self, runs, k, rng):
        self.a, self.b, self.rows = np.ones((runs, k)), np.ones((runs, k)), np.arange(runs)

    def select(self, t):
        from scipy.special import betaincinv

        return np.argmax(betaincinv(self.a, self.b, 1 - 1 / t), axis=1)

    def update(self, arms, rewards):
        self.a[self.rows, arms] += rewards
        self.b[self.rows, arms] += 1 - rewards


def test_bayes_ucb_fast_path_matches_naive_recomputation():
    """Skipping quantiles after successes changes no decision; the refresh grid changes few."""
    problem = BanditProblem((0.3, 0.5, 0.7))
    naive = simulate(NaiveBayesUCB(), problem, 500, 50, seed=2)
    fast = simulate(make_solver("bayes-ucb", refresh=1.0), problem, 500, 50, seed=2)
    np.testing.assert_array_equal(naive.regret_at, fast.regret_at)
    grid = simulate(make_solver("bayes-ucb"), problem, 500, 50, seed=2)
    assert grid.final.mean() == pytest.approx(naive.final.mean(), rel=0.15)
