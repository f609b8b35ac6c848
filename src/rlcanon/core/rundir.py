"""Run directories: the contract between training, evaluation, plotting and resuming.

runs/<algo>-<env>-s<seed>-<timestamp>/
    config.json     every setting, the seed, package and library versions
    metrics.csv     one row per log step
    tb/             TensorBoard events (when tensorboard is installed)
    checkpoints/    step-*/arrays.safetensors + state.json, and latest.json
    summary.json    final evaluation, timesteps, wall time, steps per second
"""

from __future__ import annotations

import platform
import re
import time
from pathlib import Path
from typing import Any

from rlcanon.core.checkpoint import atomic_write_json, read_json
from rlcanon.errors import CheckpointError


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
    if not isinstance(record, dict) or "algo" not in record or "config" not in record:
        raise CheckpointError(f"{run_dir / 'config.json'} is not an rlcanon run config")
    return record


def write_summary(run_dir: Path, summary: dict[str, Any]) -> None:
    atomic_write_json(run_dir / "summary.json", summary)
