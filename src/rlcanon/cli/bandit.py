"""``rlcanon bandit SOLVER ...`` and ``rlcanon bandit compare ... -o regret.png``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rlcanon.cli.args import (
    MAX_SEED,
    check_float_flag,
    check_int_flag,
    check_path_flag,
    float_flag,
    int_flag,
    parse_assignments,
    refuse_flags,
)


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
    group.add_argument("--arms", type=int_flag, help="K arms with means drawn uniformly from [0, 1] (seeded)")
    p.add_argument("--kind", default="bernoulli", choices=["bernoulli", "gaussian"], help="reward model")
    p.add_argument("--sigma", type=float_flag, help="--kind gaussian: reward std (default 1)")
    p.add_argument(
        "--drift", type=float_flag, default=0.0, help="random-walk std of the means per step (0: stationary)"
    )
    p.add_argument("--horizon", type=int_flag, default=10_000, help="steps T per run (default 10000)")
    p.add_argument("--runs", type=int_flag, default=200, help="independent runs R (default 200)")
    p.add_argument("--seed", type=int_flag, default=0, help="seed (default 0)")
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
    """Comma-separated finite numbers (NaN and infinity are refused here, with the flag's name)."""
    items = text.split(",")
    if any(not x.strip() for x in items):
        raise argparse.ArgumentTypeError(f"{text!r} has an empty entry; give numbers separated by commas")
    try:
        return tuple(float_flag(x) for x in items)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of finite numbers"
        ) from None


def _problem(args: argparse.Namespace) -> Any:
    import numpy as np

    from rlcanon.bandits import BanditProblem
    from rlcanon.bandits.problems import MAX_ARMS, MAX_SCALE
    from rlcanon.errors import ConfigError

    if args.means is not None:
        means = args.means
    else:
        k = 10 if args.arms is None else args.arms
        if k < 2:
            raise ConfigError(f"--arms {k} is not allowed; a bandit needs K >= 2 arms")
        check_int_flag("--arms", k, 2, MAX_ARMS)
        means = tuple(np.round(np.random.default_rng(args.seed).random(k), 4).tolist())
    sigma = 1.0
    if args.sigma is not None:
        check_float_flag("--sigma", args.sigma, 0.0, MAX_SCALE, low_open=True)
        if args.kind != "gaussian":
            refuse_flags(["--sigma"], "to --kind bernoulli (rewards are 0 or 1)")
        sigma = args.sigma
    check_float_flag("--drift", args.drift, 0.0, MAX_SCALE)
    return BanditProblem(tuple(means), kind=args.kind, sigma=sigma, drift=args.drift)


def _check_flags(args: argparse.Namespace) -> None:
    """Every flag in range, and no flag that this solver would ignore; before any work."""
    from rlcanon.bandits.simulate import MAX_HORIZON, MAX_RUNS
    from rlcanon.errors import ConfigError

    check_int_flag("--horizon", args.horizon, 1, MAX_HORIZON)
    check_int_flag("--runs", args.runs, 1, MAX_RUNS)
    check_int_flag("--seed", args.seed, 0, MAX_SEED)
    if args.solver == "compare":
        if args.param:
            refuse_flags(["--param"], "to 'compare' (it runs every solver with its defaults)")
        check_path_flag("-o/--output", args.output, image=True)
        if args.solvers is not None and not args.solvers.strip():
            raise ConfigError("--solvers '' is not allowed; give comma-separated solver names")
    else:
        compare_only = (("--solvers", args.solvers), ("-o/--output", args.output), ("--log-x", args.log_x))
        given = [flag for flag, value in compare_only if value not in (None, False)]
        refuse_flags(given, f"to one solver ({args.solver!r}), only to 'bandit compare'")


def run(args: argparse.Namespace) -> int:
    from rlcanon.bandits import SOLVERS, make_solver, simulate
    from rlcanon.bandits.simulate import check_budget
    from rlcanon.cli.commands import dumps
    from rlcanon.errors import ConfigError

    _check_flags(args)
    problem = _problem(args)
    if args.solver == "compare":
        names = list(SOLVERS)
        if args.solvers:
            names = list(dict.fromkeys(n.strip() for n in args.solvers.split(",")))  # in order, once each
        if not args.solvers:  # by default, only the solvers made for this kind of problem
            if problem.kind == "gaussian":
                names = [n for n in names if n not in BERNOULLI_ONLY]
            if problem.stationary:
                names = [n for n in names if n not in ("sw-ucb", "discounted-ucb")]
        for name in names:
            if name not in SOLVERS:
                raise ConfigError(f"--solvers: unknown bandit solver {name!r}; choose from {sorted(SOLVERS)}")
            _check_kind(name, problem)
        check_budget(args.horizon, args.runs, problem.k)
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
            print(dumps({n: r.summary() for n, r in results.items()}))
        return 0
    if args.solver not in SOLVERS:
        raise ConfigError(
            f"unknown bandit solver {args.solver!r}; choose one of {sorted(SOLVERS)} or 'compare'"
        )
    _check_kind(args.solver, problem)
    solver = make_solver(args.solver, **parse_assignments(args.param, "--param"))
    check_budget(args.horizon, args.runs, problem.k)
    result = simulate(solver, problem, args.horizon, args.runs, args.seed, progress=None, label=args.solver)
    summary = {"solver": args.solver, "means": list(problem.means), **result.summary()}
    for key, value in summary.items():
        print(f"{key:24s} {value}")
    if args.json:
        print(dumps(summary))
    return 0


BERNOULLI_ONLY = ("thompson", "bayes-ucb")


def _check_kind(name: str, problem: Any) -> None:
    from rlcanon.errors import ConfigError

    if problem.kind == "gaussian" and name in BERNOULLI_ONLY:
        raise ConfigError(f"{name} models Bernoulli rewards; use gaussian-thompson for --kind gaussian")
