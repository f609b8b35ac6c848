"""ES policy search: solves CartPole, identical across backends, resumes exactly."""

import json

import pytest

from rlcanon.es.policy import ESPolicyConfig, resume_search, search


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
    assert local.curve == proc.curve
    assert (local.theta == proc.theta).all()


def test_same_result_on_ray(tmp_path):
    pytest.importorskip("ray")
    base = ESPolicyConfig(generations=3, popsize=8, seed=4)
    local = search(base, tmp_path / "local", progress=False)
    ray_run = search(
        ESPolicyConfig(**{**base.__dict__, "backend": "ray", "workers": 2}), tmp_path / "ray", progress=False
    )
    assert local.curve == ray_run.curve


@pytest.mark.parametrize("strategy", ["openai-es", "cma-es"])
def test_resume_continues_the_same_trajectory(strategy, tmp_path):
    full = search(
        ESPolicyConfig(strategy=strategy, generations=6, popsize=10, eval_interval=3, seed=1),
        tmp_path / "full",
        progress=False,
    )
    part = search(
        ESPolicyConfig(strategy=strategy, generations=3, popsize=10, eval_interval=3, seed=1),
        tmp_path / "part",
        progress=False,
    )
    cfg = json.loads((tmp_path / "part" / "config.json").read_text())
    cfg["config"]["generations"] = 6
    (tmp_path / "part" / "config.json").write_text(json.dumps(cfg))
    resumed = resume_search(tmp_path / "part", progress=False)
    assert part.curve + resumed.curve == full.curve
    assert (resumed.theta == full.theta).all()


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
