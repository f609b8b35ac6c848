"""``rlcanon es STRATEGY --problem NAME --dim N`` (black-box optimisation, minimised) and
``rlcanon es STRATEGY --env-id ID`` (policy search; writes a run directory)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlcanon.cli.args import add_config_flags, given, parse_assignments


def add_parser(sub: Any) -> None:
    from rlcanon.cli.commands import add_run_flags
    from rlcanon.es import PROBLEMS, STRATEGIES
    from rlcanon.es.policy import ESPolicyConfig

    p = sub.add_parser(
        "es",
        help="evolution strategies: benchmark functions (--problem) or policy search (--env-id)",
        description="With --problem, minimise a benchmark function and print the result; with --env-id, "
        "search a policy and write a run directory. Strategies: "
        + "; ".join(f"{k}: {v[1]}" for k, v in STRATEGIES.items()),
    )
    p.add_argument("strategy", metavar="STRATEGY", help=f"one of {', '.join(STRATEGIES)}")
    p.add_argument("--problem", help=f"benchmark to minimise: {', '.join(PROBLEMS)}")
    p.add_argument("--dim", type=int, default=10, help="problem dimension (default 10)")
    p.add_argument("--x0-low", type=float, help="draw x0 uniformly from [x0-low, x0-high]^n (seeded)")
    p.add_argument("--x0-high", type=float, help="upper end of the x0 box")
    p.add_argument("--target", type=float, default=1e-8, help="stop when f <= target (default 1e-8)")
    p.add_argument("--max-evals", type=int, default=0, help="evaluation budget (default 1e4 * dim)")
    p.add_argument("--restarts", type=int, default=0, help="IPOP restarts (cma-es) after stagnation")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="strategy option for --problem runs, e.g. --option eigen_gap_factor=0.1 (repeatable)",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON line of the result")
    p.add_argument("--figure", help="with --problem rosenbrock --dim 2: draw the sample clouds to this PNG")
    add_config_flags(p, ESPolicyConfig, skip=("strategy",))
    add_run_flags(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rlcanon.cli.commands import run_training
    from rlcanon.errors import ConfigError
    from rlcanon.es import STRATEGIES
    from rlcanon.es.policy import ESPolicyConfig

    if args.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {args.strategy!r}; choose one of {sorted(STRATEGIES)}")
    flags = given(args, ESPolicyConfig, skip=("strategy",))
    if args.problem:
        return _problem(args, flags)
    flags["strategy"] = args.strategy
    return run_training("es-policy", args, flags)


def _problem(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    import numpy as np

    from rlcanon.errors import ConfigError
    from rlcanon.es.optimize import minimize
    from rlcanon.es.problems import get_problem

    f = get_problem(args.problem)
    if args.dim < 1:
        raise ConfigError(f"--dim {args.dim} is not allowed; the dimension must be >= 1")
    seed = flags.get("seed", 0)
    if args.figure:
        from rlcanon.es.plot import plot_clouds

        print(plot_clouds(Path(args.figure), seed=seed, strategy=args.strategy))
        return 0
    if (args.x0_low is None) != (args.x0_high is None):
        raise ConfigError("give both --x0-low and --x0-high, or neither")
    if args.x0_low is not None:
        if args.x0_low >= args.x0_high:
            raise ConfigError(f"--x0-low {args.x0_low} must be below --x0-high {args.x0_high}")
        x0 = np.random.default_rng(seed).uniform(args.x0_low, args.x0_high, args.dim)
    else:
        # default start away from the optimum: 1 everywhere (Rosenbrock, whose optimum is 1: 0)
        x0 = np.zeros(args.dim) if args.problem == "rosenbrock" else np.ones(args.dim)
    options = parse_assignments(args.option, "--option")
    if "popsize" in flags:
        options["popsize"] = flags["popsize"]
    res = minimize(
        args.strategy,
        f,
        x0,
        flags.get("sigma0", 0.5),
        seed=seed,
        target=args.target,
        max_evals=args.max_evals or 10_000 * args.dim,
        restarts=args.restarts,
        options=options,
    )
    out = {"strategy": args.strategy, "problem": args.problem, "dim": args.dim, **res.summary()}
    for key, value in out.items():
        print(f"{key:16s} {value}")
    if args.json:
        print(json.dumps(out))
    return 0
