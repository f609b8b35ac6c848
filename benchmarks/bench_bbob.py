"""rlcanon CMA-ES (IPOP and BIPOP restarts) against pycma on the COCO/BBOB noiseless suite.

Each problem of ``Suite("bbob", "", "dimensions:... instance_indices:...")`` (coco-experiment) is run
by every optimizer in turn (interleaved per problem, so machine load falls on all sides alike), each
side with its own ``Observer("bbob", ...)`` so that cocopp can post-process the runs. All sides get:

* the same x0, uniform in [-4, 4]^n from a generator seeded by (function, dimension, instance);
* sigma0 = 2, the usual choice for the BBOB domain [-5, 5]^n (Hansen, "Benchmarking a BI-population
  CMA-ES on the BBOB-2009 function testbed", GECCO 2009 workshop: x0 in [-4, 4]^n, sigma0 = 2);
* the same evaluation budget per problem, ``budget_multiplier * n`` evaluations in all, restarts
  included, enforced exactly by one wrapper around the problem;
* the same target: COCO's final target, f_opt + 1e-8 (``problem.final_target_hit``); the wrapper
  ends the run at the evaluation that hits it and records that evaluation's number;
* IPOP restarts with the population doubled (Auger & Hansen, CEC 2005) at most ``--restarts`` times,
  and BIPOP (Hansen 2009, the paper above) where rlcanon's ``minimize`` takes ``restart_scheme``.

pycma runs ``cma.fmin2`` with its default options and termination criteria (``incpopsize=2``,
``bipop=True`` for BIPOP); rlcanon runs ``rlcanon.es.optimize.minimize("cma-es", ...)``, which
minimises by telling its maximising strategy -f. BLAS and torch are pinned to one thread.

    python benchmarks/bench_bbob.py --out /tmp/bbob                 # full run, then the report
    python benchmarks/bench_bbob.py --out /tmp/bbob --report-only   # table + cocopp figures again

Per-run records go to OUT/runs.jsonl (one JSON line per optimizer and problem); the report
(benchmarks/bbob_report.py) writes OUT/table.md and OUT/summary.json and runs cocopp into OUT/ppdata.
"""

from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads

SIGMA0 = 2.0  # Hansen 2009 (BIPOP-CMA-ES on BBOB-2009): sigma0 = 2 for x0 in [-4, 4]^n
X0_HALF_WIDTH = 4.0  # ibid.: x0 uniform in [-4, 4]^n, inside the BBOB domain [-5, 5]^n


class StopRunError(Exception):
    """Raised by the objective when the target is hit or the budget is spent: ends the run there."""


class BudgetedProblem:
    """A COCO problem with an exact evaluation budget and a record of the evaluation that hit the
    final target (what COCO's aRT counts), shared by every optimizer so that all stop alike."""

    def __init__(self, problem: Any, budget: int) -> None:
        self.problem = problem
        self.budget = budget
        self.evaluations = 0
        self.hit_at: int | None = None

    def value(self, x: Any) -> float:
        if self.evaluations >= self.budget:
            raise StopRunError
        y = float(self.problem(x))
        self.evaluations += 1
        if self.problem.final_target_hit:
            self.hit_at = self.evaluations
            raise StopRunError
        return y

    def batch(self, X: Any) -> Any:
        import numpy as np

        return np.array([self.value(x) for x in X])


class RestartCounter:
    """Counts the runs of a restarted optimizer from the strategy objects its callback sees, and
    tells COCO's observer about each restart (``Observer.signal_restart``)."""

    def __init__(self, observer: Any, problem: Any) -> None:
        self.observer, self.problem = observer, problem
        self.last_id: int | None = None
        self.runs = 0

    def see(self, es: Any) -> None:
        if id(es) != self.last_id:
            if self.last_id is not None:
                self.observer.signal_restart(self.problem)
            self.last_id = id(es)
            self.runs += 1


def rlcanon_has_restart_scheme() -> bool:
    from rlcanon.es.optimize import minimize

    return "restart_scheme" in inspect.signature(minimize).parameters


