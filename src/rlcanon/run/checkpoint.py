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
from rlcanon.run.notes import note, os_error_hint

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
    """The process umask, read without changing it where the OS allows (setting it, even for an
    instant, would give a file another thread creates in that instant the wrong mode)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o077)  # (no /proc: the narrowest mask for the instant it is set)
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
    return CheckpointError(f"cannot write {path}: {os_error_hint(exc)}; the previous version of it is intact")


def _safetensors_os_error(exc: Exception) -> OSError:
    """The OSError inside a safetensors write error ('... I/O error: File too large (os error 27)')."""
    m = re.search(r"\(os error (\d+)\)", str(exc))
    if m:
        code = int(m.group(1))
        return OSError(code, os.strerror(code))
    return OSError(0, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


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


MAX_JSON_BYTES = 16 << 20
"""The largest JSON file rlcanon reads (a pointer, a state or a config is a few kB)."""


def read_json(path: str | os.PathLike[str], what: str) -> Any:
    """The JSON in ``path``: a regular file of at most :data:`MAX_JSON_BYTES` holding strict JSON
    (no NaN or Infinity); anything else raises CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():  # (also refuses devices and FIFOs, which could never end)
        if path.exists():
            raise CheckpointError(f"{what} {path} is not a regular file; expected a JSON file")
        raise CheckpointError(f"{what} not found: {path}")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_JSON_BYTES + 1)
    except OSError as exc:
        raise CheckpointError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    if len(data) > MAX_JSON_BYTES:
        raise CheckpointError(
            f"{what} {path} is larger than {MAX_JSON_BYTES >> 20} MiB; expected a small JSON file"
        )
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_no_constant)
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"{what} {path} is not valid JSON ({str(exc).splitlines()[0]})") from None


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
        state = read_json(path / STATE, "checkpoint state")
    except CheckpointError:
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

    ``arrays`` maps names to tensors or arrays; ``state`` is any JSON-ready dict. Older checkpoints
    are removed only after the new one is complete and the pointer has moved; the one the pointer
    named before (the previous checkpoint) is kept with it (``keep=2``). Checkpoints the pointer
    never named (left by a run killed between the rename and the pointer move, then resumed from an
    earlier one) belong to no run any more and are removed then too. A write that fails (a full
    disk, no permission) raises one CheckpointError and changes nothing that was there before."""
    from safetensors import SafetensorError
    from safetensors.numpy import save_file

    run_dir = Path(run_dir)
    root = run_dir / "checkpoints"
    name = f"step-{step:012d}"
    k = 1
    while (root / name).exists():  # never replace a checkpoint in place: take the next free name
        k += 1
        name = f"step-{step:012d}-{k}"
    final = root / name
    previous = _previous_checkpoint(root)
    tmp: Path | None = None
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=root, prefix=f".{name}.", suffix=".tmp"))
        np_arrays = {key: _to_numpy(v) for key, v in arrays.items()}
        try:
            save_file(np_arrays, str(tmp / WEIGHTS), metadata={"format": FORMAT})
        except SafetensorError as exc:  # an I/O error inside safetensors (a full disk, say)
            raise _safetensors_os_error(exc) from None
        full_state = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": step, **state}
        (tmp / STATE).write_text(json.dumps(full_state, indent=2, sort_keys=True, allow_nan=False))
        mask = _umask()
        for f in tmp.iterdir():
            os.chmod(f, 0o666 & ~mask)
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())
        os.chmod(tmp, 0o777 & ~mask)
        _fsync_dir(tmp)
        _fault("checkpoint:before-rename")
        os.replace(tmp, final)
        tmp = None
        _fsync_dir(root)
    except OSError as exc:
        if previous:
            then = f"the previous checkpoint, {previous}, is intact: go on from it with --resume {run_dir}"
        else:
            then = "there is no earlier checkpoint: start the run again with --overwrite"
        raise CheckpointError(
            f"cannot write checkpoint {final}: {os_error_hint(exc)}; {then} once this is fixed"
        ) from None
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    _fault("checkpoint:before-pointer")
    try:
        atomic_write_json(root / LATEST, {"format": FORMAT, "checkpoint": name, "step": step})
    except CheckpointError as exc:
        raise CheckpointError(
            f"{exc}; go on from the checkpoint it names with --resume {run_dir} once this is fixed"
        ) from None
    _fault("checkpoint:before-prune")
    _prune(root, name, previous, keep)
    return final


def _previous_checkpoint(root: Path) -> str | None:
    """The checkpoint a run in ``root`` goes on from: the one the pointer names if it is complete,
    else the newest complete one (what :func:`latest_checkpoint` would load)."""
    try:
        info = json.loads((root / LATEST).read_text())
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        info = None
    named = info.get("checkpoint") if isinstance(info, dict) else None
    if isinstance(named, str) and _STEP_DIR.match(named) and _complete(root / named):
        return named
    complete = [p for p in _checkpoint_dirs(root) if _complete(p)] if root.is_dir() else []
    return complete[-1].name if complete else None


def _prune(root: Path, name: str, previous: str | None, keep: int) -> None:
    """Remove the checkpoints other than ``name`` (just written, and named by the pointer), the
    ``previous`` one, and the newest older ones up to ``keep`` in all. Each is first renamed to a
    temporary name, so that a kill in the middle leaves no half-removed checkpoint, only a
    temporary directory that the next writer removes."""
    protected = {name} | ({previous} if previous and keep >= 2 else set())
    spare = keep - len(protected)
    if spare > 0:
        new_key = _step_key(root / name) or (0, 0)
        older = [
            p.name
            for p in _checkpoint_dirs(root)
            if p.name not in protected and (_step_key(p) or (0, 0)) < new_key
        ]
        protected.update(older[-spare:])
    for path in _checkpoint_dirs(root):
        if path.name in protected:
            continue
        doomed = root / f".{path.name}.pruned-{os.getpid()}-{os.urandom(4).hex()}.tmp"
        try:
            os.rename(path, doomed)
        except OSError:
            continue  # (left for the next save; the new checkpoint is complete either way)
        shutil.rmtree(doomed, ignore_errors=True)


def latest_checkpoint(run_dir: str | os.PathLike[str]) -> Path:
    """The directory of the newest checkpoint of a run.

    The pointer ``latest.json`` names it. If the pointer is missing, or names a directory that is
    not there (a run killed between two steps of a write, or a checkpoint deleted by hand), the
    newest complete checkpoint is used, with a note. A pointer that is not ours, or names anything
    but a checkpoint directory beside it, is refused; so is a named checkpoint that is there but
    corrupt (:func:`load_checkpoint` says what is wrong with it): an older one is never used in
    its place without the user's knowing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run directory not found: {run_dir}")
    root = run_dir / "checkpoints"
    pointer = root / LATEST
    target = None
    if pointer.is_file():
        info = read_json(pointer, "checkpoint pointer")
        ours = isinstance(info, dict) and info.get("format") == FORMAT
        if not ours or not isinstance(info.get("checkpoint"), str):
            raise CheckpointError(
                f"{pointer} is not an rlcanon checkpoint pointer; expected an object with 'format': "
                f"'{FORMAT}' and a 'checkpoint' name"
            )
        name = info["checkpoint"]
        if not _STEP_DIR.fullmatch(name):
            raise CheckpointError(
                f"{pointer}: field checkpoint is {name!r}; expected the name of a checkpoint directory "
                f"beside it (step-NNNNNNNNNNNN)"
            )
        target = root / name
        if target.is_dir():
            return target
        if target.exists() or target.is_symlink():
            raise CheckpointError(
                f"{pointer}: field checkpoint names {target}, which is not a checkpoint directory"
            )
    complete = [p for p in _checkpoint_dirs(root) if _complete(p)] if root.is_dir() else []
    if not complete:
        raise CheckpointError(
            f"{run_dir} holds no checkpoint (expected {pointer}); pass a run directory written by rlcanon"
        )
    why = f"{pointer} names {target.name}, which is missing" if target else f"{pointer} is missing"
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
        raise CheckpointError(
            f"{path / STATE} is not an rlcanon checkpoint; expected an object with 'format': '{FORMAT}'"
        )
    version = state.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path / STATE}: field format_version is {version!r}; this rlcanon reads version "
            f"{FORMAT_VERSION} (train the run again with this version)"
        )
    weights = path / WEIGHTS
    if not weights.is_file():
        if weights.exists():
            raise CheckpointError(
                f"checkpoint weights {weights} are not a regular file; expected a safetensors file"
            )
        raise CheckpointError(f"checkpoint weights not found: {weights}")
    try:
        arrays = load_file(str(weights))
    except (SafetensorError, OSError, ValueError, TypeError, OverflowError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise CheckpointError(f"{weights} is corrupt or not a safetensors file ({reason})") from None
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
