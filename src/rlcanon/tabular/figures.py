"""The SARSA vs Q-learning figure on CliffWalking (Sutton & Barto 2018, Example 6.6)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from rlcanon.tabular.learn import TabularConfig, train

ROWS, COLS = 4, 12
START, GOAL = 36, 47


def greedy_path(q: np.ndarray, max_len: int = 100) -> list[int]:
    """States visited by the greedy policy from the start (deterministic CliffWalking moves)."""
    moves = [(-1, 0), (0, 1), (1, 0), (0, -1)]
    s, path = START, [START]
    while s != GOAL and len(path) < max_len:
        r, c = divmod(s, COLS)
        dr, dc = moves[int(np.argmax(q[s]))]
        nr, nc = min(max(r + dr, 0), ROWS - 1), min(max(c + dc, 0), COLS - 1)
        s = START if (nr == ROWS - 1 and 0 < nc < COLS - 1) else nr * COLS + nc
        path.append(s)
    return path


def cliff_comparison(runs: int = 20, episodes: int = 500, seed: int = 0) -> dict[str, dict]:
    """Online return per episode (mean over runs) and one greedy path, for SARSA and Q-learning."""
    out = {}
    for method in ("sarsa", "q-learning"):
        cfg = TabularConfig(
            method=method,
            env_id="CliffWalking-v1",
            episodes=episodes,
            alpha=0.5,
            epsilon=0.1,
            gamma=1.0,
            eval_episodes=1,
        )
        curves, paths = [], []
        for r in range(runs):
            res = train(replace(cfg, seed=seed + r), write=False)
            curves.append(res.returns)
            paths.append(greedy_path(res.q))
        reached = [p for p in paths if p[-1] == GOAL] or paths
        typical = sorted(reached, key=len)[len(reached) // 2]  # the median-length path to the goal
        out[method] = {
            "returns": np.asarray(curves).mean(axis=0),
            "path": typical,
            "paths": paths,
            "path_lengths": [len(p) - 1 for p in paths],
        }
    return out


def plot_cliff(output: Path, runs: int = 20, episodes: int = 500, seed: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = cliff_comparison(runs, episodes, seed)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    window = 10
    for method, d in data.items():
        smooth = np.convolve(d["returns"], np.ones(window) / window, mode="valid")
        ax.plot(np.arange(window, len(d["returns"]) + 1), smooth, label=method)
    ax.set_ylim(-100, 0)
    ax.set_xlabel("episode")
    ax.set_ylabel(f"sum of rewards during episode (mean of {runs} runs)")
    ax.legend()
    ax.grid(alpha=0.3)
    ax2.set_xlim(-0.5, COLS - 0.5)
    ax2.set_ylim(ROWS - 0.5, -0.5)
    for c in range(1, COLS - 1):
        ax2.add_patch(plt.Rectangle((c - 0.5, ROWS - 1.5), 1, 1, color="0.75"))
    ax2.text(5.5, ROWS - 1, "The Cliff", ha="center", va="center")
    ax2.text(0, ROWS - 1, "S", ha="center", va="center", weight="bold")
    ax2.text(COLS - 1, ROWS - 1, "G", ha="center", va="center", weight="bold")
    for (method, d), color, off in zip(data.items(), ("C0", "C1"), (-0.12, 0.12)):
        rc = [divmod(s, COLS) for s in d["path"]]
        ax2.plot(
            [c for _, c in rc],
            [r + off for r, _ in rc],
            "-o",
            color=color,
            ms=3,
            label=f"{method} greedy path ({len(d['path']) - 1} steps)",
        )
    ax2.set_xticks(range(COLS))
    ax2.set_yticks(range(ROWS))
    ax2.grid(alpha=0.3)
    ax2.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, fontsize=8)
    ax2.set_title("learned greedy paths (epsilon = 0.1 during learning)", fontsize=9)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
