"""The NumPy training kernels give the same gradients as torch autograd, for every loss that uses them."""

import numpy as np
import pytest
import torch

from rlcanon.algos.dqn import DQNAgent, DQNConfig
from rlcanon.algos.ppo import PPOAgent, PPOConfig
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


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_mlp_kernel_matches_autograd(activation):
    torch.manual_seed(0)
    net = mlp(5, (16, 8), 3, activation)
    ref = mlp(5, (16, 8), 3, activation)
    ref.load_state_dict(net.state_dict())
    flat = FlatParams([net])
    kernel = MLPKernel(net, flat)
    x = np.random.default_rng(0).standard_normal((7, 5)).astype(np.float32)
    dout = np.random.default_rng(1).standard_normal((7, 3)).astype(np.float32)
    out, cache = kernel.forward(x)
    kernel.backward(cache, dout)
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


@pytest.mark.parametrize("dueling", [False, True])
def test_dqn_kernel_gradients_match_autograd(dueling):
    kw = {"env_id": "CartPole-v1", "dueling": dueling, "hidden": (32, 32)}
    kernel_agent, torch_agent = _pair(DQNAgent, DQNConfig, **kw)
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((16, 4)).astype(np.float32)
    acts = rng.integers(0, 2, 16)
    target = rng.normal(0, 2, 16).astype(np.float32)  # some |TD error| > 1: the clipped part
    weights = rng.uniform(0.2, 1.0, 16).astype(np.float32)
    for w in (None, weights):
        lk, qk, tdk = kernel_agent._step(obs, acts, target, w)
        lt, qt, tdt = torch_agent._step(obs, acts, target, w)
        assert lk == pytest.approx(lt, rel=1e-5) and qk == pytest.approx(qt, rel=1e-5)
        np.testing.assert_allclose(tdk, tdt, rtol=1e-5, atol=1e-6)
        for p, q in zip(kernel_agent.q.parameters(), torch_agent.q.parameters()):
            np.testing.assert_allclose(kernel_agent.flat.grad_of(p), q.grad.numpy(), rtol=1e-4, atol=1e-6)
