"""ES policy search: any strategy over the flat parameters of a linear or MLP policy, fitness =
mean episode return, with observation normalisation, a run directory, checkpoints and resume.

Observation statistics are frozen within a generation and updated from every observation the
generation saw (summed in candidate order, so every backend computes the same numbers);
Salimans et al. 2017 normalise the same way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rlcanon.core import checkpoint as ckpt
from rlcanon.core.config import check_choice, check_positive, to_dict
from rlcanon.core.logger import MetricsLogger
from rlcanon.core.rundir import default_run_dir, read_config, write_config, write_summary
from rlcanon.errors import ConfigError
from rlcanon.es.backends import make_backend
from rlcanon.es.rollout import episode_seed, evaluate, obs_normalizer, spec_for


@dataclass(frozen=True)
class ESPolicyConfig:
    """Settings of an ES policy search. Defaults solve CartPole-v1 with a linear policy."""

    strategy: str = "openai-es"
    """Any ES strategy (openai-es, cma-es, snes, xnes, simple-es, cem)."""
    env_id: str = "CartPole-v1"
    """Gymnasium environment id."""
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
    eval_episodes: int = 10
    """Episodes of the mean policy in each evaluation."""
    eval_interval: int = 5
    """Evaluate the mean policy every this many generations."""
    target_return: float = 0.0
    """Stop once an evaluation reaches this mean return (0: never stop early)."""

    def __post_init__(self) -> None:
        from rlcanon.es import STRATEGIES

        check_choice("strategy", self.strategy, list(STRATEGIES))
        check_choice("backend", self.backend, ["local", "process", "ray"])
        for name in (
            "generations",
            "sigma0",
            "learning_rate",
            "episodes_per_candidate",
            "workers",
            "eval_episodes",
            "eval_interval",
        ):
            check_positive(name, getattr(self, name))
        if self.popsize < 2:
            raise ConfigError(f"popsize={self.popsize} is not allowed; it must be >= 2")


@dataclass
class ESPolicyResult:
    run_dir: Path
    summary: dict[str, Any]
    theta: np.ndarray
    curve: list[float]


def _strategy(cfg: ESPolicyConfig, x0: np.ndarray) -> Any:
    from rlcanon.es import make

    extra = (
        {"learning_rate": cfg.learning_rate, "weight_decay": cfg.weight_decay}
        if cfg.strategy == "openai-es"
        else {}
    )
    return make(cfg.strategy, x0, cfg.sigma0, seed=cfg.seed, popsize=cfg.popsize, **extra)


def search(
    cfg: ESPolicyConfig, run_dir: str | Path | None = None, resume: bool = False, progress: bool | None = None
) -> ESPolicyResult:
    from tqdm.auto import tqdm

    spec = spec_for(cfg.env_id, cfg.hidden, cfg.max_episode_steps, cfg.episodes_per_candidate)
    path = Path(run_dir) if run_dir else default_run_dir(f"es-{cfg.strategy}", cfg.env_id, cfg.seed)
    es = _strategy(cfg, spec.init(np.random.default_rng(cfg.seed)))
    obs_stats = np.zeros((2, spec.sizes[0]))
    obs_count = 0.0
    steps, clock, rows = 0, 0.0, None
    if resume:
        arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(path))
        es.load_state_dict(
            {**state["strategy"], **{k[9:]: v for k, v in arrays.items() if k.startswith("strategy/")}}
        )
        obs_stats, obs_count = arrays["obs_stats"], float(state["obs_count"])
        steps, clock, rows = int(state["steps"]), float(state["clock"]), int(state["metrics_rows"])
    else:
        path.mkdir(parents=True, exist_ok=True)
    write_config(path, "es-policy", to_dict(cfg))
    logger = MetricsLogger(
        path,
        [
            "generation",
            "charts/fitness_max",
            "charts/sigma",
            "eval/return_mean",
            "eval/return_std",
            "time/train_seconds",
        ],
        resume_rows=rows,
    )
    backend = make_backend(cfg.backend, spec, cfg.workers, cfg.ray_address or None)
    curve: list[float] = []
    bar = tqdm(
        total=cfg.generations,
        initial=es.generation,
        unit="gen",
        desc=f"{cfg.strategy} {cfg.env_id}",
        disable=None if progress is None else not progress,
    )

    def norm() -> tuple[np.ndarray, np.ndarray]:
        return obs_normalizer(obs_stats, obs_count, cfg.normalize_obs)

    def save() -> None:
        st = es.state_dict()
        arrays = {f"strategy/{k}": v for k, v in st.items() if isinstance(v, np.ndarray)}
        meta = {k: v for k, v in st.items() if not isinstance(v, np.ndarray)}
        ckpt.save_checkpoint(
            path,
            es.generation,
            {**arrays, "obs_stats": obs_stats},
            {
                "algo": "es-policy",
                "strategy": meta,
                "obs_count": obs_count,
                "steps": steps,
                "clock": clock,
                "metrics_rows": logger.rows,
            },
        )

    try:
        while es.generation < cfg.generations:
            t0 = time.perf_counter()
            mean_o, std_o = norm()
            job = {
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
            results = sorted(backend.evaluate(job), key=lambda r: r[0])
            fitness = np.array([r[1] for r in results])
            if pop is None:
                from rlcanon.es.openai_es import population_from_seeds

                pop = population_from_seeds(es.mean, es.sigma, es.seeds)
            es.tell(pop, fitness)
            for _, _, n, stats in results:  # candidate order: the same sums on every backend
                steps += n
                obs_stats = obs_stats + stats
                obs_count += n
            clock += time.perf_counter() - t0
            curve.append(float(fitness.mean()))
            row = {
                "global_step": steps,
                "generation": es.generation,
                "charts/episodic_return": curve[-1],
                "charts/fitness_max": float(fitness.max()),
                "charts/sigma": float(es.sigma),
                "time/sps": steps / max(clock, 1e-9),
                "time/train_seconds": clock,
            }
            done = False
            if es.generation % cfg.eval_interval == 0 or es.generation == cfg.generations:
                ev = _eval_mean(spec, es.mean, cfg, norm(), es.generation)
                row.update({"eval/return_mean": float(ev.mean()), "eval/return_std": float(ev.std())})
                done = bool(cfg.target_return) and ev.mean() >= cfg.target_return
            logger.log(row)
            bar.update(1)
            bar.set_postfix(fit=f"{curve[-1]:.1f}", refresh=False)
            if es.generation % cfg.eval_interval == 0:
                save()
            if done:
                break
    finally:
        bar.close()
        backend.close()
    save()
    _save_torch_policy(path, spec, es.mean)
    logger.close()
    final = _eval_mean(spec, es.mean, cfg, norm(), 10**6)  # seeds apart from the periodic evaluations
    summary = {
        "algo": f"es-{cfg.strategy}",
        "env_id": cfg.env_id,
        "seed": cfg.seed,
        "generations": es.generation,
        "total_timesteps": steps,
        "evaluations": es.evaluations,
        "wall_time_s": round(clock, 3),
        "sps": round(steps / max(clock, 1e-9), 1),
        "eval_return_mean": float(final.mean()),
        "eval_return_std": float(final.std()),
        "eval_episodes": len(final),
        "backend": cfg.backend,
        "workers": cfg.workers,
    }
    write_summary(path, summary)
    return ESPolicyResult(path, summary, es.mean.copy(), curve)


def _eval_mean(
    spec: Any, theta: np.ndarray, cfg: ESPolicyConfig, norm: tuple[np.ndarray, np.ndarray], generation: int
) -> np.ndarray:
    seeds = [episode_seed(cfg.seed + 777, generation, 0, e) for e in range(cfg.eval_episodes)]
    return np.array([evaluate(spec, theta, [s], *norm)[0] for s in seeds])


def _save_torch_policy(path: Path, spec: Any, theta: np.ndarray) -> None:
    """Also write the mean policy as torch weights (safetensors) for use outside rlcanon."""
    from safetensors.torch import save_file

    from rlcanon.es.rollout import to_torch

    state = {k: v.contiguous() for k, v in to_torch(spec, theta).state_dict().items()}
    tmp = path / ".policy.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "rlcanon-es-policy", "sizes": str(list(spec.sizes))})
    tmp.replace(path / "policy.safetensors")


def evaluate_es_run(run_dir: str | Path, episodes: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Evaluate the mean policy of an ES run's last checkpoint (same keys as summary.json)."""
    from rlcanon.core.config import from_dict

    record = read_config(run_dir)
    cfg = from_dict(ESPolicyConfig, record["config"])
    spec = spec_for(cfg.env_id, cfg.hidden, cfg.max_episode_steps, 1)
    arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    norm = obs_normalizer(arrays["obs_stats"], float(state["obs_count"]), cfg.normalize_obs)
    n = episodes or cfg.eval_episodes
    seeds = [episode_seed(cfg.seed + 555, seed, 0, e) for e in range(n)]
    returns = np.array([evaluate(spec, arrays["strategy/mean"], [s], *norm)[0] for s in seeds])
    return {
        "run_dir": str(run_dir),
        "env_id": cfg.env_id,
        "checkpoint_step": int(state["step"]),
        "eval_return_mean": float(returns.mean()),
        "eval_return_std": float(returns.std()),
        "eval_episodes": n,
    }


def resume_search(run_dir: str | Path, progress: bool | None = None) -> ESPolicyResult:
    from rlcanon.core.config import from_dict

    record = read_config(run_dir)
    if record["algo"] != "es-policy":
        raise ConfigError(f"{run_dir} is not an ES policy-search run")
    return search(from_dict(ESPolicyConfig, record["config"]), run_dir, resume=True, progress=progress)
