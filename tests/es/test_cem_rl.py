"""CEM-RL: the weighted-elite update by hand, half the population (exactly) trained by the critic,
every member's transitions in the buffer, the update from the post-gradient weights, resume and
checkpoint checks, one-line refusals."""

import math

import numpy as np
import pytest

from rlcanon.core.seeding import seed_everything
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.es.actors import load_flat
from rlcanon.es.cem_rl import CEMRLConfig, CEMRLLearner, WeightedCEM, elite_weights, weighted_elite_update
from rlcanon.run.logger import read_metrics
from rlcanon.runs import resume

EPISODE = 20


def small(**kw):
    base = dict(
        total_timesteps=3 * 4 * EPISODE,
        max_episode_steps=EPISODE,
        popsize=4,
        hidden=(8, 8),
        learning_starts=4 * EPISODE,
        batch_size=8,
        buffer_size=1000,
        gradient_steps_scale=0.5,
        eval_episodes=2,
        seed=3,
    )
    return CEMRLConfig(**{**base, **kw})


def learner(**kw):
    cfg = small(**kw)
    return CEMRLLearner(cfg, cfg.env_id, seed_everything(cfg.seed))


def test_elite_weights_by_hand():
    # mu = 2: log(3/1) and log(3/2), normalised
    w = elite_weights(2)
    total = math.log(3) + math.log(1.5)
    assert w == pytest.approx([math.log(3) / total, math.log(1.5) / total], rel=1e-12)
    assert elite_weights(5).sum() == pytest.approx(1.0) and (np.diff(elite_weights(5)) < 0).all()


def test_weighted_elite_update_by_hand():
    population = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [2.0, 2.0]])
    fitness = np.array([0.0, 5.0, 1.0, 3.0])  # best: row 1, then row 3
    mean = np.array([1.0, 1.0])
    w1, w2 = elite_weights(2)  # 0.7304227..., 0.2695773...
    new_mean, new_var = weighted_elite_update(population, fitness, mean, elite_weights(2), noise=0.01)
    assert new_mean == pytest.approx([3 * w1 + 2 * w2, 2.0], rel=1e-12)
    # about the OLD mean (1, 1): (3-1)^2, (2-1)^2 for row 1; (2-1)^2, (2-1)^2 for row 3
    assert new_var == pytest.approx([4 * w1 + w2 + 0.01, w1 + w2 + 0.01], rel=1e-12)
    assert new_mean[0] == pytest.approx(2.7304227, abs=1e-7) and new_var[0] == pytest.approx(
        3.2012681, abs=1e-7
    )


def test_tell_decays_the_added_noise_then_adds_it():
    es = WeightedCEM(np.zeros(2), 1e-3, seed=0, popsize=4, noise_init=1e-3, noise_end=1e-5, noise_decay=0.95)
    population = np.array([[1.0, 0.0], [3.0, 2.0], [0.0, 4.0], [2.0, 2.0]])
    es.tell(population, np.array([0.0, 5.0, 1.0, 3.0]))
    eps = 0.95 * 1e-3 + 0.05 * 1e-5
    assert es.noise == pytest.approx(eps, rel=1e-12)
    w1, w2 = elite_weights(2)
    assert es.var == pytest.approx([9 * w1 + 4 * w2 + eps, 4 * w1 + 4 * w2 + eps], rel=1e-12)
    assert es.mean == pytest.approx([3 * w1 + 2 * w2, 2.0], rel=1e-12)


def test_exactly_half_the_population_takes_gradient_steps():
    agent = learner()
    agent.iterate()  # the warm-up generation: nobody is trained
    assert (agent.evaluated == agent.sampled).all() and agent.updates == 0
    critic_before = agent.critic.q.net.flat.detach().clone()
    agent.iterate()
    half = agent.cfg.popsize // 2
    changed = [not np.array_equal(agent.evaluated[i], agent.sampled[i]) for i in range(agent.cfg.popsize)]
    assert changed == [True] * half + [False] * half
    # the critic is trained too: 2 T / popsize steps per gradient actor, T = the previous generation's steps
    assert agent.updates == half * round(0.5 * 2 * 4 * EPISODE / 4)
    assert not (agent.critic.q.net.flat.detach() == critic_before).all()


