"""Novelty search with evolution strategies: NS-ES, NSR-ES and NSRA-ES (Conti, Madhavan, Petroski
Such, Lehman, Stanley & Clune 2018, "Improving Exploration in Evolution Strategies for Deep
Reinforcement Learning via a Population of Novelty-Seeking Agents", Algorithms 1-3).

A meta-population of M Gaussian ES agents (OpenAI-ES style: mirrored noise, centred ranks, L2
decay, an Adam step) shares one archive of behaviour characterisations (:mod:`rlcanon.es.archive`).
Each generation:

1. pick agent m with probability N(theta_m, A) / sum_j N(theta_j, A);
2. evaluate theta_m +- sigma eps_i: fitness F_i (the episode return) and novelty N_i = N(b_i, A);
3. step theta_m along (1 / (n sigma)) sum_i s_i eps_i, where the score s_i is
   NS-ES   rank(N_i)                              (Algorithm 1, novelty only),
   NSR-ES  (rank(N_i) + rank(F_i)) / 2            (Algorithm 2),
   NSRA-ES w rank(F_i) + (1 - w) rank(N_i)        (Algorithm 3);
4. evaluate the new theta_m and add its BC to the archive.

NSRA-ES adapts w: it starts at 1 (fitness only); after ``stall_generations`` generations without a
new best fitness it falls by ``weight_delta``, and each new best raises it by ``weight_delta``
(kept in [0, 1]). The policy acted with is the best evaluated mean (the paper selects the best
policy at the end). Fitness is maximised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rlcanon.core.config import check_choice, check_int, check_positive, check_range
from rlcanon.envs.factory import EnvSpecLike, make_vec_env
from rlcanon.errors import ConfigError
from rlcanon.es.archive import BEHAVIOURS, MetaPopulation, behaviour_function, selection_probabilities
from rlcanon.es.backends import make_backend, ray_host_port
from rlcanon.es.openai_es import noise
from rlcanon.es.policy import MAX_WORKERS, ObsStats
from rlcanon.es.rollout import obs_normalizer, spec_for
from rlcanon.es.shaping import centered_ranks
from rlcanon.run.config import MAX_BUDGET, BaseConfig, check_hidden
from rlcanon.run.state import Parts

MEAN_STREAM = 2**32
"""Offset of the episode seeds of mean-policy evaluations (candidates use the run seed itself)."""


@dataclass(frozen=True)
class NoveltyConfig(BaseConfig):
    """Settings shared by NS-ES, NSR-ES and NSRA-ES; defaults are set for the U-trap."""

    BUDGET: ClassVar[str] = "generations"
    UNIT: ClassVar[str] = "generation"
    VARIANT: ClassVar[str] = "ns"

    env_id: str = "rlcanon/UTrap-v0"
    """Gymnasium environment id (continuous or discrete actions, vector observations)."""
    generations: int = 150
    """Generations to run; each updates one agent of the meta-population."""
    meta_population: int = 5
    """Agents M, each its own ES (Conti et al. 2018: M = 5 for Humanoid)."""
    popsize: int = 20
    """Candidates per generation, in mirrored pairs (so even); the paper's 1000 suit a cluster."""
    sigma: float = 0.1
    """Parameter noise (the paper's 0.02 is for 256x256 nets; a 16-unit net on the U-trap needs more)."""
    learning_rate: float = 0.05
    """Adam step size (the paper uses 0.01 with far larger populations)."""
    weight_decay: float = 0.005
    """L2 coefficient (Salimans et al. 2017; Conti et al. 2018 keep it)."""
    k_nearest: int = 10
    """Archive neighbours in the novelty N(theta, A) (Conti et al. 2018: k = 10)."""
    behaviour: str = "final-xy"
    """Behaviour characterisation: final-xy (the env's info['bc'], else the first two final
    observations) or final-obs (the whole final observation)."""
    hidden: tuple[int, ...] = (16,)
    """Hidden layer sizes of the tanh MLP policy; () is a linear policy."""
    episodes_per_candidate: int = 1
    """Episodes averaged into each candidate's fitness and BC."""
    max_episode_steps: int = 0
    """Step limit per episode (0: the env's own)."""
    normalize_obs: bool = True
    """Normalise observations with running statistics."""
    backend: str = "local"
    """Where candidates are evaluated: local (a process pool when workers > 1), process or ray."""
    workers: int = 1
    """Worker processes (process / ray backends)."""
    ray_address: str = ""
    """Ray cluster address ('' starts a local Ray)."""
    eval_interval: int = 10
    """Evaluate the best policy every this many generations."""
    initial_weight: float = 1.0
    """NSRA-ES: the starting fitness weight w (Conti et al. 2018: 1.0, fitness only)."""
    weight_delta: float = 0.05
    """NSRA-ES: the step of w on a new best or a stall (Conti et al. 2018: 0.05)."""
    stall_generations: int = 10
    """NSRA-ES: generations without a new best fitness before w falls (t_max; Conti et al. 2018: 10)."""

    def validate(self) -> None:
        check_int("generations", self.generations, 1, min(MAX_BUDGET, 900_000))
        check_int("meta_population", self.meta_population, 1, 1000)
        check_int("popsize", self.popsize, 2, 100_000)
        if self.popsize % 2:
            raise ConfigError(f"popsize={self.popsize} is not allowed; it must be even (mirrored pairs)")
        check_int("k_nearest", self.k_nearest, 1, 100_000)
        check_int("episodes_per_candidate", self.episodes_per_candidate, 1, 10_000)
        check_int("max_episode_steps", self.max_episode_steps, 0, 10**9)
        check_int("workers", self.workers, 1, MAX_WORKERS)
        check_int("stall_generations", self.stall_generations, 1, 10**9)
        check_choice("behaviour", self.behaviour, list(BEHAVIOURS))
        check_choice("backend", self.backend, ["local", "process", "ray"])
        for name in ("sigma", "learning_rate"):
            check_positive(name, getattr(self, name))
        check_range("sigma", self.sigma, 0.0, 1e6)
        check_range("learning_rate", self.learning_rate, 0.0, 100.0)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("initial_weight", self.initial_weight, 0.0, 1.0)
        check_range("weight_delta", self.weight_delta, 0.0, 1.0)
        check_hidden("hidden", self.hidden)
        if self.ray_address and self.backend != "ray":
            raise ConfigError(
                f"ray_address is set but backend={self.backend!r}; add --backend ray, or drop it"
            )
        ray_host_port(self.ray_address)


