"""CEM-RL against plain CEM (ES policy search, strategy cem) and TD3 (and ERL with --methods) on
Pendulum-v1, at the same env steps and seeds (issue #13: "CEM-RL reaches at least CEM's return on
Pendulum-v1 at the same env steps"). Each run is evaluated every ``--eval-every`` env steps (10
deterministic episodes); the last point is the harness's final evaluation. Prints a table of final
returns, writes the curves as JSON and a figure.

    nice -n 10 python3 benchmarks/cem_rl_pendulum.py --steps 20000 --seeds 1 2 3 \
        --json /tmp/cem_rl_pendulum.json --figure docs/img/cem-rl-pendulum.png
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from common import pin_threads, table

EPISODE = 200  # Pendulum-v1's time limit


def run_cem_rl(seed: int, steps: int, args: argparse.Namespace, run_dir: Path) -> Path:
    from rlcanon.es.cem_rl import CEMRLConfig
    from rlcanon.registry import ENTRIES

    cfg = CEMRLConfig(
        seed=seed,
        total_timesteps=steps,
        hidden=tuple(args.hidden),
        learning_starts=args.learning_starts,
        gradient_steps_scale=args.gradient_steps_scale,
        eval_interval=args.eval_every,
    )
    ENTRIES["cem-rl"].train(cfg, run_dir=run_dir, progress=False)
    return run_dir


def run_cem(seed: int, steps: int, args: argparse.Namespace, run_dir: Path) -> Path:
    from rlcanon.es.policy import ESPolicyConfig, search

    generations = steps // (args.cem_popsize * EPISODE)
    cfg = ESPolicyConfig(
        env_id="Pendulum-v1",
        strategy="cem",
        seed=seed,
        popsize=args.cem_popsize,
        generations=generations,
        hidden=tuple(args.cem_hidden),
        sigma0=args.cem_sigma0,
        eval_interval=max(args.eval_every // (args.cem_popsize * EPISODE), 1),
    )
    search(cfg, run_dir=run_dir, progress=False)
    return run_dir


def run_td3(seed: int, steps: int, args: argparse.Namespace, run_dir: Path) -> Path:
    from rlcanon.algos.td3 import TD3Config
    from rlcanon.registry import ENTRIES

    hidden = tuple(args.hidden)
    cfg = TD3Config(seed=seed, total_timesteps=steps, hidden=hidden, eval_interval=args.eval_every)
    ENTRIES["td3"].train(cfg, run_dir=run_dir, progress=False)
    return run_dir


def run_erl(seed: int, steps: int, args: argparse.Namespace, run_dir: Path) -> Path:
    from rlcanon.es.erl import ERLConfig
    from rlcanon.registry import ENTRIES

    cfg = ERLConfig(
        seed=seed, total_timesteps=steps, hidden=tuple(args.hidden), eval_interval=args.eval_every
    )
    ENTRIES["erl"].train(cfg, run_dir=run_dir, progress=False)
    return run_dir


METHODS = {"cem-rl": run_cem_rl, "cem": run_cem, "td3": run_td3, "erl": run_erl}


def curve(run_dir: Path) -> tuple[list[float], list[float]]:
    """(env steps, evaluation return) of every periodic evaluation, then the final one."""
    from rlcanon.run.logger import read_metrics

    cols = read_metrics(run_dir)
    points = [
        (s, r)
        for s, r in zip(cols["global_step"], cols.get("eval/return_mean", []))
        if r == r  # not NaN
    ]
    summary = json.loads((run_dir / "summary.json").read_text())
    points.append((float(summary["total_timesteps"]), float(summary["eval_return_mean"])))
    return [p[0] for p in points], [p[1] for p in points]


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 4))
    for method, runs in results.items():
        grid = np.array(runs[0]["steps"])
        values = np.array([np.interp(grid, r["steps"], r["returns"]) for r in runs])
        ax.plot(grid, values.mean(0), label=f"{method} (mean of {len(runs)} seeds)")
        ax.fill_between(grid, values.min(0), values.max(0), alpha=0.2)
    ax.set_xlabel("env steps")
    ax.set_ylabel("evaluation return (10 episodes)")
    ax.set_title("Pendulum-v1")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20_000)
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--methods", nargs="+", default=["cem-rl", "cem", "td3"], choices=list(METHODS))
    p.add_argument("--hidden", type=int, nargs="+", default=[64, 64], help="CEM-RL and TD3 networks")
    p.add_argument("--learning-starts", type=int, default=2_000, help="CEM-RL warm-up env steps")
    p.add_argument("--gradient-steps-scale", type=float, default=0.5, help="CEM-RL gradient-step scale")
    p.add_argument("--cem-popsize", type=int, default=10)
    p.add_argument("--cem-hidden", type=int, nargs="*", default=[], help="CEM policy ([]: linear)")
    p.add_argument("--cem-sigma0", type=float, default=0.1)
    p.add_argument("--eval-every", type=int, default=2_000)
    p.add_argument("--json", default="")
    p.add_argument("--figure", default="")
    args = p.parse_args()
    pin_threads(1)
    results: dict[str, list[dict]] = {m: [] for m in args.methods}
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for method in args.methods:
                t0 = time.perf_counter()
                run_dir = METHODS[method](seed, args.steps, args, Path(tmp) / f"{method}-{seed}")
                steps, returns = curve(run_dir)
                wall = time.perf_counter() - t0
                results[method].append({"seed": seed, "steps": steps, "returns": returns, "wall_s": wall})
                final = f"final {returns[-1]:.1f} at {steps[-1]:.0f} steps"
                print(f"{method} seed {seed}: {final} ({wall:.0f} s)", flush=True)
    rows = []
    for method, runs in results.items():
        finals = [r["returns"][-1] for r in runs]
        rows.append(
            {
                "method": method,
                "seeds": " ".join(str(r["seed"]) for r in runs),
                "finals": " ".join(f"{f:.0f}" for f in finals),
                "mean": statistics.fmean(finals),
                "min": min(finals),
            }
        )
    print(table(rows, ["method", "seeds", "finals", "mean", "min"]))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "results": results}, indent=1))
    if args.figure:
        plot(results, args.figure)


if __name__ == "__main__":
    main()
