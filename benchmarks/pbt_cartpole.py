"""PBT over PPO on CartPole-v1 against the same members without exploit (random search).

Both sides are the same PBT run of ``--members`` PPO members (the Zoo's CartPole preset, with its
learning-rate and clip annealing off: a member's budget is the end of the current round), the same
first hyperparameters drawn from ``learning_rate=1e-4:1e-2:log`` and ``ent_coef=0:0.05``, the same
member seeds and the same steps. PBT exploits (truncation 20%) and perturbs every ``--interval``
steps; the baseline has ``truncation_fraction=0``, so it never copies or moves anything.

Reports, per seed: the final evaluation of each run's policy (its best member, ``--eval-episodes``
deterministic episodes), the mean of the members' last-round evaluations, the copies made, and the
best member's final learning rate and entropy coefficient.

    nice -n 10 python benchmarks/pbt_cartpole.py [--seeds 1 2] [--out runs/pbt-bench]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--members", type=int, default=4)
    ap.add_argument("--steps", type=int, default=40_960, help="env steps per member")
    ap.add_argument("--interval", type=int, default=4096)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--eval-episodes", type=int, default=20)
    ap.add_argument("--out", type=Path, default=Path("runs/pbt-bench"))
    args = ap.parse_args()
    pin_threads(1)
    from rlcanon.registry import ENTRIES, make_config

    rows = []
    for seed in args.seeds:
        for name, fraction in (("pbt", 0.2), ("no exploit", 0.0)):
            cfg = make_config(
                "pbt",
                "CartPole-v1",
                seed=seed,
                population_size=args.members,
                total_timesteps=args.steps,
                interval=args.interval,
                truncation_fraction=fraction,
                workers=args.workers,
                eval_episodes=args.eval_episodes,
                member_settings=("anneal_lr=false", "anneal_clip=false", "eval_episodes=5"),
            )
            run = args.out / f"{name.replace(' ', '-')}-s{seed}"
            shutil.rmtree(run, ignore_errors=True)
            result = ENTRIES["pbt"].train(cfg, run_dir=run, progress=False)
            lineage = json.loads((run / "lineage.json").read_text())["rows"]
            last = [r for r in lineage if r["round"] == result.summary["rounds"]]
            best = result.summary["best_hyperparameters"]
            rows.append(
                {
                    "seed": seed,
                    "method": name,
                    "eval (best member)": result.summary["eval_return_mean"],
                    "members' mean": sum(r["performance"] for r in last) / len(last),
                    "copies": sum(r["copied_from"] is not None for r in lineage),
                    "best lr": best["learning_rate"],
                    "best ent_coef": best["ent_coef"],
                    "wall s": result.summary["wall_time_s"],
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    cols = [
        "seed",
        "method",
        "eval (best member)",
        "members' mean",
        "copies",
        "best lr",
        "best ent_coef",
        "wall s",
    ]
    print(
        f"{args.members} PPO members x {args.steps} steps, interval {args.interval}, "
        f"eval {args.eval_episodes} episodes"
    )
    print(table(rows, cols))


if __name__ == "__main__":
    main()
