"""Micro-benchmarks behind rlcanon's speed layers, each side by side in one process, one thread.

- the DQN layer product x @ W.T + b then ReLU (64x256 by 256x256): torch (MKL), NumPy (OpenBLAS)
  and rlcanon's gemm.linear (oneDNN where the size rule picks it);
- an MLP forward + backward through autograd: plain torch ops vs the MLP's kernel node;
- one DQN-sized and one PPO-sized training step, stated once in torch (the algorithms' own losses)
  and run three ways: plain torch (kernels and accelerators off), the MLP kernel node under
  autograd (accelerators off), and the fused loss accelerator in GradientStep.fit (the default).

    python benchmarks/bench_ops.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table


def timed(fn, n: int = 1000) -> float:
    for _ in range(50):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def modes():
    """(name, kernels on, accelerators on) of the three ways a step can run."""
    return (("plain torch", False, False), ("MLP kernel node", True, False), ("fused + fit", True, True))


def set_mode(kernels_on: bool, fused_on: bool) -> None:
    from rlcanon import fused
    from rlcanon.nets import kernels

    kernels.set_fast_path(kernels_on)
    fused.set_fused(fused_on)


def dqn_step_fn(batch: int = 64, steps: int = 16):
    import numpy as np
    import torch

    from rlcanon.algos.dqn import td_loss
    from rlcanon.core.optim import GradientStep
    from rlcanon.nets.critics import DiscreteQ

    torch.manual_seed(0)
    q = DiscreteQ((4,), 2, (256, 256))
    update = GradientStep(q.parameters(), 2.3e-3, max_grad_norm=10.0)
    rng = np.random.default_rng(0)
    obs = torch.from_numpy(rng.standard_normal((steps * batch, 4)).astype(np.float32))
    acts = torch.from_numpy(rng.integers(0, 2, steps * batch))
    y = torch.from_numpy(rng.standard_normal(steps * batch).astype(np.float32))
    batches = [
        (q, obs[k : k + batch], acts[k : k + batch], y[k : k + batch], None)
        for k in range(0, steps * batch, batch)
    ]
    return lambda: update.fit(td_loss, batches), steps


def ppo_step_fn(batch: int = 256, steps: int = 8):
    import gymnasium as gym
    import numpy as np
    import torch

    from rlcanon.algos.ppo import ppo_loss
    from rlcanon.core.optim import GradientStep
    from rlcanon.nets.actor import Actor
    from rlcanon.nets.critics import ValueCritic

    torch.manual_seed(0)
    actor = Actor(4, gym.spaces.Discrete(2), (64, 64), "tanh")
    critic = ValueCritic(4, (64, 64), "tanh")
    update = GradientStep([*actor.parameters(), *critic.parameters()], 1e-3, eps=1e-5, max_grad_norm=0.5)
    rng = np.random.default_rng(0)
    obs = torch.from_numpy(rng.standard_normal((batch, 4)).astype(np.float32))
    with torch.no_grad():
        act = actor.head.sample(actor(obs))[0]
        logp = actor.head.log_prob(actor(obs), act)
    b = {
        "obs": obs,
        "act": act,
        "logp": logp,
        "adv": torch.from_numpy(rng.standard_normal(batch).astype(np.float32)),
        "ret": torch.from_numpy(rng.standard_normal(batch).astype(np.float32)),
        "val": torch.from_numpy(rng.standard_normal(batch).astype(np.float32)),
    }
    batches = [(actor, critic, b, 0.2, 0.0, 0.5, 0.0)] * steps
    return lambda: update.fit(ppo_loss, batches), steps


def main() -> None:
    pin_threads(1)
    import numpy as np
    import torch

    from rlcanon.nets import gemm
    from rlcanon.nets.mlp import MLP

    rows = []
    xg, wg, bg = torch.randn(64, 256), torch.randn(256, 256), torch.randn(256)
    xn, wn, bn = xg.numpy(), wg.numpy(), bg.numpy()
    t_ours = timed(lambda: gemm.linear(xn, wn, bn, relu=True), 2000)
    t_torch = timed(lambda: torch.relu_(torch.nn.functional.linear(xg, wg, bg)), 2000)
    t_numpy = timed(lambda: np.maximum(xn @ wn.T + bn, 0.0), 2000)
    for ref_name, t_ref in (("torch (MKL)", t_torch), ("NumPy (OpenBLAS)", t_numpy)):
        rows.append(
            {"what": f"linear+ReLU 64x256x256 vs {ref_name}", "reference_us": t_ref, "rlcanon_us": t_ours}
        )

    for label, sizes, act, batch in (
        ("256-256 ReLU, B=64", (256, 256), "relu", 64),
        ("64-64 tanh, B=256", (64, 64), "tanh", 256),
    ):
        torch.manual_seed(0)
        net = MLP(4, sizes, 2, act)
        x = torch.randn(batch, 4)

        def fwd_bwd():
            net.flat.grad = None
            net(x).square().mean().backward()

        set_mode(False, False)
        t_ref = timed(fwd_bwd)
        set_mode(True, True)
        rows.append(
            {
                "what": f"MLP fwd+bwd {label}: torch ops vs kernel node",
                "reference_us": t_ref,
                "rlcanon_us": timed(fwd_bwd),
            }
        )

    for name, make in (
        ("DQN step (256-256, B=64)", dqn_step_fn),
        ("PPO step (2 x 64-64 tanh, B=256)", ppo_step_fn),
    ):
        times = {}
        for mode, k_on, f_on in modes():
            set_mode(k_on, f_on)
            fn, steps = make()
            times[mode] = timed(fn, 200) / steps
        set_mode(True, True)
        for mode in ("MLP kernel node", "fused + fit"):
            rows.append(
                {
                    "what": f"{name}: plain torch vs {mode}",
                    "reference_us": times["plain torch"],
                    "rlcanon_us": times[mode],
                }
            )
    for r in rows:
        r["ratio"] = r["rlcanon_us"] / r["reference_us"]
    print(table(rows, ["what", "reference_us", "rlcanon_us", "ratio"]))
    print("\n(one thread for BLAS and torch on both sides; ratio = rlcanon / reference)")


if __name__ == "__main__":
    main()
