"""``rlcanon bandit SOLVER ...`` and ``rlcanon bandit compare ... -o regret.png``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlcanon.cli.args import parse_assignments


def add_parser(sub: Any) -> None:
    from rlcanon.bandits import SOLVERS

    p = sub.add_parser(
        "bandit",
        help="multi-armed bandit solvers: regret statistics and comparison figures",
        description="Run a bandit solver (or 'compare' all of them) for many independent runs at once. "
        "Solvers: " + "; ".join(f"{k}: {v[1]}" for k, v in SOLVERS.items()),
    )
    p.add_argument("solver", metavar="SOLVER", help=f"one of {', '.join(SOLVERS)}, or 'compare'")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--means", type=_floats, help="comma-separated arm means, e.g. 0.1,0.5,0.9")
    group.add_argument("--arms", type=int, help="K arms with means drawn uniformly from [0, 1] (seeded)")
    p.add_argument("--kind", default="bernoulli", choices=["bernoulli", "gaussian"], help="reward model")
    p.add_argument("--sigma", type=float, default=1.0, help="Gaussian reward std (default 1)")
    p.add_argument(
        "--drift", type=float, default=0.0, help="random-walk std of the means per step (0: stationary)"
    )
    p.add_argument("--horizon", type=int, default=10_000, help="steps T per run (default 10000)")
    p.add_argument("--runs", type=int, default=200, help="independent runs R (default 200)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="solver hyperparameter, e.g. --param epsilon=0.05 (repeatable)",
    )
    p.add_argument("--solvers", help="compare: comma-separated subset (default: all)")
    p.add_argument("-o", "--output", help="compare: output image (.png)")
    p.add_argument("--log-x", action="store_true", help="compare: log-scale time axis")
    p.add_argument("--json", action="store_true", help="end with one JSON line of the statistics")
    p.set_defaults(handler=run)


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None


def _problem(args: argparse.Namespace) -> Any:
    import numpy as np

    from rlcanon.bandits import BanditProblem
    from rlcanon.errors import ConfigError

    if args.means is not None:
        means = args.means
    else:
        k = 10 if args.arms is None else args.arms
        if k < 2:
            raise ConfigError(f"--arms {k} is not allowed; a bandit needs K >= 2 arms")
        means = tuple(np.round(np.random.default_rng(args.seed).random(k), 4).tolist())
    return BanditProblem(tuple(means), kind=args.kind, sigma=args.sigma, drift=args.drift)


def run(args: argparse.Namespace) -> int:
    from rlcanon.bandits import SOLVERS, make_solver, simulate
    from rlcanon.errors import ConfigError

    problem = _problem(args)
    if args.solver == "compare":
        names = args.solvers.split(",") if args.solvers else list(SOLVERS)
        if not args.solvers:  # by default, only the solvers made for this kind of problem
            if problem.kind == "gaussian":
                names = [n for n in names if n not in ("thompson", "bayes-ucb")]
            if problem.stationary:
                names = [n for n in names if n not in ("sw-ucb", "discounted-ucb")]
        results = {}
        for name in names:
            results[name] = simulate(
                make_solver(name), problem, args.horizon, args.runs, args.seed, progress=None, label=name
            )
            s = results[name].summary()
            print(
                f"{name:18s} regret mean {s['regret_mean']:9.1f} ± {s['regret_stderr']:6.1f}  "
                f"median {s['regret_median']:9.1f}  optimal {s['optimal_action_fraction']:.3f}"
            )
        if args.output:
            from rlcanon.bandits.plot import plot_regret

            print(plot_regret(results, Path(args.output), args.log_x))
        if args.json:
            print(json.dumps({n: r.summary() for n, r in results.items()}))
        return 0
    if args.solver not in SOLVERS:
        raise ConfigError(
            f"unknown bandit solver {args.solver!r}; choose one of {sorted(SOLVERS)} or 'compare'"
        )
    if problem.kind == "gaussian" and args.solver in ("thompson", "bayes-ucb"):
        raise ConfigError(
            f"{args.solver} models Bernoulli rewards; use gaussian-thompson for --kind gaussian"
        )
    solver = make_solver(args.solver, **parse_assignments(args.param, "--param"))
    result = simulate(solver, problem, args.horizon, args.runs, args.seed, progress=None, label=args.solver)
    summary = {"solver": args.solver, "means": list(problem.means), **result.summary()}
    for key, value in summary.items():
        print(f"{key:24s} {value}")
    if args.json:
        print(json.dumps(summary))
    return 0
