"""ERL, evolutionary reinforcement learning (Khadka & Tumer 2018, "Evolution-Guided Policy Gradient
in Reinforcement Learning", NeurIPS; Algorithms 1-3).

A genetic algorithm evolves a population of k deterministic actors by their episode returns; every
transition of every member's episodes goes into one replay buffer, from which a DDPG learner
(actor and critic, Lillicrap et al. 2016) trains. Every omega generations the learner's actor is
copied into the population over its weakest member, so gradient information enters the evolution.

Each generation:

1. every member plays ``episodes_per_member`` episodes (the paper's xi) without noise; the mean
   return is its fitness; every step goes into the buffer;
2. the learner's actor plays one episode with Ornstein-Uhlenbeck noise (into the buffer too), then
   DDPG takes one gradient step per env step of the generation;
3. selection: the round(psi k) best members (the elites, psi the elite fraction) stay unchanged;
   every other slot gets a child of a random elite and a tournament winner (tournament size 3), by
   single-point crossover over the neurons (a neuron: its row of incoming weights and its bias),
   mutated with probability ``mutation_prob`` (Algorithm 3, below);
4. every omega-th generation the learner's actor overwrites the slot of the weakest non-elite
   member of this generation's evaluation.

Mutation (Algorithm 3): in every weight matrix, ``mutation_fraction`` of its entries (drawn with
replacement) change: with probability ``super_mutation_prob`` w <- w + 100 s w N(0, 1) (a "super
mutation"), else with probability ``reset_prob`` w <- N(0, 1), else w <- w + s w N(0, 1), s the
mutation strength. Biases are not mutated. ``predict`` plays the best actor of the last evaluation.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcanon.algos.td3 import OUNoise
from rlcanon.core.config import check_int, check_range
from rlcanon.core.optim import GradientStep
from rlcanon.core.validate import ArraySpec
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.errors import CheckpointError
from rlcanon.es.actors import (
    EpisodeRunner,
    HybridConfig,
    SharedCritic,
    actor_step,
    check_rates,
    critic_step,
    episode_seed,
    flat_of,
    load_flat,
    make_actor,
    sample_batch,
)
from rlcanon.nets.mlp import Layout
from rlcanon.run.state import MAX_WEIGHT, Parts


@dataclass(frozen=True)
class ERLConfig(HybridConfig):
    """ERL settings. The GA's defaults are the paper's as read here (k = 10, elite
    fraction 0.1 to 0.3 by task, mutation probability 0.9, fraction 0.1, strength 0.1, super
    mutation and reset probabilities 0.05), and so are the learner's step sizes (Adam 5e-5 for
    the actor, 5e-4 for the critic, gradients clipped at 10), tau 0.001 and batch 128. The
    synchronisation period omega varies by task in the paper (1 on some MuJoCo tasks, 10 on
    others); 1 here, which the short Pendulum budgets need."""

    popsize: int = 10
    """Actors in the population (the paper's k)."""
    elite_fraction: float = 0.1
    """Fraction of the population kept unchanged each generation (psi; at least one actor)."""
    tournament_size: int = 3
    """Members drawn (with replacement) per tournament; the fittest is a parent."""
    mutation_prob: float = 0.9
    """Probability that a child is mutated."""
    mutation_fraction: float = 0.1
    """Fraction of each weight matrix's entries a mutation changes."""
    mutation_strength: float = 0.1
    """Relative std s of an ordinary mutation: w <- w + s w N(0, 1)."""
    super_mutation_prob: float = 0.05
    """Probability that a changed entry takes a super mutation: w <- w + 100 s w N(0, 1)."""
    reset_prob: float = 0.05
    """Probability that a changed entry is reset to N(0, 1) instead."""
    sync_period: int = 1
    """Generations between copies of the learner's actor into the population (the paper's omega)."""
    episodes_per_member: int = 1
    """Episodes averaged into each member's fitness (the paper's xi)."""
    actor_lr: float = 5e-5
    """Adam step size of the learner's actor."""
    critic_lr: float = 5e-4
    """Adam step size of the learner's critic."""
    max_grad_norm: float = 10.0
    """Global gradient-norm clip of the learner's actor and critic."""
    tau: float = 0.001
    """Polyak coefficient of the learner's target networks."""
    batch_size: int = 128
    """Transitions per gradient step."""
    hidden: tuple[int, ...] = (128, 128)
    """Hidden layer sizes of every actor and of the critic (ReLU)."""
    learning_starts: int = 1_000
    """Env steps stored before the learner's first gradient step (chosen here)."""
    ou_theta: float = 0.15
    """Mean reversion of the learner's Ornstein-Uhlenbeck exploration noise (Lillicrap et al.)."""
    ou_sigma: float = 0.2
    """Scale of the learner's Ornstein-Uhlenbeck noise, in half-widths of the action box."""
    gradient_steps_scale: float = 1.0
    """Learner gradient steps per env step of a generation."""

    def validate(self) -> None:
        check_int("popsize", self.popsize, 2, 10_000)
        check_range("elite_fraction", self.elite_fraction, 0.0, 1.0)
        check_int("tournament_size", self.tournament_size, 1, 10_000)
        for name in ("mutation_prob", "mutation_fraction", "super_mutation_prob", "reset_prob"):
            check_range(name, getattr(self, name), 0.0, 1.0)
        check_range("mutation_strength", self.mutation_strength, 0.0, 100.0)
        check_int("sync_period", self.sync_period, 1, 10**9)
        check_int("episodes_per_member", self.episodes_per_member, 1, 10_000)
        check_rates(self, "actor_lr", "critic_lr")
        check_range("max_grad_norm", self.max_grad_norm, 1e-8, 1e12)
        check_range("ou_theta", self.ou_theta, 0.0, 100.0)
        check_range("ou_sigma", self.ou_sigma, 0.0, 10.0)
        check_range("gradient_steps_scale", self.gradient_steps_scale, 0.0, 100.0)

    @property
    def elites(self) -> int:
        """Members kept unchanged: round(psi k), at least 1 and at most k - 1 (a slot must be free
        for the learner's actor)."""
        return min(max(round(self.elite_fraction * self.popsize), 1), self.popsize - 1)


# ---- genetic operators (pure functions of arrays and a generator) --------------------------------


class Genome:
    """Where an MLP's neurons and weight matrices sit in its flat parameter vector."""

    def __init__(self, layout: Layout) -> None:
        neuron, weights, off, first = [], [], 0, 0
        for w_shape, b_shape in layout.shapes:
            rows, cols = w_shape
            ids = first + np.arange(rows)
            neuron += [np.repeat(ids, cols), ids]  # the weights of row r, then the biases
            weights.append(slice(off, off + rows * cols))
            off += rows * cols + b_shape[0]
            first += rows
        self.neuron_of = np.concatenate(neuron)
        """Neuron index of every parameter (its row of weights and its bias)."""
        self.n_neurons = first
        self.weight_slices = weights
        """The span of every weight matrix (biases lie between them)."""


def crossover(a: np.ndarray, b: np.ndarray, genome: Genome, rng: np.random.Generator) -> np.ndarray:
    """Single-point crossover over neurons: the child takes a's neurons before a random cut and b's
    from it on (whole neurons, so each unit keeps its incoming weights and bias together)."""
    cut = int(rng.integers(1, genome.n_neurons)) if genome.n_neurons > 1 else 0
    return np.where(genome.neuron_of < cut, a, b)


def mutate(x: np.ndarray, genome: Genome, cfg: ERLConfig, rng: np.random.Generator) -> np.ndarray:
    """Algorithm 3 on a copy of ``x``: a fraction of each weight matrix's entries takes a super
    mutation, a reset or an ordinary relative Gaussian mutation."""
    out = x.copy()
    s = cfg.mutation_strength
    for span in genome.weight_slices:
        size = span.stop - span.start
        count = math.ceil(cfg.mutation_fraction * size)
        idx = span.start + rng.integers(0, size, size=count)
        u, z = rng.random(count), rng.standard_normal(count)
        w = out[idx]
        new = np.where(
            u < cfg.super_mutation_prob,
            w + 100 * s * w * z,
            np.where(u < cfg.super_mutation_prob + cfg.reset_prob, z, w + s * w * z),
        )
        out[idx] = new  # an index drawn twice takes its last value
    return np.clip(out, -MAX_WEIGHT, MAX_WEIGHT)  # a run of super mutations must stay loadable


def tournament(fitness: np.ndarray, size: int, rng: np.random.Generator) -> int:
    """The fittest of ``size`` members drawn with replacement (ties: the first drawn)."""
    drawn = rng.integers(0, len(fitness), size=size)
    return int(drawn[np.argmax(fitness[drawn])])


def evolve(
    population: np.ndarray, fitness: np.ndarray, genome: Genome, cfg: ERLConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One GA generation in place of slots: the elites keep theirs; every other slot gets a mutated
    child of a random elite and a tournament winner. Returns (new population, elite slots)."""
    order = np.argsort(-fitness, kind="stable")
    elites = order[: cfg.elites]
    new = population.copy()
    for slot in order[cfg.elites :]:
        mother = population[elites[rng.integers(0, len(elites))]]
        father = population[tournament(fitness, cfg.tournament_size, rng)]
        child = crossover(mother, father, genome, rng)
        if rng.random() < cfg.mutation_prob:
            child = mutate(child, genome, cfg, rng)
        new[slot] = child
    return new, elites


def weakest_slot(fitness: np.ndarray, elites: np.ndarray) -> int:
    """The slot of the lowest fitness among the non-elite members (ties: the first)."""
    masked = fitness.astype(np.float64).copy()
    masked[elites] = np.inf
    return int(np.argmin(masked))


class PopulationState:
    """The population and its last fitness as a checkpointed part."""

    def __init__(self, learner: ERLLearner) -> None:
        self.learner = learner

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"members": self.learner.population, "fitness": self.learner.fitness}

    def array_specs(self) -> dict[str, ArraySpec]:
        pop = self.learner.population
        return {
            "members": ArraySpec(pop.shape, "float32", low=-MAX_WEIGHT, high=MAX_WEIGHT),
            "fitness": ArraySpec((len(pop),), "float64", neg_inf=True),
        }

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        fitness = np.asarray(arrays["fitness"])
        if np.isinf(fitness).any() and not np.isinf(fitness).all():
            raise CheckpointError(
                f"{where}: array '{prefix}/fitness' mixes -inf with finite values; expected every "
                f"member evaluated, or none (-inf)"
            )

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.learner.population = np.array(arrays["members"], dtype=np.float32)
        self.learner.fitness = np.array(arrays["fitness"], dtype=np.float64)


# ---- the learner ---------------------------------------------------------------------------------


class ERLLearner:
    """One generation per iteration: evaluate, train DDPG on everything seen, evolve, synchronise."""

    def __init__(self, config: ERLConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.runner = EpisodeRunner(config, env)
        self.observation_space, self.action_space = self.runner.observation_space, self.runner.action_space
        self.buffer = self.runner.buffer
        self.actor = make_actor(self.runner, config.hidden)  # the DDPG learner's actor
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.actor_step = GradientStep(
            self.actor.parameters(), config.actor_lr, max_grad_norm=config.max_grad_norm
        )
        self.critic = SharedCritic(self.runner, config.hidden, 1, config.critic_lr, config.max_grad_norm)
        self.member = copy.deepcopy(self.actor).requires_grad_(False)  # scratch: plays each member
        self.genome = Genome(self.actor.net.layout)
        # the population starts as independent draws of the default initialisation
        self.population = np.stack(
            [flat_of(make_actor(self.runner, config.hidden)) for _ in range(config.popsize)]
        )
        self.fitness = np.full(config.popsize, -np.inf)
        self.ou = OUNoise((1, self.runner.act_dim), config.ou_theta, config.ou_sigma, 1.0)
        self.global_step = 0
        self.updates = 0
        self.generation = 0
        self.budget_granularity = 1
        self.injected: int | None = None
        """The slot the learner's actor was copied into by the last generation (None: no copy)."""

    @property
    def progress(self) -> int:
        return self.global_step

    def iterate(self) -> dict[str, float]:
        cfg = self.cfg
        start = self.global_step
        fitness, complete = self._evaluate()
        self.injected = None
        metrics: dict[str, float] = {}
        if len(fitness):
            metrics = {
                "charts/episodic_return": float(fitness.mean()),
                "charts/fitness_max": float(fitness.max()),
            }
        if not complete:  # the budget ran out mid-generation: what was seen only feeds the buffer
            return metrics
        self.fitness = fitness
        remaining = cfg.total_timesteps - self.global_step
        if remaining > 0:
            self.ou.x[:] = 0.0
            noise = lambda: self.ou(self.rng, np.zeros(1, dtype=bool))  # noqa: E731
            seed = episode_seed(cfg.seed, self.generation, cfg.popsize)
            learner_return, steps, _ = self.runner.run(self.actor, seed, remaining, noise)
            self.global_step += steps
            metrics["charts/learner_return"] = learner_return
        if self.global_step >= cfg.learning_starts:
            metrics.update(self._train(round(cfg.gradient_steps_scale * (self.global_step - start))))
        self.population, elites = evolve(self.population, fitness, self.genome, cfg, self.rng)
        self.generation += 1
        if self.generation % cfg.sync_period == 0:
            self.injected = weakest_slot(fitness, elites)
            self.population[self.injected] = flat_of(self.actor)
        metrics.update({"generation": float(self.generation), "charts/buffer_size": float(len(self.buffer))})
        return metrics

    def _evaluate(self) -> tuple[np.ndarray, bool]:
        """Each member's mean return over its episodes, every episode cut at the budget; whether
        every member played all of its episodes whole (if not, the returns of those that did)."""
        cfg, xi = self.cfg, self.cfg.episodes_per_member
        returns: list[float] = []
        for i, member in enumerate(self.population):
            load_flat(self.member, member)
            total = 0.0
            for e in range(xi):
                remaining = cfg.total_timesteps - self.global_step
                if remaining <= 0:
                    return np.array(returns), False
                seed = episode_seed(cfg.seed, self.generation, i * xi + e)
                ret, steps, ended = self.runner.run(self.member, seed, remaining)
                self.global_step += steps
                if not ended and steps == remaining:
                    return np.array(returns), False
                total += ret
            returns.append(total / xi)
        return np.array(returns), True

    def _train(self, steps: int) -> dict[str, float]:
        """DDPG: one critic and one actor step per minibatch (no target smoothing, one critic)."""
        cfg = self.cfg
        q_losses, pi_losses = [], []
        for _ in range(steps):
            batch = sample_batch(self.buffer, self.rng, cfg.batch_size)
            q_losses.append(critic_step(self.critic, self.actor_target, batch, cfg.tau))
            pi_losses.append(
                actor_step(self.actor, self.actor_target, self.actor_step, self.critic, batch["obs"], cfg.tau)
            )
            self.updates += 1
        if not steps:
            return {}
        return {
            "loss/critic": float(torch.stack(q_losses).mean()),
            "loss/actor": float(torch.stack(pi_losses).mean()),
        }

    @property
    def champion(self) -> int:
        """The slot of the best member of the last evaluation (an elite, so still in its slot)."""
        return int(np.argmax(self.fitness))

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        load_flat(self.member, self.population[self.champion])
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self.member.act(x, None), state

    def eval_env(self, num_envs: int) -> Any:
        return self.runner.eval_env(num_envs)

    def checkpoint_parts(self) -> Parts:
        return Parts(
            modules={
                "actor": self.actor,
                "actor_target": self.actor_target,
                "critic": self.critic.q,
                "critic_target": self.critic.target,
            },
            optimizers={"actor": self.actor_step.optimizer, "critic": self.critic.step.optimizer},
            stateful={"replay": self.buffer, "population": PopulationState(self)},
            counters=("global_step", "updates", "generation"),
        )

    def summary_extra(self) -> dict[str, Any]:
        return {"generations": int(self.generation), "gradient_updates": int(self.updates)}

    def close(self) -> None:
        self.runner.close()
