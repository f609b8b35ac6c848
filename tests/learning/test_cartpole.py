"""Learning tests: the default presets solve CartPole-v1 (eval >= 475 of 500) with a fixed seed."""

import pytest

from rlcanon.registry import ALGOS, make_config


@pytest.mark.learning
@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_preset_solves_cartpole(algo, run_dir):
    config = make_config(algo, "CartPole-v1", seed=1, eval_episodes=20)
    result = ALGOS[algo].train(config, run_dir=run_dir, progress=False)
    assert result.summary["eval_return_mean"] >= 475, result.summary
