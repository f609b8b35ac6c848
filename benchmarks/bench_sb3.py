"""rlcanon vs Stable-Baselines3 on CartPole-v1: PPO (100k steps), DQN (50k steps) and A2C (100k).

Both libraries get the RL Zoo hyperparameters, the same seeds, the same evaluation protocol
(10 deterministic episodes every --eval-every env steps, clock paused while evaluating) and the
same thread pinning. SB3 is also run once at its default thread settings, in a child process.

    python benchmarks/bench_sb3.py [--seeds 1 2 3] [--algos ppo dqn a2c] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table

ZOO_PPO = dict(n_envs=8, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0)
ZOO_DQN = dict(
    learning_rate=2.3e-3,
    batch_size=64,
    buffer_size=100_000,
    learning_starts=1000,
    gamma=0.99,
    target_update_interval=10,
    train_freq=256,
    gradient_steps=128,
    exploration_fraction=0.16,
    exploration_final_eps=0.04,
)
ZOO_A2C = dict(n_envs=8, ent_coef=0.0)  # the Zoo's CartPole-v1 A2C; SB3's defaults otherwise
BUDGET = {"ppo": 100_000, "dqn": 50_000, "a2c": 100_000}


def run_rlcanon(algo: str, seed: int, eval_every: int, workdir: Path) -> dict:
    from rlcanon.registry import ALGOS, make_config
    from rlcanon.run.logger import read_metrics

    # the Zoo's 1-step returns, target interval and constant rate, as SB3 gets them (the preset
    # changes all three; the Zoo's 10 env steps refresh the target before every 128-update phase)
    zoo_dqn = {"anneal_lr": False, "n_step": 1, "target_update_interval": 128}
    extra = zoo_dqn if algo == "dqn" else {}
    cfg = make_config(
        algo, "CartPole-v1", seed=seed, eval_interval=eval_every, total_timesteps=BUDGET[algo], **extra
    )
    run = workdir / f"rlcanon-{algo}-s{seed}"
    res = ALGOS[algo].train(cfg, run_dir=run, progress=False, overwrite=True)
    cols = read_metrics(run)
    hit = next((i for i, v in enumerate(cols["eval/return_mean"]) if not math.isnan(v) and v >= 475), None)
    return {
        "lib": "rlcanon",
        "algo": algo,
        "seed": seed,
        "train_s": res.summary["train_time_s"],
        "sps": res.summary["sps"],
        "steps_to_475": None if hit is None else int(cols["global_step"][hit]),
        "time_to_475_s": None if hit is None else cols["time/train_seconds"][hit],
        "final_return": res.summary["eval_return_mean"],
    }


def run_sb3(algo: str, seed: int, eval_every: int) -> dict:
    import gymnasium as gym
    from stable_baselines3 import A2C, DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.evaluation import evaluate_policy

    eval_env = gym.make("CartPole-v1")

    class Eval(BaseCallback):
        def __init__(self) -> None:
            super().__init__()
            self.eval_time = 0.0
            self.next_eval = eval_every
            self.hit: tuple[int, float] | None = None
            self.start = time.perf_counter()

        def _on_step(self) -> bool:
            if self.num_timesteps >= self.next_eval:
                self.next_eval += eval_every
                t0 = time.perf_counter()
                mean, _ = evaluate_policy(self.model, eval_env, n_eval_episodes=10, deterministic=True)
                self.eval_time += time.perf_counter() - t0
                if self.hit is None and mean >= 475:
                    self.hit = (self.num_timesteps, time.perf_counter() - self.start - self.eval_time)
            return True

    if algo == "ppo":
        kw = dict(ZOO_PPO)
        env = make_vec_env("CartPole-v1", n_envs=kw.pop("n_envs"), seed=seed)
        model = PPO(
            "MlpPolicy",
            env,
            learning_rate=lambda p: 1e-3 * p,
            clip_range=lambda p: 0.2 * p,
            seed=seed,
            device="cpu",
            **kw,
        )
    elif algo == "a2c":
        kw = dict(ZOO_A2C)
        env = make_vec_env("CartPole-v1", n_envs=kw.pop("n_envs"), seed=seed)
        model = A2C("MlpPolicy", env, seed=seed, device="cpu", **kw)
    else:
        env = gym.make("CartPole-v1")
        model = DQN(
            "MlpPolicy", env, policy_kwargs=dict(net_arch=[256, 256]), seed=seed, device="cpu", **ZOO_DQN
        )
    cb = Eval()
    t0 = time.perf_counter()
    cb.start = t0
    model.learn(BUDGET[algo], callback=cb)
    train_s = time.perf_counter() - t0 - cb.eval_time
    final, _ = evaluate_policy(model, eval_env, n_eval_episodes=10, deterministic=True)
    return {
        "lib": "sb3",
        "algo": algo,
        "seed": seed,
        "train_s": train_s,
        "sps": BUDGET[algo] / train_s,
        "steps_to_475": None if cb.hit is None else cb.hit[0],
        "time_to_475_s": None if cb.hit is None else cb.hit[1],
        "final_return": float(final),
    }


def floors(algo: str) -> float:
    """Compute floor: measured fwd+bwd time of the network kernels x gradient steps + batched inference."""
    import numpy as np

    from rlcanon.fused.mlp import mlp_backward, mlp_forward
    from rlcanon.nets.mlp import MLP

    def timed(fn, n=300):
        for _ in range(20):
            fn()
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        return (time.perf_counter() - t0) / n

    rng = np.random.default_rng(0)
    if algo == "ppo":
        nets = [MLP(4, (64, 64), 2, "tanh"), MLP(4, (64, 64), 1, "tanh")]
        batch, grad_steps, act_calls, act_batch = 256, (100_000 // 256) * 20, 100_000 // 8, 8
    elif algo == "a2c":  # one step on each 8 x 5 rollout
        nets = [MLP(4, (64, 64), 2, "tanh"), MLP(4, (64, 64), 1, "tanh")]
        batch, grad_steps, act_calls, act_batch = 40, 100_000 // 40, 100_000 // 8, 8
    else:
        nets = [MLP(4, (256, 256), 2, "relu")]
        batch, grad_steps, act_calls, act_batch = 64, (50_000 - 1000) // 256 * 128, 50_000, 1
    x = rng.standard_normal((batch, 4)).astype(np.float32)
    xa = rng.standard_normal((act_batch, 4)).astype(np.float32)

    def fwd_bwd():
        for net in nets:
            out, cache = mlp_forward(net, x)
            mlp_backward(net, cache, np.ones_like(out))

    extra_fwd = (lambda: mlp_forward(nets[0], x)) if algo == "dqn" else (lambda: None)  # DQN target net
    per_step = timed(fwd_bwd) + timed(extra_fwd)
    return per_step * grad_steps + timed(lambda: nets[0].infer(xa), 2000) * act_calls


def sb3_default_subprocess(algo: str, seed: int, eval_every: int) -> dict:
    """SB3 with no thread pinning at all (what a user gets), in a fresh interpreter."""
    here = str(Path(__file__).parent)
    code = (
        f"import sys, json; sys.path.insert(0, {here!r}); import bench_sb3 as b; "
        f"print(json.dumps(b.run_sb3({algo!r}, {seed}, {eval_every})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["lib"] = "sb3 (default threads)"
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--algos", nargs="+", default=["ppo", "dqn"])
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads for both libraries")
    ap.add_argument("--eval-every", type=int, default=5000)
    ap.add_argument("--workdir", default="/tmp/rlcanon-bench")
    ap.add_argument("--json", help="also write all rows to this file")
    args = ap.parse_args()
    pin_threads(args.threads)
    import numpy as np

    rows = []
    for algo in args.algos:
        for seed in args.seeds:
            for runner in (
                lambda: run_rlcanon(algo, seed, args.eval_every, Path(args.workdir)),
                lambda: run_sb3(algo, seed, args.eval_every),
            ):
                rows.append(runner())
                print(json.dumps(rows[-1]), flush=True)
        rows.append(sb3_default_subprocess(algo, args.seeds[0], args.eval_every))
        print(json.dumps(rows[-1]), flush=True)
    cols = ["lib", "algo", "seed", "train_s", "sps", "steps_to_475", "time_to_475_s", "final_return"]
    print(f"\n## Runs (threads pinned to {args.threads} for both; SB3 default row unpinned)\n")
    print(table(rows, cols))
    summary = []
    for algo in args.algos:
        ours = [r for r in rows if r["lib"] == "rlcanon" and r["algo"] == algo]
        sb3 = [r for r in rows if r["lib"] == "sb3" and r["algo"] == algo]
        sb3d = [r for r in rows if r["lib"].startswith("sb3 (") and r["algo"] == algo]

        def med(rs, key):
            vals = [r[key] for r in rs if r[key] is not None]
            return float(np.median(vals)) if vals else None

        floor = floors(algo)
        summary.append(
            {
                "algo": algo,
                "rlcanon_train_s": med(ours, "train_s"),
                "sb3_train_s": med(sb3, "train_s"),
                "ratio": med(ours, "train_s") / med(sb3, "train_s"),
                "ratio_vs_sb3_default": med(ours, "train_s") / med(sb3d, "train_s"),
                "compute_floor_s": floor,
                "rlcanon_steps_to_475": med(ours, "steps_to_475"),
                "sb3_steps_to_475": med(sb3, "steps_to_475"),
                "rlcanon_time_to_475": med(ours, "time_to_475_s"),
                "sb3_time_to_475": med(sb3, "time_to_475_s"),
                "solved_rlcanon": sum(r["steps_to_475"] is not None for r in ours),
                "solved_sb3": sum(r["steps_to_475"] is not None for r in sb3),
            }
        )
    print("\n## Medians over seeds (ratio = rlcanon / SB3 training wall time, full budget)\n")
    print(table(summary, list(summary[0])))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
