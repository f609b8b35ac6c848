"""Learning tests on Pendulum-v1 for the off-policy actor-critics: each preset, cut to 10k of its
20k steps, reaches a return that a random or broken agent (about -1200 to -1500) never does.

The RL Zoo reports about -150 at 20k steps for SAC, TD3 and DDPG. Measured here at 10k steps
(final 10-episode deterministic evaluation, seeds 1-3; docs/actor-critic.md has the curves):
SAC -132, -123, -138; TD3 (warm-up 1k) -134, -123, -134; DDPG (warm-up 1k) -132, -118, -131. The
curves still dip on the way (SAC seed 3 evaluated -456 at 5k steps), so one seed each is tested at
10k, with about 60 of margin.
"""

import pytest

from rlcanon.registry import ALGOS, make_config


def _final(algo, tmp_path, seed, **extra):
    config = make_config(algo, "Pendulum-v1", seed=seed, total_timesteps=10_000, eval_episodes=20, **extra)
    result = ALGOS[algo].train(config, run_dir=tmp_path / f"{algo}-{seed}", progress=False)
    return result.summary["eval_return_mean"]


@pytest.mark.learning
def test_sac_preset_reaches_minus_200_within_10k_steps(tmp_path):
    assert _final("sac", tmp_path, seed=1) >= -200


@pytest.mark.learning
def test_td3_reaches_minus_200_within_10k_steps(tmp_path):
    # the Zoo's warm-up of 10k random steps is the whole 10k budget here: 1k instead
    assert _final("td3", tmp_path, seed=1, learning_starts=1000) >= -200


@pytest.mark.learning
def test_ddpg_learns_pendulum_within_10k_steps(tmp_path):
    assert _final("ddpg", tmp_path, seed=1, learning_starts=1000) >= -250
