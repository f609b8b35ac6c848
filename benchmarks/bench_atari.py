"""rlcanon vs Stable-Baselines3: DQN with the Nature CNN on an Atari game, training throughput.

Both sides get the RL Zoo's Atari DQN settings (``hyperparams/dqn.yml``, atari: lr 1e-4, batch 32,
buffer 100k, one gradient step every 4 env steps, target refreshed every 1000 env steps =
250 gradient steps, exploration over 10% of training to eps 0.01), the same game, seed, device and
thread pinning, with two changes to fit a benchmark: ``learning_starts`` is --learning-starts
rather than 100k, and the run is --steps long. Both use the Nature preprocessing (frame skip 4
with max-pool, 84x84 grey, no-op starts, 4 stacked frames, rewards clipped to their sign).
SB3 also ends episodes on life loss and presses FIRE on reset, which only changes the game's
flow, not the cost of a step. The figure is training wall time (no evaluation) and its ratio.

    python benchmarks/bench_atari.py [--env PongNoFrameskip-v4] [--steps 30000] [--device auto]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table

ZOO_ATARI = dict(
    buffer_size=100_000,
    learning_rate=1e-4,
    batch_size=32,
    train_freq=4,
    gradient_steps=1,
    exploration_fraction=0.1,
    exploration_final_eps=0.01,
)


def run_rlcanon(env_id: str, steps: int, starts: int, device: str, seed: int, workdir: Path) -> dict:
    from rlcanon.algos.dqn import DQNConfig, train

    cfg = DQNConfig(
        env_id=env_id,
        seed=seed,
        total_timesteps=steps,
        learning_starts=starts,
        target_update_interval=250,
        clip_reward=True,
        device=device,
        eval_episodes=1,
        checkpoint_interval=steps,
        **ZOO_ATARI,
    )
    res = train(cfg, run_dir=workdir / f"rlcanon-s{seed}", progress=False)
    return {"lib": "rlcanon", "train_s": res.summary["train_time_s"], "sps": res.summary["sps"]}


def run_sb3(env_id: str, steps: int, starts: int, device: str, seed: int) -> dict:
    from stable_baselines3 import DQN
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    env = VecFrameStack(make_atari_env(env_id, n_envs=1, seed=seed), n_stack=4)
    model = DQN(
        "CnnPolicy",
        env,
        learning_starts=starts,
        target_update_interval=1000,
        optimize_memory_usage=False,
        device=device,
        seed=seed,
        verbose=0,
        **ZOO_ATARI,
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - t0
    return {"lib": "sb3", "train_s": wall, "sps": steps / wall}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", default="PongNoFrameskip-v4", help="an Atari id both libraries accept")
    ap.add_argument("--steps", type=int, default=30_000, help="env steps per run")
    ap.add_argument("--learning-starts", type=int, default=5_000, help="env steps before training")
    ap.add_argument("--device", default="auto", help="torch device for both ('auto': CUDA if present)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads for both sides")
    ap.add_argument("--workdir", default="/tmp/rlcanon-bench-atari")
    args = ap.parse_args()
    pin_threads(args.threads)
    import torch

    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    name = torch.cuda.get_device_name() if device.startswith("cuda") else "CPU"
    rows = []
    for runner in ("rlcanon", "sb3"):  # SB3 second: it gets the warmer GPU clocks, if anything
        if runner == "rlcanon":
            workdir = Path(args.workdir)
            row = run_rlcanon(args.env, args.steps, args.learning_starts, device, args.seed, workdir)
        else:
            row = run_sb3(args.env, args.steps, args.learning_starts, device, args.seed)
        print(row, flush=True)
        rows.append(row)
    ratio = rows[0]["train_s"] / rows[1]["train_s"]
    print(f"\n{args.env}, {args.steps} steps, learning_starts {args.learning_starts}, {device} ({name})")
    print(table(rows, ["lib", "train_s", "sps"]))
    print(f"\nratio rlcanon / SB3 wall time: {ratio:.2f}")


if __name__ == "__main__":
    main()
