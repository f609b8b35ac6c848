"""Run directories under stress: two writers at once, the user's umask, unwritable and read-only
places, a full disk during a checkpoint, --overwrite, and the budget note. Every failure is one
line on stderr and exit status 2, and the previous checkpoint survives it."""

import csv
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

RLCANON = [sys.executable, "-m", "rlcanon"]
PPO = [
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
    "--eval-episodes",
    "1",
    "--no-progress",
]


def _rlcanon(*args, prefix=(), timeout=300, **kwargs):
    return subprocess.run(
        [*prefix, *RLCANON, *map(str, args)], capture_output=True, text=True, timeout=timeout, **kwargs
    )


def _ppo_run(run, steps, *extra, **kwargs):
    flags = ["--total-timesteps", steps, "--checkpoint-interval", 128, *extra, "--run-dir", run]
    return _rlcanon(*PPO, *flags, **kwargs)


def _one_error_line(res):
    """The stderr of a refused command: exactly one line, an rlcanon error, no traceback."""
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("rlcanon: error: "), lines[0]
    return lines[0]


def _global_steps(run):
    with open(run / "metrics.csv", newline="") as fh:
        return [int(float(row["global_step"])) for row in csv.DictReader(fh)]


def _no_temps(run):
    return [p for p in run.rglob("*") if p.name.endswith(".tmp")]


def _eval_step(run):
    res = _rlcanon("eval", run, "--episodes", 1)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)["checkpoint_step"]


# ---- (a) one writer per run directory -------------------------------------------------------------


def test_two_writers_exactly_one_wins(tmp_path):
    """A second writer (new run or resume) of a directory being written exits 2 with one line
    naming the holder's pid; the first run finishes untouched. The first writer is paused with
    SIGSTOP once its pid is in the lock file, so the second always meets a held lock."""
    run = tmp_path / "run"
    cmd = [*RLCANON, *PPO, "--total-timesteps", "2048", "--checkpoint-interval", "256", "--run-dir", str(run)]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lock = run / ".lock"
        deadline = time.time() + 120
        while not (lock.is_file() and lock.read_text().strip().isdigit() and (run / "config.json").is_file()):
            assert first.poll() is None, first.communicate()[1]
            assert time.time() < deadline, "the first writer never took the lock and wrote its config"
            time.sleep(0.01)
        os.kill(first.pid, signal.SIGSTOP)
        try:
            assert lock.read_text().strip() == str(first.pid)
            second = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            again = _rlcanon("train", "ppo", "--resume", run, "--no-progress", timeout=120)
        finally:
            os.kill(first.pid, signal.SIGCONT)
        try:
            _, err = first.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the first writer did not finish after SIGCONT: {_threads(first.pid)}")
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0, err
    for refused in (second, again):
        line = _one_error_line(refused)
        assert f"pid {first.pid}" in line and str(run) in line, line
    summary = json.loads((run / "summary.json").read_text())
    assert summary["total_timesteps"] == 2048
    steps = _global_steps(run)
    assert steps == list(range(128, 2049, 128))  # one writer's rows, once each
    # once the first writer is gone, a new run there is refused as an existing run, still one line
    line = _one_error_line(_rlcanon(*cmd[len(RLCANON) :], timeout=120))
    assert "already holds a run" in line and "--resume" in line and "--overwrite" in line


def _threads(pid):
    """State and wait channel of each thread of ``pid`` (to tell a hang from a slow machine)."""
    out = []
    for task in sorted(Path(f"/proc/{pid}/task").glob("*")):
        try:
            state = (task / "stat").read_text().rsplit(")", 1)[1].split()[0]
            out.append(f"{task.name}:{state}:{(task / 'wchan').read_text()}")
        except OSError:
            pass
    return " ".join(out) or "no /proc entry"


def test_lock_reports_the_holder_pid_in_process(tmp_path):
    """RunLock itself: a second lock on a held directory is refused with the holder's pid, and the
    lock is free again once released."""
    from rlcanon.errors import RunBusyError
    from rlcanon.run.rundir import RunLock

    holder = RunLock(tmp_path).acquire()
    try:
        with pytest.raises(RunBusyError, match=f"pid {os.getpid()}"):
            RunLock(tmp_path).acquire()
    finally:
        holder.release()
    RunLock(tmp_path).acquire().release()


# ---- (b) the user's umask ---------------------------------------------------------------------


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_files_follow_the_umask(tmp_path, umask):
    run = tmp_path / "run"
    res = _ppo_run(run, 512, preexec_fn=lambda: os.umask(umask))
    assert res.returncode == 0, res.stderr
    files = [run / "config.json", run / "metrics.csv", run / "summary.json", run / ".lock"]
    files += [run / "checkpoints" / "latest.json"]
    dirs = [run, run / "checkpoints"]
    steps = sorted((run / "checkpoints").glob("step-*"))
    assert steps
    for step_dir in steps:
        dirs.append(step_dir)
        files += sorted(step_dir.iterdir())
    assert len(files) >= 7
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, (path, oct(path.stat().st_mode))
    for path in dirs:
        assert stat.S_IMODE(path.stat().st_mode) == 0o777 & ~umask, (path, oct(path.stat().st_mode))


