"""The CMA-ES sample clouds on 2-D Rosenbrock over generations (the ES post's Fig. 3 idea)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rlcanon.es.optimize import minimize
from rlcanon.es.problems import rosenbrock


def plot_clouds(output: Path, seed: int = 0, panels: int = 6, strategy: str = "cma-es") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    snaps: list[tuple[int, np.ndarray, np.ndarray]] = []
    minimize(
        strategy,
        rosenbrock,
        np.array([-1.5, 2.5]),
        0.5,
        seed=seed,
        target=1e-10,
        max_evals=3000,
        on_generation=lambda es, X, f: snaps.append((es.generation, X.copy(), es.mean.copy())),
    )
    picks = np.unique(np.geomspace(1, len(snaps), panels).astype(int)) - 1
    cols = (len(picks) + 1) // 2
    fig, axes = plt.subplots(2, cols, figsize=(3.3 * cols, 6.4), sharex=True, sharey=True)
    g1, g2 = np.meshgrid(np.linspace(-2, 2, 200), np.linspace(-1, 3, 200))
    grid = np.stack([g1.ravel(), g2.ravel()], axis=1)
    levels = np.log10(rosenbrock(grid) + 1e-3).reshape(g1.shape)
    axes = np.atleast_1d(axes).ravel()
    for ax in axes[len(picks) :]:
        ax.set_visible(False)
    for ax, i in zip(axes, picks):
        gen, X, mean = snaps[i]
        ax.contour(g1, g2, levels, levels=15, cmap="Greys", linewidths=0.6)
        ax.scatter(X[:, 0], X[:, 1], s=10, color="C3", label="samples")
        ax.plot(*mean, "b+", ms=10, mew=2, label="mean")
        ax.plot(1, 1, "g*", ms=10, label="optimum")
        ax.set_title(f"generation {gen}", fontsize=9)
        ax.set_xlim(-2.2, 2.2)
        ax.set_ylim(-1, 3.5)
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(f"{strategy} on 2-D Rosenbrock: samples per generation", fontsize=10)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