def test_every_member_transitions_reach_the_buffer():
    agent = learner()
    agent.iterate()
    agent.iterate()
    assert len(agent.buffer) == agent.global_step == 2 * 4 * EPISODE
    # the second generation's rows, member by member: each was played by that member's (trained) weights
    data = agent.buffer.data
    for i, weights in enumerate(agent.evaluated):
        rows = slice(4 * EPISODE + i * EPISODE, 4 * EPISODE + (i + 1) * EPISODE)
        load_flat(agent.actor, weights)
        obs = data["obs"][rows, 0]
        # (a batch through the kernels may round differently from the one-row acting path)
        assert np.allclose(agent.actor.act(obs, None), data["actions"][rows, 0], atol=1e-5)
        load_flat(agent.actor, agent.evaluated[(i + 1) % len(agent.evaluated)])
        assert not np.allclose(agent.actor.act(obs, None), data["actions"][rows, 0], atol=1e-3)
        assert data["dones"][rows, 0].tolist() == [False] * (EPISODE - 1) + [True]  # one whole episode


def test_the_distribution_refits_to_the_post_gradient_weights():
    agent = learner()
    agent.iterate()
    mean_before, weights = agent.cem.mean.copy(), agent.cem.weights
    agent.iterate()
    noise = agent.cem.noise
    expected_mean, expected_var = weighted_elite_update(
        agent.evaluated, agent.fitness, mean_before, weights, noise
    )
    assert np.array_equal(agent.cem.mean, expected_mean) and np.array_equal(agent.cem.var, expected_var)
    sampled_mean, _ = weighted_elite_update(agent.sampled, agent.fitness, mean_before, weights, noise)
    assert not np.array_equal(sampled_mean, expected_mean)


def test_budget_cut_generation_feeds_the_buffer_only():
    agent = learner(total_timesteps=4 * EPISODE + 30)  # the second generation is cut after 30 steps
    agent.iterate()
    mean = agent.cem.mean.copy()
    agent.iterate()
    assert agent.global_step == 4 * EPISODE + 30 == len(agent.buffer)
    assert agent.cem.generation == 1 and np.array_equal(agent.cem.mean, mean)


def test_resume_continues_the_same_run(tmp_path):
    from rlcanon.registry import ENTRIES

    full = ENTRIES["cem-rl"].train(small(), run_dir=tmp_path / "full", progress=False)
    ENTRIES["cem-rl"].train(small(total_timesteps=2 * 4 * EPISODE), run_dir=tmp_path / "part", progress=False)
    resumed = resume(tmp_path / "part", total_timesteps=3 * 4 * EPISODE, progress=False)
    curve = "charts/episodic_return"
    assert read_metrics(tmp_path / "part")[curve] == read_metrics(tmp_path / "full")[curve]
    assert np.array_equal(resumed.agent.cem.mean, full.agent.cem.mean)
    assert (resumed.agent.critic.q.net.flat == full.agent.critic.q.net.flat).all()
    assert resumed.summary["eval_return_mean"] == full.summary["eval_return_mean"]


def test_a_negative_added_noise_in_a_checkpoint_is_refused(tmp_path):
    from rlcanon.registry import ENTRIES
    from rlcanon.run import checkpoint as ckpt
    from rlcanon.run.harness import load_learner_state

    ENTRIES["cem-rl"].train(small(total_timesteps=4 * EPISODE), run_dir=tmp_path / "run", progress=False)
    arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))
    arrays = dict(arrays)
    arrays["cem/scalar/noise"] = np.array(-1.0)
    with pytest.raises(CheckpointError, match="noise"):
        load_learner_state("cem-rl", learner(), arrays, state, str(tmp_path))


@pytest.mark.parametrize(
    "kw,match",
    [({"popsize": 5}, "popsize=5"), ({"sigma_init": 0.0}, "sigma_init"), ({"actor_lr": -1.0}, "actor_lr")],
)
def test_bad_settings_are_refused_in_one_line(kw, match):
    with pytest.raises(ConfigError, match=match) as err:
        small(**kw)
    assert "\n" not in str(err.value)


def test_a_discrete_action_space_is_refused():
    cfg = small(env_id="CartPole-v1")
    with pytest.raises(ConfigError, match="continuous"):
        CEMRLLearner(cfg, cfg.env_id, seed_everything(0))