def test_umask_is_read_without_changing_it():
    """The save path reads the umask without setting it to 0 even for an instant (another thread
    creating a file in that instant would make it world-writable)."""
    from rlcanon.run import checkpoint

    old = os.umask(0o027)
    try:
        seen = []
        real = os.umask
        try:
            os.umask = lambda mask: seen.append(mask) or real(mask)
            assert checkpoint._umask() == 0o027
        finally:
            os.umask = real
        if os.path.exists("/proc/self/status"):
            assert seen == []
    finally:
        os.umask(old)


# ---- (c) unwritable and read-only places ------------------------------------------------------


def _without_file_mode_override(probe):
    """A command prefix under which ``probe`` (a directory without write permission) is really
    unwritable: none for a normal user; for root, setpriv dropping the capabilities that ignore
    file modes, if that works here; else the test is skipped."""
    if not os.access(probe, os.W_OK):
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is not None:
        caps = "-dac_override,-dac_read_search"
        prefix = [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]
        check = "import os, sys; sys.exit(0 if not os.access(sys.argv[1], os.W_OK) else 1)"
        try:
            cmd = [*prefix, sys.executable, "-c", check, str(probe)]
            res = subprocess.run(cmd, capture_output=True, timeout=60)
        except OSError:
            res = None
        if res is not None and res.returncode == 0:
            return prefix
    pytest.skip("privileges that ignore file modes (root): chmod cannot make a directory unwritable")


def test_unwritable_parent_is_one_line(tmp_path):
    parent = tmp_path / "parent"
    parent.mkdir()
    parent.chmod(0o500)
    try:
        prefix = _without_file_mode_override(parent)
        run = parent / "run"
        line = _one_error_line(_ppo_run(run, 256, prefix=prefix))
        assert str(run) in line and "Permission denied" in line, line
        assert not run.exists()
        # the default run directory (runs/... under the working directory) says the same
        line = _one_error_line(_rlcanon(*PPO, "--total-timesteps", 256, prefix=prefix, cwd=parent))
        assert "runs" in line and "Permission denied" in line, line
    finally:
        parent.chmod(0o700)


def _chmod_tree(root, writable):
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        path.chmod(mode | stat.S_IWUSR if writable else mode & ~0o222)


def test_read_only_run_is_one_line_and_stays_loadable(tmp_path):
    """Resuming (or overwriting) a run whose files and directories are read-only: one line, exit 2,
    and the run is unchanged and loadable."""
    run = tmp_path / "run"
    assert _ppo_run(run, 256).returncode == 0
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    _chmod_tree(run, writable=False)
    try:
        prefix = _without_file_mode_override(run)
        for args in (["--resume", run, "--total-timesteps", 512], ["--run-dir", run, "--overwrite"]):
            cmd = ["train", "ppo", *args, "--no-progress"] if args[0] == "--resume" else [*PPO, *args]
            line = _one_error_line(_rlcanon(*cmd, prefix=prefix))
            assert str(run) in line and ("Permission denied" in line or "Read-only" in line), line
    finally:
        _chmod_tree(run, writable=True)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    assert _eval_step(run) == 256


