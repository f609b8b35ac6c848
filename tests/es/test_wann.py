"""WANN (Gaier & Ha 2019): the activations and the forward pass by hand, acyclic graphs after any
mutation sequence, one shared weight in every evaluation, the Pareto ranking on a hand example,
checkpoints that round-trip and refuse a cyclic graph, and a CartPole balancer with one weight."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rlcanon.es.wann as wann
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.es.wann import WANNConfig, WANNLearner, next_generation, pareto_rank, wann_objectives
from rlcanon.es.wann_graph import (
    ACTIVATION_NAMES,
    Network,
    PopulationForward,
    add_connection,
    check_network,
    free_connections,
    minimal_network,
    mutate,
)
from rlcanon.registry import ENTRIES, make_config
from rlcanon.run import checkpoint as ckpt
from rlcanon.run.harness import load_learner_state

ACT = {name: i for i, name in enumerate(ACTIVATION_NAMES)}


def net_of(n_inputs, n_outputs, hidden_acts, edges):
    act = np.array([0] * (n_inputs + n_outputs) + [ACT[a] for a in hidden_acts], dtype=np.int64)
    return Network(n_inputs, n_outputs, act, np.array(edges, dtype=np.int64).reshape(-1, 2))


def has_cycle(net):
    """Depth-first search with three colours, written apart from the module's own check."""
    children = {i: [] for i in range(net.n_nodes)}
    for s, d in net.edges.tolist():
        children[s].append(d)
    colour = [0] * net.n_nodes

    def visit(u):
        colour[u] = 1
        for v in children[u]:
            if colour[v] == 1 or (colour[v] == 0 and visit(v)):
                return True
        colour[u] = 2
        return False

    return any(colour[u] == 0 and visit(u) for u in range(net.n_nodes))


# ---- exact maths ------------------------------------------------------------------------------


def test_every_activation_against_its_formula():
    x = np.array([-1.5, 0.0, 0.3, 2.0])
    want = {
        "linear": list(x),
        "step": [0.0, 0.0, 1.0, 1.0],
        "sin": [math.sin(v) for v in x],
        "cos": [math.cos(v) for v in x],
        "gaussian": [math.exp(-v * v / 2) for v in x],
        "tanh": [math.tanh(v) for v in x],
        "sigmoid": [1 / (1 + math.exp(-v)) for v in x],
        "inverse": [-v for v in x],
        "abs": [abs(v) for v in x],
        "relu": [max(v, 0.0) for v in x],
    }
    assert set(want) == set(ACTIVATION_NAMES) and len(ACTIVATION_NAMES) == 10
    for name, values in want.items():
        # a one-hidden-node network: output = h, h = act(w * x0) with w = 1 on both connections
        net = net_of(2, 1, [name], [(0, 3), (3, 2)])
        out = net.forward(x[:, None], 1.0)[:, 0]
        np.testing.assert_allclose(out, values, rtol=1e-12, atol=1e-15, err_msg=name)


def test_forward_on_a_small_graph_by_hand():
    # nodes: 0 x0, 1 x1, 2 bias, 3 output, 4 tanh, 5 gaussian
    net = net_of(3, 1, ["tanh", "gaussian"], [(0, 4), (2, 4), (1, 5), (4, 5), (4, 3), (5, 3), (0, 3)])
    w, x0, x1 = 0.5, 1.0, -2.0
    h4 = math.tanh(w * (x0 + 1.0))
    h5 = math.exp(-0.5 * (w * (x1 + h4)) ** 2)
    want = w * (h4 + h5 + x0)
    assert net.forward(np.array([[x0, x1]]), w)[0, 0] == pytest.approx(want, rel=1e-12)
    batched = PopulationForward([net], np.array([[w, -w]]))
    out = batched(np.array([[x0, x1], [x0, x1]]))
    assert out[0, 0] == pytest.approx(want, rel=1e-12)
    assert out[1, 0] == pytest.approx(net.forward(np.array([[x0, x1]]), -w)[0, 0], rel=1e-12)


