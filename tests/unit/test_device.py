"""The torch device setting: validation, the 'auto' rule, and runs that move between devices.

The CUDA tests run only where a GPU is visible; on CPU-only machines the same code path is checked
with device='cpu'."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rlcanon.algos.dqn import DQNAgent, DQNConfig
from rlcanon.algos.dqn import train as train_dqn
from rlcanon.algos.ppo import PPOConfig
from rlcanon.algos.ppo import train as train_ppo
from rlcanon.core.device import resolve_device
from rlcanon.core.seeding import seed_everything
from rlcanon.errors import ConfigError
from rlcanon.runs import evaluate_run

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="no CUDA GPU visible")


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "CPU", ""])
def test_malformed_device_names_are_rejected_with_the_choices(name):
    with pytest.raises(ConfigError, match="'auto', 'cpu', 'cuda' or 'cuda:N'"):
        DQNConfig(device=name)


def test_auto_keeps_mlps_on_the_cpu_and_sends_pixels_to_a_gpu_only_when_there_is_one():
    assert resolve_device("auto", pixels=False).type == "cpu"
    assert resolve_device("auto", pixels=True).type == ("cuda" if CUDA else "cpu")
    assert resolve_device("cpu", pixels=True).type == "cpu"


@pytest.mark.skipif(CUDA, reason="checks the message on machines without CUDA")
def test_asking_for_cuda_without_a_gpu_names_the_problem_and_the_way_out():
    with pytest.raises(ConfigError, match="sees no CUDA GPU; use device='cpu' or 'auto'"):
        resolve_device("cuda", pixels=False)


def _short_dqn(device: str, **kw) -> DQNConfig:
    return DQNConfig(
        total_timesteps=600,
        learning_starts=100,
        buffer_size=1000,
        batch_size=16,
        train_freq=4,
        target_update_interval=20,
        hidden=(16,),
        eval_episodes=2,
        device=device,
        **kw,
    )


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
def test_dqn_trains_on_the_device_and_its_checkpoint_evaluates(device, tmp_path):
    res = train_dqn(_short_dqn(device, double_dqn=True, prioritized=True), run_dir=tmp_path, progress=False)
    assert np.isfinite(res.summary["eval_return_mean"])
    out = evaluate_run(tmp_path, episodes=2)
    assert out["eval_episodes"] == 2 and np.isfinite(out["eval_return_mean"])
    # a run made on either device evaluates on the CPU; a bad override is refused by name
    on_cpu = evaluate_run(tmp_path, episodes=2, device="cpu")["eval_return_mean"]
    assert on_cpu == out["eval_return_mean"] if device == "cpu" else np.isfinite(on_cpu)
    with pytest.raises(ConfigError, match="device='gpu'"):
        evaluate_run(tmp_path, episodes=1, device="gpu")


@needs_cuda
def test_dqn_updates_match_between_cpu_and_cuda():
    """Same weights, same batch: one gradient step gives the same TD errors and weights."""
    agents = []
    for device in ("cpu", "cuda"):
        agent = DQNAgent(_short_dqn(device), "CartPole-v1", seed_everything(0))
        agents.append(agent)
    agents[1].q.load_state_dict(agents[0].q.state_dict())
    rng = np.random.default_rng(0)
    obs = rng.standard_normal((16, 4)).astype(np.float32)
    acts, target = rng.integers(0, 2, 16), rng.standard_normal(16).astype(np.float32)
    tds = [a._step(*(torch.as_tensor(v, device=a.device) for v in (obs, acts, target)), None) for a in agents]
    np.testing.assert_allclose(tds[0], tds[1], rtol=1e-4, atol=1e-5)
    for p, q in zip(agents[0].q.parameters(), agents[1].q.parameters()):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().cpu().numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=needs_cuda)])
@pytest.mark.parametrize("env_id", ["CartPole-v1", "Pendulum-v1"])
def test_ppo_trains_on_the_device_and_its_checkpoint_evaluates(device, env_id, tmp_path):
    cfg = PPOConfig(
        env_id=env_id,
        total_timesteps=256,
        num_envs=2,
        num_steps=64,
        batch_size=64,
        update_epochs=2,
        hidden=(16,),
        eval_episodes=1,
        device=device,
    )
    res = train_ppo(cfg, run_dir=tmp_path, progress=False)
    assert np.isfinite(res.summary["eval_return_mean"])
    assert evaluate_run(tmp_path, episodes=1)["eval_episodes"] == 1
