"""OpenAI-ES policy search on CartPole-v1: wall time per generation on 1 and 2 workers, for the
process-pool and Ray backends, and a check that every backend gives the same fitness curve.

    python benchmarks/bench_es_workers.py [--generations 12] [--popsize 40]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--generations", type=int, default=12)
    ap.add_argument("--popsize", type=int, default=40)
    args = ap.parse_args()
    pin_threads(1)
    from rlcanon.es.policy import ESPolicyConfig, search

    rows, curves = [], {}
    runs = [("local", 1), ("process", 1), ("process", 2), ("ray", 1), ("ray", 2)]
    with tempfile.TemporaryDirectory() as tmp:
        if any(b == "ray" for b, _ in runs):  # start Ray before timing anything
            import ray

            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        for backend, workers in runs:
            cfg = ESPolicyConfig(
                generations=args.generations,
                popsize=args.popsize,
                backend=backend,
                workers=workers,
                eval_interval=10**6,
                seed=0,
            )
            t0 = time.perf_counter()
            res = search(cfg, Path(tmp) / f"{backend}{workers}", progress=False)
            wall = time.perf_counter() - t0
            curves[(backend, workers)] = res.curve
            rows.append(
                {
                    "backend": backend,
                    "workers": workers,
                    "total_s": wall,
                    "train_s": res.summary["wall_time_s"],
                    "s_per_generation": res.summary["wall_time_s"] / args.generations,
                    "env_steps_per_s": res.summary["sps"],
                    "final_fitness": res.curve[-1],
                }
            )
            print(rows[-1], flush=True)
    for backend in ("process", "ray"):
        one = next(r for r in rows if r["backend"] == backend and r["workers"] == 1)
        for r in rows:
            if r["backend"] == backend:
                r["speedup_vs_1_worker"] = one["train_s"] / r["train_s"]
    same = all(c == curves[("local", 1)] for c in curves.values())
    print(
        f"\nOpenAI-ES, CartPole-v1, popsize {args.popsize}, {args.generations} generations; "
        f"identical fitness curves on every backend: {same}\n"
    )
    print(
        table(
            rows,
            [
                "backend",
                "workers",
                "train_s",
                "s_per_generation",
                "env_steps_per_s",
                "speedup_vs_1_worker",
                "final_fitness",
                "total_s",
            ],
        )
    )


if __name__ == "__main__":
    main()
