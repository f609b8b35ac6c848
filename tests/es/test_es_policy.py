"""ES policy search: solves CartPole, identical across backends, resumes exactly."""

import json

import pytest

from rlcanon.es.policy import ESPolicyConfig, search
from rlcanon.run.logger import read_metrics
from rlcanon.runs import resume


def curve(run_dir):
    return read_metrics(run_dir)["charts/episodic_return"]


def test_openai_es_solves_cartpole(tmp_path):
    cfg = ESPolicyConfig(generations=40, eval_interval=2, target_return=490.0, seed=0)
    res = search(cfg, tmp_path / "run", progress=False)
    assert res.summary["eval_return_mean"] >= 475
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert {"eval_return_mean", "eval_return_std", "eval_episodes"} <= set(summary)


def test_same_result_on_local_and_process_backends(tmp_path):
    base = ESPolicyConfig(generations=4, popsize=16, seed=3)
    local = search(base, tmp_path / "local", progress=False)
    proc = search(
        ESPolicyConfig(**{**base.__dict__, "backend": "process", "workers": 2}),
        tmp_path / "proc",
        progress=False,
    )
    assert curve(tmp_path / "local") == curve(tmp_path / "proc")
    assert (local.agent.es.mean == proc.agent.es.mean).all()


def test_same_result_on_ray(tmp_path):
    pytest.importorskip("ray")
    base = ESPolicyConfig(generations=3, popsize=8, seed=4)
    search(base, tmp_path / "local", progress=False)
    search(
        ESPolicyConfig(**{**base.__dict__, "backend": "ray", "workers": 2}), tmp_path / "ray", progress=False
    )
    assert curve(tmp_path / "local") == curve(tmp_path / "ray")


@pytest.mark.parametrize("strategy", ["openai-es", "cma-es"])
def test_resume_continues_the_same_trajectory(strategy, tmp_path):
    full = search(
        ESPolicyConfig(strategy=strategy, generations=6, popsize=10, eval_interval=3, seed=1),
        tmp_path / "full",
        progress=False,
    )
    search(
        ESPolicyConfig(strategy=strategy, generations=3, popsize=10, eval_interval=3, seed=1),
        tmp_path / "part",
        progress=False,
    )
    resumed = resume(tmp_path / "part", generations=6, progress=False)  # a budget may grow
    assert curve(tmp_path / "part") == curve(tmp_path / "full")
    assert (resumed.agent.es.mean == full.agent.es.mean).all()
    assert resumed.summary["generations"] == 6


@pytest.mark.parametrize("env_id,hidden", [("CartPole-v1", ()), ("Pendulum-v1", (8,))])
def test_torch_export_matches_the_numpy_policy(env_id, hidden):
    import numpy as np
    import torch

    from rlcanon.es.rollout import spec_for, to_torch

    spec = spec_for(env_id, hidden, 0, 1)
    theta = spec.init(np.random.default_rng(0)) + 0.1
    net = to_torch(spec, theta)
    obs = np.random.default_rng(1).standard_normal((5, spec.sizes[0]))
    out = net(torch.from_numpy(obs)).detach().numpy()
    for o, row in zip(obs, out):
        act = spec.act(theta, o)
        if spec.discrete:
            assert act == int(np.argmax(row))
        else:
            lo, hi = np.asarray(spec.low), np.asarray(spec.high)
            np.testing.assert_allclose(
                act, np.clip(np.tanh(row) * (hi - lo) / 2 + (hi + lo) / 2, lo, hi), rtol=1e-6
            )
