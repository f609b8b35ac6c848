"""The single-env vector env behaves exactly like Gymnasium's SyncVectorEnv of one env."""

import gymnasium as gym
import numpy as np
import pytest

from rlcanon.envs.factory import make_vec_env
from rlcanon.envs.single import SingleVectorEnv


@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1", "FrozenLake-v1"])
def test_single_vector_env_matches_sync_vector_env(env_id):
    ours = make_vec_env(env_id, 1)
    ref = gym.make_vec(env_id, num_envs=1, vectorization_mode="sync")
    assert isinstance(ours, SingleVectorEnv)
    assert ours.observation_space == ref.observation_space and ours.action_space == ref.action_space
    o1, _ = ours.reset(seed=3)
    o2, _ = ref.reset(seed=3)
    np.testing.assert_array_equal(o1, o2)
    rng = np.random.default_rng(0)
    ends = 0
    for _ in range(600):  # several episodes, so the autoreset steps are compared too
        action = np.array([ref.single_action_space.sample()])
        if isinstance(ref.single_action_space, gym.spaces.Box):
            action = rng.uniform(-2, 2, (1, 1)).astype(np.float32)
        a, b = ours.step(action), ref.step(action)
        for x, y in zip(a[:4], b[:4]):
            np.testing.assert_array_equal(x, y)
            assert np.asarray(x).dtype == np.asarray(y).dtype and np.shape(x) == np.shape(y)
        ends += bool(a[2][0] or a[3][0])
    assert ends >= 2
    ours.close()
    ref.close()
