"""The NumPy training kernels give the same gradients as torch autograd, for every loss that uses them."""

import numpy as np
import pytest
import torch

from rlcanon.algos.dqn import DQNAgent, DQNConfig
from rlcanon.algos.ppo import PPOAgent, PPOConfig
from rlcanon.nets import gemm
from rlcanon.nets.kernels import FlatParams, MLPKernel
from rlcanon.nets.mlp import mlp


def _pair(agent_cls, cfg_cls, **kw):
    """Two agents with identical initial weights, one per backend; optimizer steps disabled."""
    agents = []
    for backend in ("numpy", "torch"):
        torch.manual_seed(0)
        cfg = cfg_cls(backend=backend, max_grad_norm=1e9, **kw)
        agent = agent_cls(cfg, cfg.env_id, np.random.default_rng(0))
        agent.opt.step = lambda: None  # keep the raw gradients
        agents.append(agent)
    return agents


@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.parametrize(
    ("activation", "hidden", "rows"), [("relu", 16, 7), ("tanh", 16, 7), ("relu", 256, 64), ("tanh", 256, 64)]
)
def test_mlp_kernel_matches_autograd(activation, hidden, rows, onednn):
    # 256 units x 64 rows is above gemm.ONEDNN_MIN_MACS: with onednn=True those products use it
    torch.manual_seed(0)
    net = mlp(5, (hidden, hidden), 3, activation)
    ref = mlp(5, (hidden, hidden), 3, activation)
    ref.load_state_dict(net.state_dict())
    flat = FlatParams([net])
    kernel = MLPKernel(net, flat)
    x = np.random.default_rng(0).standard_normal((rows, 5)).astype(np.float32)
    dout = np.random.default_rng(1).standard_normal((rows, 3)).astype(np.float32)
    gemm.set_onednn(onednn)
    try:
        out, cache = kernel.forward(x)
        kernel.backward(cache, dout)
    finally:
        gemm.set_onednn(True)
    y = ref(torch.from_numpy(x))
    (y * torch.from_numpy(dout)).sum().backward()
    np.testing.assert_allclose(out, y.detach().numpy(), rtol=1e-5, atol=1e-6)
    for p, q in zip(net.parameters(), ref.parameters()):
        np.testing.assert_allclose(flat.grad_of(p), q.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(
    "env_id,extra",
    [
        ("CartPole-v1", {"ent_coef": 0.01}),
        ("CartPole-v1", {"value_clip": 0.2}),
        ("Pendulum-v1", {"ent_coef": 0.01, "value_clip": 0.2}),
    ],
)
def test_ppo_kernel_gradients_match_autograd(env_id, extra):
    kernel_agent, torch_agent = _pair(
        PPOAgent, PPOConfig, env_id=env_id, num_envs=2, num_steps=32, batch_size=64, **extra
    )
    kernel_agent._collect()
    values, logp = kernel_agent._forward_all()
    rng = np.random.default_rng(3)
    n = 64
    batch = {
        "obs": kernel_agent.buf_obs[:-1].reshape(n, -1),
        "act": kernel_agent.buf_act.reshape(n, *kernel_agent.head.action_shape),
        # perturb old log-probs so some ratios fall outside the clip range
        "logp": logp + rng.normal(0, 0.3, n).astype(np.float32),
        "adv": rng.standard_normal(n).astype(np.float32),
        "ret": rng.standard_normal(n).astype(np.float32),
        "val": values[:-1].reshape(-1) + rng.normal(0, 0.3, n).astype(np.float32),
    }
    out_k = kernel_agent._kernel_step(batch, 0.2, check_kl=False)
    out_t = torch_agent._torch_step(batch, 0.2, check_kl=False)
    np.testing.assert_allclose(out_k, out_t, rtol=1e-4, atol=1e-5)
    kernel_params = [
        *kernel_agent.actor.parameters(),
        *kernel_agent.critic.parameters(),
        *kernel_agent.head.parameters(),
    ]
    torch_params = [
        *torch_agent.actor.parameters(),
        *torch_agent.critic.parameters(),
        *torch_agent.head.parameters(),
    ]
    for p, q in zip(kernel_params, torch_params):
        np.testing.assert_allclose(kernel_agent.flat.grad_of(p), q.grad.numpy(), rtol=1e-3, atol=1e-5)


@pytest.mark.parametrize(("dueling", "hidden", "batch"), [(False, 32, 16), (True, 32, 16), (False, 256, 64)])
def test_dqn_kernel_gradients_match_autograd(dueling, hidden, batch):
    # 256 units x 64 rows is above gemm.ONEDNN_MIN_MACS: that case runs the oneDNN products
    kw = {"env_id": "CartPole-v1", "dueling": dueling, "hidden": (hidden, hidden), "batch_size": batch}
    kernel_agent, torch_agent = _pair(DQNAgent, DQNConfig, **kw)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((batch, 4)).astype(np.float32)
    acts = rng.integers(0, 2, batch)
    target = rng.normal(0, 2, batch).astype(np.float32)  # some |TD error| > 1: the clipped part
    weights = rng.uniform(0.2, 1.0, batch).astype(np.float32)
    for w in (None, weights):
        tdk = kernel_agent._step(obs, acts, target, w)
        tdt = torch_agent._step(obs, acts, target, w)
        np.testing.assert_allclose(tdk, tdt, rtol=1e-5, atol=1e-5)
        for p, q in zip(kernel_agent.q.parameters(), torch_agent.q.parameters()):
            np.testing.assert_allclose(kernel_agent.flat.grad_of(p), q.grad.numpy(), rtol=1e-4, atol=1e-6)


@pytest.mark.skipif(not gemm.onednn_available(), reason="this torch build has no oneDNN linear")
def test_onednn_products_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 256), dtype=np.float32)
    w = rng.standard_normal((256, 256), dtype=np.float32) / 16
    b = rng.standard_normal(256, dtype=np.float32)
    d = rng.standard_normal((64, 256), dtype=np.float32)
    x64, w64, d64 = x.astype(np.float64), w.astype(np.float64), d.astype(np.float64)
    np.testing.assert_allclose(gemm.linear(x, w, b, relu=True), np.maximum(x64 @ w64.T + b, 0), atol=1e-4)
    np.testing.assert_allclose(gemm.linear(x, w, b, relu=False), x64 @ w64.T + b, atol=1e-4)
    np.testing.assert_allclose(gemm.grad_input(d, w), d64 @ w64, atol=1e-4)
    out = np.empty((256, 256), np.float32)
    gemm.grad_weight(d, x, out)
    np.testing.assert_allclose(out, d64.T @ x64, atol=1e-3)
