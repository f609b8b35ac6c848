"""The DeepSea sweep of the Behaviour Suite (Osband et al. 2020) in miniature: bootstrapped DQN with
randomized prior functions (Osband et al. 2018) against epsilon-greedy DQN, over sizes N.

Every method trains through the public registry (``ALGOS[name].train``) with the same budget of
episodes per size, on ``rlcanon/DeepSea-v0`` with bsuite's mapping seed (42). The env is passed as
a factory whose training env records each episode's bad flag; the flags are scored with bsuite's
rule (``rlcanon.envs.deepsea``: the first logged episode with under 90% bad episodes so far, solved
if before 2^N + 100; the score is the fraction of sizes solved). Hyperparameters are bsuite's own
baselines (``bsuite/baselines/jax/{boot_dqn,dqn}/agent.py``, ``default_agent``) mapped onto our
config fields. Prints a Markdown table and writes JSON and a figure (episodes to learn against N,
beside the 2^N line; an unsolved size is drawn at the budget).

    python benchmarks/deepsea_sweep.py [--methods bootstrapped-dqn dqn] [--sizes 10 12 14 16 20]
        [--seeds 1] [--episodes 1000] [--json /tmp/deepsea.json] [--figure docs/img/deepsea.png]
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before torch is imported anywhere: one thread, as every benchmark here

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table

BSUITE_DQN = {
    # bsuite/baselines/jax/dqn/agent.py, default_agent: MLP [64, 64], Adam 1e-3, batch 32, discount
    # 0.99, replay 10000, min replay 100, an SGD step every env step, target copied every 4 SGD
    # steps, epsilon fixed at 0.05. (bsuite's loss is the squared TD error; ours is DQN's Huber loss.)
    "hidden": (64, 64),
    "learning_rate": 1e-3,
    "batch_size": 32,
    "gamma": 0.99,
    "buffer_size": 10_000,
    "learning_starts": 100,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 4,
    "tau": 1.0,
    "exploration_initial_eps": 0.05,
    "exploration_final_eps": 0.05,
}
BSUITE_BOOT_DQN = {
    # bsuite/baselines/jax/boot_dqn/agent.py, default_agent: 20 heads, each an MLP [50, 50] plus a
    # fixed prior MLP [50, 50] scaled by 5; mask probability 1 (every head sees every transition),
    # Adam 1e-3, batch 128, discount 0.99, replay 10000, min replay 128, an SGD step every env step,
    # targets copied every 4 SGD steps, no epsilon (Thompson sampling over heads, one per episode).
    "n_heads": 20,
    "prior_scale": 5.0,
    "bootstrap_prob": 1.0,
    "hidden": (50, 50),
    "learning_rate": 1e-3,
    "batch_size": 128,
    "gamma": 0.99,
    "buffer_size": 10_000,
    "learning_starts": 128,
    "train_freq": 1,
    "gradient_steps": 1,
    "target_update_interval": 4,
    "tau": 1.0,
    "exploration_initial_eps": 0.0,
    "exploration_final_eps": 0.0,
}
HYPERPARAMETERS: dict[str, dict[str, Any]] = {"bootstrapped-dqn": BSUITE_BOOT_DQN, "dqn": BSUITE_DQN}
LABELS = {"bootstrapped-dqn": "bootstrapped DQN + priors", "dqn": "epsilon-greedy DQN"}


def recording_factory(size: int) -> tuple[Any, list[bool]]:
    """An env factory for ``train(env=...)`` and the list its first env (the training env) fills
    with one bad flag per finished episode; envs built later (evaluation) record nothing."""
    import gymnasium as gym

    from rlcanon.envs.deepsea import DeepSeaEnv

    flags: list[bool] = []
    built = [0]

    class RecordBadEpisodes(gym.Wrapper):
        def step(self, action: Any) -> Any:
            obs, reward, terminated, truncated, info = self.env.step(action)
            if terminated:
                flags.append(bool(info["bad_episode"]))
            return obs, reward, terminated, truncated, info

    def make() -> gym.Env:
        built[0] += 1
        env = DeepSeaEnv(size)
        return RecordBadEpisodes(env) if built[0] == 1 else env

    return make, flags


def run_one(method: str, size: int, seed: int, episodes: int, run_root: Path) -> dict[str, Any]:
    from rlcanon.envs.deepsea import beats_dithering, episodes_to_learn
    from rlcanon.registry import ALGOS, make_config

    # The harness counts every vector-env step, the autoreset step after each episode included:
    # N + 1 steps per episode give exactly `episodes` episodes of N transitions each.
    budget = episodes * (size + 1)
    config = make_config(
        method,
        env_id="rlcanon/DeepSea-v0",
        env_kwargs={"size": size},
        seed=seed,
        total_timesteps=budget,
        eval_episodes=1,  # the env is deterministic; a greedy rollout is the greedy return
        checkpoint_interval=budget,  # one checkpoint, at the end
        **HYPERPARAMETERS[method],
    )
    factory, flags = recording_factory(size)
    t0 = time.perf_counter()
    result = ALGOS[method].train(
        config, env=factory, run_dir=run_root / f"{method}-{size}-{seed}", progress=False
    )
    wall = time.perf_counter() - t0
    if len(flags) < episodes:
        raise RuntimeError(f"{method} N={size}: {len(flags)} episodes recorded, expected {episodes}")
    flags = flags[:episodes]
    episode, solved = episodes_to_learn(flags)
    return {
        "method": method,
        "size": size,
        "seed": seed,
        "episodes": episodes,
        "env_steps": budget,
        "episodes_to_learn": episode,
        "learned": solved,
        "beats_dithering": beats_dithering(size, episode, solved),
        "good_episodes": episodes - sum(flags),
        "bad_fraction_last_100": sum(flags[-100:]) / len(flags[-100:]),
        "greedy_return": result.summary["eval_return_mean"],
        "wall_s": round(wall, 1),
        "bad_flags": "".join("1" if f else "0" for f in flags),
    }


def summarise(rows: list[dict[str, Any]], methods: list[str], sizes: list[int]) -> list[dict[str, Any]]:
    """Per method: the largest N solved by every seed, and the suite-style score (the fraction of
    (size, seed) runs that beat dithering)."""
    out = []
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        solved_sizes = [n for n in sizes if all(r["beats_dithering"] for r in mine if r["size"] == n)]
        out.append(
            {
                "method": method,
                "largest_N_solved": max(solved_sizes) if solved_sizes else None,
                "score": sum(r["beats_dithering"] for r in mine) / max(len(mine), 1),
                "runs": len(mine),
            }
        )
    return out


def plot(rows: list[dict[str, Any]], methods: list[str], sizes: list[int], episodes: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    grid = list(range(min(sizes), max(sizes) + 1))
    ax.plot(grid, [2**n for n in grid], "k--", alpha=0.4, label="$2^N$ (dithering)")
    for k, method in enumerate(methods):
        mine = [r for r in rows if r["method"] == method]
        offset = (k - (len(methods) - 1) / 2) * 0.15  # side by side where runs coincide
        for solved, marker in ((True, "o"), (False, "x")):
            pts = [r for r in mine if r["beats_dithering"] == solved]
            if pts:
                ax.scatter(
                    [r["size"] + offset for r in pts],
                    [r["episodes_to_learn"] if solved else episodes for r in pts],
                    marker=marker,
                    color=f"C{k}",
                    label=f"{LABELS[method]} ({'solved' if solved else 'unsolved, at budget'})",
                )
    ax.axhline(episodes, color="grey", lw=0.8, alpha=0.5)
    ax.set_yscale("log")
    ax.set_xlabel("DeepSea size N")
    ax.set_ylabel("episodes until < 90% bad episodes")
    ax.set_title(f"DeepSea, {episodes} episodes per size")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=list(HYPERPARAMETERS), choices=list(HYPERPARAMETERS))
    parser.add_argument("--sizes", nargs="+", type=int, default=[10, 12, 14, 16, 20])
    parser.add_argument("--seeds", nargs="+", type=int, default=[1])
    parser.add_argument("--episodes", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--figure", type=Path, default=None)
    parser.add_argument("--run-root", type=Path, default=None, help="run directories (default: a temp dir)")
    args = parser.parse_args()
    pin_threads(1)
    run_root = args.run_root or Path(tempfile.mkdtemp(prefix="deepsea-"))
    meta = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    rows: list[dict[str, Any]] = []
    for method in args.methods:
        for size in args.sizes:
            for seed in args.seeds:
                rows.append(run_one(method, size, seed, args.episodes, run_root))
                shown = {k: v for k, v in rows[-1].items() if k != "bad_flags"}
                print(json.dumps(shown), flush=True)
                if args.json:  # after every run: a long sweep keeps what it has
                    args.json.write_text(json.dumps({"args": meta, "rows": rows}))
    columns = ["method", "size", "seed", "episodes_to_learn", "learned", "beats_dithering", "good_episodes"]
    print(table(rows, [*columns, "bad_fraction_last_100", "greedy_return", "wall_s"]))
    summary = summarise(rows, args.methods, args.sizes)
    print(table(summary, ["method", "largest_N_solved", "score", "runs"]))
    if args.json:
        args.json.write_text(json.dumps({"args": meta, "rows": rows, "summary": summary}))
    if args.figure:
        plot(rows, args.methods, args.sizes, args.episodes, args.figure)


if __name__ == "__main__":
    main()
