"""PBT against random search and grid search on the toy of Jaderberg et al. 2017 (Fig. 2).

Q(theta) = 1.2 - theta_0^2 - theta_1^2 is what we want; each member ascends the surrogate
Q_hat(theta | h) = 1.2 - h_0 theta_0^2 - h_1 theta_1^2 instead, by gradient steps of size
``--step-size`` from theta = (0.9, 0.9). The three methods get the same compute: ``--members``
members for ``--rounds`` rounds of ``--interval`` steps each.

* random search: h ~ U[0, 1]^2 per member, fixed;
* grid search: h on the grid {1/4, 3/4}^2 (4 members) or {1/6, 1/2, 5/6}^2 (9), fixed;
* PBT: the random-search draws to start with; each round truncation selection (bottom 20% copy
  theta and h of a top-20% member) and perturb (x0.8 or x1.2, clipped to [0, 1]).

Reports the best member's final Q (mean, min and max over seeds, and PBT's wins over random
search on the same draws) and draws the theta trajectories of one seed with PBT's h schedule.

    python benchmarks/pbt_toy.py [--seeds 20] [--plot docs/img/pbt_toy.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table
from rlcanon.es.pbt_core import Hyperparameter, Rules, initial_hyperparameters, run_rounds
from rlcanon.es.pbt_members import ToyPopulation

SPACE = (Hyperparameter("h0", 0.0, 1.0), Hyperparameter("h1", 0.0, 1.0))


def grid(members: int) -> list[dict[str, float]]:
    side = round(float(np.sqrt(members)))
    if side * side != members:
        raise SystemExit(f"--members {members}: the grid needs a square number of members (4, 9, ...)")
    points = (np.arange(side) + 0.5) / side
    return [{"h0": float(a), "h1": float(b)} for a in points for b in points]


def one_seed(seed: int, args: argparse.Namespace) -> dict[str, object]:
    hypers = initial_hyperparameters(SPACE, args.members, np.random.default_rng(seed))
    runs: dict[str, object] = {}
    for name, start, rules in (
        ("random", hypers, None),
        ("grid", grid(args.members), None),
        ("pbt", hypers, Rules(SPACE)),
    ):
        toy = ToyPopulation(args.members, step_size=args.step_size)
        history, lineage = run_rounds(
            toy, start, rules, args.rounds, args.interval, np.random.default_rng([seed, 1])
        )
        runs[name] = {
            "best": float(history[-1].max()),
            "trajectory": np.stack(toy.trajectory),
            "lineage": lineage,
        }
    return runs


def plot(runs: dict[str, object], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    g = np.linspace(-0.05, 1.0, 200)
    x, y = np.meshgrid(g, g)
    for ax, name in zip(axes[:3], ("grid", "random", "pbt"), strict=True):
        ax.contour(x, y, 1.2 - x**2 - y**2, levels=12, colors="0.85", linewidths=0.7)
        traj = runs[name]["trajectory"]
        for m in range(traj.shape[1]):
            ax.plot(traj[:, m, 0], traj[:, m, 1], lw=1.2, marker=".", ms=2.5, label=f"m{m}")
        ax.plot(0, 0, "k*", ms=10)
        ax.set(title=f"{name}: best Q = {runs[name]['best']:.3f}", xlabel="theta_0", ylabel="theta_1")
        ax.set_aspect("equal")
    axes[2].legend(fontsize=7, loc="lower right")
    rows = runs["pbt"]["lineage"]
    for m in range(args.members):
        mine = [r for r in rows if r["member"] == m]
        rounds = [r["round"] for r in mine]
        color = f"C{m}"
        axes[3].step(rounds, [r["old"]["h0"] for r in mine], where="post", color=color, label=f"m{m} h0")
        axes[3].step(
            rounds, [r["old"]["h1"] for r in mine], where="post", color=color, ls="--", label=f"m{m} h1"
        )
    axes[3].set(title="PBT: h during each round", xlabel="round", ylabel="h")
    axes[3].legend(fontsize=6, ncol=2)
    fig.suptitle(
        f"Toy of Jaderberg et al. 2017: {args.members} members, {args.rounds} rounds x "
        f"{args.interval} steps, step size {args.step_size}, seed {args.plot_seed}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--interval", type=int, default=4)
    ap.add_argument("--step-size", type=float, default=0.01)
    ap.add_argument("--plot", type=Path, default=None)
    ap.add_argument("--plot-seed", type=int, default=0)
    args = ap.parse_args()
    results = [one_seed(seed, args) for seed in range(args.seeds)]
    best = {name: np.array([r[name]["best"] for r in results]) for name in ("random", "grid", "pbt")}
    ceiling = 1.2 - 2 * (0.9 * (1 - 2 * args.step_size) ** (args.rounds * args.interval)) ** 2
    rows = [
        {
            "method": name,
            "mean best Q": float(v.mean()),
            "min": float(v.min()),
            "max": float(v.max()),
            "PBT wins": int((best["pbt"] > v).sum()) if name != "pbt" else None,
        }
        for name, v in best.items()
    ]
    print(
        f"{args.members} members x {args.rounds} rounds x {args.interval} steps, step size {args.step_size}, "
        f"seeds 0-{args.seeds - 1}; the best fixed h = (1, 1) reaches Q = {ceiling:.3f}"
    )
    print(table(rows, ["method", "mean best Q", "min", "max", "PBT wins"]))
    if args.plot is not None:
        plot(results[args.plot_seed], args, args.plot)


if __name__ == "__main__":
    main()
