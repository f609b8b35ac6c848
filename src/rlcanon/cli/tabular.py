"""``rlcanon tabular METHOD --env-id ID ...`` and ``rlcanon tabular cliff-figure -o FILE``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rlcanon.cli.args import (
    MAX_SEED,
    add_config_flags,
    check_int_flag,
    check_path_flag,
    flag_name,
    given,
    given_run_flags,
    int_flag,
    refuse_flags,
)

MAX_FIGURE_RUNS = 10_000
MIN_FIGURE_EPISODES = 10
"""The figure smooths the returns over 10 episodes."""
MAX_FIGURE_EPISODES = 100_000
MAX_FIGURE_WORK = 10_000_000
"""runs * episodes (per method)."""
# wrappers that break a tabular env: its states and actions are Discrete indices
NOT_TABULAR_WRAPPERS = {
    "observation-noise": "noise on a Discrete state index is not a state",
    "clip-action": "it needs Box actions; tabular actions are Discrete",
    "rescale-action": "it needs Box actions; tabular actions are Discrete",
}


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
    p.add_argument("--runs", type=int_flag, help="cliff-figure: independent runs to average (default 20)")
    p.set_defaults(handler=run)


DP_GAMMA = 0.99
"""The discount the DP methods use when --gamma is not given."""


def run(args: argparse.Namespace) -> int:
    from rlcanon.cli.commands import run_training
    from rlcanon.errors import ConfigError
    from rlcanon.tabular import METHODS, TabularConfig
    from rlcanon.tabular.learn import DP_METHODS

    flags = given(args, TabularConfig, skip=("method",))
    if args.method == "cliff-figure":
        from rlcanon.tabular.figures import plot_cliff

        if not args.output:
            raise ConfigError("cliff-figure needs -o FILE.png")
        check_path_flag("-o/--output", args.output, image=True)
        # the figure's env, method and step sizes are Sutton & Barto's; only these flags apply
        refuse_flags(
            [flag_name(k) for k in flags if k not in ("episodes", "seed")] + given_run_flags(args),
            "to cliff-figure (it uses Sutton & Barto's settings; only --episodes, --seed and --runs vary)",
        )
        runs = 20 if args.runs is None else args.runs
        check_int_flag("--runs", runs, 1, MAX_FIGURE_RUNS)
        TabularConfig(**flags)  # the same checks as a run
        episodes = flags.get("episodes", 500)
        check_int_flag("--episodes", episodes, MIN_FIGURE_EPISODES, MAX_FIGURE_EPISODES)
        if runs * episodes > MAX_FIGURE_WORK:
            raise ConfigError(
                f"--runs {runs} * --episodes {episodes} = {runs * episodes} episodes per method is too many; "
                f"it must be at most {MAX_FIGURE_WORK}"
            )
        seed = flags.get("seed", 0)
        if seed + runs - 1 > MAX_SEED:  # run r is seeded with seed + r
            raise ConfigError(
                f"--seed {seed} is not allowed with --runs {runs}: run r uses seed + r, "
                f"so --seed must be at most {MAX_SEED - runs + 1}"
            )
        print(plot_cliff(Path(args.output), runs=runs, episodes=episodes, seed=seed))
        return 0
    refuse_flags(
        [flag for flag, value in (("-o/--output", args.output), ("--runs", args.runs)) if value is not None],
        f"to {args.method!r}, only to cliff-figure",
    )
    for spec in flags.get("wrappers", ()):
        name = spec.partition(":")[0]
        if name in NOT_TABULAR_WRAPPERS:
            raise ConfigError(
                f"--wrappers {spec!r} is not allowed for tabular methods: {NOT_TABULAR_WRAPPERS[name]}"
            )
    if args.method not in METHODS:
        raise ConfigError(
            f"method={args.method!r} is not allowed; choose one of {list(METHODS)} or cliff-figure"
        )
    flags["method"] = args.method  # on --resume too: a run continues with its own method only
    if args.method in DP_METHODS and "gamma" not in flags and not args.resume:
        # the default gamma = 1 is Sutton & Barto's for the episodic TD examples; exact DP needs < 1
        from rlcanon.run.notes import note

        flags["gamma"] = DP_GAMMA
        note(f"{args.method} uses gamma={DP_GAMMA} unless --gamma is given (exact DP needs gamma < 1)")
    return run_training("tabular", args, flags)