@dataclass(frozen=True)
class NSESConfig(NoveltyConfig):
    """NS-ES: the ES gradient of novelty alone (Conti et al. 2018, Algorithm 1)."""

    VARIANT: ClassVar[str] = "ns"


@dataclass(frozen=True)
class NSRESConfig(NoveltyConfig):
    """NSR-ES: the mean of the novelty and fitness ranks (Conti et al. 2018, Algorithm 2)."""

    VARIANT: ClassVar[str] = "nsr"


@dataclass(frozen=True)
class NSRAESConfig(NoveltyConfig):
    """NSRA-ES: w * fitness + (1 - w) * novelty ranks with an adaptive w (Conti et al. 2018,
    Algorithm 3)."""

    VARIANT: ClassVar[str] = "nsra"


# ---- the maths: scores, gradient, Adam, the w schedule ------------------------------------


def shaped_scores(variant: str, fitness: np.ndarray, novelty: np.ndarray, weight: float) -> np.ndarray:
    """Each candidate's score s_i from centred ranks of fitness and novelty (Algorithms 1-3)."""
    rank_novelty = centered_ranks(np.asarray(novelty, dtype=np.float64))
    if variant == "ns":
        return rank_novelty
    rank_fitness = centered_ranks(np.asarray(fitness, dtype=np.float64))
    if variant == "nsr":
        return (rank_novelty + rank_fitness) / 2
    return weight * rank_fitness + (1 - weight) * rank_novelty


def es_gradient(scores: np.ndarray, eps: np.ndarray, sigma: float) -> np.ndarray:
    """(1 / (n sigma)) sum_i s_i eps_i over mirrored pairs: rows 2i and 2i+1 are +eps_i and -eps_i,
    so pair i contributes (s_2i - s_2i+1) eps_i (Salimans et al. 2017)."""
    return (scores[0::2] - scores[1::2]) @ eps / (len(scores) * sigma)  # type: ignore[no-any-return]


