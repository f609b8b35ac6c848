"""DeepSea (bsuite's ``environments/deep_sea.py``) and its scoring (``experiments/deep_sea/analysis.py``),
against hand computations; and the chain toy env reaching its reward."""

from __future__ import annotations

import itertools

import gymnasium as gym
import numpy as np
import pytest

import rlcanon  # noqa: F401  (registers the rlcanon/ ids)
from rlcanon.envs.deepsea import (
    DeepSeaEnv,
    beats_dithering,
    bsuite_logged,
    episodes_to_learn,
    suite_score,
)
from rlcanon.errors import ConfigError


def rollout(env: DeepSeaEnv, actions: list[int]) -> tuple[list[float], list[np.ndarray], list[bool], dict]:
    """Rewards, observations after each step, terminated flags and the last info of one episode."""
    rewards, observations, ends, info = [], [], [], {}
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        assert truncated is False
        rewards.append(reward)
        observations.append(obs)
        ends.append(terminated)
    return rewards, observations, ends, info


@pytest.mark.parametrize("size", [1, 3, 10, 20])
def test_the_optimal_path_pays_the_treasure_less_the_move_costs(size: int) -> None:
    env = DeepSeaEnv(size)
    env.reset(seed=0)
    rewards, _, ends, info = rollout(env, env.optimal_actions())
    # N moves right at 0.01 / N each, and the treasure (1) on the last one: 1 - 0.01 = 0.99
    np.testing.assert_allclose(rewards[:-1], [-0.01 / size] * (size - 1))
    assert rewards[-1] == pytest.approx(1.0 - 0.01 / size)
    assert sum(rewards) == pytest.approx(0.99)
    assert ends == [False] * (size - 1) + [True]
    assert info == {"bad_episode": False, "total_bad_episodes": 0}


def test_every_other_path_misses_the_treasure_and_is_bad() -> None:
    size = 5
    env = DeepSeaEnv(size, mapping_seed=3)
    optimal = env.optimal_actions()
    for actions in itertools.product((0, 1), repeat=size):
        env.reset()
        rewards, _, ends, info = rollout(env, list(actions))
        assert ends == [False] * (size - 1) + [True]  # always exactly N steps
        is_optimal = list(actions) == optimal
        # with no treasure the return is minus the cost of the right moves taken, at most 0
        assert (sum(rewards) > 0.5) == is_optimal
        assert info["bad_episode"] == (not is_optimal)
    assert env.total_bad_episodes == 2**size - 1  # counted over the env's life, across resets


def test_the_observation_is_the_one_hot_position_then_all_zero() -> None:
    size = 4
    env = DeepSeaEnv(size, randomize_actions=False)  # action 1 is right everywhere
    obs, info = env.reset(seed=0)
    assert obs.shape == (size, size) and obs.dtype == np.float32 and info == {}
    assert obs[0, 0] == 1.0 and obs.sum() == 1.0
    _, observations, _, _ = rollout(env, [1, 0, 1, 1])  # cells (1, 1), (2, 0), (3, 1), then off
    for obs, (row, col) in zip(observations[:-1], [(1, 1), (2, 0), (3, 1)], strict=True):
        expected = np.zeros((size, size), dtype=np.float32)
        expected[row, col] = 1.0
        np.testing.assert_array_equal(obs, expected)
        assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(observations[-1], np.zeros((size, size), dtype=np.float32))


def test_left_at_the_left_edge_stays_there_and_right_costs_are_paid() -> None:
    env = DeepSeaEnv(3, randomize_actions=False, unscaled_move_cost=0.3)
    env.reset(seed=0)
    rewards, observations, _, info = rollout(env, [0, 0, 1])  # (0,0) -> (1,0) -> (2,0) -> off
    assert observations[0][1, 0] == 1.0 and observations[1][2, 0] == 1.0
    np.testing.assert_allclose(rewards, [0.0, 0.0, -0.1])  # one right move at 0.3 / 3, no treasure
    assert info["bad_episode"] is True


def test_the_bad_flag_is_set_by_leaving_the_diagonal_and_only_then() -> None:
    env = DeepSeaEnv(4, randomize_actions=False)
    env.reset(seed=0)
    *_, info = rollout(env, [1, 1, 1, 0])  # left on the last diagonal cell (3, 3)
    assert info == {"bad_episode": True, "total_bad_episodes": 1}
    env.reset()
    *_, info = rollout(env, [1, 0, 0, 0])  # off the diagonal at row 1, then left again: one bad episode
    assert info == {"bad_episode": True, "total_bad_episodes": 2}
    env.reset()
    first = env.step(1)[4]
    assert first == {}  # the flag comes at the episode's end only
    *_, info = rollout(env, [1, 1, 1])
    assert info == {"bad_episode": False, "total_bad_episodes": 2}


def test_the_action_mapping_is_fixed_by_its_seed() -> None:
    a, b, c = DeepSeaEnv(10, mapping_seed=42), DeepSeaEnv(10, mapping_seed=42), DeepSeaEnv(10, mapping_seed=7)
    np.testing.assert_array_equal(a.action_mapping, b.action_mapping)
    assert not np.array_equal(a.action_mapping, c.action_mapping)
    assert set(np.unique(a.action_mapping)) == {0, 1}
    before = a.action_mapping.copy()
    a.reset(seed=123)  # the reset seed does not touch a fixed mapping
    np.testing.assert_array_equal(a.action_mapping, before)
    # no mapping seed: the reset seed draws it
    maps = []
    for seed in (5, 5, 6):
        env = DeepSeaEnv(10, mapping_seed=None)
        env.reset(seed=seed)
        maps.append(env.action_mapping.copy())
    np.testing.assert_array_equal(maps[0], maps[1])
    assert not np.array_equal(maps[0], maps[2])


