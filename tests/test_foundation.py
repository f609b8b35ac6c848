"""The harness knows no algorithm: any metric key reaches metrics.csv, defaults come from the config
class, library calls leave the caller's thread settings alone, and missing extras get a one-line
hint."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlcanon.errors import ConfigError
from rlcanon.run.logger import MetricsLogger, read_metrics


def test_a_key_first_logged_mid_run_becomes_a_column(tmp_path):
    log = MetricsLogger(tmp_path)
    log.log({"global_step": 1, "loss/a": 0.5})
    log.log({"global_step": 2, "loss/a": 0.25, "bonus/rnd_loss": 3.0, "charts/note": "warm"})
    log.log({"global_step": 3, "eval/return_mean": 10.0})
    log.close()
    cols = read_metrics(tmp_path)
    assert cols["global_step"] == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(cols["bonus/rnd_loss"], [np.nan, 3.0, np.nan])
    np.testing.assert_array_equal(cols["eval/return_mean"], [np.nan, np.nan, 10.0])
    header = (tmp_path / "metrics.csv").read_text().splitlines()[0]
    assert "charts/note" in header  # non-numeric values are written too, never dropped


def test_a_resumed_logger_keeps_the_checkpointed_rows_and_drops_a_torn_one(tmp_path, capsys):
    log = MetricsLogger(tmp_path)
    for k in range(4):
        log.log({"global_step": k, "loss/a": k / 2})
    log.close()
    with open(tmp_path / "metrics.csv", "a") as fh:
        fh.write("4,0.")  # a kill mid-row
    MetricsLogger(tmp_path, resume_rows=10).close()
    assert read_metrics(tmp_path)["global_step"] == [0.0, 1.0, 2.0, 3.0]
    assert "incomplete" in capsys.readouterr().err
    MetricsLogger(tmp_path, resume_rows=2).close()
    assert read_metrics(tmp_path)["global_step"] == [0.0, 1.0]


def test_the_cli_takes_the_default_env_from_the_config_class():
    from rlcanon.cli.commands import build_parser
    from rlcanon.registry import ALGOS, make_config

    for name, entry in ALGOS.items():
        assert make_config(name).env_id == entry.config.env_id
    args = build_parser().parse_args(["train", "dqn"])
    assert "env_id" not in vars(args)  # not forced by the CLI


def test_show_config_prints_the_preset_without_training(tmp_path):
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcanon",
            "train",
            "ppo",
            "--env-id",
            "Pendulum-v1",
            "--show-config",
            "--run-dir",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cfg = json.loads(out)
    assert cfg["gamma"] == 0.9 and cfg["num_steps"] == 1024 and cfg["env_id"] == "Pendulum-v1"
    assert not (tmp_path / "r").exists()


def test_version_flag():
    import rlcanon

    out = subprocess.run(
        [sys.executable, "-m", "rlcanon", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"rlcanon {rlcanon.__version__}"


def test_a_library_call_restores_the_callers_thread_settings(tmp_path):
    from threadpoolctl import threadpool_info

    import rlcanon

    torch.set_num_threads(2)
    blas_before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    try:
        rlcanon.train(
            "ppo",
            "CartPole-v1",
            run_dir=tmp_path / "r",
            progress=False,
            total_timesteps=128,
            num_envs=1,
            num_steps=64,
            batch_size=64,
            eval_episodes=1,
        )
        assert torch.get_num_threads() == 2
        assert [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"] == blas_before
    finally:
        torch.set_num_threads(1)


def test_a_missing_extra_names_the_install_command(monkeypatch):
    from rlcanon.envs import factory

    def make(env_id, **kw):
        raise gym.error.DependencyNotInstalled(
            'MuJoCo is not installed, run `pip install "gymnasium[mujoco]"`'
        )

    monkeypatch.setattr(factory.gym, "make", make)
    with pytest.raises(
        ConfigError, match=r"needs an optional dependency; install it with: pip install 'rlcanon\[mujoco\]'"
    ):
        factory.make_env("CartPole-v1")


def test_wrappers_and_env_kwargs_from_the_command_line(tmp_path):
    run = tmp_path / "r"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcanon",
            "train",
            "ppo",
            "--total-timesteps",
            "256",
            "--num-envs",
            "2",
            "--num-steps",
            "64",
            "--batch-size",
            "64",
            "--eval-episodes",
            "2",
            "--no-progress",
            "--run-dir",
            str(run),
            "--wrappers",
            "time-limit:max_episode_steps=20",
            "--env-kwargs",
            "sutton_barto_reward=true",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    record = json.loads((run / "config.json").read_text())["config"]
    assert record["wrappers"] == ["time-limit:max_episode_steps=20"]
    assert record["env_kwargs"] == {"sutton_barto_reward": True}
    lengths = [v for v in read_metrics(run)["charts/episodic_length"] if v == v]
    assert lengths and max(lengths) <= 20
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["eval_return_mean"] <= 0  # the Sutton-Barto reward pays 0 per step, -1 at the end


def _a2c(**kw):
    from rlcanon.registry import make_config

    return make_config("a2c", "CartPole-v1", total_timesteps=200, num_envs=2, num_steps=5, **kw)


def test_an_env_id_given_as_env_is_recorded_as_the_runs_env(tmp_path):
    from rlcanon.registry import get_entry
    from rlcanon.runs import evaluate_run

    get_entry("a2c").train(_a2c(), env="Acrobot-v1", run_dir=tmp_path / "r", progress=False)
    record = json.loads((tmp_path / "r" / "config.json").read_text())
    assert record["config"]["env_id"] == "Acrobot-v1" and "custom_env" not in record
    assert evaluate_run(tmp_path / "r", episodes=1)["env_id"] == "Acrobot-v1"


def test_a_run_on_an_env_object_needs_that_env_to_load_evaluate_and_resume(tmp_path):
    import rlcanon
    from rlcanon.registry import get_entry
    from rlcanon.runs import evaluate_run, resume

    def factory():
        return gym.make("MountainCar-v0")  # not the config's CartPole: only env= can say so

    run = tmp_path / "r"
    get_entry("a2c").train(_a2c(), env=factory, run_dir=run, progress=False)
    assert json.loads((run / "config.json").read_text())["custom_env"] is True
    for call in (lambda: rlcanon.load(run), lambda: evaluate_run(run), lambda: resume(run)):
        with pytest.raises(ConfigError, match=r"custom env.*pass env="):
            call()
    assert rlcanon.load(run, env=factory).observation_space.shape == (2,)
    assert evaluate_run(run, episodes=1, env=factory)["eval_return_mean"] == -200.0
    res = resume(run, env=factory, total_timesteps=400, progress=False)
    assert res.summary["total_timesteps"] >= 400


def test_a_vector_env_that_cannot_be_rebuilt_is_refused_before_training(tmp_path):
    from rlcanon.registry import get_entry

    vec = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1")] * 2)
    vec.spec = None
    with pytest.raises(ConfigError, match="cannot be rebuilt for evaluation"):
        get_entry("a2c").train(_a2c(), env=vec, run_dir=tmp_path / "r", progress=False)
    assert not (tmp_path / "r").exists()


def test_loading_and_evaluating_a_run_leave_the_callers_random_streams_alone(tmp_path):
    import random

    import rlcanon
    from rlcanon.runs import evaluate_run

    rlcanon.train("a2c", "CartPole-v1", total_timesteps=200, run_dir=tmp_path / "r", progress=False)
    random.seed(7)
    torch.manual_seed(7)
    rlcanon.load(tmp_path / "r")
    evaluate_run(tmp_path / "r", episodes=1)
    got = (random.random(), torch.rand(1).item())
    random.seed(7)
    torch.manual_seed(7)
    assert got == (random.random(), torch.rand(1).item())
