"""Operations on finished or interrupted run directories: load, evaluate, resume."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from rlcanon.core import checkpoint as ckpt
from rlcanon.core.config import from_dict
from rlcanon.core.run import TrainResult
from rlcanon.core.rundir import read_config
from rlcanon.core.seeding import seed_everything
from rlcanon.core.threads import set_torch_threads
from rlcanon.envs.evaluate import evaluate
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.registry import get_algo


def load_config(run_dir: str | Path, **overrides: Any) -> tuple[str, Any]:
    """(algo name, config) of a run directory, with the ``overrides`` that are not None applied
    (checked like any config: a bad value raises ConfigError)."""
    import dataclasses

    record = read_config(run_dir)
    entry = get_algo(record["algo"])
    try:
        config = from_dict(entry.config, record["config"])
    except (TypeError, ConfigError) as exc:
        raise CheckpointError(f"{run_dir}/config.json does not match this rlcanon ({exc})") from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    return record["algo"], dataclasses.replace(config, **changes) if changes else config


def load_agent(run_dir: str | Path, device: str | None = None) -> tuple[Any, Any, dict[str, Any]]:
    """(agent with the latest checkpoint loaded, config, checkpoint state); ``device`` overrides the
    run's torch device (a run trained on a GPU loads on a CPU-only machine with ``device='cpu'``)."""
    algo, config = load_config(run_dir, device=device)
    set_torch_threads(config.torch_threads)
    arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(run_dir))
    if state.get("algo") != algo:
        raise CheckpointError(f"checkpoint in {run_dir} is for {state.get('algo')!r}, config says {algo!r}")
    agent = get_algo(algo).agent(config, config.env_id, seed_everything(config.seed))
    agent.load_state(arrays, state["agent"])
    return agent, config, state


def evaluate_run(
    run_dir: str | Path, episodes: int | None = None, seed: int | None = None, device: str | None = None
) -> dict[str, Any]:
    """Evaluate the latest checkpoint with the deterministic policy; same keys as summary.json.
    Works for deep RL, ES policy-search and tabular run directories."""
    kind = read_config(run_dir)["algo"]
    if kind == "es-policy":
        from rlcanon.es.policy import evaluate_es_run

        return evaluate_es_run(run_dir, episodes, seed or 0)
    if kind == "tabular":
        from rlcanon.tabular.learn import evaluate_tabular_run

        return evaluate_tabular_run(run_dir, episodes, seed or 0)
    agent, config, state = load_agent(run_dir, device)
    n = episodes if episodes is not None else config.eval_episodes
    if n < 1:
        raise ConfigError(f"episodes={n} is not allowed; it must be >= 1")
    eval_seed = seed if seed is not None else config.seed + 20_000
    returns = evaluate(agent.act_eval, config.env_id, n, eval_seed)
    return {
        "run_dir": str(run_dir),
        "env_id": config.env_id,
        "checkpoint_step": int(state["step"]),
        "eval_return_mean": float(np.mean(returns)),
        "eval_return_std": float(np.std(returns)),
        "eval_episodes": len(returns),
    }


def resume(
    run_dir: str | Path,
    total_timesteps: int | None = None,
    progress: bool | None = None,
    device: str | None = None,
) -> TrainResult:
    """Continue a run from its last checkpoint, optionally to a new total step count or on another
    torch device (a run begun on a GPU can go on on the CPU, and the reverse)."""
    algo, config = load_config(run_dir, total_timesteps=total_timesteps, device=device)
    return get_algo(algo).train(config, run_dir=run_dir, resume=True, progress=progress)
