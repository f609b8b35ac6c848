"""The training harness shared by every deep RL algorithm: run directory, logging, progress bar,
periodic evaluation and checkpoints, resume, NaN guard and the final summary. An algorithm only
provides an :class:`Agent`; this file holds everything around it, once."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from rlcanon.core import checkpoint as ckpt
from rlcanon.core.config import check_choice, check_positive, to_dict
from rlcanon.core.device import check_device
from rlcanon.core.logger import MetricsLogger
from rlcanon.core.rundir import default_run_dir, write_config, write_summary
from rlcanon.core.seeding import restore_rng_state, rng_state, seed_everything
from rlcanon.core.threads import set_torch_threads
from rlcanon.envs.evaluate import evaluate
from rlcanon.envs.factory import EnvSpecLike, env_label
from rlcanon.errors import ConfigError, TrainingError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class RunConfig:
    """Settings every training run has."""

    env_id: str = "CartPole-v1"
    """Gymnasium environment id (any registered id; Atari ids need the 'atari' extra)."""
    seed: int = 1
    """Seed for the networks, exploration and the environments."""
    total_timesteps: int = 100_000
    """Environment steps to train for (summed over parallel envs)."""
    eval_episodes: int = 10
    """Episodes of the deterministic policy in the final evaluation (and periodic ones)."""
    eval_interval: int = 0
    """Evaluate every this many env steps during training (0: only at the end)."""
    checkpoint_interval: int = 0
    """Save a checkpoint every this many env steps (0: every tenth of the run)."""
    torch_threads: int = 1
    """Torch intra-op threads. One is fastest for small RL networks (0 keeps torch's choice)."""
    backend: str = "auto"
    """Training kernels: 'numpy' (hand-written MLP backward, fastest on CPU for small MLPs), 'torch'
    (autograd), or 'auto' (numpy whenever every trained network is an MLP and the device is the CPU)."""
    device: str = "auto"
    """Torch device: 'cpu', 'cuda', 'cuda:N', or 'auto' (CUDA for pixel networks when a GPU is
    available, else the CPU, which is fastest for small MLPs)."""

    def _validate_run(self) -> None:
        check_positive("total_timesteps", self.total_timesteps)
        check_positive("eval_episodes", self.eval_episodes)
        check_positive("eval_interval", self.eval_interval, allow_zero=True)
        check_positive("checkpoint_interval", self.checkpoint_interval, allow_zero=True)
        check_choice("backend", self.backend, ["auto", "numpy", "torch"])
        check_device(self.device)
        if self.seed < 0:
            raise ConfigError(f"seed={self.seed} is not allowed; it must be >= 0")


def use_kernels(backend: str, device: torch.device, *nets: Any) -> bool:
    """Whether to train ``nets`` with the NumPy kernels (see :mod:`rlcanon.nets.kernels`)."""
    from rlcanon.nets.kernels import MLPKernel

    ok = all(MLPKernel.supports(n) for n in nets)
    if backend == "numpy" and not ok:
        raise ConfigError("backend='numpy' supports MLP networks only; use backend='torch' or 'auto'")
    if backend == "numpy" and device.type != "cpu":
        raise ConfigError(f"backend='numpy' runs on the CPU only, not device={str(device)!r}; use 'torch'")
    return ok and backend != "torch" and device.type == "cpu"


class Agent(Protocol):
    global_step: int

    def iterate(self) -> dict[str, float]:
        """Collect experience and update once; advance ``global_step``; return metrics."""

    def act_eval(self, obs: np.ndarray) -> np.ndarray:
        """Deterministic (greedy or mean) actions for a batch of observations."""

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(arrays, JSON state) for a checkpoint."""

    def load_state(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None: ...


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict[str, Any]
    agent: Any


AgentFactory = Callable[[Any, EnvSpecLike, np.random.Generator], Agent]


def train_run(
    algo: str,
    config: Any,
    make_agent: AgentFactory,
    *,
    env: EnvSpecLike | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``make_agent(config, env, rng)`` for ``config.total_timesteps`` steps in a run directory."""
    set_torch_threads(config.torch_threads)
    env_spec: EnvSpecLike = env if env is not None else config.env_id
    label = env_label(env_spec)
    path = Path(run_dir) if run_dir is not None else default_run_dir(algo, label, config.seed)
    rng = seed_everything(config.seed)
    agent = make_agent(config, env_spec, rng)
    clock = {"elapsed": 0.0, "train": 0.0}
    rows = None
    if resume:
        arrays, state = ckpt.load_checkpoint(ckpt.latest_checkpoint(path))
        if state.get("algo") != algo:
            raise ConfigError(f"{path} holds a {state.get('algo')!r} run, not {algo!r}")
        agent.load_state(arrays, state["agent"])
        restore_rng_state(rng, state["rng"])
        clock.update(state["clock"])
        rows = int(state["metrics_rows"])
    else:
        path.mkdir(parents=True, exist_ok=True)
    write_config(path, algo, to_dict(config), {"env": label})
    logger = MetricsLogger(path, _columns(), resume_rows=rows)
    loop = _Loop(algo, config, agent, env_spec, rng, path, logger, clock)
    try:
        loop.run(progress)
    finally:
        logger.close()
    summary = loop.finish(label)
    return TrainResult(path, summary, agent)


def _columns() -> list[str]:
    return [
        "charts/episodic_length",
        "charts/episodes",
        "charts/learning_rate",
        "charts/epsilon",
        "loss/policy",
        "loss/value",
        "loss/entropy",
        "loss/td",
        "charts/q_mean",
        "charts/approx_kl",
        "charts/clip_fraction",
        "charts/explained_variance",
        "eval/return_mean",
        "eval/return_std",
        "time/train_seconds",
    ]


class _Loop:
    def __init__(
        self,
        algo: str,
        config: Any,
        agent: Agent,
        env: EnvSpecLike,
        rng: np.random.Generator,
        path: Path,
        logger: MetricsLogger,
        clock: dict[str, float],
    ) -> None:
        self.algo, self.config, self.agent, self.env = algo, config, agent, env
        self.rng, self.path, self.logger, self.clock = rng, path, logger, clock
        total = config.total_timesteps
        self.ckpt_every = config.checkpoint_interval or max(total // 10, 1)

    def run(self, progress: bool | None) -> None:
        from tqdm.auto import tqdm

        cfg, agent = self.config, self.agent
        total = cfg.total_timesteps
        bar = tqdm(
            total=total,
            initial=min(agent.global_step, total),
            unit="step",
            desc=f"{self.algo} {cfg.env_id}",
            disable=None if progress is None else not progress,
            dynamic_ncols=True,
        )
        last_ckpt = agent.global_step // self.ckpt_every
        last_eval = agent.global_step // cfg.eval_interval if cfg.eval_interval else 0
        try:
            while agent.global_step < total:
                before = agent.global_step
                t0 = time.perf_counter()
                metrics = agent.iterate()
                dt = time.perf_counter() - t0
                self.clock["train"] += dt
                self.clock["elapsed"] += dt
                _check_finite(metrics, agent.global_step, self.path)
                metrics["global_step"] = agent.global_step
                metrics["time/sps"] = agent.global_step / max(self.clock["train"], 1e-9)
                metrics["time/train_seconds"] = self.clock["train"]
                if cfg.eval_interval and agent.global_step // cfg.eval_interval > last_eval:
                    last_eval = agent.global_step // cfg.eval_interval
                    metrics.update(self._evaluate(seed_offset=last_eval))
                self.logger.log(metrics)
                bar.update(min(agent.global_step, total) - min(before, total))
                if "charts/episodic_return" in metrics:
                    bar.set_postfix(ret=f"{metrics['charts/episodic_return']:.1f}", refresh=False)
                if agent.global_step // self.ckpt_every > last_ckpt:
                    last_ckpt = agent.global_step // self.ckpt_every
                    self.save()
        finally:
            bar.close()

    def _evaluate(self, seed_offset: int) -> dict[str, float]:
        t0 = time.perf_counter()
        seed = self.config.seed + 10_000 + 97 * seed_offset
        returns = evaluate(self.agent.act_eval, self.env, self.config.eval_episodes, seed)
        self.clock["elapsed"] += time.perf_counter() - t0
        return {"eval/return_mean": float(returns.mean()), "eval/return_std": float(returns.std())}

    def save(self) -> None:
        arrays, agent_state = self.agent.state()
        state = {
            "algo": self.algo,
            "agent": agent_state,
            "rng": rng_state(self.rng),
            "clock": self.clock,
            "metrics_rows": self.logger.rows,
        }
        ckpt.save_checkpoint(self.path, self.agent.global_step, arrays, state)

    def finish(self, label: str) -> dict[str, Any]:
        self.save()
        t0 = time.perf_counter()
        returns = evaluate(
            self.agent.act_eval, self.env, self.config.eval_episodes, self.config.seed + 10_000
        )
        eval_time = time.perf_counter() - t0
        summary = {
            "algo": self.algo,
            "env_id": label,
            "seed": self.config.seed,
            "total_timesteps": int(self.agent.global_step),
            "wall_time_s": round(self.clock["elapsed"] + eval_time, 3),
            "train_time_s": round(self.clock["train"], 3),
            "sps": round(self.agent.global_step / max(self.clock["train"], 1e-9), 1),
            "eval_return_mean": float(returns.mean()),
            "eval_return_std": float(returns.std()),
            "eval_episodes": len(returns),
        }
        write_summary(self.path, summary)
        return summary


def _check_finite(metrics: dict[str, float], step: int, path: Path) -> None:
    for key, value in metrics.items():
        if key.startswith("loss/") and not math.isfinite(value):
            raise TrainingError(
                f"{key} became {value} at step {step}; training stopped. The last good checkpoint "
                f"is kept in {path / 'checkpoints'}; lower the learning rate or check the rewards"
            )