def test_batched_forward_equals_each_network_alone():
    rng = np.random.default_rng(0)
    probs = np.array([0.4, 0.4, 0.2])
    nets = [minimal_network(4, 2, 0.5, rng) for _ in range(12)]
    for _ in range(15):
        nets = [mutate(n, probs, 20, rng) for n in nets]
    weights = np.tile([-2.0, -0.5, 1.0], (len(nets), 1))
    x = rng.normal(size=(len(nets) * 3, 3))
    out = PopulationForward(nets, weights)(x)
    for g, net in enumerate(nets):
        for r, w in enumerate(weights[g]):
            np.testing.assert_allclose(out[3 * g + r], net.forward(x[3 * g + r][None], w)[0], rtol=1e-12)


def test_pareto_rank_hand_examples():
    # A(3,1), B(2,2), C(1,3) are non-dominated; D(1,1) is dominated. In the first front A and C are
    # extremes (infinite crowding; index breaks the tie), B comes after them
    assert pareto_rank(np.array([[3, 1], [2, 2], [1, 3], [1, 1]])).tolist() == [0, 2, 1, 3]
    # one front: crowding of P1 = 3/4 + 3/4 = 1.5, of P2 = 3/4 + 3.5/4 = 1.625, so P2 before P1
    assert pareto_rank(np.array([[0, 4], [1, 3.5], [3, 1], [4, 0]])).tolist() == [0, 3, 2, 1]
    # a chain of dominance: one network per front
    assert pareto_rank(np.array([[1, 1], [3, 3], [2, 2]])).tolist() == [2, 0, 1]


def test_objectives_mean_with_connections_or_max():
    returns = np.array([[10.0, 30.0], [20.0, 20.0]])
    conns = np.array([4, 0])
    np.testing.assert_allclose(wann_objectives(returns, conns, True), [[20, 0.25], [20, 1.0]])
    np.testing.assert_allclose(wann_objectives(returns, conns, False), [[20, 30], [20, 20]])


def chain(hidden):
    """Input 0 -> ``hidden`` relu nodes in a row -> the output (3 inputs with the bias, 1 output)."""
    path = [0, *range(4, 4 + hidden), 3]
    return net_of(3, 1, ["relu"] * hidden, list(itertools.pairwise(path)))


def test_next_generation_keeps_the_elite_and_breeds_from_the_unculled():
    cfg = WANNConfig(population_size=10, tournament_size=3, elite_ratio=0.2, cull_ratio=0.5)
    rng = np.random.default_rng(1)
    pop = [chain(i) for i in range(10)]  # network i has i hidden nodes
    rank = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])  # network 9 is best
    nxt = next_generation(pop, rank, cfg, rng)
    assert len(nxt) == 10
    assert [n.n_hidden for n in nxt[:2]] == [9, 8]  # the elite, unchanged
    # parents come from the best half (hidden 5..9); a mutation adds at most one hidden node
    assert all(n.n_hidden >= 5 for n in nxt[2:])


def test_actions_are_the_argmax_or_the_clipped_outputs():
    import gymnasium as gym

    outputs = np.array([[0.1, 0.7, -1.0], [3.0, 0.0, 2.9]])
    assert wann.to_actions(outputs, gym.spaces.Discrete(3, start=1)).tolist() == [2, 1]
    box = gym.spaces.Box(-2.0, 2.0, (3,), dtype=np.float32)
    actions = wann.to_actions(outputs, box)
    assert actions.dtype == np.float32
    np.testing.assert_allclose(actions, [[0.1, 0.7, -1.0], [2.0, 0.0, 2.0]], rtol=1e-6)


