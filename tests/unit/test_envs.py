"""The single-env vector env behaves exactly like Gymnasium's SyncVectorEnv of one env."""

import re

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


def test_own_envs_are_gymnasium_ids_in_the_rlcanon_namespace():
    import rlcanon  # noqa: F401  (registers on import)

    env = gym.make("rlcanon/Chain-v0", n=7)
    assert env.observation_space.n == 7
    assert env.spec.max_episode_steps == 200
    for env_id in ("rlcanon/RiverSwim-v0", "rlcanon/GridWorld-v0"):
        gym.make(env_id).reset(seed=0)


def test_env_kwargs_and_named_wrappers_reach_the_env():
    vec = make_vec_env(
        "CartPole-v1",
        2,
        env_kwargs={"sutton_barto_reward": True},
        wrappers=("time-limit:max_episode_steps=5",),
    )
    vec.reset(seed=0)
    steps = 0
    while True:
        _, rew, term, trunc, _ = vec.step(np.zeros(2, dtype=np.int64))
        steps += 1
        if trunc.any() or term.any():
            break
    assert steps <= 5 and trunc.any()
    assert (rew == 0).all()  # the Sutton-Barto reward pays 0 per step


def test_unknown_wrapper_and_bad_arguments_are_refused_by_name():
    from rlcanon.envs.wrappers import parse_wrapper
    from rlcanon.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown wrapper 'nope'"):
        parse_wrapper("nope")
    with pytest.raises(ConfigError, match="takes"):
        parse_wrapper("time-limit:steps=3")
    with pytest.raises(ConfigError, match=r"max_episode_steps=0 is not allowed; it must lie in \[1, "):
        parse_wrapper("time-limit:max_episode_steps=0")
    # out-of-range values that would crash the wrapper or overflow rewards and observations
    for spec, key in (
        ("observation-noise:std=-1", "std=-1.0"),
        ("observation-noise:std=1e300", "std=1e+300"),
        ("reward-scale:scale=1e308", "scale=1e+308"),
        ("action-repeat:repeat=5000", "repeat=5000"),
    ):
        with pytest.raises(ConfigError, match=re.escape(f"{key} is not allowed")):
            parse_wrapper(spec)
    assert parse_wrapper("reward-scale:scale=-0.5") == ("reward-scale", {"scale": -0.5})


def test_a_vector_env_with_another_autoreset_mode_is_refused():
    from gymnasium.vector import AutoresetMode

    from rlcanon.envs.collectors import VecStepper
    from rlcanon.errors import ConfigError

    env = gym.make_vec(
        "CartPole-v1", 2, vectorization_mode="sync", vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}
    )
    with pytest.raises(ConfigError, match="NEXT_STEP"):
        VecStepper(env, seed=0)


def test_collector_context_and_raw_episode_returns_under_reward_scaling():
    from rlcanon.envs.collectors import VecStepper
    from rlcanon.envs.normalize import NormalizeReward

    env = NormalizeReward(make_vec_env("CartPole-v1", 2), gamma=0.99)
    step = VecStepper(env, seed=0)
    assert step.context()["episode_start"].all()
    starts_seen = False
    for t in range(120):
        actions = np.full(2, t % 2, dtype=np.int64)
        tr = step.step(actions)
        ctx = step.context()
        np.testing.assert_array_equal(ctx["prev_actions"], np.where(ctx["episode_start"], 0, actions))
        starts_seen |= bool(ctx["episode_start"].any())
        assert (tr.rewards != 1.0).any()  # scaled rewards reach the learner
    returns, lengths = step.pop_episodes()
    assert starts_seen and returns
    np.testing.assert_allclose(returns, lengths)  # CartPole pays 1 per step: raw returns are logged


def test_non_finite_rewards_never_reach_a_buffer():
    from rlcanon.envs.collectors import VecStepper
    from rlcanon.errors import NonFiniteError

    class NaNReward(gym.Wrapper):
        def step(self, action):
            obs, _, term, trunc, info = self.env.step(action)
            return obs, float("nan"), term, trunc, info

    step = VecStepper(make_vec_env(lambda: NaNReward(gym.make("CartPole-v1")), 1), seed=0)
    with pytest.raises(NonFiniteError, match="non-finite reward"):
        step.step(np.zeros(1, dtype=np.int64))


def test_normalisers_save_restore_and_freeze():
    from rlcanon.envs.normalize import EnvState, NormalizeObservation, NormalizeReward

    env = NormalizeReward(NormalizeObservation(make_vec_env("Pendulum-v1", 2)), 0.99)
    env.reset(seed=0)
    for _ in range(50):
        env.step(np.zeros((2, 1), np.float32))
    saved = {k: np.array(v) for k, v in EnvState(env).state_arrays().items()}
    assert set(saved) == {
        "obs/mean",
        "obs/var",
        "obs/count",
        "reward/mean",
        "reward/var",
        "reward/count",
        "reward/returns",
    }
    other = NormalizeReward(NormalizeObservation(make_vec_env("Pendulum-v1", 2)), 0.99)
    EnvState(other).load_state_arrays(saved)
    for k, v in EnvState(other).state_arrays().items():
        np.testing.assert_array_equal(v, saved[k])
    frozen = NormalizeObservation(make_vec_env("Pendulum-v1", 1), frozen=True)
    frozen.load_state_arrays({k[4:]: v for k, v in saved.items() if k.startswith("obs/")})
    frozen.reset(seed=1)
    frozen.step(np.zeros((1, 1), np.float32))
    np.testing.assert_array_equal(frozen.rms.mean, saved["obs/mean"])  # evaluation never updates
