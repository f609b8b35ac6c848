"""``rlcanon tabular METHOD --env-id ID ...`` and ``rlcanon tabular cliff-figure -o FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rlcanon.cli.args import add_config_flags, given


def add_parser(sub: Any) -> None:
    from rlcanon.cli.commands import add_run_flags
    from rlcanon.tabular import METHODS, TabularConfig

    p = sub.add_parser(
        "tabular",
        help="tabular RL: dynamic programming, Monte Carlo, TD control; writes a run dir",
        description="Methods: "
        + "; ".join(f"{k}: {v}" for k, v in METHODS.items())
        + ". 'cliff-figure' draws SARSA vs Q-learning on CliffWalking.",
    )
    p.add_argument("method", metavar="METHOD", help=f"one of {', '.join(METHODS)}, or cliff-figure")
    add_config_flags(p, TabularConfig, skip=("method",))
    add_run_flags(p)
    p.add_argument("-o", "--output", help="cliff-figure: output image (.png)")
    p.add_argument("--runs", type=int, default=20, help="cliff-figure: independent runs to average (default 20)")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rlcanon.cli.commands import run_training
    from rlcanon.errors import ConfigError
    from rlcanon.tabular import METHODS, TabularConfig

    flags = given(args, TabularConfig, skip=("method",))
    if args.method == "cliff-figure":
        from rlcanon.tabular.figures import plot_cliff

        if not args.output:
            raise ConfigError("cliff-figure needs -o FILE.png")
        if not 1 <= args.runs <= 10_000:
            raise ConfigError(f"--runs {args.runs} is not allowed; it must be in [1, 10000]")
        TabularConfig(**flags)  # the same checks as a run
        print(plot_cliff(Path(args.output), runs=args.runs, episodes=flags.get("episodes", 500), seed=flags.get("seed", 0)))
        return 0
    if args.resume is None and args.method not in METHODS:
        raise ConfigError(f"method={args.method!r} is not allowed; choose one of {list(METHODS)} or cliff-figure")
    if args.resume is None:
        flags["method"] = args.method
    return run_training("tabular", args, flags)
