"""Bandit throughput: rlcanon's vectorised simulation vs a plain per-run Python loop.

For every solver, R runs of T pulls: (a) one vectorised call over all runs, (b) the same solver
run one run at a time in a Python loop (R = 1 per call), and for UCB1, epsilon-greedy and Thompson
sampling also (c) a textbook pure-Python implementation (lists and the ``random`` module).
Ratios are pulls per second, vectorised over loop.

    python benchmarks/bench_bandits.py [--runs 1000] [--horizon 2000]
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table


def pure_python(name: str, means: list[float], horizon: int, runs: int, seed: int) -> float:
    """A per-run textbook implementation; returns the mean final regret."""
    rng = random.Random(seed)
    k, best = len(means), max(means)
    total = 0.0
    for _ in range(runs):
        counts, values = [0] * k, [0.0] * k
        alpha, beta = [1.0] * k, [1.0] * k
        regret = 0.0
        for t in range(1, horizon + 1):
            if name == "ucb1":
                if 0 in counts:
                    a = counts.index(0)
                else:
                    a = max(range(k), key=lambda i: values[i] + math.sqrt(2 * math.log(t) / counts[i]))
            elif name == "epsilon-greedy":
                a = rng.randrange(k) if rng.random() < 0.1 else max(range(k), key=values.__getitem__)
            else:
                a = max(range(k), key=lambda i: rng.betavariate(alpha[i], beta[i]))
            r = 1.0 if rng.random() < means[a] else 0.0
            counts[a] += 1
            values[a] += (r - values[a]) / counts[a]
            alpha[a] += r
            beta[a] += 1 - r
            regret += best - means[a]
        total += regret
    return total / runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--horizon", type=int, default=2000)
    ap.add_argument("--loop-runs", type=int, default=20, help="runs timed in the per-run loops")
    args = ap.parse_args()
    pin_threads(1)
    from rlcanon.bandits import SOLVERS, BanditProblem, make_solver, simulate

    means = [round(0.1 * i, 1) for i in range(1, 10)]
    problem = BanditProblem(tuple(means))
    rows = []
    for name in SOLVERS:
        t0 = time.perf_counter()
        simulate(make_solver(name), problem, args.horizon, args.runs, seed=0)
        vec_pps = args.runs * args.horizon / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        for r in range(args.loop_runs):
            simulate(make_solver(name), problem, args.horizon, 1, seed=r)
        loop_pps = args.loop_runs * args.horizon / (time.perf_counter() - t0)
        row = {
            "solver": name,
            "vectorised_pulls_per_s": vec_pps,
            "loop_pulls_per_s": loop_pps,
            "speedup_vs_loop": vec_pps / loop_pps,
        }
        if name in ("ucb1", "epsilon-greedy", "thompson"):
            t0 = time.perf_counter()
            pure_python(name, means, args.horizon, args.loop_runs, 0)
            py_pps = args.loop_runs * args.horizon / (time.perf_counter() - t0)
            row["pure_python_pulls_per_s"] = py_pps
            row["speedup_vs_pure_python"] = vec_pps / py_pps
        rows.append(row)
        print(row, flush=True)
    cols = [
        "solver",
        "vectorised_pulls_per_s",
        "loop_pulls_per_s",
        "speedup_vs_loop",
        "pure_python_pulls_per_s",
        "speedup_vs_pure_python",
    ]
    print(
        f"\n9-armed Bernoulli, T = {args.horizon}, vectorised over R = {args.runs} runs; loops over "
        f"{args.loop_runs} runs; one thread\n"
    )
    print(table(rows, cols))


if __name__ == "__main__":
    main()
