"""ERL: the genetic operators by hand, the learner injected on schedule over the weakest member,
every member's (and the learner's) transitions in the buffer, elites kept, resume, refusals."""

import numpy as np
import pytest

from rlcanon.core.seeding import seed_everything
from rlcanon.errors import ConfigError
from rlcanon.es.actors import flat_of, load_flat
from rlcanon.es.erl import (
    ERLConfig,
    ERLLearner,
    Genome,
    crossover,
    evolve,
    mutate,
    tournament,
    weakest_slot,
)
from rlcanon.nets.mlp import Layout
from rlcanon.run.logger import read_metrics
from rlcanon.runs import resume

EPISODE = 20
POP = 4


def small(**kw):
    base = dict(
        total_timesteps=3 * (POP + 1) * EPISODE,
        max_episode_steps=EPISODE,
        popsize=POP,
        hidden=(8, 8),
        learning_starts=POP * EPISODE,
        batch_size=8,
        buffer_size=1000,
        gradient_steps_scale=0.2,
        eval_episodes=2,
        seed=5,
    )
    return ERLConfig(**{**base, **kw})


def learner(**kw):
    cfg = small(**kw)
    return ERLLearner(cfg, cfg.env_id, seed_everything(cfg.seed))


class Draws:
    """A generator stand-in that returns given draws, for operators computed by hand."""

    def __init__(self, integers=(), random=(), normal=()):
        self._integers, self._random, self._normal = list(integers), list(random), list(normal)

    def integers(self, low, high=None, size=None):
        if size is None:
            return self._integers.pop(0)
        return np.array([self._integers.pop(0) for _ in range(size)])

    def random(self, size=None):
        return self._random.pop(0) if size is None else np.array([self._random.pop(0) for _ in range(size)])

    def standard_normal(self, size):
        return np.array([self._normal.pop(0) for _ in range(size)])


def test_genome_maps_every_parameter_to_its_neuron():
    # dims 2 -> 2 -> 1: W1 (2x2) row by row, b1 (2), W2 (1x2), b2 (1)
    genome = Genome(Layout([2, 2, 1], 0))
    assert genome.neuron_of.tolist() == [0, 0, 1, 1, 0, 1, 2, 2, 2]
    assert genome.n_neurons == 3
    assert [(s.start, s.stop) for s in genome.weight_slices] == [(0, 4), (6, 8)]


def test_single_point_crossover_over_neurons_by_hand():
    genome = Genome(Layout([2, 2, 1], 0))
    a, b = np.arange(9.0), -np.arange(9.0) - 1
    child = crossover(a, b, genome, Draws(integers=[2]))  # cut before neuron 2: the output unit
    assert child.tolist() == [0, 1, 2, 3, 4, 5, -7, -8, -9]
    child = crossover(a, b, genome, Draws(integers=[1]))  # a keeps hidden neuron 0 (weights and bias)
    assert child.tolist() == [0, 1, -3, -4, 4, -6, -7, -8, -9]


@pytest.mark.parametrize(
    "u,expected",
    [
        (0.01, 2.0 + 100 * 0.1 * 2.0 * 0.5),  # super mutation
        (0.07, 0.5),  # reset to the N(0, 1) draw
        (0.50, 2.0 + 0.1 * 2.0 * 0.5),  # ordinary relative mutation
    ],
)
def test_mutation_by_hand(u, expected):
    # dims 1 -> 2: W (2x1) = [1, 2], b = [3, 4]; fraction 0.5 changes ceil(0.5 * 2) = 1 weight
    genome = Genome(Layout([1, 2], 0))
    cfg = small(mutation_fraction=0.5)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    out = mutate(x, genome, cfg, Draws(integers=[1], random=[u], normal=[0.5]))
    assert out.tolist() == pytest.approx([1.0, expected, 3.0, 4.0], rel=1e-12)
    assert x.tolist() == [1.0, 2.0, 3.0, 4.0]  # a copy is mutated


def test_tournament_takes_the_fittest_drawn():
    fitness = np.array([1.0, 5.0, 3.0, 9.0])
    assert tournament(fitness, 3, Draws(integers=[0, 2, 1])) == 1


