"""rlcanon CMA-ES vs pycma: evaluations to reach 1e-8, and overhead per iteration.

Both run in this process with BLAS pinned to one thread. Evaluations: sphere, ellipsoid (cond.
1e6), rotated ellipsoid and Rosenbrock in 10-D and 20-D, 15 seeds each, x0 ~ U[-4, 4]^n (the same
x0 for both), sigma0 = 2, target f <= 1e-8. pycma runs with its defaults (active CMA, its own
lazy eigendecomposition); pycma minimises, rlcanon maximises -f (one adapter below).
Overhead: seconds per ask + tell with a trivial objective, n = 10, 100, 500.
rlcanon runs at its default eigendecomposition gap (0.5 / (n (c1 + cmu)) generations, purecma's) and
at the tutorial's and pycma's 0.1 / (n (c1 + cmu)) (the gap0.1 columns).

    python benchmarks/bench_cma.py [--seeds 15]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table


def pycma_evals(f, x0, sigma0, seed, target, max_evals):
    import cma

    es = cma.CMAEvolutionStrategy(
        x0,
        sigma0,
        {
            "seed": seed + 1,
            "verbose": -9,
            "maxfevals": max_evals,
            "ftarget": target,
            "tolfun": 0,
            "tolx": 0,
            "tolfunhist": 0,
        },
    )
    while not es.stop():
        X = es.ask()
        values = f(__import__("numpy").asarray(X))
        es.tell(X, values.tolist())
        if values.min() <= target:
            return es.countevals
    return None


def ours_evals(f, x0, sigma0, seed, target, max_evals, gap=0.5):
    from rlcanon.es.optimize import minimize

    res = minimize(
        "cma-es",
        f,
        x0,
        sigma0,
        seed=seed,
        target=target,
        max_evals=max_evals,
        options={"eigen_gap_factor": gap},
    )
    return res.evaluations if res.reached_target else None


def overhead(n: int, gens: int, gap: float, repeats: int = 3) -> tuple[float, float]:
    """Seconds per ask + tell (median of ``repeats`` alternating timings of ``gens`` generations,
    after 20 untimed warm-up generations on each side)."""
    import cma
    import numpy as np

    from rlcanon.es import make

    x0 = np.ones(n)
    ours = make("cma-es", x0, 0.5, seed=1, eigen_gap_factor=gap)
    es = cma.CMAEvolutionStrategy(x0, 0.5, {"seed": 2, "verbose": -9})

    def run_ours(k: int) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            X = ours.ask()
            ours.tell(X, -(X * X).sum(axis=1))
        return (time.perf_counter() - t0) / max(k, 1)

    def run_cma(k: int) -> float:
        t0 = time.perf_counter()
        for _ in range(k):
            X = es.ask()
            es.tell(X, [float((x * x).sum()) for x in X])
        return (time.perf_counter() - t0) / max(k, 1)

    run_ours(20)
    run_cma(20)
    t_ours, t_cma = [], []
    for _ in range(repeats):
        t_ours.append(run_ours(gens))
        t_cma.append(run_cma(gens))
    return float(np.median(t_ours)), float(np.median(t_cma))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=15)
    ap.add_argument("--dims", type=int, nargs="+", default=[10, 20])
    ap.add_argument("--overhead-only", action="store_true", help="skip the evaluation-count table")
    args = ap.parse_args()
    pin_threads(1)
    import numpy as np

    from rlcanon.es.problems import PROBLEMS

    rows = []
    for name in () if args.overhead_only else ("sphere", "ellipsoid", "rotated-ellipsoid", "rosenbrock"):
        for n in args.dims:
            ours, tutorial, theirs = [], [], []
            for s in range(args.seeds):
                x0 = np.random.default_rng(1000 + s).uniform(-4, 4, n)
                ours.append(ours_evals(PROBLEMS[name], x0, 2.0, s, 1e-8, 100_000 * n))
                tutorial.append(ours_evals(PROBLEMS[name], x0, 2.0, s, 1e-8, 100_000 * n, gap=0.1))
                theirs.append(pycma_evals(PROBLEMS[name], x0, 2.0, s, 1e-8, 100_000 * n))
            med_o = float(np.median([e for e in ours if e is not None]))
            med_t = float(np.median([e for e in tutorial if e is not None]))
            med_c = float(np.median([e for e in theirs if e is not None]))
            rows.append(
                {
                    "problem": name,
                    "n": n,
                    "rlcanon_median_evals": med_o,
                    "pycma_median_evals": med_c,
                    "ratio": med_o / med_c,
                    "rlcanon_gap0.1_evals": med_t,
                    "ratio_gap0.1": med_t / med_c,
                    "rlcanon_solved": sum(e is not None for e in ours),
                    "pycma_solved": sum(e is not None for e in theirs),
                }
            )
            print(rows[-1], flush=True)
    if rows:
        print(f"\n## Evaluations to f <= 1e-8 (median of {args.seeds} seeds, ratio = rlcanon / pycma)\n")
        print(table(rows, list(rows[0])))
    orow = []
    for n, gens in ((10, 2000), (100, 500), (500, 40)):
        t_ours, t_cma = overhead(n, gens, 0.5)
        t_tut, _ = overhead(n, gens, 0.1)
        orow.append(
            {
                "n": n,
                "rlcanon_ms_per_iter": t_ours * 1e3,
                "pycma_ms_per_iter": t_cma * 1e3,
                "ratio": t_ours / t_cma,
                "rlcanon_gap0.1_ms": t_tut * 1e3,
                "ratio_gap0.1": t_tut / t_cma,
            }
        )
        print(orow[-1], flush=True)
    print("\n## Overhead per ask + tell (trivial objective, OPENBLAS_NUM_THREADS=1)\n")
    print(table(orow, list(orow[0])))


if __name__ == "__main__":
    main()
