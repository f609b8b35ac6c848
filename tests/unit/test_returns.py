"""GAE and n-step targets against hand computation."""

import numpy as np
import pytest

from rlcanon.core.returns import gae, n_step_returns

R = np.array([[1.0], [1.0], [1.0]], dtype=np.float32)
V = np.array([[0.5], [0.4], [0.3], [0.2]], dtype=np.float32)


def _gae(term, trunc):
    term = np.array(term, dtype=bool)[:, None]
    done = term | np.array(trunc, dtype=bool)[:, None]
    adv, ret = gae(R, V, term, done, gamma=0.9, gae_lambda=0.8)
    return adv[:, 0], ret[:, 0]


def test_gae_no_episode_end():
    # delta = [0.86, 0.87, 0.88]; A2 = .88, A1 = .87 + .72 * .88, A0 = .86 + .72 * A1
    adv, ret = _gae([0, 0, 0], [0, 0, 0])
    np.testing.assert_allclose(adv, [1.942592, 1.5036, 0.88], rtol=1e-6)
    np.testing.assert_allclose(ret, adv + V[:3, 0], rtol=1e-6)


def test_gae_terminated_cuts_bootstrap_and_recursion():
    adv, _ = _gae([0, 1, 0], [0, 0, 0])
    np.testing.assert_allclose(adv, [0.86 + 0.72 * 0.6, 0.6, 0.88], rtol=1e-6)


def test_gae_truncated_bootstraps_but_cuts_recursion():
    adv, _ = _gae([0, 0, 0], [0, 1, 0])
    np.testing.assert_allclose(adv, [0.86 + 0.72 * 0.87, 0.87, 0.88], rtol=1e-6)


def test_gae_lambda_one_is_monte_carlo_return():
    _adv, ret = gae(R, V, np.zeros((3, 1), bool), np.zeros((3, 1), bool), 0.9, 1.0)
    expected = 1 + 0.9 + 0.81 + 0.729 * 0.2
    assert ret[0, 0] == pytest.approx(expected, rel=1e-6)


def _nstep(term, trunc):
    r = np.array([[1.0], [2.0], [3.0]])
    t = np.array(term, dtype=bool)[:, None]
    d = t | np.array(trunc, dtype=bool)[:, None]
    reward, discount, last = n_step_returns(r, t, d, gamma=0.5)
    return reward[0], discount[0], last[0]


def test_n_step_full_window():
    assert _nstep([0, 0, 0], [0, 0, 0]) == pytest.approx((1 + 0.5 * 2 + 0.25 * 3, 0.125, 2))


def test_n_step_stops_at_termination_without_bootstrap():
    assert _nstep([0, 1, 0], [0, 0, 0]) == pytest.approx((2.0, 0.0, 1))


def test_n_step_stops_at_truncation_with_bootstrap():
    assert _nstep([0, 0, 0], [0, 1, 0]) == pytest.approx((2.0, 0.25, 1))
