"""Dynamic programming: hand-solved optima, VI == PI to 1e-8, evaluation against a linear solve."""

import numpy as np
import pytest

from rlcanon.envs.toy import chain, gridworld, river_swim
from rlcanon.tabular.dp import policy_evaluation, policy_iteration, value_iteration
from rlcanon.tabular.mdp import TabularModel, make_tabular_env, model_of


def test_chain_optimum_by_hand():
    model = model_of(chain(4))
    v, policy = value_iteration(model, 0.9)
    # 0 -> 1 -> 2 -> 3: the third step pays 1, so V = (0.81, 0.9, 1, 0)
    np.testing.assert_allclose(v, [0.81, 0.9, 1.0, 0.0], atol=1e-10)
    assert policy[:3].tolist() == [1, 1, 1]


def test_two_state_mdp_by_hand():
    # state 0: action 0 stays (+1), action 1 moves to 1 (0); state 1: action 0 stays (+2), action 1 -> 0 (0)
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    R = np.array([[1.0, 0.0], [2.0, 0.0]])
    model = TabularModel(P, R)
    v, _policy = policy_iteration(model, 0.5)
    # V1 = 2 / (1 - 0.5) = 4; V0 = max(1 + 0.5 V0, 0 + 0.5 V1) -> max(2, 2): both optimal, V0 = 2
    np.testing.assert_allclose(v, [2.0, 4.0], atol=1e-12)
    v2, _ = value_iteration(model, 0.5)
    np.testing.assert_allclose(v2, v, atol=1e-8)


def test_gridworld_by_hand():
    v, _ = value_iteration(model_of(gridworld(2, 2)), 0.9)
    # start -> (goal in two steps): -1 + 0.9 * -1
    assert v[0] == pytest.approx(-1.9, abs=1e-10)


@pytest.mark.parametrize(
    "env,gamma",
    [
        (lambda: make_tabular_env("FrozenLake-v1"), 0.99),
        (lambda: make_tabular_env("FrozenLake8x8-v1"), 0.95),
        (lambda: make_tabular_env("Taxi-v4"), 0.9),
        (lambda: river_swim(), 0.95),
        (lambda: gridworld(5, 5, walls=((1, 1), (2, 3)), slip=0.2), 0.9),
    ],
)
def test_value_and_policy_iteration_agree(env, gamma):
    model = model_of(env())
    v_vi, pi_vi = value_iteration(model, gamma)
    v_pi, pi_pi = policy_iteration(model, gamma)
    np.testing.assert_allclose(v_vi, v_pi, atol=1e-8)
    # both greedy policies are optimal: evaluating either gives V*
    for policy in (pi_vi, pi_pi):
        onehot = np.eye(model.n_actions)[policy]
        np.testing.assert_allclose(policy_evaluation(model, onehot, gamma), v_pi, atol=1e-7)


def test_policy_evaluation_matches_linear_solve():
    model = model_of(gridworld(3, 3, slip=0.1))
    uniform = np.full((model.n_states, model.n_actions), 0.25)
    v = policy_evaluation(model, uniform, 0.9)
    P_pi = (uniform[:, :, None] * model.P).sum(axis=1)
    R_pi = (uniform * model.R).sum(axis=1)
    np.testing.assert_allclose(v, np.linalg.solve(np.eye(9) - 0.9 * P_pi, R_pi), atol=1e-8)
