"""Learning-curve figures from run directories."""

from __future__ import annotations

import math
from pathlib import Path

from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.run.logger import read_metrics


def plot_runs(run_dirs: list[Path], output: Path, metric: str = "charts/episodic_return") -> Path:
    """One line per run: ``metric`` against env steps, plus evaluation points where logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if output.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"output {output} must end in .png, .pdf or .svg")
    if not run_dirs:
        raise ConfigError("plot needs at least one run directory")
    # read every run first, so that a bad one is reported before a figure is made
    curves = []
    for run in run_dirs:
        if not (run / "metrics.csv").is_file():
            raise CheckpointError(f"{run} has no metrics.csv; pass run directories written by rlcanon")
        cols = read_metrics(run)
        if "global_step" not in cols:
            raise CheckpointError(
                f"{run}/metrics.csv has no global_step column; it was not written by rlcanon"
            )
        if metric not in cols:
            raise ConfigError(f"{run}/metrics.csv has no column {metric!r}; columns: {sorted(cols)}")
        curves.append((run, cols))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    labelled = False
    for run, cols in curves:
        pts = _finite_points(cols["global_step"], cols[metric])
        if pts:
            line = ax.plot(*zip(*pts), label=run.name or str(run), alpha=0.85)[0]
            labelled = True
            evals = _finite_points(cols["global_step"], cols.get("eval/return_mean", []))
            if evals and metric == "charts/episodic_return":
                ax.plot(*zip(*evals), "o", color=line.get_color(), ms=3)
    ax.set_xlabel("environment steps")
    ax.set_ylabel(metric)
    ax.grid(alpha=0.3)
    if labelled:  # a legend without lines only warns
        ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=120)
    finally:
        plt.close(fig)
    return output


def _finite_points(xs: list[float], ys: list[float]) -> list[tuple[float, float]]:
    """The (x, y) pairs where both are finite numbers (NaN marks a row without this metric)."""
    return [(x, y) for x, y in zip(xs, ys) if math.isfinite(x) and math.isfinite(y)]
