"""Every registry entry trains from its own smoke settings and gives finite metrics and a complete
run directory; evaluation, loading and resuming work on what it wrote. No entry is named here: a new
registry entry is covered without an edit."""

import json
import math

import numpy as np
import pytest

import rlcanon
from rlcanon.registry import ALGOS, ENTRIES, make_config
from rlcanon.run.logger import read_metrics
from rlcanon.runs import evaluate_run, resume

SUMMARY_KEYS = {
    "algo",
    "env_id",
    "seed",
    "total_timesteps",
    "wall_time_s",
    "sps",
    "eval_return_mean",
    "eval_return_std",
    "eval_episodes",
}


def smoke_config(entry, **extra):
    return make_config(entry.name, entry.smoke_env, eval_episodes=2, **{**entry.smoke, **extra})


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_entry_smoke(name, run_dir):
    entry = ENTRIES[name]
    config = smoke_config(entry)
    result = entry.train(config, run_dir=run_dir, progress=False)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) >= SUMMARY_KEYS
    assert summary[config.BUDGET] >= config.budget and summary["eval_episodes"] == 2
    assert result.summary == summary
    cols = read_metrics(run_dir)
    assert {"global_step", "charts/episodic_return", "time/sps"} <= set(cols)
    values = [v for k, vals in cols.items() for v in vals if k.startswith("loss/") and not math.isnan(v)]
    assert all(math.isfinite(v) for v in values)
    record = json.loads((run_dir / "config.json").read_text())
    assert record["algo"] == name and "torch" in record["versions"]
    # the run evaluates, loads as a policy and resumes to a larger budget
    out = evaluate_run(run_dir, episodes=2)
    assert out["eval_episodes"] == 2 and math.isfinite(out["eval_return_mean"])
    policy = rlcanon.load(run_dir)
    obs = np.asarray(policy.observation_space.sample())
    single, _ = policy.predict(obs)
    batch, _ = policy.predict(np.stack([obs, obs]))
    assert np.shape(batch)[0] == 2 and np.shape(single) == np.shape(batch)[1:]
    more = resume(run_dir, progress=False, **{config.BUDGET: config.budget * 2})
    assert more.summary[config.BUDGET] >= config.budget * 2


@pytest.mark.parametrize("name", sorted(ENTRIES))
def test_every_entry_refuses_an_existing_run_dir(name, run_dir):
    entry = ENTRIES[name]
    entry.train(smoke_config(entry), run_dir=run_dir, progress=False)
    with pytest.raises(rlcanon.ConfigError, match="already holds a run"):
        entry.train(smoke_config(entry), run_dir=run_dir, progress=False)
    entry.train(smoke_config(entry), run_dir=run_dir, progress=False, overwrite=True)


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


ACTION_ENVS = {"discrete": "CartPole-v1", "continuous": "Pendulum-v1"}


@pytest.mark.parametrize("kind", sorted(ACTION_ENVS))
@pytest.mark.parametrize("name", sorted(ALGOS))
def test_every_algorithm_trains_on_the_action_spaces_it_declares_and_refuses_the_others(name, kind, run_dir):
    entry = ALGOS[name]
    config = make_config(name, ACTION_ENVS[kind], eval_episodes=1, **entry.smoke)
    if kind in entry.actions:
        result = entry.train(config, run_dir=run_dir, progress=False)
        assert math.isfinite(result.summary["eval_return_mean"])
        return
    with pytest.raises(rlcanon.ConfigError, match="action space") as err:
        entry.train(config, run_dir=run_dir, progress=False)
    assert "\n" not in str(err.value)
