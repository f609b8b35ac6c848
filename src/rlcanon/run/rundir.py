"""Run directories: the contract between training, evaluation, plotting and resuming.

runs/<algo>-<env>-s<seed>-<timestamp>/
    config.json     every setting, the seed, package and library versions
    metrics.csv     one row per log step
    tb/             TensorBoard events (when tensorboard is installed)
    checkpoints/    step-*/arrays.safetensors + state.json, and latest.json
    summary.json    final evaluation, timesteps, wall time, steps per second
    .lock           held (fcntl) by the one process writing the run

One writer per directory: :class:`RunLock` takes an advisory lock that the OS releases when the
process dies, so a second writer is refused with the holder's pid and a crashed run can be resumed
at once. Reading (eval, plot) takes no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import re
import shutil
import time
from pathlib import Path
from typing import Any

from rlcanon.errors import CheckpointError, ConfigError, RunBusyError
from rlcanon.run.checkpoint import (
    _checkpoint_dirs,
    atomic_write_json,
    read_json,
    remove_stale_temps,
)
from rlcanon.run.notes import os_error_hint

LOCK = ".lock"
RUN_FILES = ("config.json", "metrics.csv", "summary.json", "checkpoints", "tb", "policy.safetensors")


def versions() -> dict[str, str]:
    import gymnasium
    import numpy
    import torch

    from rlcanon import __version__

    return {
        "rlcanon": __version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "torch": torch.__version__,
        "gymnasium": gymnasium.__version__,
    }


def default_run_dir(algo: str, env_label: str, seed: int, root: str = "runs") -> Path:
    safe_env = re.sub(r"[^A-Za-z0-9_.-]+", "_", env_label)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{algo}-{safe_env}-s{seed}-{stamp}"
    path, k = base, 1
    while path.exists():
        k += 1
        path = base.with_name(f"{base.name}-{k}")
    return path


def holds_run(path: Path) -> bool:
    """Whether ``path`` already holds (part of) a run."""
    return path.is_dir() and any((path / name).exists() for name in RUN_FILES)


class RunLock:
    """An exclusive advisory lock on a run directory, held while a process writes the run."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> RunLock:
        lock_file = self.path / LOCK
        try:
            fd = os.open(lock_file, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
        except OSError as exc:
            raise self._unwritable(exc) from None
        try:
            if not _try_lock(fd):
                # the holder writes its pid just after it takes the lock: give it a moment for that
                holder = ""
                for _ in range(50):
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
                    if holder or _try_lock(fd):
                        break
                    time.sleep(0.02)
                else:
                    holder = "unknown"
                if holder:
                    raise RunBusyError(
                        f"{self.path} is being written by another rlcanon process (pid {holder}); wait "
                        f"for it to finish, or choose another --run-dir"
                    )
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except OSError as exc:
            os.close(fd)
            raise self._unwritable(exc) from None
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        return self

    def _unwritable(self, exc: OSError) -> CheckpointError:
        return CheckpointError(f"cannot write to the run directory {self.path}: {os_error_hint(exc)}")

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)  # closing releases the lock
            self._fd = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def open_run_dir(path: Path, *, resume: bool, overwrite: bool) -> RunLock:
    """Create or reopen ``path`` for writing and return its held lock.

    A directory that already holds a run is refused unless ``resume`` (continue it) or ``overwrite``
    (replace it) is given. Temporary files a killed writer left behind are removed."""
    if resume and overwrite:
        raise ConfigError("give --resume or --overwrite, not both")
    if path.exists() and not path.is_dir():
        raise ConfigError(f"run directory {path} exists and is not a directory")
    if resume and not holds_run(path):
        raise CheckpointError(f"run directory not found or empty: {path}; nothing to resume")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CheckpointError(f"cannot create the run directory {path}: {os_error_hint(exc)}") from None
    lock = RunLock(path).acquire()
    try:
        if holds_run(path) and not resume:
            if not overwrite:
                raise ConfigError(
                    f"{path} already holds a run; continue it with --resume {path}, replace it with "
                    f"--overwrite, or choose another --run-dir"
                )
            _remove_run(path)
        try:
            remove_stale_temps(path)
        except OSError as exc:
            raise CheckpointError(
                f"cannot remove the temporary files of a stopped run in {path}: {os_error_hint(exc)}"
            ) from None
    except BaseException:
        lock.release()
        raise
    return lock


def never_checkpointed(path: Path) -> bool:
    """Whether the run in ``path`` stopped before its first checkpoint: no pointer and no checkpoint
    directory, complete or not (a run whose checkpoints are damaged or gone is not such a run)."""
    root = path / "checkpoints"
    return not root.is_dir() or not ((root / "latest.json").exists() or _checkpoint_dirs(root))


def _remove_run(path: Path) -> None:
    """Remove the files of the run in ``path`` (for --overwrite). Each is first renamed to a
    temporary name, so a kill in the middle leaves no half-removed part of a run, only temporary
    files that the next writer removes. The config goes last: a run stopped in the middle still
    holds it, so it is refused as an existing run, and --resume says there is no checkpoint."""
    for name in sorted(RUN_FILES, key=lambda n: n == "config.json"):
        target = path / name
        if not (target.exists() or target.is_symlink()):
            continue
        doomed = path / f".{name}.overwritten-{os.getpid()}-{os.urandom(4).hex()}.tmp"
        try:
            os.rename(target, doomed)
            if doomed.is_dir() and not doomed.is_symlink():
                shutil.rmtree(doomed)
            else:
                doomed.unlink()
        except OSError as exc:
            raise CheckpointError(
                f"cannot remove {target} to overwrite the run in {path}: {os_error_hint(exc)}"
            ) from None


def remove_empty_run_dir(path: Path) -> None:
    """Remove a run directory this process created that holds nothing but its lock file."""
    if path.is_dir() and not holds_run(path) and {p.name for p in path.iterdir()} <= {LOCK}:
        shutil.rmtree(path, ignore_errors=True)


def write_config(
    run_dir: Path, algo: str, config: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    record = {"algo": algo, "config": config, "versions": versions(), **(extra or {})}
    atomic_write_json(run_dir / "config.json", record)


def read_config(run_dir: str | Path) -> dict[str, Any]:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    record = read_json(run_dir / "config.json", "run config")
    if (
        not isinstance(record, dict)
        or not isinstance(record.get("algo"), str)
        or not isinstance(record.get("config"), dict)
    ):
        raise CheckpointError(f"{run_dir / 'config.json'} is not an rlcanon run config")
    return record


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "summary.json", summary)
