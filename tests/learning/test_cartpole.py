"""Learning tests: the default presets solve CartPole-v1 (eval >= 475 of 500) with fixed seeds."""

import pytest

from rlcanon.registry import ALGOS, make_config


def _final_returns(algo, tmp_path, seeds=range(1, 6)):
    """The 20-episode deterministic evaluation at the end of the preset's run, per seed."""
    finals = []
    for seed in seeds:
        config = make_config(algo, "CartPole-v1", seed=seed, eval_episodes=20)
        result = ALGOS[algo].train(config, run_dir=tmp_path / f"s{seed}", progress=False)
        finals.append(result.summary["eval_return_mean"])
    return finals


@pytest.mark.learning
def test_ppo_preset_solves_cartpole_on_most_seeds(tmp_path):
    """>= 475 on at least 4 of 5 seeds: the preset ended >= 475 (20 deterministic episodes) on 29
    of seeds 1-30, the other at 472.4, while a broken agent (final returns of 10-200) fails it."""
    finals = _final_returns("ppo", tmp_path)
    assert sum(f >= 475 for f in finals) >= 4, finals


@pytest.mark.learning
def test_dqn_preset_solves_cartpole_on_most_seeds(tmp_path):
    """>= 475 on at least 4 of 5 seeds: the preset ended >= 475 on 59 of seeds 1-60 (docs/dqn.md),
    so the bar leaves room for a rare late collapse (the Zoo's own settings end >= 475 on about 60%
    of seeds), while a broken agent (final returns of 10-200) fails it."""
    finals = _final_returns("dqn", tmp_path)
    assert sum(f >= 475 for f in finals) >= 4, finals
