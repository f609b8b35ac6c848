"""ES policy search: any strategy over the flat parameters of a linear or MLP policy, fitness =
mean episode return, with observation normalisation. It runs in the one run harness
(:mod:`rlcanon.run.harness`): run directory, logging, checkpoints, resume and evaluation are the
same as for deep RL.

Observation statistics are frozen within a generation and updated from every observation the
generation saw (summed in candidate order, so every backend computes the same numbers);
Salimans et al. 2017 normalise the same way.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rlcanon.core.config import check_choice, check_int, check_memory, check_positive, check_range
from rlcanon.core.validate import MAX_INT, ArraySpec
from rlcanon.envs.factory import EnvSpecLike, make_vec_env
from rlcanon.errors import ConfigError, TrainingError
from rlcanon.es.backends import make_backend, ray_host_port
from rlcanon.es.rollout import obs_normalizer, spec_for
from rlcanon.es.state import StrategyState
from rlcanon.run.config import MAX_BUDGET, BaseConfig, check_hidden
from rlcanon.run.state import Parts

MAX_WORKERS = max(4 * (os.cpu_count() or 1), 8)


@dataclass(frozen=True)
class ESPolicyConfig(BaseConfig):
    """Settings of an ES policy search. Defaults solve CartPole-v1 with a linear policy."""

    BUDGET: ClassVar[str] = "generations"
    UNIT: ClassVar[str] = "generation"

    strategy: str = "openai-es"
    """Any ask/tell strategy of rlcanon.es.STRATEGIES (cma-es, bipop-cma-es, openai-es, snes, xnes, simple-es,
    cem, hill-climbing, simulated-annealing, nelder-mead; rlcanon list shows them)."""
    seed: int = 0
    """Seed of the strategy, the initial policy and every episode."""
    generations: int = 60
    """Generations to run (a stop at target_return may end the run earlier)."""
    popsize: int = 40
    """Candidates per generation (OpenAI-ES: mirrored pairs, so even)."""
    sigma0: float = 0.1
    """Initial (OpenAI-ES: fixed) parameter noise."""
    learning_rate: float = 0.05
    """OpenAI-ES Adam step size."""
    weight_decay: float = 0.005
    """OpenAI-ES L2 coefficient (Salimans et al. 2017)."""
    hidden: tuple[int, ...] = ()
    """Hidden layer sizes of the tanh MLP policy; () is a linear policy."""
    episodes_per_candidate: int = 1
    """Episodes averaged into each candidate's fitness."""
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
    eval_interval: int = 5
    """Evaluate the mean policy every this many generations."""
    target_return: float = 0.0
    """Stop once an evaluation reaches this mean return (0: never stop early)."""

    def validate(self) -> None:
        from rlcanon.es import STRATEGIES

        check_choice("strategy", self.strategy, list(STRATEGIES))
        check_choice("backend", self.backend, ["local", "process", "ray"])
        check_int("generations", self.generations, 1, MAX_BUDGET)
        check_int("popsize", self.popsize, 2, 100_000)
        check_int("episodes_per_candidate", self.episodes_per_candidate, 1, 10_000)
        check_int("max_episode_steps", self.max_episode_steps, 0, 10**9)
        check_int("workers", self.workers, 1, MAX_WORKERS)
        for name in ("sigma0", "learning_rate"):
            check_positive(name, getattr(self, name))
        check_range("sigma0", self.sigma0, 0.0, 1e6)
        check_range("learning_rate", self.learning_rate, 0.0, 100.0)
        check_range("weight_decay", self.weight_decay, 0.0, 1.0)
        check_range("target_return", self.target_return, -1e12, 1e12)
        check_hidden("hidden", self.hidden)
        if self.strategy == "openai-es" and self.popsize % 2:
            raise ConfigError(f"popsize={self.popsize} is not allowed for openai-es; it must be even")
        if self.ray_address and self.backend != "ray":
            raise ConfigError(
                f"ray_address is set but backend={self.backend!r}; add --backend ray, or drop it"
            )
        ray_host_port(self.ray_address)


class ObsStats:
    """Sums of observations [sum, sum of squares] and their count (a checkpointed part)."""

    def __init__(self, dim: int) -> None:
        self.stats = np.zeros((2, dim))
        self.count = 0.0

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"stats": self.stats, "count": np.array(self.count)}

    def array_specs(self) -> dict[str, ArraySpec]:
        return {
            "stats": ArraySpec(self.stats.shape, "float64"),
            "count": ArraySpec((), "float64", low=0.0, high=float(MAX_INT), integer=True),
        }

    def check_state_arrays(self, arrays: dict[str, np.ndarray], where: str, prefix: str) -> None:
        """Sums that some observations could have: sums of squares >= 0 and, by Cauchy-Schwarz,
        sum^2 <= count * sum of squares (so no sums at all with a count of 0)."""
        from rlcanon.errors import CheckpointError

        stats, count = np.asarray(arrays["stats"]), float(arrays["count"])
        if (stats[1] < 0).any():
            raise CheckpointError(
                f"{where}: array '{prefix}/stats' holds a negative sum of squares, {stats[1].min()}; "
                f"expected >= 0"
            )
        with np.errstate(over="ignore", invalid="ignore"):
            excess = stats[0] ** 2 - count * stats[1]
            scale = np.abs(count * stats[1])
        if not (np.isfinite(excess) & (excess <= 1e-6 * scale + 1e-12)).all():
            raise CheckpointError(
                f"{where}: array '{prefix}/stats' holds sums that {count:g} observations cannot have; "
                f"expected sum^2 <= count * sum of squares ('{prefix}/count')"
            )

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.check_state_arrays(arrays, "observation statistics", "obs")
        self.stats, self.count = np.array(arrays["stats"]), float(arrays["count"])


