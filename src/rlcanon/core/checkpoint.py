"""Checkpoints as safetensors (arrays) plus JSON (everything else). Never pickle: a checkpoint
file cannot run code. Every write is atomic (write to a temporary name, fsync, rename), so a run
killed at any instant leaves either the previous checkpoint or the new one, never half of one."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from rlcanon.errors import CheckpointError

FORMAT = "rlcanon-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "arrays.safetensors"
STATE = "state.json"
LATEST = "latest.json"


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON ({exc})") from None


def _to_numpy(value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    arr = np.ascontiguousarray(value)
    if arr.dtype == np.bool_:
        arr = arr.astype(np.uint8)
    return arr


def save_checkpoint(
    run_dir: str | os.PathLike[str], step: int, arrays: dict[str, Any], state: dict[str, Any], keep: int = 2
) -> Path:
    """Write ``checkpoints/step-<step>/`` and then point ``checkpoints/latest.json`` at it.

    ``arrays`` maps names to tensors or arrays (weights, optimizer moments, replay contents);
    ``state`` is any JSON-ready dict (counters, RNG states, the algorithm name).
    """
    from safetensors.numpy import save_file

    ckpt_root = Path(run_dir) / "checkpoints"
    ckpt_root.mkdir(parents=True, exist_ok=True)
    name = f"step-{step:012d}"
    final = ckpt_root / name
    tmp = Path(tempfile.mkdtemp(dir=ckpt_root, prefix=f".{name}.", suffix=".tmp"))
    try:
        np_arrays = {k: _to_numpy(v) for k, v in arrays.items()}
        save_file(np_arrays, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        full_state = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **state}
        (tmp / STATE).write_text(json.dumps(full_state, indent=2, sort_keys=True))
        for f in tmp.iterdir():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(ckpt_root)
    atomic_write_json(ckpt_root / LATEST, {"format": FORMAT, "checkpoint": name, "step": step})
    old = sorted(p for p in ckpt_root.glob("step-*") if p.is_dir() and p.name != name)
    for stale in old[: max(len(old) - (keep - 1), 0)]:
        shutil.rmtree(stale, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The directory of the newest complete checkpoint of a run."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    pointer = run_dir / "checkpoints" / LATEST
    if not pointer.is_file():
        raise CheckpointError(
            f"{run_dir} holds no checkpoint (expected {pointer}); pass a run directory written by "
            "'rlcanon train'"
        )
    info = read_json(pointer, "checkpoint pointer")
    if not isinstance(info, dict) or info.get("format") != FORMAT or "checkpoint" not in info:
        raise CheckpointError(f"{pointer} is not an rlcanon checkpoint pointer")
    return pointer.parent / str(info["checkpoint"])


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read (arrays, state) from a checkpoint directory, checking that it is really ours."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    state = read_json(path / STATE, "checkpoint state")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path / STATE} is not an rlcanon checkpoint (no '{FORMAT}' marker)")
    if state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {state.get('format_version')!r}; "
            f"this rlcanon reads version {FORMAT_VERSION}"
        )
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{weights} is corrupt or not a safetensors file ({exc})") from None
    return arrays, state
