"""Checkpoints as safetensors (arrays) plus JSON (everything else). Never pickle: a checkpoint file
cannot run code, and every value is checked before use (:mod:`rlcanon.core.validate`).

Crash safety: a checkpoint is written into a temporary directory, fsynced, and renamed to a name no
other checkpoint has; only then does ``latest.json`` move to it, and only after that are older
checkpoints pruned. A process killed at any instant leaves the previous checkpoint intact, and
:func:`latest_checkpoint` falls back to the newest intact one if the pointer names nothing.
Temporary files of a killed writer are removed when the run is next opened for writing.

Files follow the user's umask (temporary files are created private and widened before the rename).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rlcanon.errors import CheckpointError
from rlcanon.run.notes import note

FORMAT = "rlcanon-checkpoint"
FORMAT_VERSION = 2
WEIGHTS = "arrays.safetensors"
STATE = "state.json"
LATEST = "latest.json"
_STEP_DIR = re.compile(r"^step-(\d{12})(?:-(\d+))?$")
FAULT_ENV = "RLCANON_FAULT"
"""Test seam: ``RLCANON_FAULT=<point>`` kills the process with SIGKILL at that point of a checkpoint
write (:func:`_fault`), so tests can check that a kill between any two steps loses nothing."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fault(point: str) -> None:
    if os.environ.get(FAULT_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_error(path: Path, exc: OSError) -> CheckpointError:
    return CheckpointError(f"cannot write {path}: {exc.strerror or exc}; the previous files are intact")


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise _write_error(path, exc) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n").encode())


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc.strerror}") from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would also turn a 0-d array into 1-d)
        arr = arr.copy(order="C")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    return arr


def _step_key(path: Path) -> tuple[int, int] | None:
    m = _STEP_DIR.match(path.name)
    return (int(m.group(1)), int(m.group(2) or 1)) if m else None


def _complete(path: Path) -> bool:
    """A renamed checkpoint directory whose two files exist and whose state names our format."""
    try:
        state = json.loads((path / STATE).read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return isinstance(state, dict) and state.get("format") == FORMAT and (path / WEIGHTS).is_file()


def _checkpoint_dirs(root: Path) -> list[Path]:
    """Checkpoint directories, oldest first."""
    found = [(key, p) for p in root.glob("step-*") if p.is_dir() and (key := _step_key(p)) is not None]
    return [p for _, p in sorted(found)]


def save_checkpoint(
    run_dir: str | os.PathLike[str], step: int, arrays: dict[str, Any], state: dict[str, Any], keep: int = 2
) -> Path:
    """Write ``checkpoints/step-<step>/`` and then point ``checkpoints/latest.json`` at it.

    ``arrays`` maps names to tensors or arrays; ``state`` is any JSON-ready dict. The previous
    checkpoint is removed only after the new one is complete and the pointer has moved."""
    from safetensors.numpy import save_file

    root = Path(run_dir) / "checkpoints"
    name = f"step-{step:012d}"
    k = 1
    while (root / name).exists():  # never replace a checkpoint in place: take the next free name
        k += 1
        name = f"step-{step:012d}-{k}"
    final = root / name
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".tmp"))
        np_arrays = {key: _to_numpy(v) for key, v in arrays.items()}
        save_file(np_arrays, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        full_state = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **state}
        (tmp / STATE).write_text(json.dumps(full_state, indent=2, sort_keys=True, allow_nan=False))
        mask = _umask()
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~mask)
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o777 & ~mask)
        _fault("checkpoint:before-rename")
        os.replace(tmp, final)
        tmp = None
        _fsync_dir(root)
    except OSError as exc:
        raise _write_error(final, exc) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _fault("checkpoint:before-pointer")
    atomic_write_json(root / LATEST, {"format": FORMAT, "checkpoint": name, "step": step})
    _fault("checkpoint:before-prune")
    older = [p for p in _checkpoint_dirs(root) if p.name != name]
    for stale in older[: max(len(older) - (keep - 1), 0)]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The directory of the newest complete checkpoint of a run.

    The pointer ``latest.json`` names it; if the pointer is missing or names nothing complete (a run
    killed between two steps of a write), the newest complete checkpoint is used, with a note."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    root = run_dir / "checkpoints"
    pointer = root / LATEST
    target = None
    if pointer.is_file():
        info = read_json(pointer, "checkpoint pointer")
        if not isinstance(info, dict) or info.get("format") != FORMAT or not isinstance(info.get("checkpoint"), str):
            raise CheckpointError(f"{pointer} is not an rlcanon checkpoint pointer")
        if not _STEP_DIR.match(info["checkpoint"]):
            raise CheckpointError(f"{pointer} names {info['checkpoint']!r}, which is not a checkpoint directory")
        target = root / info["checkpoint"]
        if _complete(target):
            return target
    complete = [p for p in _checkpoint_dirs(root) if _complete(p)] if root.is_dir() else []
    if not complete:
        raise CheckpointError(
            f"{run_dir} holds no checkpoint (expected {pointer}); pass a run directory written by rlcanon"
        )
    why = f"{pointer} names {target.name}, which is missing or incomplete" if target else f"{pointer} is missing"
    note(f"{why}; using the newest complete checkpoint, {complete[-1].name}")
    return complete[-1]


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read (arrays, state) from a checkpoint directory, checking that it is really ours. The caller
    checks every value against what its model expects before using it."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    state = read_json(path / STATE, "checkpoint state")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path / STATE} is not an rlcanon checkpoint (no '{FORMAT}' marker)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {state.get('format_version')!r}; this rlcanon reads "
            f"version {FORMAT_VERSION} (train the run again with this version)"
        )
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise CheckpointError(f"{weights} is corrupt or not a safetensors file ({exc})") from None
    return arrays, state


def remove_stale_temps(run_dir: Path) -> None:
    """Remove temporary files and directories that a killed writer left in ``run_dir`` (the caller
    holds the run's lock, so no live writer owns them)."""
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for p in folder.glob(".*.tmp"):
            if p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
