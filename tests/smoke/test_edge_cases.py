"""Pixel DQN (Nature CNN, torch path), NaN losses, and unsupported spaces."""

import gymnasium as gym
import numpy as np
import pytest

from rlcanon.errors import ConfigError, TrainingError


def test_dqn_on_atari_uses_the_nature_cnn(run_dir):
    pytest.importorskip("ale_py")
    pytest.importorskip("cv2")
    from rlcanon.algos.dqn import DQNAgent, DQNConfig

    cfg = DQNConfig(
        env_id="ALE/Pong-v5",
        total_timesteps=192,
        learning_starts=64,
        buffer_size=256,
        batch_size=8,
        train_freq=32,
        gradient_steps=2,
        target_update_interval=2,
    )
    agent = DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))
    assert agent.q.pixels  # the Nature CNN: plain torch autograd (no fused accelerator applies)
    metrics = {}
    while agent.global_step < cfg.total_timesteps:
        metrics = agent.iterate()
    assert np.isfinite(metrics["loss/td"])
    assert agent.buffer.obs.dtype == np.uint8 and agent.buffer.obs.shape[2:] == (4, 84, 84)


class NaNReward(gym.Wrapper):
    def step(self, action):
        obs, _, term, trunc, info = self.env.step(action)
        return obs, float("nan"), term, trunc, info


def test_a_nan_reward_stops_training_before_it_enters_a_buffer(run_dir):
    from rlcanon.algos.ppo import PPOConfig, train

    cfg = PPOConfig(total_timesteps=1024, num_envs=1, num_steps=64, batch_size=64, checkpoint_interval=64)
    want = r"non-finite reward after 0 steps.*No checkpoint was written yet"
    with pytest.raises(TrainingError, match=want):
        train(cfg, env=lambda: NaNReward(gym.make("CartPole-v1")), run_dir=run_dir, progress=False)
    assert (run_dir / "config.json").exists() and (run_dir / "metrics.csv").exists()


class HugeReward(gym.Wrapper):
    """Finite rewards whose two-step sum overflows float32: the TD target, and so the loss, become
    infinite although no stored value is."""

    def step(self, action):
        obs, _, term, trunc, info = self.env.step(action)
        return obs, 3e38, term, trunc, info


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # the point of the test
@pytest.mark.filterwarnings("ignore:invalid value:RuntimeWarning")
def test_a_nan_loss_names_the_last_checkpoint(run_dir):
    from rlcanon.algos.dqn import DQNConfig, train

    cfg = DQNConfig(
        total_timesteps=2000,
        learning_starts=64,
        batch_size=16,
        train_freq=16,
        n_step=2,
        checkpoint_interval=32,
    )
    with pytest.raises(
        TrainingError, match=r"loss/td became (nan|inf).*The last checkpoint \(step \d+\) is kept"
    ):
        train(cfg, env=lambda: HugeReward(gym.make("CartPole-v1")), run_dir=run_dir, progress=False)


def test_dqn_refuses_continuous_actions():
    from rlcanon.algos.dqn import DQNAgent, DQNConfig

    cfg = DQNConfig(env_id="Pendulum-v1")
    with pytest.raises(ConfigError, match="discrete action space"):
        DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))


class ScaledReward(gym.RewardWrapper):
    def __init__(self, env, value):
        super().__init__(env)
        self.value = value

    def reward(self, reward):
        return self.value


@pytest.mark.filterwarnings("ignore:.*WARN. The reward is:UserWarning")  # Gymnasium's checker
@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e308])
@pytest.mark.parametrize(("algo", "env_id"), [("tabular", "FrozenLake-v1"), ("es-policy", "CartPole-v1")])
def test_es_and_tabular_stop_on_non_finite_rewards_and_returns(algo, env_id, value, run_dir):
    """The guard of every family: a NaN or infinite reward, or finite rewards whose return (or Q
    table) overflows, stops the run with the checkpoint message, not a NumPy or JSON error."""
    from rlcanon.registry import ENTRIES, make_config

    kind = "Nan" if value != value else "Inf" if value == float("inf") else "Huge"
    test_id = f"rlcanonTest/{env_id.split('-')[0]}{kind}-v0"
    if test_id not in gym.registry:
        gym.register(test_id, entry_point=lambda: ScaledReward(gym.make(env_id), value))
    entry = ENTRIES[algo]
    cfg = make_config(algo, test_id, **entry.smoke)
    with pytest.raises(TrainingError, match=r"non-finite.*training stopped\. No checkpoint was written yet"):
        entry.train(cfg, run_dir=run_dir, progress=False)


class NaNReset(gym.ObservationWrapper):
    def observation(self, obs):
        return np.full_like(obs, np.nan)


def test_a_non_finite_first_observation_is_refused_in_one_line(run_dir):
    from rlcanon.algos.a2c import A2CConfig
    from rlcanon.errors import NonFiniteError
    from rlcanon.registry import ENTRIES

    cfg = A2CConfig(total_timesteps=40, num_envs=1)
    with pytest.raises(NonFiniteError, match="non-finite observation after 0 steps"):
        env = lambda: NaNReset(gym.make("CartPole-v1"))  # noqa: E731
        ENTRIES["a2c"].train(cfg, env=env, run_dir=run_dir, progress=False)


def test_image_observations_other_than_84x84_frames_are_refused_by_shape():
    from rlcanon.nets.critics import DiscreteQ

    with pytest.raises(ConfigError, match=r"\(C, 84, 84\).*got shape \(96, 96, 3\)"):
        DiscreteQ((96, 96, 3), 5, (64,))
    assert DiscreteQ((4, 84, 84), 5, (64,)).pixels
