"""Resume: a run killed with SIGKILL and resumed ends at the same step count, keeps every metrics
row written before its last checkpoint, duplicates none, and leaves no half-written file."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from rlcanon.run.logger import read_metrics

ARGS = [
    "--env-id",
    "CartPole-v1",
    "--total-timesteps",
    "12288",
    "--num-envs",
    "2",
    "--batch-size",
    "64",
    "--checkpoint-interval",
    "1024",
    "--no-progress",
]


def _rows(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


@pytest.mark.parametrize(
    "algo,extra",
    [
        ("ppo", ["--num-steps", "64"]),
        ("dqn", ["--learning-starts", "256", "--train-freq", "64", "--gradient-steps", "8"]),
        # PPG: a phase of 4 rollouts of 128 steps, so kills land mid-phase as well
        ("ppg", ["--num-steps", "64", "--policy-iterations", "4", "--aux-batch-size", "64"]),
        # (argparse takes the last --env-id; small networks and one update per 8 steps keep it short)
        (
            "sac",
            ["--env-id", "Pendulum-v1", "--learning-starts", "256", "--hidden", "32", "--train-freq", "8"],
        ),
    ],
)
def test_resume_after_sigkill(algo, extra, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "rlcanon", "train", algo, *ARGS, *extra, "--run-dir", str(run)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    pointer = run / "checkpoints" / "latest.json"
    deadline = time.time() + 120
    while time.time() < deadline:
        if pointer.exists() and json.loads(pointer.read_text())["step"] >= 3072:
            break
        if proc.poll() is not None:
            pytest.fail(f"training ended early: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    latest = json.loads(pointer.read_text())
    state = json.loads((run / "checkpoints" / latest["checkpoint"] / "state.json").read_text())
    before = _rows(run / "metrics.csv")
    kept = before[: 1 + state["metrics_rows"]]
    assert latest["step"] < 12288

    res = subprocess.run(
        [sys.executable, "-m", "rlcanon", "train", algo, "--resume", str(run), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["total_timesteps"] == 12288
    after = _rows(run / "metrics.csv")
    assert after[: len(kept)] == kept  # nothing written before the checkpoint was lost
    steps = read_metrics(run)["global_step"]
    assert steps == sorted(set(steps))  # no duplicated or out-of-order rows
    assert steps[-1] == 12288
    leftovers = [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert not leftovers


def test_resume_refuses_other_flags(tmp_path):
    from rlcanon.algos.ppo import PPOConfig, train

    run = tmp_path / "r"
    train(
        PPOConfig(total_timesteps=128, num_envs=1, num_steps=64, batch_size=64, eval_episodes=1),
        run_dir=run,
        progress=False,
    )
    res = subprocess.run(
        [sys.executable, "-m", "rlcanon", "train", "ppo", "--resume", str(run), "--learning-rate", "0.1"],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "only --total-timesteps" in res.stderr
    res = subprocess.run(
        [sys.executable, "-m", "rlcanon", "train", "dqn", "--resume", str(run)],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "is a 'ppo' run" in res.stderr


def test_resume_extends_total_timesteps(tmp_path):
    from rlcanon.algos.ppo import PPOConfig, train
    from rlcanon.runs import resume

    run = tmp_path / "r"
    train(
        PPOConfig(total_timesteps=256, num_envs=2, num_steps=64, batch_size=64, eval_episodes=1),
        run_dir=run,
        progress=False,
    )
    result = resume(run, total_timesteps=512, progress=False)
    assert result.summary["total_timesteps"] == 512
    assert read_metrics(run)["global_step"] == [128.0, 256.0, 384.0, 512.0]


def test_resume_can_change_the_device(tmp_path):
    """A run can go on on another device (here CPU to 'auto', which is the CPU for an MLP); the
    new setting is recorded in config.json, and a malformed device is refused on the command line."""
    from rlcanon.algos.dqn import DQNConfig, train
    from rlcanon.runs import resume

    run = tmp_path / "r"
    cfg = DQNConfig(
        total_timesteps=400,
        learning_starts=100,
        buffer_size=500,
        batch_size=16,
        hidden=(16,),
        eval_episodes=1,
        device="cpu",
    )
    train(cfg, run_dir=run, progress=False)
    result = resume(run, total_timesteps=600, progress=False, device="auto")
    assert result.summary["total_timesteps"] == 600
    assert json.loads((run / "config.json").read_text())["config"]["device"] == "auto"
    res = subprocess.run(
        [sys.executable, "-m", "rlcanon", "train", "dqn", "--resume", str(run), "--device", "gpu"],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "device='gpu'" in res.stderr and "Traceback" not in res.stderr


def test_resume_accepts_the_recorded_flags_and_names_a_changed_one(tmp_path):
    run = tmp_path / "r"
    base = [
        "--total-timesteps",
        "256",
        "--num-envs",
        "2",
        "--num-steps",
        "64",
        "--batch-size",
        "64",
        "--no-progress",
    ]
    first = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlcanon",
            "train",
            "ppo",
            *base,
            "--eval-episodes",
            "1",
            "--run-dir",
            str(run),
        ],
        capture_output=True,
        text=True,
    )
    assert first.returncode == 0, first.stderr
    again = [sys.executable, "-m", "rlcanon", "train", "ppo", "--resume", str(run)]
    # the original command's flags, repeated: accepted, and the budget may grow
    res = subprocess.run([*again, *base[2:], "--total-timesteps", "384"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout.strip().splitlines()[-1])["total_timesteps"] == 384
    res = subprocess.run([*again, "--num-steps", "32"], capture_output=True, text=True)
    assert res.returncode == 2 and "num_steps is 64, not 32" in res.stderr
    res = subprocess.run([*again, "--total-timesteps", "128"], capture_output=True, text=True)
    assert res.returncode == 2 and "may only grow" in res.stderr
