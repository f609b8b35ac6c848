"""Every registry entry trains for a few hundred steps and gives finite metrics and a run dir."""

import json
import math

import pytest

from rlcanon.core.logger import read_metrics
from rlcanon.registry import ALGOS, make_config

SMALL = {
    "ppo": {"num_envs": 2, "num_steps": 64, "batch_size": 64},
    "dqn": {"learning_starts": 64, "train_freq": 16, "gradient_steps": 4, "batch_size": 16},
}


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_every_algo_smoke(algo, backend, run_dir):
    config = make_config(
        algo, "CartPole-v1", total_timesteps=512, eval_episodes=2, backend=backend, **SMALL.get(algo, {})
    )
    result = ALGOS[algo].train(config, run_dir=run_dir, progress=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    for key in (
        "algo",
        "env_id",
        "seed",
        "total_timesteps",
        "wall_time_s",
        "sps",
        "eval_return_mean",
        "eval_return_std",
        "eval_episodes",
    ):
        assert key in summary
    assert summary["total_timesteps"] >= 512 and summary["eval_episodes"] == 2
    assert result.summary == summary
    cols = read_metrics(run_dir)
    assert {"global_step", "charts/episodic_return", "time/sps"} <= set(cols)
    losses = [v for k, vals in cols.items() if k.startswith("loss/") for v in vals if not math.isnan(v)]
    assert losses and all(math.isfinite(v) for v in losses)
    config_json = json.loads((run_dir / "config.json").read_text())
    assert config_json["config"]["seed"] == 1 and "torch" in config_json["versions"]


def test_ppo_continuous_actions_smoke(run_dir):
    from rlcanon.algos.ppo import PPOConfig, train

    cfg = PPOConfig(
        env_id="Pendulum-v1",
        total_timesteps=512,
        num_envs=2,
        num_steps=128,
        batch_size=64,
        eval_episodes=1,
        normalize_obs=True,
        normalize_reward=True,
    )
    result = train(cfg, run_dir=run_dir, progress=False)
    assert math.isfinite(result.summary["eval_return_mean"])
    assert result.summary["eval_return_mean"] < 0  # Pendulum rewards are costs


def test_env_factory_and_instance_are_accepted(run_dir):
    import gymnasium as gym

    from rlcanon.algos.ppo import PPOConfig, train

    cfg = PPOConfig(total_timesteps=256, num_envs=2, num_steps=64, batch_size=64, eval_episodes=1)
    result = train(cfg, env=lambda: gym.make("CartPole-v1"), run_dir=run_dir, progress=False)
    assert result.summary["total_timesteps"] == 256
    cfg1 = PPOConfig(total_timesteps=128, num_envs=1, num_steps=64, batch_size=64, eval_episodes=1)
    result = train(cfg1, env=gym.make("CartPole-v1"), run_dir=run_dir.parent / "inst", progress=False)
    assert result.summary["env_id"] == "CartPole-v1"