def test_read_only_filesystem_is_one_line(tmp_path):
    """The same on a really read-only file system (a read-only bind mount in a private mount
    namespace; skipped where unprivileged namespaces are not allowed)."""
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare is not installed")
    here = f"'{tmp_path}'"
    mount = f"mount --bind {here} {here} && mount -o remount,ro,bind {here} {here}"
    probe = subprocess.run(
        [unshare, "-r", "-m", "sh", "-c", f"{mount} && ! touch {here}/probe"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("a read-only bind mount in a user and mount namespace is not possible here")
    run = tmp_path / "run"
    assert _ppo_run(run, 256).returncode == 0
    py = f"'{sys.executable}' -m rlcanon train ppo"
    cmd = " ".join(
        [
            f"{mount} &&",
            f"{py} --resume '{run}' --total-timesteps 512 --no-progress;",
            f"{py} --env-id CartPole-v1 --total-timesteps 256 --no-progress --run-dir '{tmp_path / 'new'}'",
        ]
    )
    res = subprocess.run([unshare, "-r", "-m", "sh", "-c", cmd], capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 2, res.stderr  # one line per refused command
    for line in lines:
        assert line.startswith("rlcanon: error: ") and "Read-only file system" in line, lines
    assert str(run) in lines[0] and str(tmp_path / "new") in lines[1], lines
    assert _eval_step(run) == 256 and not (tmp_path / "new").exists()


# ---- (d) a full disk during a checkpoint ------------------------------------------------------


def _file_size_limit(limit):
    def apply():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def test_full_disk_during_checkpoint_keeps_the_previous_one(tmp_path):
    """A checkpoint write that fails for lack of space (a file size limit: the weights file does not
    fit, the metrics and JSON files do) exits 2 with one line; the previous checkpoint is intact and
    loadable, no temporary file is left, and the run resumes once there is space."""
    run = tmp_path / "run"
    res = _ppo_run(run, 512)
    assert res.returncode == 0, res.stderr
    weights = next((run / "checkpoints").glob("step-*/arrays.safetensors")).stat().st_size
    assert weights > 40_000
    kept = sorted(p.name for p in (run / "checkpoints").iterdir())
    full = _file_size_limit(32_768)
    res = _rlcanon(
        "train", "ppo", "--resume", run, "--total-timesteps", 1024, "--no-progress", preexec_fn=full
    )
    line = _one_error_line(res)
    assert "checkpoint" in line and "File too large" in line and "--resume" in line, line
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == kept
    assert json.loads((run / "checkpoints" / "latest.json").read_text())["step"] == 512
    assert not _no_temps(run)
    assert _eval_step(run) == 512
    res = _rlcanon("train", "ppo", "--resume", run, "--total-timesteps", 1024, "--no-progress")
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "summary.json").read_text())["total_timesteps"] == 1024
    assert _global_steps(run) == list(range(128, 1025, 128))


def test_full_disk_in_process_save_checkpoint(tmp_path):
    """save_checkpoint itself: an OSError while writing any part becomes one CheckpointError and
    leaves the previous checkpoint, the pointer and no temporary directory."""
    import numpy as np

    from rlcanon.errors import CheckpointError
    from rlcanon.run import checkpoint as ckpt

    ckpt.save_checkpoint(tmp_path, 1, {"w": np.zeros(4)}, {"x": 1})
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))
    try:
        with pytest.raises(CheckpointError, match="File too large") as info:
            ckpt.save_checkpoint(tmp_path, 2, {"w": np.zeros(10_000)}, {"x": 2})
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, old)
    assert "\n" not in str(info.value)
    assert ckpt.latest_checkpoint(tmp_path).name == "step-000000000001"
    assert ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path))[1]["x"] == 1
    assert not _no_temps(tmp_path)


# ---- (e) --overwrite and --resume -------------------------------------------------------------


def test_overwrite_replaces_and_refuses_with_resume(tmp_path):
    run = tmp_path / "run"
    assert _ppo_run(run, 512).returncode == 0
    # without a flag, an existing run is refused and left as it was
    line = _one_error_line(_ppo_run(run, 256))
    assert "already holds a run" in line and "--overwrite" in line
    assert json.loads((run / "summary.json").read_text())["total_timesteps"] == 512
    # --resume and --overwrite together are refused, whichever way --resume is given
    for cmd in (["train", "ppo", "--resume", run], [*PPO, "--run-dir", run, "--resume", run]):
        cmd.append("--overwrite")
        line = _one_error_line(_rlcanon(*cmd))
        assert "--overwrite" in line
    assert _eval_step(run) == 512
    # --overwrite replaces the old run: its rows, checkpoints and summary are gone
    (run / "checkpoints" / "step-000000009999").mkdir()  # an odd leftover goes too
    res = _ppo_run(run, 384, "--overwrite")
    assert res.returncode == 0, res.stderr
    assert json.loads((run / "summary.json").read_text())["total_timesteps"] == 384
    assert _global_steps(run) == [128, 256, 384]
    kept = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    assert kept == ["step-000000000256", "step-000000000384"]
    assert not _no_temps(run)
    assert _eval_step(run) == 384


def test_open_run_dir_refuses_resume_with_overwrite(tmp_path):
    from rlcanon.errors import ConfigError
    from rlcanon.run.rundir import open_run_dir

    with pytest.raises(ConfigError, match="not both"):
        open_run_dir(tmp_path / "r", resume=True, overwrite=True)
    assert not (tmp_path / "r").exists()


# ---- (f) the step budget note -----------------------------------------------------------------


def test_budget_rounded_up_is_one_note(tmp_path):
    run = tmp_path / "run"
    res = _rlcanon(*PPO, "--total-timesteps", 1000, "--run-dir", run)
    assert res.returncode == 0, res.stderr
    notes = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(notes) == 1 and notes[0].startswith("rlcanon: note: "), res.stderr
    assert "1000" in notes[0] and "1024" in notes[0] and "128" in notes[0], notes[0]
    assert json.loads((run / "summary.json").read_text())["total_timesteps"] == 1024
    assert json.loads(res.stdout.strip().splitlines()[-1])["total_timesteps"] == 1024
    assert _global_steps(run)[-1] == 1024
