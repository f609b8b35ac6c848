"""Metrics are data: algorithms return dicts of namespaced floats and this module writes them to
``metrics.csv`` (and TensorBoard when it is installed)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

from rlcanon.core.checkpoint import atomic_write_bytes

REQUIRED_COLUMNS = ("global_step", "charts/episodic_return", "time/sps")


class MetricsLogger:
    """Appends one CSV row per log step. The column set is fixed when the file is created.

    ``rows`` counts the rows written; a checkpoint records it so that a resumed run can drop the
    rows logged after that checkpoint and never duplicate one.
    """

    def __init__(self, run_dir: Path, columns: list[str], resume_rows: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.csv"
        if resume_rows is not None and self.path.exists():
            lines = self.path.read_text().splitlines(keepends=True)
            self.columns = next(csv.reader([lines[0]])) if lines else list(columns)
            kept = lines[: 1 + resume_rows]
            atomic_write_bytes(self.path, "".join(kept).encode())
            self.rows = len(kept) - 1
        else:
            self.columns = list(dict.fromkeys([*REQUIRED_COLUMNS, *columns]))
            buf = io.StringIO()
            csv.writer(buf).writerow(self.columns)
            atomic_write_bytes(self.path, buf.getvalue().encode())
            self.rows = 0
        self._fh = open(self.path, "a", newline="")  # noqa: SIM115 - kept open for the run
        self._writer = csv.writer(self._fh)
        self._tb = _tensorboard_writer(Path(run_dir))

    def log(self, metrics: dict[str, Any]) -> None:
        row = []
        for col in self.columns:
            value = metrics.get(col)
            row.append("" if value is None else _fmt(value))
        self._writer.writerow(row)
        self._fh.flush()
        self.rows += 1
        if self._tb is not None:
            step = int(metrics["global_step"])
            for key, value in metrics.items():
                if key != "global_step" and isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)

    def close(self) -> None:
        self._fh.close()
        if self._tb is not None:
            self._tb.close()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(round(value, 6)) if math.isfinite(value) else str(value)
    return str(value)


def _tensorboard_writer(run_dir: Path) -> Any:
    try:
        import tensorboard  # noqa: F401
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(run_dir / "tb"))


def read_metrics(run_dir: str | Path) -> dict[str, list[float]]:
    """Read ``metrics.csv`` as columns of floats (NaN where a row has no value)."""
    path = Path(run_dir) / "metrics.csv"
    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        cols: dict[str, list[float]] = {name: [] for name in reader.fieldnames or []}
        for row in reader:
            for name in cols:
                value = row.get(name, "")
                cols[name].append(float(value) if value not in ("", None) else math.nan)
    return cols
