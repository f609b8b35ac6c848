"""Statistical behaviour on the 9-armed Bernoulli instance (means 0.1..0.9, T = 10,000, 200 runs)."""

import numpy as np
import pytest

from rlcanon.bandits import SOLVERS, BanditProblem, make_solver, simulate
from rlcanon.bandits.simulate import lai_robbins_bound

NINE = BanditProblem(tuple(round(0.1 * i, 1) for i in range(1, 10)))


@pytest.fixture(scope="module")
def results():
    return {name: simulate(make_solver(name), NINE, 10_000, 200, seed=7) for name in ("thompson", "ucb1")}


def test_thompson_regret_range(results):
    assert 38 <= results["thompson"].final.mean() <= 49


def test_ucb1_regret_range(results):
    assert 320 <= results["ucb1"].final.mean() <= 345


def test_thompson_below_lai_robbins(results):
    assert results["thompson"].final.mean() < 1.2 * lai_robbins_bound(NINE, 10_000)


def test_epsilon_greedy_regret_grows_linearly():
    res = simulate(make_solver("epsilon-greedy", epsilon=0.1), NINE, 8000, 200, seed=3)
    idx = [int(np.argmin(np.abs(res.grid - t))) for t in (2000, 4000, 8000)]
    t1, t2, t3 = (int(res.grid[i]) for i in idx)
    r1, r2, r3 = (float(np.median(res.regret_at[i])) for i in idx)
    slope_a, slope_b = (r2 - r1) / (t2 - t1), (r3 - r2) / (t3 - t2)
    # a constant regret per step: epsilon times the mean gap of a uniformly random arm
    expected = 0.1 * np.mean(0.9 - np.asarray(NINE.means))
    assert slope_b == pytest.approx(slope_a, rel=0.15)
    assert slope_b == pytest.approx(expected, rel=0.2)
    # UCB1 grows logarithmically on the same instance: far less regret added per step late on
    ucb = simulate(make_solver("ucb1"), NINE, 8000, 200, seed=3)
    u2, u3 = (float(np.median(ucb.regret_at[i])) for i in idx[1:])
    assert (u3 - u2) / (t3 - t2) < 0.5 * slope_b


def test_sliding_window_tracks_drifting_means_better_than_ucb1():
    problem = BanditProblem((0.5, 0.5, 0.5), drift=0.01)  # means wander as random walks
    sw = simulate(make_solver("sw-ucb"), problem, 10_000, 100, seed=1)
    ucb = simulate(make_solver("ucb1"), problem, 10_000, 100, seed=1)
    assert sw.final.mean() < 0.7 * ucb.final.mean()


@pytest.mark.parametrize("name", sorted(SOLVERS))
def test_every_solver_runs_and_is_deterministic(name):
    a = simulate(make_solver(name), NINE, 300, 20, seed=5)
    b = simulate(make_solver(name), NINE, 300, 20, seed=5)
    np.testing.assert_array_equal(a.regret_at, b.regret_at)
    assert np.isfinite(a.final).all() and (a.final >= 0).all()
    c = simulate(make_solver(name), NINE, 300, 20, seed=6)
    assert not np.array_equal(a.regret_at, c.regret_at) or name == "ucb1"