# ---- graphs stay acyclic ----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    steps=st.integers(1, 120),
    probs=st.tuples(*[st.floats(0.0, 1.0)] * 3).filter(lambda p: sum(p) > 0),
    n_in=st.integers(1, 5),
    n_out=st.integers(1, 3),
)
def test_acyclic_after_any_mutation_sequence(seed, steps, probs, n_in, n_out):
    rng = np.random.default_rng(seed)
    net = minimal_network(n_in + 1, n_out, float(rng.random()), rng)
    for _ in range(steps):
        net = mutate(net, np.array(probs), 12, rng)
        assert check_network(net, 12) is None
        assert not has_cycle(net)


def test_free_connections_are_exactly_the_feed_forward_ones():
    rng = np.random.default_rng(3)
    net = minimal_network(4, 2, 1.0, rng)
    for _ in range(30):
        net = mutate(net, np.array([0.6, 0.3, 0.1]), 10, rng)
    free = {tuple(p) for p in free_connections(net).tolist()}
    existing = {tuple(e) for e in net.edges.tolist()}
    for u in range(net.n_nodes):
        for v in range(net.n_nodes):
            if u == v or net.is_output(u) or net.is_input(v) or (u, v) in existing:
                assert (u, v) not in free
                continue
            trial = Network(net.n_inputs, net.n_outputs, net.activation, np.vstack([net.edges, [[u, v]]]))
            assert ((u, v) in free) == (not has_cycle(trial)), (u, v)
    while add_connection(net, rng):  # saturate: a complete DAG on this order, still acyclic
        pass
    assert not has_cycle(net) and len(free_connections(net)) == 0


def test_check_network_names_each_fault():
    assert "cycle" in check_network(net_of(2, 1, ["tanh", "relu"], [(0, 3), (3, 4), (4, 3), (4, 2)]))
    assert "into an input" in check_network(net_of(2, 1, [], [(2, 0)]))
    assert "leaves an output" in check_network(net_of(2, 1, ["tanh"], [(2, 3)]))
    assert "twice" in check_network(net_of(2, 1, [], [(0, 2), (0, 2)]))
    assert "outside" in check_network(net_of(2, 1, [], [(0, 7)]))


# ---- one shared weight in every evaluation ----------------------------------------------------


def test_every_evaluation_uses_one_shared_weight(monkeypatch):
    seen = []

    class Recording(PopulationForward):
        def __init__(self, networks, weights):
            super().__init__(networks, weights)
            seen.append((networks, np.array(weights)))

    monkeypatch.setattr(wann, "PopulationForward", Recording)
    cfg = WANNConfig(population_size=8, tournament_size=4, episodes_per_weight=2, max_episode_steps=50)
    learner = WANNLearner(cfg, "CartPole-v1", np.random.default_rng(0))
    for _ in range(3):
        learner.iterate()
    generations = [s for s in seen if len(s[0]) == 8]
    assert len(generations) == 3 and len(seen) > 3  # and at least one tuning of a champion
    for _, weights in generations:
        # each network: every value of the paper's series, each in episodes_per_weight rows
        for row in weights:
            assert sorted(row.tolist()) == sorted(list(cfg.shared_weights) * 2)
    for networks, weights in seen:
        fwd = PopulationForward(networks, weights)
        per_row = weights.reshape(-1)
        for r in range(fwd.n_rows):  # every connection of a row carries that row's one weight
            mine = fwd.edge_weight[fwd.edge_row == r]
            assert (mine == per_row[r]).all()
        assert len(fwd.edge_row) == sum(n.n_connections for n in networks) * weights.shape[1]


# ---- checkpoints ------------------------------------------------------------------------------


def smoke_run(tmp_path):
    entry = ENTRIES["wann"]
    cfg = make_config("wann", "CartPole-v1", eval_episodes=1, seed=2, **entry.smoke)
    return entry.train(cfg, run_dir=tmp_path / "run", progress=False)


def fresh(result):
    return WANNLearner(result.agent.cfg, "CartPole-v1", np.random.default_rng(99))


