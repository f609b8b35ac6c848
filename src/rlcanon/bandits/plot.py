"""The classic bandit comparison figure: cumulative regret against time for every solver."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from rlcanon.bandits.simulate import BanditResult, lai_robbins_bound
from rlcanon.errors import ConfigError


def plot_regret(results: dict[str, BanditResult], output: Path, log_x: bool = False) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if output.suffix.lower() not in (".png", ".pdf", ".svg"):
        raise ConfigError(f"output {output} must end in .png, .pdf or .svg")
    if not results:
        raise ConfigError("plot_regret needs at least one result")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    any_result = next(iter(results.values()))
    t = np.arange(1, any_result.horizon + 1)
    colors = plt.get_cmap("tab20")(np.linspace(0, 1, 20))[::2]
    for i, (name, res) in enumerate(results.items()):
        line = ax.plot(t, res.mean_regret, label=name, color=colors[i % len(colors)])[0]
        se = res.regret_at.std(axis=1, ddof=1) / math.sqrt(max(res.runs, 1)) if res.runs > 1 else 0
        ax.fill_between(
            res.grid,
            res.regret_at.mean(axis=1) - se,
            res.regret_at.mean(axis=1) + se,
            color=line.get_color(),
            alpha=0.2,
        )
        window = max(1, res.horizon // 100)
        smooth = np.convolve(res.optimal_fraction, np.ones(window) / window, mode="valid")
        ax2.plot(t[window - 1 :], smooth, color=line.get_color(), label=name)
    bound = lai_robbins_bound(any_result.problem, any_result.horizon)
    if bound is not None:
        const = bound / math.log(any_result.horizon)
        ax.plot(t, const * np.log(t), "k--", label="Lai-Robbins bound")
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel("step t")
    ax.set_ylabel("cumulative pseudo-regret (mean over runs)")
    ax2.set_xlabel("step t")
    ax2.set_ylabel("fraction of optimal pulls")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    ax2.grid(alpha=0.3)
    means = ", ".join(f"{m:g}" for m in any_result.problem.means)
    fig.suptitle(f"{any_result.problem.kind} bandit ({means}), {any_result.runs} runs", fontsize=9)
    fig.tight_layout()
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(output, dpi=120)
    finally:
        plt.close(fig)
    return output
