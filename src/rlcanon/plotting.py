"""Learning-curve figures from run directories."""

from __future__ import annotations

import math
from pathlib import Path

from rlcanon.run.logger import read_metrics
from rlcanon.errors import CheckpointError, ConfigError


def plot_runs(run_dirs: list[Path], output: Path, metric: str = "charts/episodic_return") -> Path:
    """One line per run: ``metric`` against env steps, plus evaluation points where logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if output.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"output {output} must end in .png, .pdf or .svg")
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for run in run_dirs:
        if not (run / "metrics.csv").is_file():
            raise CheckpointError(f"{run} has no metrics.csv; pass run directories written by rlcanon")
        cols = read_metrics(run)
        if metric not in cols:
            raise ConfigError(f"{run}/metrics.csv has no column {metric!r}; columns: {sorted(cols)}")
        pts = [(x, y) for x, y in zip(cols["global_step"], cols[metric]) if not math.isnan(y)]
        if pts:
            line = ax.plot(*zip(*pts), label=run.name, alpha=0.85)[0]
            evals = [
                (x, y)
                for x, y in zip(cols["global_step"], cols.get("eval/return_mean", []))
                if not math.isnan(y)
            ]
            if evals and metric == "charts/episodic_return":
                ax.plot(*zip(*evals), "o", color=line.get_color(), ms=3)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
