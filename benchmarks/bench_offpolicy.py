"""rlcanon vs Stable-Baselines3 on Pendulum-v1, 20k steps: SAC, TD3 and DDPG with the RL Zoo's
settings (hyperparams/{sac,td3,ddpg}.yml; SB3's defaults where the Zoo is silent).

Both libraries run in this process, one after the other, with the same seeds and threads pinned
the same way; the clock covers training only. The final return is the mean of 10 deterministic
episodes. The compute floor is rlcanon's measured time of one gradient step (on a full batch, after
warm-up) times the number of gradient steps: what the run would cost with free acting, env steps
and bookkeeping.

    python benchmarks/bench_offpolicy.py [--seeds 1 2 3] [--algos sac td3] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table

BUDGET = 20_000
ZOO_TD3 = dict(  # hyperparams/td3.yml Pendulum-v1 (ddpg.yml has the same block)
    gamma=0.98,
    buffer_size=200_000,
    learning_starts=10_000,
    gradient_steps=1,
    train_freq=1,
    learning_rate=1e-3,
)


def run_rlcanon(algo: str, seed: int, workdir: Path) -> dict:
    from rlcanon.registry import ALGOS, make_config

    cfg = make_config(algo, "Pendulum-v1", seed=seed, total_timesteps=BUDGET)
    res = ALGOS[algo].train(cfg, run_dir=workdir / f"rlcanon-{algo}-s{seed}", progress=False, overwrite=True)
    return {
        "lib": "rlcanon",
        "algo": algo,
        "seed": seed,
        "train_s": res.summary["train_time_s"],
        "sps": BUDGET / res.summary["train_time_s"],
        "final_return": res.summary["eval_return_mean"],
    }


def run_sb3(algo: str, seed: int) -> dict:
    import gymnasium as gym
    import numpy as np
    from stable_baselines3 import DDPG, SAC, TD3
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.noise import NormalActionNoise

    env = gym.make("Pendulum-v1")
    if algo == "sac":
        model = SAC("MlpPolicy", env, learning_rate=1e-3, seed=seed, device="cpu")
    else:
        noise = NormalActionNoise(np.zeros(1), 0.1 * np.ones(1))
        cls = TD3 if algo == "td3" else DDPG
        kw = dict(policy_kwargs=dict(net_arch=[400, 300]), action_noise=noise, **ZOO_TD3)
        model = cls("MlpPolicy", env, seed=seed, device="cpu", **kw)
    t0 = time.perf_counter()
    model.learn(BUDGET)
    train_s = time.perf_counter() - t0
    final, _ = evaluate_policy(model, gym.make("Pendulum-v1"), n_eval_episodes=10, deterministic=True)
    return {
        "lib": "sb3",
        "algo": algo,
        "seed": seed,
        "train_s": train_s,
        "sps": BUDGET / train_s,
        "final_return": float(final),
    }


def update_floor(algo: str) -> tuple[float, float]:
    """(seconds per rlcanon gradient step, that times the run's number of gradient steps)."""
    import numpy as np

    from rlcanon.registry import ALGOS, make_config
    from rlcanon.run.offpolicy import sample

    cfg = make_config(algo, "Pendulum-v1", learning_starts=300, total_timesteps=BUDGET)
    agent = ALGOS[algo].make(cfg, "Pendulum-v1", np.random.default_rng(0))
    while agent.global_step < 600:
        agent.iterate()
    batches = [sample(agent) for _ in range(50)]
    for b in batches[:10]:
        agent.gradient_step(b)
    t0 = time.perf_counter()
    for _ in range(4):
        for b in batches:
            agent.gradient_step(b)
            agent.updates += 1
    per_step = (time.perf_counter() - t0) / (4 * len(batches))
    agent.envs.close()
    full = make_config(algo, "Pendulum-v1")
    return per_step, per_step * (BUDGET - full.learning_starts + 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--algos", nargs="+", default=["sac", "td3"])
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads for both libraries")
    ap.add_argument("--workdir", default="/tmp/rlcanon-bench")
    ap.add_argument("--json", help="also write all rows to this file")
    args = ap.parse_args()
    pin_threads(args.threads)
    import numpy as np

    rows = []
    for algo in args.algos:
        for seed in args.seeds:
            for runner in (lambda: run_rlcanon(algo, seed, Path(args.workdir)), lambda: run_sb3(algo, seed)):
                rows.append(runner())
                print(json.dumps(rows[-1]), flush=True)
    print(f"\n## Runs (threads pinned to {args.threads} for both)\n")
    print(table(rows, ["lib", "algo", "seed", "train_s", "sps", "final_return"]))
    summary = []
    for algo in args.algos:
        ours = [r for r in rows if r["lib"] == "rlcanon" and r["algo"] == algo]
        sb3 = [r for r in rows if r["lib"] == "sb3" and r["algo"] == algo]
        per_step, floor = update_floor(algo)
        ours_s = float(np.median([r["train_s"] for r in ours]))
        sb3_s = float(np.median([r["train_s"] for r in sb3]))
        summary.append(
            {
                "algo": algo,
                "rlcanon_train_s": ours_s,
                "sb3_train_s": sb3_s,
                "ratio": ours_s / sb3_s,
                "rlcanon_sps": BUDGET / ours_s,
                "sb3_sps": BUDGET / sb3_s,
                "update_ms": 1e3 * per_step,
                "compute_floor_s": floor,
                "rlcanon_final": float(np.mean([r["final_return"] for r in ours])),
                "sb3_final": float(np.mean([r["final_return"] for r in sb3])),
            }
        )
    print("\n## Medians over seeds (ratio = rlcanon / SB3 training wall time; finals are means)\n")
    print(table(summary, list(summary[0])))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
