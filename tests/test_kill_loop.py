"""The kill loop: runs of every family (PPO, DQN, ES, tabular) are killed with SIGKILL again and
again (at random points of a seeded schedule, while starting or resuming, and at each point of a
checkpoint write through ``RLCANON_FAULT``), resumed each time in the same run directory, and
finally resumed to the end. Afterwards no metrics row written before the checkpoint in effect is
lost or duplicated, the run reaches its full budget and evaluates, and no temporary file is left.

The schedule is deterministic (a seeded ``random.Random``); only where inside a phase a timed kill
lands depends on the machine, and the invariants hold wherever it lands.
"""

import csv
import io
import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import pytest

from rlcanon.run.checkpoint import FAULT_ENV, latest_checkpoint

RLCANON = [sys.executable, "-m", "rlcanon"]
FAULTS = ("checkpoint:before-rename", "checkpoint:before-pointer", "checkpoint:before-prune")
TIMEOUT = 120


DQN = ["train", "dqn", "--env-id", "CartPole-v1", "--learning-starts", "256", "--train-freq", "64"]


@dataclass
class Family:
    start: list[str]
    resume: list[str]
    budget_key: str
    budget: int
    interval: int


FAMILIES = {
    "ppo": Family(
        [
            "train",
            "ppo",
            "--env-id",
            "CartPole-v1",
            "--num-envs",
            "2",
            "--num-steps",
            "64",
            "--batch-size",
            "64",
        ],
        ["train", "ppo"],
        "total_timesteps",
        16384,
        256,
    ),
    "dqn": Family(
        [*DQN, "--gradient-steps", "8", "--batch-size", "64", "--buffer-size", "4096"],
        ["train", "dqn"],
        "total_timesteps",
        12288,
        512,
    ),
    "es": Family(
        ["es", "openai-es", "--env-id", "CartPole-v1", "--popsize", "8", "--eval-interval", "5"],
        ["es", "openai-es"],
        "generations",
        60,
        2,
    ),
    "ns-es": Family(  # an ES method: meta-population, archive and NSRA-style state in its checkpoint
        [
            "es",
            "nsra-es",
            "--popsize",
            "6",
            "--meta-population",
            "3",
            "--hidden",
            "4",
            "--eval-interval",
            "5",
        ],
        ["es", "nsra-es"],
        "generations",
        60,
        2,
    ),
    "cem-rl": Family(  # an ES-RL hybrid: CEM state, critic, optimizers and replay buffer in its checkpoint
        [
            "es",
            "cem-rl",
            "--env-id",
            "Pendulum-v1",
            "--popsize",
            "4",
            "--hidden",
            "16",
            "16",
            "--max-episode-steps",
            "50",
            "--learning-starts",
            "200",
            "--eval-interval",
            "0",
        ],
        ["es", "cem-rl"],
        "total_timesteps",
        3000,
        200,
    ),
    "tabular": Family(
        ["tabular", "q-learning", "--env-id", "FrozenLake-v1"],
        ["tabular", "q-learning"],
        "episodes",
        4000,
        100,
    ),
}


@dataclass
class Tally:
    kills: dict[str, int] = field(default_factory=dict)
    rows_lost: list[str] = field(default_factory=list)
    checkpoint_regressions: list[str] = field(default_factory=list)

    def count(self, kind: str) -> None:
        self.kills[kind] = self.kills.get(kind, 0) + 1


def _env(fault=None):
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if fault is not None:
        env[FAULT_ENV] = fault
    return env


def _pointer_step(run):
    try:
        return json.loads((run / "checkpoints" / "latest.json").read_text())["step"]
    except (OSError, ValueError, KeyError):
        return None


def _complete_rows(path):
    """The complete rows of a metrics file as dicts (a last row torn by a kill is left out)."""
    lines = path.read_text().splitlines(keepends=True)
    header = next(csv.reader(io.StringIO(lines[0])))
    rows = []
    for line in lines[1:]:
        fields = next(csv.reader(io.StringIO(line)), [])
        if not line.endswith("\n") or len(fields) != len(header):
            break
        rows.append(dict(zip(header, fields)))
    return rows


def _same(old_rows, new_rows):
    """Whether ``new_rows`` holds ``old_rows`` unchanged (columns added since may be empty)."""
    return len(new_rows) >= len(old_rows) and all(
        all(new.get(k) == v for k, v in old.items()) for old, new in zip(old_rows, new_rows)
    )


def _commands(fam, run, fresh):
    if fresh:
        cmd = [*fam.start, f"--{fam.budget_key.replace('_', '-')}", str(fam.budget)]
        cmd += ["--checkpoint-interval", str(fam.interval), "--eval-episodes", "1", "--run-dir", str(run)]
    else:
        cmd = [*fam.resume, "--resume", str(run)]
    return [*RLCANON, *cmd, "--no-progress"]


