"""``rlcanon es STRATEGY --problem NAME --dim N`` (black-box optimisation, minimised) and
``rlcanon es STRATEGY --env-id ID`` (policy search; writes a run directory)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rlcanon.cli.args import (
    add_config_flags,
    check_float_flag,
    check_int_flag,
    check_path_flag,
    flag_name,
    float_flag,
    given,
    given_run_flags,
    int_flag,
    parse_assignments,
    refuse_flags,
)

MAX_DIM = 1000
"""--problem dimensions (CMA-ES and xNES keep and decompose an n x n matrix every few generations)."""
MAX_EVALS = 10**9
MAX_RESTARTS = 20
"""IPOP doubles the population at every restart."""
MAX_X0 = 1e12
"""--x0-low / --x0-high stay within +-MAX_X0, so the benchmark values stay finite."""

# flags of --problem runs only (argparse dest -> flag)
PROBLEM_FLAGS = {
    "dim": "--dim",
    "x0_low": "--x0-low",
    "x0_high": "--x0-high",
    "target": "--target",
    "max_evals": "--max-evals",
    "restarts": "--restarts",
    "option": "--option",
    "figure": "--figure",
}
# ESPolicyConfig fields that a --problem run uses (the others are about policies and run directories)
PROBLEM_FIELDS = ("seed", "popsize", "sigma0", "learning_rate", "weight_decay")
OPENAI_ES_ONLY = ("learning_rate", "weight_decay")


def methods() -> dict[str, Any]:
    """The ES methods with their own config (registry entries of family 'es' other than the
    strategy-driven policy search): ``rlcanon es NAME`` trains them in the one harness."""
    from rlcanon.registry import ENTRIES

    return {k: e for k, e in ENTRIES.items() if e.family == "es" and k != "es-policy"}


def add_parser(sub: Any) -> None:
    from rlcanon.cli.args import OneLineParser
    from rlcanon.cli.commands import add_run_flags
    from rlcanon.es import STRATEGIES

    own = methods()
    p = sub.add_parser(
        "es",
        help="evolution strategies: benchmark functions (--problem), policy search (--env-id), ES methods",
        description="STRATEGY --problem NAME minimises a benchmark function and prints the result; "
        "STRATEGY --env-id ID searches a policy and writes a run directory; METHOD (novelty search, "
        "ES-RL hybrids, PBT, WANN) trains with its own flags and writes a run directory. "
        "'rlcanon es NAME --help' lists the flags of each.",
    )
    names = p.add_subparsers(
        dest="strategy", metavar="STRATEGY|METHOD", parser_class=OneLineParser, required=True
    )
    for name, (_, summary) in STRATEGIES.items():
        _add_strategy_parser(names.add_parser(name, help=summary, description=f"{name}: {summary}."))
    for name, entry in own.items():
        q = names.add_parser(name, help=entry.summary, description=f"{name}: {entry.summary}.")
        add_config_flags(q, entry.config)
        add_run_flags(q)
        q.set_defaults(handler=_method, entry_name=name)


def _add_strategy_parser(p: argparse.ArgumentParser) -> None:
    from rlcanon.cli.commands import add_run_flags
    from rlcanon.es import PROBLEMS
    from rlcanon.es.policy import ESPolicyConfig

    p.add_argument("--problem", help=f"benchmark to minimise: {', '.join(PROBLEMS)}")
    p.add_argument("--dim", type=int_flag, help=f"--problem: dimension (default 10, at most {MAX_DIM})")
    p.add_argument(
        "--x0-low", type=float_flag, help="--problem: draw x0 uniformly from [x0-low, x0-high]^n (seeded)"
    )
    p.add_argument("--x0-high", type=float_flag, help="--problem: upper end of the x0 box")
    p.add_argument("--target", type=float_flag, help="--problem: stop when f <= target (default 1e-8)")
    p.add_argument(
        "--max-evals", type=int_flag, help="--problem: evaluation budget (default, or 0: 1e4 * dim)"
    )
    p.add_argument(
        "--restarts",
        type=int_flag,
        help=f"--problem: IPOP restarts (population doubled) after the strategy stops, e.g. cma-es on its "
        f"termination criteria (default 0, at most {MAX_RESTARTS}); for BIPOP use the strategy bipop-cma-es",
    )
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


def _method(args: argparse.Namespace) -> int:
    from rlcanon.cli.commands import run_training
    from rlcanon.registry import get_entry

    return run_training(args.entry_name, args, given(args, get_entry(args.entry_name).config))


def run(args: argparse.Namespace) -> int:
    from rlcanon.cli.commands import run_training
    from rlcanon.errors import ConfigError
    from rlcanon.es import STRATEGIES
    from rlcanon.es.policy import ESPolicyConfig

    if args.strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy {args.strategy!r}; choose one of {sorted(STRATEGIES)}")
    flags = given(args, ESPolicyConfig, skip=("strategy",))
    if args.strategy != "openai-es":
        given_flags = [flag_name(k) for k in OPENAI_ES_ONLY if k in flags]
        refuse_flags(given_flags, f"to {args.strategy}, only to openai-es")
    if args.problem is not None:
        return _problem(args, flags)
    refuse_flags(
        [flag for dest, flag in PROBLEM_FLAGS.items() if getattr(args, dest) not in (None, [])],
        "to policy search (--env-id), only to --problem runs",
    )
    flags["strategy"] = args.strategy
    return run_training("es-policy", args, flags)


def _problem(args: argparse.Namespace, flags: dict[str, Any]) -> int:
    import numpy as np

    from rlcanon.cli.commands import dumps
    from rlcanon.errors import ConfigError
    from rlcanon.es.optimize import minimize
    from rlcanon.es.policy import ESPolicyConfig
    from rlcanon.es.problems import get_problem

    if "env_id" in flags:
        raise ConfigError("give --problem (a benchmark function) or --env-id (policy search), not both")
    refuse_flags(
        [flag_name(k) for k in flags if k not in PROBLEM_FIELDS] + given_run_flags(args),
        "to --problem runs, only to policy search (--env-id)",
    )
    f = get_problem(args.problem)
    # the same checks (and messages) as a policy search's config
    ESPolicyConfig(strategy=args.strategy, **{k: v for k, v in flags.items() if k in PROBLEM_FIELDS})
    dim = 10 if args.dim is None else args.dim
    if dim < 1:
        raise ConfigError(f"--dim {dim} is not allowed; the dimension must be >= 1 (and at most {MAX_DIM})")
    check_int_flag("--dim", dim, 1, MAX_DIM)
    seed = flags.get("seed", 0)
    if args.figure is not None:
        return _figure(args, flags, seed)
    if (args.x0_low is None) != (args.x0_high is None):
        raise ConfigError("give both --x0-low and --x0-high, or neither")
    if args.x0_low is not None:
        check_float_flag("--x0-low", args.x0_low, -MAX_X0, MAX_X0)
        check_float_flag("--x0-high", args.x0_high, -MAX_X0, MAX_X0)
        if args.x0_low >= args.x0_high:
            raise ConfigError(f"--x0-low {args.x0_low} must be below --x0-high {args.x0_high}")
        x0 = np.random.default_rng(seed).uniform(args.x0_low, args.x0_high, dim)
    else:
        # default start away from the optimum: 0 for Rosenbrock (optimum at 1), else 1
        x0 = np.zeros(dim) if args.problem == "rosenbrock" else np.ones(dim)
    max_evals = args.max_evals or 10_000 * dim
    check_int_flag("--max-evals", max_evals, 1, MAX_EVALS)
    restarts = 0 if args.restarts is None else args.restarts
    check_int_flag("--restarts", restarts, 0, MAX_RESTARTS)
    options = parse_assignments(args.option, "--option")
    for key, flag in (("seed", "--seed"), ("sigma0", "--sigma0"), ("x0", "--x0-low and --x0-high")):
        if key in options:
            raise ConfigError(f"--option {key}=... is not allowed; use {flag} instead")
    if "popsize" in flags:
        if "popsize" in options:
            raise ConfigError("give the population size once: --popsize or --option popsize, not both")
        options["popsize"] = flags["popsize"]
    for key in OPENAI_ES_ONLY:
        if key in flags:
            options[key] = flags[key]
    res = minimize(
        args.strategy,
        f,
        x0,
        flags.get("sigma0", 0.5),
        seed=seed,
        target=1e-8 if args.target is None else args.target,
        max_evals=max_evals,
        restarts=restarts,
        options=options,
    )
    out = {"strategy": args.strategy, "problem": args.problem, "dim": dim, **res.summary()}
    for key, value in out.items():
        if key == "stop":  # the stop reasons by name, e.g. "tolfun=1e-11"
            value = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
            value = value or "-"
        print(f"{key:16s} {value}")
    if args.json:
        print(dumps(out))
    return 0


def _figure(args: argparse.Namespace, flags: dict[str, Any], seed: int) -> int:
    """The sample-cloud figure: its problem, start and budget are fixed, so only --seed may vary."""
    from rlcanon.errors import ConfigError
    from rlcanon.es.plot import plot_clouds

    check_path_flag("--figure", args.figure, image=True)
    if args.problem != "rosenbrock" or args.dim not in (None, 2):
        raise ConfigError(
            "--figure draws 2-D Rosenbrock; use it with --problem rosenbrock (and --dim 2 or no --dim)"
        )
    problem_flags = [
        flag
        for dest, flag in PROBLEM_FLAGS.items()
        if dest not in ("dim", "figure") and getattr(args, dest) not in (None, [])
    ]
    refuse_flags(
        [flag_name(k) for k in flags if k != "seed"] + problem_flags + (["--json"] if args.json else []),
        "to --figure (its start, step size and budget are fixed)",
    )
    print(plot_clouds(Path(args.figure), seed=seed, strategy=args.strategy))
    return 0
