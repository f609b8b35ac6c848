"""Subcommands: train, eval, plot, list (and the families' own commands)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rlcanon.cli.args import OneLineParser, add_config_flags, given


def build_parser() -> argparse.ArgumentParser:
    from rlcanon.registry import ALGOS

    parser = OneLineParser(
        prog="rlcanon",
        description="The reinforcement-learning canon as one library: train, evaluate, plot.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    train = sub.add_parser(
        "train",
        help="train a deep RL agent; writes runs/<name>/",
        description="Train an agent. Every config field is a flag; per-env "
        "tuned presets fill the flags you leave out.",
    )
    algos = train.add_subparsers(dest="algo", metavar="ALGO", parser_class=OneLineParser, required=True)
    for name, entry in ALGOS.items():
        p = algos.add_parser(
            name,
            help=entry.summary,
            description=f"{name}: {entry.summary}. "
            "Defaults shown are the dataclass ones; a preset for --env-id may change them.",
        )
        add_config_flags(p, entry.config)
        p.add_argument("--run-dir", help="where to write the run (default: runs/<algo>-<env>-s<seed>-<time>)")
        p.add_argument(
            "--resume",
            metavar="RUN_DIR",
            help="continue RUN_DIR from its last checkpoint (only --total-timesteps and --device may change)",
        )
        p.add_argument(
            "--progress",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="show a progress bar (default: when stderr is a terminal)",
        )
        p.set_defaults(handler=_train)

    ev = sub.add_parser("eval", help="evaluate a run's last checkpoint; prints JSON")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument("--episodes", type=int, default=None, help="episodes (default: the run's eval_episodes)")
    ev.add_argument("--seed", type=int, default=None, help="evaluation seed")
    ev.add_argument(
        "--device", default=None, help="torch device to evaluate on (default: the run's; e.g. 'cpu')"
    )
    ev.set_defaults(handler=_eval)

    pl = sub.add_parser("plot", help="learning curves of one or more runs in one PNG")
    pl.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    pl.add_argument("-o", "--output", required=True, help="output image (.png)")
    pl.add_argument("--metric", default="charts/episodic_return", help="metrics.csv column to plot")
    pl.set_defaults(handler=_plot)

    ls = sub.add_parser("list", help="what exists: algorithms, presets, and the other families")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=_list)

    for module in _family_modules():
        module.add_parser(sub)
    return parser


def _family_modules() -> list:
    import importlib

    mods = []
    for name in ("rlcanon.cli.bandit", "rlcanon.cli.tabular", "rlcanon.cli.es"):
        try:
            mods.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return mods


def run_command(args: argparse.Namespace) -> int:
    return int(args.handler(args) or 0)


def _train(args: argparse.Namespace) -> int:
    from rlcanon.registry import get_algo, make_config
    from rlcanon.runs import load_config, resume

    entry = get_algo(args.algo)
    flags = given(args, entry.config)
    if args.resume:
        from rlcanon.errors import ConfigError

        algo, _ = load_config(args.resume)
        if algo != args.algo:
            raise ConfigError(
                f"{args.resume} is a {algo!r} run; resume it with 'rlcanon train {algo} --resume'"
            )
        extra = sorted(set(flags) - {"total_timesteps", "device"})
        if extra:
            raise ConfigError(f"on --resume only --total-timesteps and --device may change; got {extra}")
        result = resume(
            args.resume, flags.get("total_timesteps"), progress=args.progress, device=flags.get("device")
        )
    else:
        env_id = flags.pop("env_id", "CartPole-v1")
        config = make_config(args.algo, env_id, **flags)
        result = entry.train(config, run_dir=args.run_dir, progress=args.progress)
    print(json.dumps({"run_dir": str(result.run_dir), **result.summary}))
    return 0


def _eval(args: argparse.Namespace) -> int:
    from rlcanon.runs import evaluate_run

    print(json.dumps(evaluate_run(args.run_dir, args.episodes, args.seed, args.device)))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from rlcanon.plotting import plot_runs

    out = plot_runs([Path(p) for p in args.run_dirs], Path(args.output), args.metric)
    print(out)
    return 0


def _list(args: argparse.Namespace) -> int:
    from rlcanon.presets import PRESETS
    from rlcanon.registry import ALGOS, listing

    info = listing()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("algorithms (rlcanon train ALGO):")
    for name, entry in ALGOS.items():
        envs = ", ".join(PRESETS.get(name, {})) or "-"
        print(f"  {name:8s} {entry.summary}\n           presets: {envs}")
    for family, names in info.items():
        if family != "algos":
            print(f"{family}: {', '.join(names)}")
    return 0