def test_evolve_keeps_the_elites_in_their_slots():
    genome = Genome(Layout([2, 2, 1], 0))
    cfg = small(popsize=6, elite_fraction=0.34, mutation_prob=1.0)  # round(0.34 * 6) = 2 elites
    population = np.random.default_rng(0).standard_normal((6, 9))
    fitness = np.array([0.0, 7.0, 1.0, 9.0, 2.0, 3.0])
    new, elites = evolve(population, fitness, genome, cfg, np.random.default_rng(1))
    assert sorted(elites.tolist()) == [1, 3]
    for slot in range(6):
        assert np.array_equal(new[slot], population[slot]) == (slot in (1, 3))
    assert weakest_slot(fitness, elites) == 0
    assert weakest_slot(np.zeros(6), elites) == 0  # ties: the first non-elite


def test_the_learner_is_injected_every_sync_period_over_the_weakest():
    agent = learner(sync_period=2, total_timesteps=4 * (POP + 1) * EPISODE)
    for generation in range(1, 5):
        agent.iterate()
        rl = flat_of(agent.actor)
        holds_rl = [np.array_equal(row, rl) for row in agent.population]
        if generation % 2:
            assert agent.injected is None and not any(holds_rl)
        else:
            worst = int(np.argmin(agent.fitness))
            assert agent.injected == worst and holds_rl == [slot == worst for slot in range(POP)]
    assert agent.updates > 0  # the learner trained, so what was injected is the trained actor


def test_every_member_transitions_reach_the_buffer():
    agent = learner()
    population = agent.population.copy()
    agent.iterate()
    # the POP members, then the learner's exploration episode: POP + 1 whole episodes
    assert len(agent.buffer) == agent.global_step == (POP + 1) * EPISODE
    data = agent.buffer.data
    for i, weights in enumerate(population):
        rows = slice(i * EPISODE, (i + 1) * EPISODE)
        load_flat(agent.member, weights)
        assert np.allclose(agent.member.act(data["obs"][rows, 0], None), data["actions"][rows, 0], atol=1e-5)
        assert data["dones"][rows, 0].tolist() == [False] * (EPISODE - 1) + [True]
    assert agent.fitness.shape == (POP,) and np.isfinite(agent.fitness).all()


def test_predict_plays_the_best_member():
    agent = learner()
    agent.iterate()
    obs = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    load_flat(agent.member, agent.population[int(np.argmax(agent.fitness))])
    expected = agent.member.act(obs, None)
    assert np.array_equal(agent.predict(obs)[0], expected)


def test_resume_continues_the_same_run(tmp_path):
    from rlcanon.registry import ENTRIES

    full = ENTRIES["erl"].train(small(), run_dir=tmp_path / "full", progress=False)
    ENTRIES["erl"].train(
        small(total_timesteps=2 * (POP + 1) * EPISODE), run_dir=tmp_path / "part", progress=False
    )
    resumed = resume(tmp_path / "part", total_timesteps=3 * (POP + 1) * EPISODE, progress=False)
    curve = "charts/episodic_return"
    assert read_metrics(tmp_path / "part")[curve] == read_metrics(tmp_path / "full")[curve]
    assert np.array_equal(resumed.agent.population, full.agent.population)
    assert (resumed.agent.critic.q.net.flat == full.agent.critic.q.net.flat).all()
    assert resumed.summary["eval_return_mean"] == full.summary["eval_return_mean"]


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"popsize": 1}, "popsize=1"),
        ({"mutation_prob": 1.5}, "mutation_prob"),
        ({"sync_period": 0}, "sync_period"),
    ],
)
def test_bad_settings_are_refused_in_one_line(kw, match):
    with pytest.raises(ConfigError, match=match) as err:
        small(**kw)
    assert "\n" not in str(err.value)


def test_a_discrete_action_space_is_refused():
    cfg = small(env_id="CartPole-v1")
    with pytest.raises(ConfigError, match="continuous"):
        ERLLearner(cfg, cfg.env_id, seed_everything(0))
