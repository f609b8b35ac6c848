"""Subcommands: train, eval, plot, list (and the families' own commands)."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path
from typing import Any

from rlcanon.cli.args import (
    MAX_SEED,
    OneLineParser,
    add_config_flags,
    check_int_flag,
    check_path_flag,
    given,
    int_flag,
)

MAX_EVAL_EPISODES = 100_000


def build_parser() -> argparse.ArgumentParser:
    from rlcanon import __version__
    from rlcanon.registry import ALGOS

    parser = OneLineParser(
        prog="rlcanon",
        description="The reinforcement-learning canon as one library: train, evaluate, plot.",
    )
    parser.add_argument("--version", action="version", version=f"rlcanon {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=OneLineParser)

    train = sub.add_parser(
        "train",
        help="train a deep RL agent; writes runs/<name>/",
        description="Train an agent. Every config field is a flag; per-env tuned presets fill the flags "
        "you leave out ('rlcanon train ALGO --env-id ID --show-config' prints the result).",
    )
    algos = train.add_subparsers(dest="algo", metavar="ALGO", parser_class=OneLineParser, required=True)
    for name, entry in ALGOS.items():
        p = algos.add_parser(
            name,
            help=entry.summary,
            description=f"{name}: {entry.summary}. Defaults shown are the dataclass ones; a preset for "
            f"--env-id may change them (presets: {', '.join(entry.presets.envs()) or 'none'}).",
        )
        add_config_flags(p, entry.config)
        add_run_flags(p, device=any(f.name == "device" for f in dataclasses.fields(entry.config)))
        p.set_defaults(handler=_train, entry_name=name)

    ev = sub.add_parser("eval", help="evaluate a run's last checkpoint; prints JSON")
    ev.add_argument("run_dir", metavar="RUN_DIR")
    ev.add_argument(
        "--episodes", type=int_flag, default=None, help="episodes (default: the run's eval_episodes)"
    )
    ev.add_argument("--seed", type=int_flag, default=None, help="evaluation seed")
    ev.add_argument(
        "--device", default=None, help="torch device to evaluate on (default: the run's; e.g. 'cpu')"
    )
    ev.set_defaults(handler=_eval)

    pl = sub.add_parser("plot", help="learning curves of one or more runs in one PNG")
    pl.add_argument("run_dirs", nargs="+", metavar="RUN_DIR")
    pl.add_argument("-o", "--output", required=True, help="output image (.png, .pdf or .svg)")
    pl.add_argument("--metric", default="charts/episodic_return", help="metrics.csv column to plot")
    pl.set_defaults(handler=_plot)

    ls = sub.add_parser("list", help="what exists: algorithms, presets, envs, wrappers, the other families")
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(handler=_list)

    for module in _family_modules():
        module.add_parser(sub)
    return parser


def add_run_flags(p: argparse.ArgumentParser, device: bool = False) -> None:
    """The flags every training command has besides its config's (``device``: the config has a
    device setting, which a resume may change)."""
    p.add_argument("--run-dir", help="where to write the run (default: runs/<algo>-<env>-s<seed>-<time>)")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue RUN_DIR from its last checkpoint; repeated flags must equal the recorded ones, "
        f"except the budget (it may grow){' and --device' if device else ''}",
    )
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --run-dir")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    p.add_argument(
        "--show-config", action="store_true", help="print the effective config (preset included) and exit"
    )


def _family_modules() -> list[Any]:
    import importlib

    names = ("rlcanon.cli.bandit", "rlcanon.cli.tabular", "rlcanon.cli.es")
    return [importlib.import_module(n) for n in names]


def run_command(args: argparse.Namespace) -> int:
    return int(args.handler(args) or 0)


def run_training(entry_name: str, args: argparse.Namespace, flags: dict[str, Any]) -> int:
    """Start, resume or describe a run of a registry entry from parsed flags (shared by every
    family's command) and print the summary as JSON."""
    from rlcanon.core.config import to_dict
    from rlcanon.errors import ConfigError
    from rlcanon.registry import get_entry, make_config
    from rlcanon.runs import load_config, resume

    entry = get_entry(entry_name)
    check_path_flag("--run-dir", args.run_dir)  # '' would silently mean the current directory
    if args.resume is not None:
        if not args.resume:
            raise ConfigError("--resume needs a run directory; got ''")
        if args.overwrite or args.run_dir:
            raise ConfigError("--resume continues RUN_DIR in place; drop --run-dir and --overwrite")
        recorded, _ = load_config(args.resume)
        if recorded.name != entry_name:
            raise ConfigError(f"{args.resume} is a {recorded.name!r} run; resume it with its own command")
        if args.show_config:
            print(json.dumps(to_dict(load_config(args.resume)[1]), indent=2))
            return 0
        result = resume(args.resume, progress=args.progress, **flags)
    else:
        env_id = flags.pop("env_id", None)
        config = make_config(entry_name, env_id, **flags)
        if args.show_config:
            print(json.dumps(to_dict(config), indent=2))
            return 0
        result = entry.train(config, run_dir=args.run_dir, overwrite=args.overwrite, progress=args.progress)
    print(dumps({"run_dir": str(result.run_dir), **result.summary}))
    return 0


def dumps(obj: Any) -> str:
    """Strict JSON on one line: a NaN or infinite number (not JSON) is written as null."""
    return json.dumps(_finite(obj), allow_nan=False)


def _finite(obj: Any) -> Any:
    import math

    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _train(args: argparse.Namespace) -> int:
    from rlcanon.registry import get_entry

    return run_training(args.entry_name, args, given(args, get_entry(args.entry_name).config))


def _eval(args: argparse.Namespace) -> int:
    import math

    from rlcanon.errors import NonFiniteError
    from rlcanon.runs import evaluate_run

    check_path_flag("RUN_DIR", args.run_dir)
    if args.episodes is not None:
        check_int_flag("--episodes", args.episodes, 1, MAX_EVAL_EPISODES)
    if args.seed is not None:
        check_int_flag("--seed", args.seed, 0, MAX_SEED)
    if args.device is not None and not args.device.strip():
        from rlcanon.errors import ConfigError

        raise ConfigError("--device '' is not allowed; choose 'auto', 'cpu', 'cuda' or 'cuda:N'")
    result = evaluate_run(args.run_dir, args.episodes, args.seed, args.device)
    for key in ("eval_return_mean", "eval_return_std"):
        if not math.isfinite(result[key]):
            raise NonFiniteError(
                f"evaluating {args.run_dir} gave {key}={result[key]}; the environment or the policy "
                "produced a non-finite reward"
            )
    print(dumps(result))
    return 0


def _plot(args: argparse.Namespace) -> int:
    from rlcanon.plotting import plot_runs

    for run in args.run_dirs:
        check_path_flag("RUN_DIR", run)
    check_path_flag("-o/--output", args.output, image=True)
    out = plot_runs([Path(p) for p in args.run_dirs], Path(args.output), args.metric)
    print(out)
    return 0


def _list(args: argparse.Namespace) -> int:
    from rlcanon.registry import ALGOS, listing

    info = listing()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print("algorithms (rlcanon train ALGO):")
    for name, entry in ALGOS.items():
        envs = ", ".join(entry.presets.envs()) or "-"
        print(f"  {name:8s} {entry.summary}\n           presets: {envs}")
    for family, names in info.items():
        if family != "algos":
            print(f"{family}: {', '.join(names)}")
    return 0
