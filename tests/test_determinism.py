"""The same seed gives the same returns on CPU."""

import pytest

from rlcanon.core.logger import read_metrics
from rlcanon.registry import ALGOS, make_config

SMALL = {
    "ppo": {"num_envs": 2, "num_steps": 64, "batch_size": 64},
    "dqn": {"learning_starts": 64, "train_freq": 16, "gradient_steps": 4, "batch_size": 16},
}


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_same_seed_same_run(algo, tmp_path):
    def run(name, seed):
        cfg = make_config(
            algo, "CartPole-v1", total_timesteps=1536, eval_episodes=3, seed=seed, **SMALL[algo]
        )
        res = ALGOS[algo].train(cfg, run_dir=tmp_path / name, progress=False)
        cols = read_metrics(tmp_path / name)
        return (
            cols["charts/episodic_return"],
            [v for k, v in cols.items() if k.startswith("loss/")],
            res.summary,
        )

    r1, l1, s1 = run("a", 3)
    r2, l2, s2 = run("b", 3)
    r3, _, _ = run("c", 4)
    assert str(r1) == str(r2) and str(l1) == str(l2)  # str() so NaN == NaN
    assert s1["eval_return_mean"] == s2["eval_return_mean"]
    assert str(r1) != str(r3)
