"""Metrics are data: algorithms return dicts of namespaced values (``loss/td``, ``charts/epsilon``,
``bonus/rnd_loss``, ...) and this module writes every key to ``metrics.csv`` (and TensorBoard when it
is installed).

Columns grow as keys appear: a key first seen mid-run (an evaluation, a bonus that starts late)
adds a column, and the file is rewritten once, atomically, with the earlier rows left empty in it.
So ``metrics.csv`` stays one rectangular table that any CSV reader loads.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import Any

from rlcanon.errors import CheckpointError
from rlcanon.run.checkpoint import atomic_write_bytes
from rlcanon.run.notes import note, os_error_hint

REQUIRED_COLUMNS = ("global_step", "charts/episodic_return", "time/sps")


class MetricsLogger:
    """Appends one CSV row per log step.

    ``rows`` counts the rows written; a checkpoint records it, so that a resumed run drops the rows
    logged after that checkpoint (and a row torn by a kill) and never duplicates one."""

    def __init__(self, run_dir: Path, resume_rows: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        self.columns: list[str] = list(REQUIRED_COLUMNS)
        self._fh: Any = None
        self._broken = False  # a write failed: the file is left as it is until the run is resumed
        rows: list[list[str]] = []
        if resume_rows is not None:
            if self.path.exists():
                self.columns, rows = self._read()
            if len(rows) < resume_rows:
                note(
                    f"{self.path} holds {len(rows)} complete rows, fewer than the {resume_rows} the "
                    f"checkpoint recorded; the missing rows cannot be recovered"
                )
            rows = rows[:resume_rows]
        self._rewrite(rows)
        self.rows = len(rows)
        self._index = {c: i for i, c in enumerate(self.columns)}
        self._tb = _tensorboard_writer(Path(run_dir))

    def _read(self) -> tuple[list[str], list[list[str]]]:
        try:
            return _read_rows(self.path)
        except OSError as exc:
            raise CheckpointError(f"cannot read {self.path}: {os_error_hint(exc)}") from None

    def _failed(self, exc: OSError) -> CheckpointError:
        self._broken = True
        return CheckpointError(
            f"cannot write {self.path}: {os_error_hint(exc)}; the rows up to the last checkpoint are kept, "
            f"go on from it with --resume {self.path.parent} once this is fixed"
        )

    def _rewrite(self, rows: list[list[str]]) -> None:
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(self.columns)
        width = len(self.columns)
        writer.writerows(row + [""] * (width - len(row)) for row in rows)
        atomic_write_bytes(self.path, buf.getvalue().encode())
        self._close_file()
        try:
            self._fh = open(self.path, "a", newline="")  # noqa: SIM115 - kept open for the run
        except OSError as exc:
            raise self._failed(exc) from None
        self._writer = csv.writer(self._fh)

    def log(self, metrics: dict[str, Any]) -> None:
        new = [k for k in metrics if k not in self._index]
        if new:  # a key seen for the first time: widen the table once
            self._flush()
            self.columns, rows = self._read()
            self.columns += new
            self._index = {c: i for i, c in enumerate(self.columns)}
            self._rewrite(rows)
        row = [""] * len(self.columns)
        for key, value in metrics.items():
            row[self._index[key]] = _fmt(value)
        try:
            self._writer.writerow(row)
            self._fh.flush()
        except OSError as exc:  # (a row cut short here is dropped when the run is resumed)
            raise self._failed(exc) from None
        self.rows += 1
        if self._tb is not None:
            step = int(metrics["global_step"])
            for key, value in metrics.items():
                if key != "global_step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)

    def _flush(self) -> None:
        try:
            self._fh.flush()
        except OSError as exc:
            raise self._failed(exc) from None

    def sync(self) -> None:
        """Flush and fsync the rows written so far (a checkpoint that counts them follows); a
        closed logger was synced when it closed."""
        if self._fh is None:
            return
        self._flush()
        try:
            os.fsync(self._fh.fileno())
        except OSError as exc:
            raise self._failed(exc) from None

    def _close_file(self) -> None:
        fh, self._fh = self._fh, None
        if fh is not None:
            try:
                fh.close()
            except OSError as exc:
                if not self._broken:  # (else the error was reported when the write failed)
                    raise self._failed(exc) from None

    def close(self) -> None:
        try:
            if not self._broken:
                self.sync()
            self._close_file()
        finally:
            if self._tb is not None:
                self._tb.close()


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) or hasattr(value, "dtype"):
        value = float(value)
        return repr(round(value, 6)) if math.isfinite(value) else str(value)
    return str(value)


def _tensorboard_writer(run_dir: Path) -> Any:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tb"))


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    """(header, complete rows) of a metrics file; a last row cut short by a kill is dropped."""
    text = path.read_text(errors="replace")
    lines = text.splitlines(keepends=True)
    if not lines:
        return list(REQUIRED_COLUMNS), []
    header = next(csv.reader([lines[0]]))
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        fields = next(csv.reader([line]), [])
        if not line.endswith("\n") or len(fields) != len(header):
            note(f"{path}: dropped row {i}, which a killed run left incomplete")
            break
        rows.append(fields)
    return header, rows


def read_metrics(run_dir: str | Path) -> dict[str, list[float]]:
    """Read ``metrics.csv`` as columns of floats (NaN where a row has no numeric value; a torn
    last row is skipped)."""
    path = Path(run_dir) / "metrics.csv"
    header, rows = _read_rows_quiet(path)
    cols: dict[str, list[float]] = {name: [] for name in header}
    for row in rows:
        for name, value in zip(header, row):
            cols[name].append(_float(value))
    return cols


def _read_rows_quiet(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", errors="replace") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        rows = [r for r in reader if len(r) == len(header)]
    return header, rows


def _float(value: str) -> float:
    try:
        return float(value) if value else math.nan
    except ValueError:
        return math.nan