def _kill_once(fam, run, fresh, kind, rng, startup):
    """Start (or resume) the run and kill it as ``kind`` says; returns the seconds it ran."""
    fault = kind if kind in FAULTS else None
    t0 = time.monotonic()
    proc = subprocess.Popen(
        _commands(fam, run, fresh),
        env=_env(fault),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        if fault is not None:  # the process kills itself at its first checkpoint write
            _, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == -signal.SIGKILL, f"{kind}: exit {proc.returncode}: {err}"
            return time.monotonic() - t0
        if kind == "checkpoints":  # after 1 to 3 more checkpoints, at a random instant after one
            base = _pointer_step(run) or 0
            target = base + rng.randint(1, 3) * fam.interval
            while (_pointer_step(run) or 0) < target:
                assert proc.poll() is None, f"ended before the kill: {proc.communicate()[1]}"
                assert time.monotonic() - t0 < TIMEOUT, "no checkpoint came"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.03))
        else:  # "delay": while starting or resuming (loading, truncating the metrics, first steps)
            time.sleep(rng.uniform(0.1, 1.0) * startup)
        assert proc.poll() is None, f"{kind}: ended before the kill: {proc.communicate()[1]}"
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=TIMEOUT)
        return time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _covers(state, rows):
    """Whether ``rows`` are the rows a checkpoint was written after: as many as it recorded, the
    last of them logged just before it (its step and training time), not rows of a timeline that a
    kill and a resume from an earlier checkpoint abandoned."""
    n = state["metrics_rows"]
    if len(rows) < n:
        return False
    if n == 0:
        return True
    last = rows[n - 1]
    step = state["agent"].get("global_step")
    same_step = step is None or int(float(last["global_step"])) == step
    return same_step and abs(float(last["time/train_seconds"]) - state["clock"]["train"]) < 2e-6


def _check_after_kill(run, tally, committed, last_step, what):
    """The checkpoint in effect after a kill, and the rows it covers, extend what was there."""
    state = json.loads((latest_checkpoint(run) / "state.json").read_text())
    rows = _complete_rows(run / "metrics.csv")
    kept = rows[: state["metrics_rows"]]
    if not _covers(state, rows) or not _same(committed, kept):
        tally.rows_lost.append(f"{what}: checkpoint {state['step']} covers {state['metrics_rows']} rows")
    if state["step"] < last_step:
        tally.checkpoint_regressions.append(f"{what}: checkpoint {state['step']} after {last_step}")
    return (kept if len(kept) >= len(committed) else committed), max(state["step"], last_step)


@pytest.mark.parametrize("family", list(FAMILIES))
def test_kill_loop(family, tmp_path):
    fam = FAMILIES[family]
    rng = random.Random(f"rlcanon-kill-loop-{family}")
    # the first kill comes after a checkpoint (a run killed before its first one has nothing to
    # resume; test_kill_before_the_first_checkpoint covers that); the others in a seeded order
    rest = [*FAULTS, "checkpoints", "delay", "delay"]
    rng.shuffle(rest)
    schedule = ["checkpoints", *rest]
    run = tmp_path / "run"
    tally = Tally()
    committed, last_step, startup = [], 0, 2.0
    t0 = time.monotonic()
    for i, kind in enumerate(schedule):
        ran = _kill_once(fam, run, i == 0, kind, rng, startup)
        if kind in FAULTS:
            startup = ran  # start to first checkpoint: the span the "delay" kills fall in
        tally.count(kind)
        committed, last_step = _check_after_kill(run, tally, committed, last_step, f"kill {i} ({kind})")

    res = subprocess.run(_commands(fam, run, False), env=_env(), capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    summary = json.loads((run / "summary.json").read_text())
    final = _complete_rows(run / "metrics.csv")
    if not _same(committed, final):
        tally.rows_lost.append("final run")
    steps = [int(float(row["global_step"])) for row in final]
    duplicated = sum(1 for a, b in itertools.pairwise(steps) if b <= a)
    ckpt = latest_checkpoint(run)
    ckpt_state = json.loads((ckpt / "state.json").read_text())
    ev = subprocess.run([*RLCANON, "eval", str(run), "--episodes", "1"], capture_output=True, text=True)
    unusable = int(
        summary[fam.budget_key] != fam.budget or ev.returncode != 0 or ckpt_state["step"] != fam.budget
    )
    stale = [str(p.relative_to(run)) for p in run.rglob("*") if p.name.endswith(".tmp")]
    step_dirs = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    kills = sum(tally.kills.values())
    print(
        f"\n[kill loop] {family}: {kills} kills {dict(sorted(tally.kills.items()))}; rows lost "
        f"{len(tally.rows_lost)}, duplicated {duplicated}, unusable runs {unusable}, "
        f"stale files {len(stale)}, checkpoint regressions {len(tally.checkpoint_regressions)}; "
        f"{len(final)} rows, {time.monotonic() - t0:.1f} s"
    )
    assert kills == 7 and all(tally.kills.get(f) == 1 for f in FAULTS), tally.kills
    assert not tally.rows_lost, tally.rows_lost
    assert not tally.checkpoint_regressions, tally.checkpoint_regressions
    assert duplicated == 0 and steps == sorted(set(steps))
    assert ckpt_state["metrics_rows"] == len(final)  # every row belongs to the final checkpoint
    assert ev.returncode == 0, ev.stderr
    assert json.loads(ev.stdout)["checkpoint_step"] == fam.budget
    assert not unusable, (summary, ckpt_state["step"])
    assert not stale, stale
    assert ckpt.name in step_dirs and len(step_dirs) <= 2, step_dirs
    for name in step_dirs:  # the kept checkpoints are complete and of the run's one timeline
        state = json.loads((run / "checkpoints" / name / "state.json").read_text())
        assert (run / "checkpoints" / name / "arrays.safetensors").is_file(), name
        assert _covers(state, final), f"{name} does not belong to the rows in metrics.csv"


@pytest.mark.parametrize("fault", FAULTS)
def test_kill_at_the_first_checkpoint(fault, tmp_path):
    """A run killed inside its very first checkpoint write: with the checkpoint renamed into place
    it resumes (from it, even before the pointer names it); killed before that, nothing was kept,
    and --resume starts the recorded run again from the beginning with a one-line note."""
    fam = Family(FAMILIES["tabular"].start, FAMILIES["tabular"].resume, "episodes", 300, 100)
    run = tmp_path / "run"
    res = subprocess.run(
        _commands(fam, run, True), env=_env(fault), capture_output=True, text=True, timeout=300
    )
    assert res.returncode == -signal.SIGKILL, res.stderr
    resumed = subprocess.run(
        _commands(fam, run, False), env=_env(), capture_output=True, text=True, timeout=300
    )
    if fault == "checkpoint:before-rename":
        assert resumed.returncode == 0, resumed.stderr
        notes = [line for line in resumed.stderr.splitlines() if line.startswith("rlcanon: note:")]
        assert any("holds no checkpoint yet" in line and "starts again" in line for line in notes), notes
    else:
        assert resumed.returncode == 0, resumed.stderr
        if fault == "checkpoint:before-pointer":
            assert "latest.json is missing" in resumed.stderr
    rows = _complete_rows(run / "metrics.csv")
    assert [int(r["global_step"]) for r in rows] == sorted({int(r["global_step"]) for r in rows})
    assert len(rows) == fam.budget
    assert json.loads((run / "summary.json").read_text())["episodes"] == fam.budget
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]


