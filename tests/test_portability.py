"""Checkpoints do not depend on the code path or the device: a run trained with the fast CPU path
(NumPy kernels, fused losses) evaluates and resumes on plain torch, and the reverse; normalised runs
evaluate and resume with their statistics."""

import numpy as np
import pytest
import torch

import rlcanon
from rlcanon import fused
from rlcanon.nets import kernels
from rlcanon.runs import evaluate_run, resume


def plain_torch(on: bool) -> None:
    kernels.set_fast_path(not on)
    fused.set_fused(not on)


@pytest.fixture(autouse=True)
def _restore_fast_path():
    yield
    plain_torch(False)


CASES = {
    "dqn": (
        "CartPole-v1",
        {
            "total_timesteps": 600,
            "learning_starts": 100,
            "batch_size": 16,
            "buffer_size": 1000,
            "dueling": True,
        },
    ),
    "ppo": (
        "Pendulum-v1",
        {
            "total_timesteps": 512,
            "num_envs": 2,
            "num_steps": 128,
            "batch_size": 64,
            "normalize_obs": True,
            "normalize_reward": True,
        },
    ),
    "sac": (
        "Pendulum-v1",
        {"total_timesteps": 400, "learning_starts": 100, "batch_size": 32, "hidden": (32, 32)},
    ),
}


@pytest.mark.parametrize("train_plain", [False, True])
@pytest.mark.parametrize("algo", sorted(CASES))
def test_train_on_one_path_evaluate_and_resume_on_the_other(algo, train_plain, tmp_path):
    env_id, extra = CASES[algo]
    plain_torch(train_plain)
    result = rlcanon.train(algo, env_id, run_dir=tmp_path / "r", progress=False, eval_episodes=2, **extra)
    obs = np.stack([result.agent.observation_space.sample() for _ in range(8)])
    before = rlcanon.load(tmp_path / "r").predict(obs)[0]
    plain_torch(not train_plain)
    after = rlcanon.load(tmp_path / "r").predict(obs)[0]
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-5)
    assert evaluate_run(tmp_path / "r", episodes=2)["eval_episodes"] == 2
    more = resume(tmp_path / "r", progress=False, total_timesteps=2 * extra["total_timesteps"])
    assert more.summary["total_timesteps"] >= 2 * extra["total_timesteps"]


def test_normalised_run_keeps_its_statistics_for_eval_and_load(tmp_path):
    env_id, extra = CASES["ppo"]
    result = rlcanon.train("ppo", env_id, run_dir=tmp_path / "r", progress=False, eval_episodes=2, **extra)
    policy = rlcanon.load(tmp_path / "r")
    from rlcanon.envs.normalize import normalizers

    trained = normalizers(result.agent.envs)["obs"].rms
    loaded = normalizers(policy.learner.envs)["obs"].rms
    for key in ("mean", "var"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(trained, key))
    assert loaded.count == trained.count
    raw = np.array([[1.0, 0.0, 0.5]], np.float32)
    manual = result.agent.predict(trained.normalize(raw.astype(np.float64)))[0]
    np.testing.assert_allclose(policy.predict(raw)[0], manual, rtol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible")
def test_a_cuda_run_evaluates_and_resumes_on_the_cpu(tmp_path):
    rlcanon.train(
        "dqn",
        "CartPole-v1",
        run_dir=tmp_path / "r",
        progress=False,
        eval_episodes=2,
        device="cuda",
        **CASES["dqn"][1],
    )
    assert evaluate_run(tmp_path / "r", episodes=2, device="cpu")["eval_episodes"] == 2
    assert (
        resume(tmp_path / "r", progress=False, device="cpu", total_timesteps=1200).summary["total_timesteps"]
        == 1200
    )