def test_checkpoint_round_trip(tmp_path):
    result = smoke_run(tmp_path)
    arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))
    back = fresh(result)
    load_learner_state("wann", back, arrays, state, "ckpt")
    old = result.agent
    assert back.generation == old.generation and back.global_step == old.global_step
    assert back.champion_weight == old.champion_weight and back.champion_score == old.champion_score
    for a, b in zip([*old.population, old.champion], [*back.population, back.champion], strict=True):
        assert (a.activation == b.activation).all() and (a.edges == b.edges).all()
    obs = np.random.default_rng(0).normal(size=(5, 4))
    assert (back.predict(obs)[0] == old.predict(obs)[0]).all()
    assert (tmp_path / "run" / "wann_champion.json").exists()


def test_checkpoint_refuses_a_cyclic_or_miscounted_population(tmp_path):
    result = smoke_run(tmp_path)
    arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(tmp_path / "run"))
    # network 0 gets a hidden-node loop: 0 -> 7 -> 8 -> 7 (node ids 0-4 inputs, 5-6 outputs)
    bad = dict(arrays)
    n0 = int(arrays["wann/node_counts"][0])
    extra = np.array([[0, n0], [n0, n0 + 1], [n0 + 1, n0]], dtype=np.int64)
    counts = arrays["wann/node_counts"].copy()
    counts[0] += 2
    e_counts = arrays["wann/edge_counts"].copy()
    e_counts[0] += 3
    acts = np.insert(arrays["wann/activations"], n0, [5, 5])
    e0 = int(arrays["wann/edge_counts"][0])
    bad.update(
        {
            "wann/node_counts": counts,
            "wann/edge_counts": e_counts,
            "wann/activations": acts,
            "wann/edges": np.insert(arrays["wann/edges"], e0, extra, axis=0),
        }
    )
    with pytest.raises(CheckpointError, match="network 0, and the connections form a cycle"):
        load_learner_state("wann", fresh(result), bad, state, "ckpt")
    short = dict(arrays, **{"wann/edges": arrays["wann/edges"][:-1]})
    with pytest.raises(CheckpointError, match="counts add up"):
        load_learner_state("wann", fresh(result), short, state, "ckpt")
    wrong_act = dict(arrays, **{"wann/activations": np.full_like(arrays["wann/activations"], 10)})
    with pytest.raises(CheckpointError, match="expected values <= 9"):
        load_learner_state("wann", fresh(result), wrong_act, state, "ckpt")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tournament_size": 100, "population_size": 10}, "tournament_size=100"),
        ({"prob_insert_node": 0.0, "prob_add_connection": 0.0, "prob_change_activation": 0.0}, "all 0"),
        ({"shared_weights": ()}, "shared_weights"),
        ({"elite_ratio": 1.0}, "room for at least one child"),
        ({"cull_ratio": 1.0}, "at least one parent"),
        ({"complexity_prob": 1.5}, "complexity_prob=1.5"),
    ],
)
def test_bad_settings_are_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match) as err:
        WANNConfig(**kwargs)
    assert "\n" not in str(err.value)


# ---- learning ---------------------------------------------------------------------------------


@pytest.mark.learning
def test_one_tuned_weight_balances_cartpole(tmp_path):
    """The champion of 20 generations of 64 networks, at its one tuned weight, balances CartPole-v1
    far past 200 steps on fresh starts (seed 1 reaches the 500-step limit; see docs/wann.md)."""
    cfg = WANNConfig(seed=1, generations=20, eval_episodes=10)
    result = ENTRIES["wann"].train(cfg, run_dir=tmp_path / "run", progress=False)
    agent = result.agent
    assert result.summary["eval_return_mean"] > 300
    import gymnasium as gym

    env = gym.make("CartPole-v1")
    lengths = []
    for episode in range(5):
        obs, _ = env.reset(seed=5000 + episode)
        done, steps = False, 0
        while not done:
            action, _ = agent.predict(obs[None])
            obs, _, terminated, truncated, _ = env.step(int(action[0]))
            done, steps = terminated or truncated, steps + 1
        lengths.append(steps)
    assert min(lengths) > 200 and np.mean(lengths) > 300, lengths