def run_rlcanon(scheme: str) -> Callable[..., None]:
    def run(obj: BudgetedProblem, x0: Any, seed: int, restarts: int, counter: RestartCounter) -> None:
        from rlcanon.es.optimize import minimize

        extra = {"restart_scheme": scheme} if rlcanon_has_restart_scheme() else {}
        minimize(
            "cma-es",
            obj.batch,
            x0,
            SIGMA0,
            seed=seed,
            target=-float("inf"),  # the wrapper stops at COCO's final target instead
            max_evals=obj.budget,
            restarts=restarts,
            on_generation=lambda es, X, values: counter.see(es),
            **extra,
        )

    return run


def run_pycma(bipop: bool) -> Callable[..., None]:
    def run(obj: BudgetedProblem, x0: Any, seed: int, restarts: int, counter: RestartCounter) -> None:
        import cma

        options = {"seed": seed, "maxfevals": obj.budget, "verbose": -9, "verb_log": 0, "verb_disp": 0}
        cma.fmin2(
            obj.value, x0, SIGMA0, options, restarts=restarts, incpopsize=2, bipop=bipop, callback=counter.see
        )

    return run


OPTIMIZERS: dict[str, Callable[..., None]] = {
    "rlcanon-ipop": run_rlcanon("ipop"),
    "pycma-ipop": run_pycma(False),
    "rlcanon-bipop": run_rlcanon("bipop"),
    "pycma-bipop": run_pycma(True),
}


def parse_range(text: str) -> list[int]:
    """'1-5' or '1,3,7' or '1-3,7' -> sorted integers."""
    out: set[int] = set()
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.update(range(int(low), int(high or low) + 1))
    return sorted(out)


def run_one(
    suite: Any, observer: Any, name: str, key: tuple[int, int, int], budget: int, restarts: int
) -> dict[str, Any]:
    """One optimizer on one (function, dimension, instance): the same x0 and seed for every side."""
    import numpy as np

    function, dim, instance = key
    problem = suite.get_problem_by_function_dimension_instance(function, dim, instance)
    problem.observe_with(observer)
    x0 = np.random.default_rng([function, dim, instance]).uniform(-X0_HALF_WIDTH, X0_HALF_WIDTH, dim)
    seed = 1 + instance + 100 * function + 10_000 * dim  # pycma takes 0 as "seed from the clock"
    obj, counter = BudgetedProblem(problem, budget), RestartCounter(observer, problem)
    start = time.perf_counter()
    with contextlib.suppress(StopRunError):  # the wrapper ends every run that hits or spends all
        OPTIMIZERS[name](obj, x0, seed, restarts, counter)
    wall = time.perf_counter() - start
    problem.free()  # the bbob observer takes one problem at a time
    return {
        "optimizer": name,
        "function": function,
        "dim": dim,
        "instance": instance,
        "evaluations": obj.evaluations,
        "hit_at": obj.hit_at,
        "runs": counter.runs,
        "wall_s": round(wall, 4),
    }


def code_version() -> dict[str, Any]:
    """The commit the run used and whether rlcanon.es had uncommitted edits (recorded with the runs)."""
    import subprocess

    root = Path(__file__).resolve().parent.parent

    def git(*a: str) -> str:
        try:
            done = subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, timeout=30)
            return done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return "unknown"

    return {"commit": git("rev-parse", "HEAD"), "es_uncommitted": git("status", "--short", "src/rlcanon/es")}


def suite_instances(suite: Any) -> list[int]:
    """The suite's instance numbers, in order: the suite option names indices into the current BBOB
    instance list (indices 6-15 are instances 71-80 in coco-experiment 2.8), not the instances."""
    numbers = set()
    for index in range(len(suite)):
        problem = suite.get_problem(index)
        numbers.add(int(problem.id_instance))
        problem.free()
    return sorted(numbers)