class _Killed(BaseException):
    """Stands for a SIGKILL inside this process: nothing after it runs."""


def test_a_kill_while_pruning_leaves_no_half_removed_checkpoint(tmp_path, monkeypatch):
    """Pruning an old checkpoint first renames it to a temporary name, so a kill in the middle of
    removing its files leaves only a temporary directory (removed by the next writer), never a
    checkpoint directory with some of its files gone."""
    import shutil
    from pathlib import Path

    import numpy as np

    from rlcanon.run import checkpoint as ckpt

    for step in (1, 2):
        ckpt.save_checkpoint(tmp_path, step, {"w": np.full(4, step)}, {"x": step})

    def dying_rmtree(path, *args, **kwargs):
        next(Path(path).iterdir()).unlink()  # one file gone, then the process dies
        raise _Killed

    monkeypatch.setattr(shutil, "rmtree", dying_rmtree)
    with pytest.raises(_Killed):
        ckpt.save_checkpoint(tmp_path, 3, {"w": np.full(4, 3)}, {"x": 3})
    monkeypatch.undo()
    root = tmp_path / "checkpoints"
    for step_dir in root.glob("step-*"):
        assert (step_dir / "state.json").is_file() and (step_dir / "arrays.safetensors").is_file(), step_dir
    ckpt.remove_stale_temps(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))[1]["x"] == 3


def test_pruning_keeps_the_previous_checkpoint_not_an_abandoned_one(tmp_path):
    """A run killed after renaming a checkpoint into place but before moving the pointer leaves a
    complete checkpoint the pointer never named; the run resumes from the one before. Its next save
    keeps that previous checkpoint (the one it went on from) and removes the abandoned one, which
    holds another timeline's state and metrics row count."""
    import numpy as np

    from rlcanon.run import checkpoint as ckpt

    for step in (1, 2):
        ckpt.save_checkpoint(tmp_path, step, {"w": np.full(4, step)}, {"x": step})
    root = tmp_path / "checkpoints"
    pointer = (root / "latest.json").read_text()
    ckpt.save_checkpoint(tmp_path, 3, {"w": np.full(4, 30)}, {"x": 30}, keep=99)  # the abandoned one
    (root / "latest.json").write_text(pointer)  # as if killed before the pointer moved
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000000000002"
    ckpt.save_checkpoint(tmp_path, 3, {"w": np.full(4, 3)}, {"x": 3})  # the resumed run reaches step 3
    assert sorted(p.name for p in root.glob("step-*")) == ["step-000000000002", "step-000000000003-2"]
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))[1]["x"] == 3
    ckpt.save_checkpoint(tmp_path, 4, {"w": np.full(4, 4)}, {"x": 4})
    assert sorted(p.name for p in root.glob("step-*")) == ["step-000000000003-2", "step-000000000004"]
