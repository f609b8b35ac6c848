"""Micro-benchmarks behind rlcanon's kernel choices, each side by side in one process, one thread.

- tanh on a 256x64 float32 batch: torch.tanh vs NumPy (rlcanon's FastTanh);
- one PPO-sized training step (actor+critic 64-64 tanh, batch 256) and one DQN-sized step
  (256-256 ReLU, batch 64): torch autograd + torch.optim.Adam vs rlcanon's NumPy/oneDNN kernels
  + lean fused Adam.

    python benchmarks/bench_ops.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import pin_threads, table


def timed(fn, n: int = 2000) -> float:
    for _ in range(50):
        fn()
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    pin_threads(1)
    import numpy as np
    import torch
    from torch import nn

    from rlcanon.core.optim import adam
    from rlcanon.nets import gemm
    from rlcanon.nets.activations import fast_tanh
    from rlcanon.nets.kernels import FlatParams, MLPKernel
    from rlcanon.nets.mlp import mlp

    rows = []
    a = torch.randn(256, 64)
    t_torch, t_np = timed(lambda: torch.tanh(a)), timed(lambda: fast_tanh(a))
    rows.append({"op": "tanh 256x64", "torch_us": t_torch, "rlcanon_us": t_np, "ratio": t_np / t_torch})

    # The DQN layer product, x @ W.T + b then ReLU (64x256 by 256x256): torch's default CPU path
    # (MKL) and NumPy's (OpenBLAS) against rlcanon's gemm.linear (oneDNN when present).
    xg, wg, bg = torch.randn(64, 256), torch.randn(256, 256), torch.randn(256)
    xn, wn, bn = xg.numpy(), wg.numpy(), bg.numpy()
    t_ours = timed(lambda: gemm.linear(xn, wn, bn, relu=True))
    t_torch = timed(lambda: torch.relu_(torch.nn.functional.linear(xg, wg, bg)))
    t_numpy = timed(lambda: np.maximum(xn @ wn.T + bn, 0.0))
    label = "oneDNN" if gemm.onednn_available() else "NumPy"
    for ref_name, t_ref in (("torch (MKL)", t_torch), ("NumPy (OpenBLAS)", t_numpy)):
        op = f"linear+ReLU 64x256x256: {ref_name} vs {label}"
        rows.append({"op": op, "torch_us": t_ref, "rlcanon_us": t_ours, "ratio": t_ours / t_ref})

    for name, sizes, act, batch in (
        ("PPO step (2 nets 64-64 tanh, B=256)", (64, 64), "tanh", 256),
        ("DQN step (256-256 relu, B=64)", (256, 256), "relu", 64),
    ):
        n_nets = 2 if act == "tanh" else 1
        torch.manual_seed(0)
        ref = [mlp(4, sizes, 2, act) for _ in range(n_nets)]
        for m in ref:  # the plain torch reference uses nn.Tanh, not FastTanh
            for i, layer in enumerate(m):
                if isinstance(layer, nn.Tanh):
                    m[i] = nn.Tanh()
        ours = [mlp(4, sizes, 2, act) for _ in range(n_nets)]
        x = torch.randn(batch, 4)
        opt = torch.optim.Adam([p for m in ref for p in m.parameters()], lr=1e-3)

        def torch_step():
            loss = sum((m(x) ** 2).mean() for m in ref)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_([p for m in ref for p in m.parameters()], 0.5)
            opt.step()

        flat = FlatParams(ours)
        kernels = [MLPKernel(m, flat) for m in ours]
        opt2 = adam([flat.param], lr=1e-3)  # what the algorithms use: the lean fused step
        xn = x.numpy()

        def kernel_step():
            for k in kernels:
                out, cache = k.forward(xn)
                k.backward(cache, (2.0 / out.size) * out)
            flat.clip_grad_norm(0.5)
            opt2.step()

        t_torch, t_k = timed(torch_step, 1000), timed(kernel_step, 1000)
        rows.append({"op": name, "torch_us": t_torch, "rlcanon_us": t_k, "ratio": t_k / t_torch})
    print(table(rows, ["op", "torch_us", "rlcanon_us", "ratio"]))  # torch_us: the reference side
    print("\n(one thread for BLAS and torch on both sides; ratio = rlcanon / torch)")
    _ = np


if __name__ == "__main__":
    main()
