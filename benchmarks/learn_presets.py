"""Train the tuned presets of common envs on a few seeds and report the final evaluation: the check
that a user who names an env gets a run that learns it.

    python benchmarks/learn_presets.py --runs ppo:Pendulum-v1 dqn:LunarLander-v3 --seeds 1 2 3

Each run uses the preset (``rlcanon train ALGO --env-id ID``) with nothing changed but the seed; the
result is the mean return of 20 deterministic evaluation episodes at the end of the budget.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--runs", nargs="+", default=["ppo:Pendulum-v1", "ppo:LunarLander-v3", "dqn:LunarLander-v3"]
    )
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--workdir", default="/tmp/rlcanon-presets")
    ap.add_argument("--json", help="also write the rows to this file")
    args = ap.parse_args()
    pin_threads(1)
    import rlcanon

    rows = []
    for spec in args.runs:
        algo, env_id = spec.split(":")
        for seed in args.seeds:
            t0 = time.perf_counter()
            run = Path(args.workdir) / f"{algo}-{env_id}-s{seed}"
            res = rlcanon.train(
                algo, env_id, seed=seed, eval_episodes=20, run_dir=run, progress=False, overwrite=True
            )
            rows.append(
                {
                    "algo": algo,
                    "env": env_id,
                    "seed": seed,
                    "steps": res.summary["total_timesteps"],
                    "eval_return": round(res.summary["eval_return_mean"], 1),
                    "train_s": res.summary["train_time_s"],
                    "wall_s": round(time.perf_counter() - t0, 1),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    print(table(rows, list(rows[0])))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