def test_the_stochastic_variant_is_reproducible_from_the_reset_seed() -> None:
    returns = []
    for seed in (0, 0, 1):
        env = DeepSeaEnv(6, deterministic=False)
        env.reset(seed=seed)
        episode = []
        for _ in range(30):
            env.reset()
            episode.append(sum(rollout(env, env.optimal_actions())[0]))
        returns.append(episode)
    assert returns[0] == returns[1] and returns[0] != returns[2]
    # the current sometimes stops a right move, and the end cells add N(0, 1) noise
    assert len(set(np.round(returns[0], 6))) > 2


def test_gym_make_gives_the_registered_env_and_bad_sizes_are_refused() -> None:
    env = gym.make("rlcanon/DeepSea-v0", size=12)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (12, 12) and env.action_space.n == 2
    for bad in (0, 101, 2.5, True, "10"):
        with pytest.raises(ConfigError, match="size=") as err:
            DeepSeaEnv(bad)  # type: ignore[arg-type]
        assert "\n" not in str(err.value) and "[1, 100]" in str(err.value)
    with pytest.raises(ConfigError, match="mapping_seed="):
        DeepSeaEnv(10, mapping_seed=-1)
    with pytest.raises(ConfigError, match="deterministic="):
        DeepSeaEnv(10, deterministic=1)  # type: ignore[arg-type]


def test_the_training_env_and_the_q_net_take_the_grid_observation() -> None:
    import torch

    from rlcanon.envs.factory import make_vec_env, obs_shape
    from rlcanon.nets.critics import DiscreteQ

    vec = make_vec_env("rlcanon/DeepSea-v0", env_kwargs={"size": 5})
    obs, _ = vec.reset(seed=0)
    assert obs.shape == (1, 5, 5) and obs_shape(vec.single_observation_space) == (5, 5)
    q = DiscreteQ((5, 5), 2, (8,))
    assert not q.pixels and q(torch.as_tensor(obs)).shape == (1, 2)


# ---- scoring ----


def test_bsuite_logs_at_its_logarithmic_schedule() -> None:
    logged = [e for e in range(1, 2001) if bsuite_logged(e)]
    head = [*range(1, 11), 12, 14, 17, 20, 25, 30, 40, 50, 60, 70, 80, 90, 100, 120, 140, 170, 200, 250]
    assert logged == [*head, 300, 400, 500, 600, 700, 800, 900, 1000, 1200, 1400, 1700, 2000]


def test_episodes_to_learn_is_the_first_logged_episode_below_ninety_percent_bad() -> None:
    assert episodes_to_learn([True] * 50) == (50, False)
    assert episodes_to_learn([False] + [True] * 20) == (1, True)  # 0 / 1 bad at episode 1
    # 9 bad, then 2 good, then bad: 9/10 = 0.9 is not below 0.9; 9/11 is, but bsuite does not log
    # episode 11; at 12 the fraction is 10/12
    flags = [True] * 9 + [False, False] + [True] * 30
    assert episodes_to_learn(flags) == (12, True)
    assert episodes_to_learn(flags, every_episode=True) == (11, True)
    assert episodes_to_learn(flags, threshold=0.95) == (10, True)  # 0.9 < 0.95
    # a late learner: 1000 bad, then good from episode 1001; at e the fraction is 1000 / e,
    # below 0.9 from e = 1112, first logged at 1200
    late = [True] * 1000 + [False] * 300
    assert episodes_to_learn(late) == (1200, True)
    assert episodes_to_learn(late, every_episode=True) == (1112, True)
    with pytest.raises(ConfigError, match="bad_flags"):
        episodes_to_learn([])
    with pytest.raises(ConfigError, match="threshold="):
        episodes_to_learn([True], threshold=0.0)


def test_a_size_is_solved_before_two_to_the_n_plus_one_hundred() -> None:
    assert beats_dithering(10, 2**10 + 99, True)
    assert not beats_dithering(10, 2**10 + 100, True)  # strictly before, as in analysis.py
    assert not beats_dithering(10, 12, False)
    late = [True] * 1000 + [False] * 300  # learned at episode 1200
    assert beats_dithering(10, *episodes_to_learn(late)) is False  # 1200 >= 1124
    assert beats_dithering(11, *episodes_to_learn(late)) is True  # 1200 < 2148
    runs = {10: late, 11: late, 12: [True] * 100, 14: [False] * 3}
    assert suite_score(runs) == pytest.approx(2 / 4)  # sizes 11 and 14
    with pytest.raises(ConfigError, match="at least one run"):
        suite_score({})


# ---- the chain ----


def test_the_chain_reaches_its_reward_at_the_end() -> None:
    env = gym.make("rlcanon/Chain-v0", n=7)
    obs, _ = env.reset(seed=0)
    assert obs == 0
    rewards = []
    for step in range(6):
        obs, reward, terminated, truncated, _ = env.step(1)
        rewards.append(reward)
        assert terminated == (step == 5) and not truncated
    assert obs == 6 and rewards == [0.0] * 5 + [1.0]
    env.reset(seed=0)
    assert env.step(0)[:3] == (0, 0.0, False)  # left at the start stays at 0
