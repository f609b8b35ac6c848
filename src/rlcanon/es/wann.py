"""Weight-agnostic neural network search, WANN (Gaier & Ha 2019, "Weight Agnostic Neural Networks",
NeurIPS), in the one run harness.

The search of Sec. 3: (1) a population of minimal networks (inputs sparsely connected to outputs,
no hidden node); (2) every network is rolled out with one shared weight on all its connections,
once for each value of a series; (3) networks are ranked by mean return over the series, max
return of a single value, and number of connections, by Pareto dominance (NSGA-II fronts and
crowding distance): with probability ``complexity_prob`` on (mean, 1 / connections), else on (mean,
max); (4) the next population is the elite plus mutated winners of tournaments (insert node, add
connection, change activation: :mod:`rlcanon.es.wann_graph`).

Every network under every weight runs in one batch of vector envs, with the forward pass of the
whole population as a few array operations per depth level. The champion (the best mean return
seen) gets its weight tuned on a finer grid; ``predict`` acts with it at that one weight.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np

from rlcanon.core.config import check_int, check_range
from rlcanon.core.validate import ArraySpec
from rlcanon.envs.factory import EnvSpecLike, make_vec_env
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.es.wann_graph import (
    ACTIVATION_NAMES,
    Network,
    PopulationForward,
    check_network,
    minimal_network,
    mutate,
    network_json,
    pack_networks,
    unpack_networks,
)
from rlcanon.run.config import BaseConfig
from rlcanon.run.state import Parts

PAPER_WEIGHTS = (-2.0, -1.0, -0.5, 0.5, 1.0, 2.0)
"""The shared-weight series every network is evaluated with (Gaier & Ha 2019, Sec. 3)."""


@dataclass(frozen=True)
class WANNConfig(BaseConfig):
    """Settings of a WANN search. Mutation, selection and ranking defaults are those of the authors'
    released WANN settings; population and generations are scaled down to a CPU (docs/wann.md)."""

    BUDGET: ClassVar[str] = "generations"
    UNIT: ClassVar[str] = "generation"

    generations: int = 30
    """Generations to run (the paper runs hundreds to thousands; 30 find a CartPole balancer here)."""
    population_size: int = 64
    """Networks per generation (the authors' released settings use 192 and more)."""
    shared_weights: tuple[float, ...] = PAPER_WEIGHTS
    """Values the one shared weight takes, each in one rollout of every network (paper, Sec. 3)."""
    episodes_per_weight: int = 1
    """Episodes averaged into each (network, weight) return."""
    max_episode_steps: int = 0
    """Step limit per training episode (0: the env's own)."""
    init_connection_prob: float = 0.25
    """Probability of each input-output connection in the minimal initial networks (released
    settings: 0.25; 1 gives fully connected ones)."""
    prob_insert_node: float = 0.25
    """Relative chance of the insert-node mutation (released settings: 0.25)."""
    prob_add_connection: float = 0.20
    """Relative chance of the add-connection mutation (released settings: 0.20)."""
    prob_change_activation: float = 0.50
    """Relative chance of the change-activation mutation (released settings: 0.50)."""
    complexity_prob: float = 0.80
    """Chance that a generation ranks on (mean return, 1 / connections) rather than (mean, max)
    return (released settings: 0.8)."""
    tournament_size: int = 16
    """Networks per selection tournament; the best ranked wins (released settings: 16 to 32)."""
    elite_ratio: float = 0.2
    """Share of the best ranked networks copied unchanged into the next generation (0.2)."""
    cull_ratio: float = 0.2
    """Share of the worst ranked networks that may not parent (0.2)."""
    max_hidden_nodes: int = 32
    """Cap on hidden nodes per network (the insert-node mutation stops there)."""
    tune_points: int = 41
    """Values of the champion's weight tried in [-max |w|, max |w|] to tune its one weight."""
    tune_episodes: int = 4
    """Episodes per value when tuning the champion's weight."""

    def validate(self) -> None:
        from rlcanon.run.config import MAX_BUDGET

        check_int("generations", self.generations, 1, MAX_BUDGET)
        check_int("population_size", self.population_size, 2, 100_000)
        check_int("episodes_per_weight", self.episodes_per_weight, 1, 1000)
        check_int("max_episode_steps", self.max_episode_steps, 0, 10**9)
        check_int("tournament_size", self.tournament_size, 1, self.population_size)
        check_int("max_hidden_nodes", self.max_hidden_nodes, 0, 1000)
        check_int("tune_points", self.tune_points, 1, 10_000)
        check_int("tune_episodes", self.tune_episodes, 1, 1000)
        if not 1 <= len(self.shared_weights) <= 1000:
            raise ConfigError(
                f"shared_weights={list(self.shared_weights)} is not allowed; give 1 to 1000 values"
            )
        for w in self.shared_weights:
            check_range("shared_weights", w, -1e6, 1e6)
        for name in ("init_connection_prob", "complexity_prob", "elite_ratio", "cull_ratio"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        probs = [self.prob_insert_node, self.prob_add_connection, self.prob_change_activation]
        for name, p in zip(("prob_insert_node", "prob_add_connection", "prob_change_activation"), probs):
            check_range(name, p, 0.0, 1.0)
        if sum(probs) <= 0:
            raise ConfigError("the mutation probabilities are all 0; give at least one a value > 0")
        size = self.population_size
        if int(self.cull_ratio * size) >= size:
            raise ConfigError(
                f"cull_ratio={self.cull_ratio} culls every network of population_size={size}; it must "
                f"leave at least one parent"
            )
        if int(self.elite_ratio * size) >= size:
            raise ConfigError(
                f"elite_ratio={self.elite_ratio} copies every network of population_size={size}; it must "
                f"leave room for at least one child"
            )

    @property
    def weight_range(self) -> float:
        return max(abs(w) for w in self.shared_weights)


def pareto_rank(objectives: np.ndarray) -> np.ndarray:
    """Rank of each row of ``objectives`` (N, M), all maximised, 0 the best: by non-dominated front
    (Deb et al. 2002, NSGA-II), within a front by crowding distance (larger first, the front's
    extremes infinite), ties by index. Gaier & Ha 2019 rank WANNs this way (Sec. 3)."""
    obj = np.asarray(objectives, dtype=np.float64)
    n = len(obj)
    geq = (obj[:, None, :] >= obj[None, :, :]).all(axis=2)
    gt = (obj[:, None, :] > obj[None, :, :]).any(axis=2)
    dominated_by: np.ndarray = np.asarray(geq & gt).T  # dominated_by[i, j]: j dominates i
    front = np.full(n, -1)
    remaining = np.ones(n, dtype=bool)
    level = 0
    while remaining.any():
        current = remaining & ~(dominated_by[:, remaining].any(axis=1))
        front[current] = level
        remaining &= ~current
        level += 1
    crowd = np.zeros(n)
    for f in range(level):
        members = np.nonzero(front == f)[0]
        for m in range(obj.shape[1]):
            order = members[np.argsort(obj[members, m], kind="stable")]
            span = obj[order[-1], m] - obj[order[0], m]
            crowd[order[0]] = crowd[order[-1]] = np.inf
            if len(order) > 2 and span > 0:
                crowd[order[1:-1]] += (obj[order[2:], m] - obj[order[:-2], m]) / span
    order = np.lexsort((np.arange(n), -crowd, front))
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    return rank


def wann_objectives(returns: np.ndarray, connections: np.ndarray, use_complexity: bool) -> np.ndarray:
    """The two objectives of one generation (Gaier & Ha 2019, Sec. 3): mean return over the weight
    series with 1 / connections (a network without any counts as 1, as in the authors' code:
    none is Pareto optimal but useless), or with the max return of a single weight."""
    mean = returns.mean(axis=1)
    second = 1.0 / np.maximum(connections, 1) if use_complexity else returns.max(axis=1)
    return np.stack([mean, second], axis=1)


def next_generation(
    population: list[Network], rank: np.ndarray, cfg: WANNConfig, rng: np.random.Generator
) -> list[Network]:
    """The elite unchanged, then mutated winners of tournaments among the networks that survive
    the cull (Gaier & Ha 2019, Sec. 3, step 4; no crossover, as in their released settings)."""
    size = len(population)
    order = np.argsort(rank, kind="stable")
    n_elite = int(cfg.elite_ratio * size)
    parents = order[: size - int(cfg.cull_ratio * size)]
    probs = np.array([cfg.prob_insert_node, cfg.prob_add_connection, cfg.prob_change_activation])
    children = [population[i].copy() for i in order[:n_elite]]
    while len(children) < size:
        entrants = parents[rng.integers(len(parents), size=cfg.tournament_size)]
        winner = entrants[np.argmin(rank[entrants])]
        children.append(mutate(population[winner], probs, cfg.max_hidden_nodes, rng))
    return children


def io_sizes(observation_space: gym.Space, action_space: gym.Space) -> tuple[int, int]:
    """(inputs with the bias, outputs): one input per observation entry, one output per discrete
    action (argmax acts) or per action entry (clipped to the box)."""
    if not isinstance(observation_space, gym.spaces.Box):
        raise ConfigError(f"wann needs a Box observation space, not {observation_space}")
    if isinstance(action_space, gym.spaces.Discrete):
        n_out = int(action_space.n)
    elif isinstance(action_space, gym.spaces.Box):
        n_out = int(np.prod(action_space.shape))
    else:
        raise ConfigError(f"wann acts in a Discrete or Box action space, not {action_space}")
    return int(np.prod(observation_space.shape)) + 1, n_out


def to_actions(outputs: np.ndarray, action_space: gym.Space) -> np.ndarray:
    if isinstance(action_space, gym.spaces.Discrete):
        return np.argmax(outputs, axis=1) + int(action_space.start)
    assert isinstance(action_space, gym.spaces.Box)  # io_sizes refused every other space
    shaped = outputs.reshape((len(outputs), *action_space.shape))
    return np.clip(shaped, action_space.low, action_space.high).astype(action_space.dtype)


def rollout_returns(
    forward: PopulationForward, envs: gym.vector.VectorEnv, max_steps: int, seed: int
) -> tuple[np.ndarray, int]:
    """Return of the first episode of every row of ``forward`` (one sub-env per row), and the env
    steps it took. Rows that finished keep stepping (their autoreset episodes are not counted)."""
    obs, _ = envs.reset(seed=seed)
    n = forward.n_rows
    returns, alive = np.zeros(n), np.ones(n, dtype=bool)
    steps, t = 0, 0
    while alive.any() and (max_steps == 0 or t < max_steps):
        actions = to_actions(
            forward(np.asarray(obs, dtype=np.float64).reshape(n, -1)), envs.single_action_space
        )
        obs, reward, terminated, truncated, _ = envs.step(actions)
        returns += np.where(alive, reward, 0.0)
        steps += int(alive.sum())
        alive &= ~(np.asarray(terminated) | np.asarray(truncated))
        t += 1
    return returns, steps


class PopulationState:
    """The population and the champion as a checkpointed part: :func:`pack_networks` arrays (the
    population's networks, then the champion), the champion's tuned weight and mean return. Loading
    checks every network (node ids, connections forming a DAG, activations in the set)."""

    def __init__(self, learner: WANNLearner) -> None:
        self.learner = learner

    def state_arrays(self) -> dict[str, np.ndarray]:
        lr = self.learner
        return {
            **pack_networks([*lr.population, lr.champion]),
            "champion_weight": np.array(lr.champion_weight),
            "champion_score": np.array(lr.champion_score),
        }

    def array_specs(self) -> dict[str, ArraySpec]:
        lr, cfg = self.learner, self.learner.cfg
        count = cfg.population_size + 1
        most_nodes = lr.n_inputs + lr.n_outputs + cfg.max_hidden_nodes
        big = float(10**6)
        return {
            "node_counts": ArraySpec((count,), "int64", low=lr.n_inputs + lr.n_outputs, high=most_nodes),
            "edge_counts": ArraySpec((count,), "int64", low=0, high=most_nodes * most_nodes),
            "activations": ArraySpec(
                (0,), "int64", max_rows=count * most_nodes, low=0, high=len(ACTIVATION_NAMES) - 1
            ),
            "edges": ArraySpec((0, 2), "int64", max_rows=count * most_nodes**2, low=0, high=most_nodes - 1),
            "champion_weight": ArraySpec((), "float64", low=-big, high=big),
            "champion_score": ArraySpec((), "float64", low=-1e300, high=1e300, neg_inf=True),
        }

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        """Counts that add up, and every network a valid one (:func:`check_network`)."""
        lr = self.learner
        try:
            networks = unpack_networks(arrays, lr.n_inputs, lr.n_outputs)
        except ValueError as exc:
            raise CheckpointError(f"{where}: arrays '{prefix}/...': {exc}; expected them to agree") from None
        for i, net in enumerate(networks):
            problem = check_network(net, lr.cfg.max_hidden_nodes)
            if problem is not None:
                who = "the champion" if i == len(networks) - 1 else f"network {i}"
                raise CheckpointError(
                    f"{where}: arrays '{prefix}/activations' and '{prefix}/edges' hold {who}, and {problem}; "
                    f"expected a feed-forward network"
                )

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        lr = self.learner
        networks = unpack_networks(arrays, lr.n_inputs, lr.n_outputs)
        lr.population, lr.champion = networks[:-1], networks[-1]
        lr.champion_weight = float(arrays["champion_weight"])
        lr.champion_score = float(arrays["champion_score"])


class WANNLearner:
    """One generation per iteration: evaluate every network under every shared weight, rank, breed."""

    def __init__(self, config: WANNConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        if not isinstance(env, str):
            raise ConfigError("wann needs an env id (it builds a batch of envs from it)")
        self.cfg = config
        self.rng = rng  # the run's generator: the harness checkpoints and restores its state
        probe = make_vec_env(env, 1, env_kwargs=config.env_kwargs, wrappers=config.wrappers)
        self.observation_space = probe.single_observation_space
        self.action_space = probe.single_action_space
        probe.close()
        self.n_inputs, self.n_outputs = io_sizes(self.observation_space, self.action_space)
        size = config.population_size
        self.population = [
            minimal_network(self.n_inputs, self.n_outputs, config.init_connection_prob, self.rng)
            for _ in range(size)
        ]
        self.champion = self.population[0].copy()
        self.champion_weight = float(config.shared_weights[-1])
        self.champion_score = -np.inf
        self.generation = 0
        self.global_step = 0
        self.budget_granularity = 1
        self._envs: dict[int, gym.vector.VectorEnv] = {}

    @property
    def progress(self) -> int:
        return self.generation

    def _batch_envs(self, n: int) -> gym.vector.VectorEnv:
        if n not in self._envs:
            cfg = self.cfg
            self._envs[n] = make_vec_env(cfg.env_id, n, env_kwargs=cfg.env_kwargs, wrappers=cfg.wrappers)
        return self._envs[n]

    def evaluate(self, networks: list[Network], weights: np.ndarray, episodes: int) -> np.ndarray:
        """Mean return (len(networks), len(weights)) of each network under each shared weight, all
        rows in one batch of envs (each (network, weight) pair repeated ``episodes`` times)."""
        per_row = np.repeat(np.asarray(weights, dtype=np.float64), episodes)
        forward = PopulationForward(networks, np.tile(per_row, (len(networks), 1)))
        seed = int(self.rng.integers(2**31 - 1))
        returns, steps = rollout_returns(
            forward, self._batch_envs(forward.n_rows), self.cfg.max_episode_steps, seed
        )
        self.global_step += steps
        return returns.reshape(len(networks), len(weights), episodes).mean(axis=2)

    def iterate(self) -> dict[str, float]:
        cfg = self.cfg
        returns = self.evaluate(self.population, np.array(cfg.shared_weights), cfg.episodes_per_weight)
        connections = np.array([net.n_connections for net in self.population])
        nodes = np.array([net.n_nodes for net in self.population])
        use_complexity = bool(self.rng.random() < cfg.complexity_prob)
        rank = pareto_rank(wann_objectives(returns, connections, use_complexity))
        mean = returns.mean(axis=1)
        best = int(np.argmax(mean))
        if mean[best] > self.champion_score:
            self._crown(self.population[best], float(mean[best]))
        self.population = next_generation(self.population, rank, cfg, self.rng)
        self.generation += 1
        return {
            "generation": float(self.generation),
            "charts/episodic_return": float(mean.mean()),
            "wann/mean_return_best": float(mean[best]),
            "wann/max_return": float(returns.max()),
            "wann/connections_mean": float(connections.mean()),
            "wann/nodes_mean": float(nodes.mean()),
            "wann/ranked_on_connections": float(use_complexity),
            "wann/champion_score": float(self.champion_score),
            "wann/champion_weight": self.champion_weight,
            "wann/champion_connections": float(self.champion.n_connections),
        }

    def _crown(self, network: Network, score: float) -> None:
        """A new champion: tune its one weight on a grid over the series' range (0 excluded: it
        silences every connection), by mean return over ``tune_episodes`` episodes."""
        cfg = self.cfg
        grid = np.linspace(-cfg.weight_range, cfg.weight_range, cfg.tune_points)
        grid = grid[grid != 0] if (grid != 0).any() else grid
        tuned = self.evaluate([network], grid, cfg.tune_episodes)[0]
        self.champion, self.champion_score = network.copy(), score
        self.champion_weight = float(grid[int(np.argmax(tuned))])

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        x = np.asarray(obs, dtype=np.float64).reshape(len(obs), -1)
        return to_actions(self.champion.forward(x, self.champion_weight), self.action_space), state

    def eval_env(self, num_envs: int) -> Any:
        cfg = self.cfg
        limit = (f"time-limit:max_episode_steps={cfg.max_episode_steps}",) if cfg.max_episode_steps else ()
        return make_vec_env(cfg.env_id, num_envs, env_kwargs=cfg.env_kwargs, wrappers=(*cfg.wrappers, *limit))

    def checkpoint_parts(self) -> Parts:
        part = PopulationState(self)
        return Parts(stateful={"wann": part}, counters=("global_step", "generation"))

    def summary_extra(self) -> dict[str, Any]:
        return {
            "champion_weight": self.champion_weight,
            "champion_connections": self.champion.n_connections,
            "champion_hidden_nodes": self.champion.n_hidden,
        }

    def on_finish(self, path: Path) -> None:
        """Write the champion as JSON (nodes, activations, connections, its tuned weight)."""
        from rlcanon.run.checkpoint import atomic_write_bytes

        text = network_json(self.champion, self.champion_weight, self.champion_score)
        atomic_write_bytes(path / "wann_champion.json", text.encode())

    def close(self) -> None:
        for envs in self._envs.values():
            envs.close()
        self._envs = {}