def adam_ascent(
    theta: np.ndarray, m: np.ndarray, v: np.ndarray, t: int, g: np.ndarray, lr: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One Adam step up the gradient g at step t >= 1 (Kingma & Ba 2015, Algorithm 1; beta1 0.9,
    beta2 0.999, eps 1e-8); returns the new theta, m and v."""
    m = 0.9 * m + 0.1 * g
    v = 0.999 * v + 0.001 * g * g
    step = lr * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
    return theta + step, m, v


def adapt_weight(
    weight: float, stall: int, best: float, fitness: float, delta: float, stall_generations: int
) -> tuple[float, int, float]:
    """NSRA-ES's schedule (Conti et al. 2018, Sec. 3.3): a new best fitness raises w by delta;
    ``stall_generations`` generations without one lower it by delta. Returns (w, stall, best)."""
    if fitness > best:
        return min(1.0, weight + delta), 0, fitness
    stall += 1
    if stall >= stall_generations:
        return max(0.0, weight - delta), 0, best
    return weight, stall, best


# ---- the learner ------------------------------------------------------------------------------


class NoveltyLearner:
    """One generation per iteration: choose an agent by novelty, evaluate its mirrored
    perturbations (fitness and BC), step it along the variant's scores, archive its new BC."""

    def __init__(self, config: NoveltyConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        if not isinstance(env, str):
            raise ConfigError("novelty search needs an env id (workers rebuild the env from it)")
        self.cfg, self.variant = config, type(config).VARIANT
        self.spec = spec_for(
            env,
            config.hidden,
            config.max_episode_steps,
            config.episodes_per_candidate,
            config.env_kwargs,
            config.wrappers,
        )
        self.behaviour = behaviour_function(config.behaviour)
        probe = self.spec.make_env()
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        obs, info = probe.reset(seed=config.seed)
        bc_dim = len(np.asarray(self.behaviour(np.asarray(obs, dtype=np.float64).reshape(-1), info)))
        probe.close()
        init_rng = np.random.default_rng([config.seed, 3])
        x0 = np.stack([self.spec.init(init_rng) for _ in range(config.meta_population)])
        self.meta = MetaPopulation(x0, bc_dim, config.seed, config.initial_weight)
        self.obs = ObsStats(self.spec.sizes[0])
        self.global_step = 0
        self.budget_granularity = 1
        self._backend: Any = None

    @property
    def progress(self) -> int:
        return self.meta.generation

    def _norm(self) -> tuple[np.ndarray, np.ndarray]:
        return obs_normalizer(self.obs.stats, self.obs.count, self.cfg.normalize_obs)

    def _evaluate(self, job: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Fitness and BC of each candidate of a job; observation statistics and steps are added
        in candidate order, so every backend computes the same numbers."""
        if self._backend is None:
            cfg = self.cfg
            self._backend = make_backend(cfg.backend, self.spec, cfg.workers, cfg.ray_address or None)
        mean_o, std_o = self._norm()
        job.update(obs_mean=mean_o, obs_std=std_o, behaviour=self.behaviour)
        results = sorted(self._backend.evaluate(job), key=lambda r: r[0])
        for _, _, n, stats, _ in results:
            self.global_step += n
            self.obs.stats = self.obs.stats + stats
            self.obs.count += n
        return np.array([r[1] for r in results]), np.stack([r[4] for r in results])

    def _evaluate_means(self, thetas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        job = {
            "popsize": len(thetas),
            "run_seed": self.cfg.seed + MEAN_STREAM,
            "generation": self.meta.generation,
            "population": thetas,
        }
        return self._evaluate(job)

    def _start(self) -> None:
        """Algorithm 1's first lines: every agent's initial BC joins the archive."""
        fitness, bcs = self._evaluate_means(self.meta.means)
        for agent in range(self.meta.agents):
            self.meta.record(agent, self.meta.means[agent], float(fitness[agent]), bcs[agent])

    def iterate(self) -> dict[str, float]:
        cfg, meta = self.cfg, self.meta
        if len(meta.archive) == 0:
            self._start()
        agent_novelty = meta.archive.novelty(meta.agent_bc, cfg.k_nearest)
        probabilities = selection_probabilities(agent_novelty)
        m = int(meta.selection_rng.choice(meta.agents, p=probabilities))
        seeds = meta.noise_rngs[m].integers(0, 2**31 - 1, cfg.popsize // 2)
        job = {
            "popsize": cfg.popsize,
            "run_seed": cfg.seed,
            "generation": meta.generation,
            "noise_seeds": seeds,
            "mean": meta.means[m],
            "sigma": cfg.sigma,
        }
        fitness, bcs = self._evaluate(job)
        novelty = meta.archive.novelty(bcs, cfg.k_nearest)
        scores = shaped_scores(self.variant, fitness, novelty, meta.weight)
        g = (
            es_gradient(scores, noise(seeds, len(meta.means[m])), cfg.sigma)
            - cfg.weight_decay * meta.means[m]
        )
        meta.adam_steps[m] += 1
        meta.means[m], meta.adam_m[m], meta.adam_v[m] = adam_ascent(
            meta.means[m], meta.adam_m[m], meta.adam_v[m], int(meta.adam_steps[m]), g, cfg.learning_rate
        )
        mean_fitness, mean_bc = self._evaluate_means(meta.means[m][None])
        best_before = meta.best_fitness
        meta.record(m, meta.means[m], float(mean_fitness[0]), mean_bc[0])
        if self.variant == "nsra":
            meta.weight, meta.stall, _ = adapt_weight(
                meta.weight,
                meta.stall,
                best_before,
                float(mean_fitness[0]),
                cfg.weight_delta,
                cfg.stall_generations,
            )
        meta.generation += 1
        return self._metrics(m, probabilities, fitness, novelty, float(mean_fitness[0]))

    def _metrics(
        self,
        agent: int,
        probabilities: np.ndarray,
        fitness: np.ndarray,
        novelty: np.ndarray,
        mean_fitness: float,
    ) -> dict[str, float]:
        meta = self.meta
        best_bc = np.concatenate([meta.best_bc, np.zeros(2)])  # a 1-D BC logs y = 0
        return {
            "generation": float(meta.generation),
            "charts/episodic_return": float(fitness.mean()),
            "charts/fitness_max": float(fitness.max()),
            "novelty/mean": float(novelty.mean()),
            "novelty/max": float(novelty.max()),
            "novelty/agent": float(agent),
            "novelty/agent_probability": float(probabilities[agent]),
            "novelty/archive_size": float(len(meta.archive)),
            "novelty/weight": float(meta.weight),
            "novelty/mean_fitness": mean_fitness,
            "novelty/best_fitness": float(meta.best_fitness),
            "novelty/best_x": float(best_bc[0]),
            "novelty/best_y": float(best_bc[1]),
        }

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """Actions of the best policy found (the best evaluated mean)."""
        mean_o, std_o = self._norm()
        x = (np.asarray(obs, dtype=np.float64).reshape(len(obs), -1) - mean_o) / std_o
        return np.stack([np.asarray(self.spec.act(self.meta.best_theta, row)) for row in x]), state

    def eval_env(self, num_envs: int) -> Any:
        cfg = self.cfg
        limit = (f"time-limit:max_episode_steps={cfg.max_episode_steps}",) if cfg.max_episode_steps else ()
        return make_vec_env(cfg.env_id, num_envs, env_kwargs=cfg.env_kwargs, wrappers=(*cfg.wrappers, *limit))

    def checkpoint_parts(self) -> Parts:
        return Parts(
            stateful={"meta": self.meta, "obs": self.obs},
            counters=("global_step",),
            json_parts={"meta": self.meta},
        )

    def summary_extra(self) -> dict[str, Any]:
        meta = self.meta
        return {
            "variant": self.variant,
            "archive_size": len(meta.archive),
            "best_fitness": float(meta.best_fitness) if np.isfinite(meta.best_fitness) else None,
            "best_behaviour": [float(v) for v in meta.best_bc],
            "weight": float(meta.weight),
        }

    def on_finish(self, path: Path) -> None:
        """Also write the best policy as torch weights (safetensors) for use outside rlcanon."""
        from safetensors.torch import save

        from rlcanon.es.rollout import to_torch
        from rlcanon.run.checkpoint import atomic_write_bytes

        net = to_torch(self.spec, self.meta.best_theta)
        state = {k: v.contiguous() for k, v in net.state_dict().items()}
        meta = {"format": "rlcanon-es-policy", "sizes": str(list(self.spec.sizes))}
        atomic_write_bytes(path / "policy.safetensors", save(state, metadata=meta))

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None