class ESLearner:
    """One generation per iteration: ask, evaluate on the backend, tell."""

    def __init__(self, config: ESPolicyConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        from rlcanon.es import make

        if not isinstance(env, str):
            raise ConfigError("ES policy search needs an env id (workers rebuild the env from it)")
        self.cfg = config
        self.spec = spec_for(
            env,
            config.hidden,
            config.max_episode_steps,
            config.episodes_per_candidate,
            config.env_kwargs,
            config.wrappers,
        )
        probe = self.spec.make_env()
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        n = self.spec.n_params
        if config.strategy in ("cma-es", "xnes"):  # full covariance: several n x n float64 matrices
            check_memory("hidden", 6 * 8 * n * n)
        x0 = self.spec.init(np.random.default_rng(config.seed))
        extra = (
            {"learning_rate": config.learning_rate, "weight_decay": config.weight_decay}
            if config.strategy == "openai-es"
            else {}
        )
        self.es = make(config.strategy, x0, config.sigma0, seed=config.seed, popsize=config.popsize, **extra)
        self.obs = ObsStats(self.spec.sizes[0])
        self.global_step = 0
        self.budget_granularity = 1
        self.finished = False
        self._backend: Any = None

    @property
    def progress(self) -> int:
        return int(self.es.generation)

    def _norm(self) -> tuple[np.ndarray, np.ndarray]:
        return obs_normalizer(self.obs.stats, self.obs.count, self.cfg.normalize_obs)

    def iterate(self) -> dict[str, float]:
        from rlcanon.es.openai_es import population_from_seeds

        cfg, es = self.cfg, self.es
        if self._backend is None:
            self._backend = make_backend(cfg.backend, self.spec, cfg.workers, cfg.ray_address or None)
        mean_o, std_o = self._norm()
        job: dict[str, Any] = {
            "popsize": es.popsize,
            "run_seed": cfg.seed,
            "generation": es.generation,
            "obs_mean": mean_o,
            "obs_std": std_o,
        }
        if cfg.strategy == "openai-es":
            pop = None
            job.update(noise_seeds=es.ask_seeds(), mean=es.mean, sigma=es.sigma)
        else:
            pop = es.ask()
            job["population"] = pop
        results = sorted(self._backend.evaluate(job), key=lambda r: r[0])
        fitness = np.array([r[1] for r in results])
        if pop is None:
            pop = population_from_seeds(es.mean, es.sigma, es.seeds)
        try:
            es.tell(pop, fitness)
        except np.linalg.LinAlgError as exc:  # a search distribution that degenerated
            raise TrainingError(f"the {cfg.strategy} search distribution degenerated ({exc})") from None
        for _, _, n, stats in results:  # candidate order: the same sums on every backend
            self.global_step += n
            self.obs.stats = self.obs.stats + stats
            self.obs.count += n
        return {
            "generation": float(es.generation),
            "charts/episodic_return": float(fitness.mean()),
            "charts/fitness_max": float(fitness.max()),
            "charts/sigma": float(es.sigma),
        }

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        mean_o, std_o = self._norm()
        x = (np.asarray(obs, dtype=np.float64).reshape(len(obs), -1) - mean_o) / std_o
        return np.stack([np.asarray(self.spec.act(self.es.mean, row)) for row in x]), state

    def eval_env(self, num_envs: int) -> Any:
        cfg = self.cfg
        limit = (f"time-limit:max_episode_steps={cfg.max_episode_steps}",) if cfg.max_episode_steps else ()
        return make_vec_env(cfg.env_id, num_envs, env_kwargs=cfg.env_kwargs, wrappers=(*cfg.wrappers, *limit))

    def on_evaluation(self, mean_return: float) -> None:
        if self.cfg.target_return and mean_return >= self.cfg.target_return:
            self.finished = True

    def checkpoint_parts(self) -> Parts:
        strategy = StrategyState(self.es)
        return Parts(
            stateful={"strategy": strategy, "obs": self.obs},
            counters=("global_step",),
            json_parts={"strategy": strategy},
        )

    def summary_extra(self) -> dict[str, Any]:
        return {
            "evaluations": int(self.es.evaluations),
            "backend": self.cfg.backend,
            "workers": self.cfg.workers,
        }

    def on_finish(self, path: Path) -> None:
        """Also write the mean policy as torch weights (safetensors) for use outside rlcanon."""
        from safetensors.torch import save

        from rlcanon.es.rollout import to_torch
        from rlcanon.run.checkpoint import atomic_write_bytes

        state = {k: v.contiguous() for k, v in to_torch(self.spec, self.es.mean).state_dict().items()}
        meta = {"format": "rlcanon-es-policy", "sizes": str(list(self.spec.sizes))}
        atomic_write_bytes(path / "policy.safetensors", save(state, metadata=meta))

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()
            self._backend = None


def search(
    cfg: ESPolicyConfig, run_dir: str | Path | None = None, progress: bool | None = None, **kwargs: Any
) -> Any:
    """Run an ES policy search in the run harness (what ``rlcanon es STRATEGY --env-id`` does)."""
    from rlcanon.run.harness import train_run

    return train_run("es-policy", cfg, ESLearner, run_dir=run_dir, progress=progress, **kwargs)