def benchmark(args: argparse.Namespace, names: list[str]) -> None:
    import cma  # noqa: F401  (imported here so that no run's wall time includes the import)
    import cocoex

    import rlcanon.es.optimize  # noqa: F401

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # cocoex writes its observers' folders under ./exdata
    dims, functions = args.dims, parse_range(args.functions)
    suite_options = f"dimensions:{','.join(map(str, dims))} instance_indices:{args.instances}"
    suite = cocoex.Suite("bbob", "", suite_options)
    instances = suite_instances(suite)
    observers = {n: cocoex.Observer("bbob", f"result_folder: {n} algorithm_name: {n}") for n in names}
    manifest = {
        "suite": ["bbob", "", suite_options],
        "functions": functions,
        "instances": instances,
        "budget_multiplier": args.budget_multiplier,
        "restarts": args.restarts,
        "sigma0": SIGMA0,
        "optimizers": names,
        "result_folders": {n: str(out / o.result_folder) for n, o in observers.items()},
        "rlcanon_restart_scheme": rlcanon_has_restart_scheme(),
        "rlcanon_code": code_version(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1))
    totals = dict.fromkeys(names, 0.0)
    last_instance_s = 0.0
    with open(out / "runs.jsonl", "a") as log:
        # instance-major, so that a run cut short by --deadline leaves whole instances of every pair
        for instance in instances:
            if args.deadline is not None and time.time() + last_instance_s > args.deadline:
                print(f"deadline: stopping before instance {instance}", flush=True)
                break
            started = time.time()
            for dim in dims:
                budget = int(args.budget_multiplier * dim)
                for function in functions:
                    for name in names:
                        rec = run_one(
                            suite, observers[name], name, (function, dim, instance), budget, args.restarts
                        )
                        totals[name] += rec["wall_s"]
                        log.write(json.dumps(rec) + "\n")
                        log.flush()
            last_instance_s = time.time() - started
            so_far = {k: round(v, 1) for k, v in totals.items()}
            print(f"{time.strftime('%H:%M:%S')} instance {instance} done; wall (s) {so_far}", flush=True)
    observers.clear()  # cocoex 2.8's Observer.free() raises; dropping the objects finalises the logs
    print("wall time per optimizer (s):", {k: round(v, 1) for k, v in totals.items()}, flush=True)


def deadline_epoch(hh_mm: str) -> float:
    """Today's HH:MM UTC as a Unix time."""
    import calendar

    hours, _, minutes = hh_mm.partition(":")
    today = time.gmtime()
    return float(calendar.timegm((today.tm_year, today.tm_mon, today.tm_mday, int(hours), int(minutes), 0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="/tmp/bbob", help="output folder (outside the repository)")
    ap.add_argument("--dims", type=int, nargs="+", default=[2, 5, 10, 20])
    ap.add_argument("--instances", default="1-15", help="instance indices into the suite's list, e.g. 1-15")
    ap.add_argument("--functions", default="1-24", help="function indices, e.g. 1-24 or 1,8,15")
    # 2e3 * n: what fitted the shared 2-core machine for all 15 instances (docs/es-bbob.md)
    ap.add_argument("--budget-multiplier", type=float, default=2e3, help="evaluations per dimension")
    ap.add_argument("--restarts", type=int, default=100, help="most restarts (100: the budget binds first)")
    ap.add_argument("--optimizers", nargs="+", default=None, choices=list(OPTIMIZERS))
    ap.add_argument(
        "--deadline",
        default=None,
        help="UTC HH:MM: start no instance that would end after it (by the last one's time)",
    )
    ap.add_argument("--report-only", action="store_true", help="only the table and cocopp figures")
    ap.add_argument("--img-dir", default=None, help="copy the ECDF figures here (e.g. docs/img)")
    ap.add_argument("--no-cocopp", action="store_true", help="skip cocopp post-processing")
    ap.add_argument("--merge", nargs="+", default=None, help="join these OUT folders into --out")
    args = ap.parse_args()
    args.deadline = None if args.deadline is None else deadline_epoch(args.deadline)
    pin_threads(1)  # before numpy is imported anywhere
    from bbob_report import merge, report

    out = Path(args.out).resolve()
    img_dir = None if args.img_dir is None else Path(args.img_dir).resolve()  # before the chdir below

    if args.merge:
        merge([Path(p).resolve() for p in args.merge], out)
    elif not args.report_only:
        names = args.optimizers or [
            n for n in OPTIMIZERS if "bipop" not in n or rlcanon_has_restart_scheme() or n.startswith("pycma")
        ]
        if not rlcanon_has_restart_scheme():
            print("rlcanon's minimize has no restart_scheme: rlcanon runs IPOP only", flush=True)
        benchmark(args, names)
    report(out, img_dir, run_cocopp_pp=not args.no_cocopp)


if __name__ == "__main__":
    main()
