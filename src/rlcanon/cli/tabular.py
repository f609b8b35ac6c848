"""``rlcanon tabular METHOD --env-id ID ...`` and ``rlcanon tabular cliff-figure -o FILE``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rlcanon.cli.args import add_config_flags, given


def add_parser(sub: Any) -> None:
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
    p.add_argument("--run-dir", help="where to write the run (default: runs/<method>-<env>-s<seed>-<time>)")
    p.add_argument("-o", "--output", help="cliff-figure: output image (.png)")
    p.add_argument(
        "--runs", type=int, default=20, help="cliff-figure: independent runs to average (default 20)"
    )
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from rlcanon.errors import ConfigError
    from rlcanon.tabular import TabularConfig, train

    if args.method == "cliff-figure":
        from rlcanon.tabular.figures import plot_cliff

        if not args.output:
            raise ConfigError("cliff-figure needs -o FILE.png")
        episodes = getattr(args, "episodes", 500)
        print(plot_cliff(Path(args.output), runs=args.runs, episodes=episodes, seed=getattr(args, "seed", 0)))
        return 0
    flags = given(args, TabularConfig, skip=("method",))
    cfg = TabularConfig(method=args.method, **flags)
    result = train(cfg, run_dir=args.run_dir)
    print(json.dumps({"run_dir": str(result.run_dir), **result.summary}))
    return 0
