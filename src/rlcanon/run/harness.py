"""The training harness shared by every family: run directory and its lock, logging, progress bar,
periodic evaluation and checkpoints, resume, the NaN guard and the final summary. A family only
provides a :class:`Learner`; everything around it is written here, once.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rlcanon.core.config import to_dict
from rlcanon.core.seeding import RNG_SCHEMA, check_rng_state, restore_rng_state, rng_state, seed_everything
from rlcanon.core.threads import thread_limits
from rlcanon.core.validate import AnyJSON, Int, Map, Num, Str, check_arrays, check_json
from rlcanon.envs.evaluate import evaluate
from rlcanon.envs.factory import EnvSpecLike, check_evaluable, env_label, make_eval_env
from rlcanon.envs.normalize import normalizers
from rlcanon.errors import CheckpointError, TrainingError
from rlcanon.run import checkpoint as ckpt
from rlcanon.run.logger import MetricsLogger
from rlcanon.run.notes import note
from rlcanon.run.rundir import (
    default_run_dir,
    never_checkpointed,
    open_run_dir,
    remove_empty_run_dir,
    write_config,
    write_summary,
)
from rlcanon.run.state import Parts, counter_schema, load_parts, part_arrays, part_json, part_specs


class Learner(Protocol):
    """What the harness drives. Deep RL agents, ES policy search and tabular learners all are one."""

    global_step: int
    """Environment steps so far (logged, and the basis of steps per second)."""

    @property
    def progress(self) -> int:
        """Budget units done (env steps, generations or episodes: the config's ``BUDGET``)."""

    budget_granularity: int
    """Budget units one :meth:`iterate` adds at most, rounding the budget up to a multiple of it."""
    observation_space: Any
    """One observation as the env gives it (before any normalisation)."""
    action_space: Any

    def iterate(self) -> dict[str, float]:
        """One unit of work (collect and update); returns namespaced metrics."""

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        """Actions for a batch of observations, and the next recurrent state (None if feed-forward)."""

    def checkpoint_parts(self) -> Parts:
        """The modules, optimizers, other stateful parts and counters a checkpoint holds."""


LearnerFactory = Callable[[Any, EnvSpecLike, np.random.Generator], Learner]


@dataclass
class TrainResult:
    run_dir: Path
    summary: dict[str, Any]
    agent: Any


def planned_budget(config: Any, learner: Learner) -> int:
    """The budget rounded up to what whole iterations reach."""
    g = max(int(learner.budget_granularity), 1)
    return -(-config.budget // g) * g


def train_run(
    algo: str,
    config: Any,
    make: LearnerFactory,
    *,
    env: EnvSpecLike | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train ``make(config, env, rng)`` to ``config.budget`` in a run directory (new, resumed, or
    replaced with ``overwrite``); returns the directory, the summary and the learner."""
    if isinstance(env, str):  # an id is a setting: record it, so the run can be rebuilt from its files
        config = dataclasses.replace(config, env_id=env) if env != config.env_id else config
        env = None
    if env is not None:
        check_evaluable(env)
    env_spec: EnvSpecLike = env if env is not None else config.env_id
    label = env_label(env_spec)
    extra: dict[str, Any] = {"env": label} if env is None else {"env": label, "custom_env": True}
    path = Path(run_dir) if run_dir is not None else default_run_dir(algo, label, config.seed)
    with thread_limits(getattr(config, "torch_threads", 1)):
        created = not path.exists()
        lock = open_run_dir(path, resume=resume, overwrite=overwrite)
        if resume and never_checkpointed(path):  # killed before its first checkpoint: nothing was kept
            note(f"{path} holds no checkpoint yet (its run stopped before the first one); it starts again")
            resume = False
        try:
            try:
                session = Session(algo, config, make, env_spec, path)
            except BaseException:
                if created:  # nothing was written: leave no empty run directory behind
                    remove_empty_run_dir(path)
                raise
            try:
                if resume:
                    session.restore()
                write_config(path, algo, to_dict(config), extra)
                session.run(progress)
                summary = session.finish(label)
            finally:
                session.close()
        finally:
            lock.release()
    return TrainResult(path, summary, session.learner)


def state_schema(algo: str, parts: Parts) -> Map:
    return Map(
        {
            "format": Str((ckpt.FORMAT,)),
            "format_version": Int(ckpt.FORMAT_VERSION, ckpt.FORMAT_VERSION),
            "step": Int(),
            "algo": Str((algo,)),
            "agent": counter_schema(parts),
            "rng": RNG_SCHEMA,  # (and the torch state's bytes: check_rng_state)
            "clock": Map({"elapsed": Num(0.0, 1e12), "train": Num(0.0, 1e12)}),
            "metrics_rows": Int(),
            "extra": AnyJSON(),  # checked part by part when loaded
        }
    )


def load_learner_state(
    algo: str, learner: Learner, arrays: dict[str, np.ndarray], state: Any, where: str
) -> None:
    """Check a checkpoint (its directory: ``where``) against what ``learner`` expects, then load it.
    Every check runs before anything is loaded; a refusal names the file and the key or field."""
    state_where, arrays_where = str(Path(where) / ckpt.STATE), str(Path(where) / ckpt.WEIGHTS)
    parts = learner.checkpoint_parts()
    check_json(state_where, state, state_schema(algo, parts))
    check_rng_state(state["rng"], state_where)
    check_arrays(arrays_where, arrays, part_specs(parts))
    load_parts(parts, learner, arrays, state["agent"], state["extra"], arrays_where, state_where)
    if learner.progress != state["step"]:
        counters = ", ".join(f"agent.{k}={v}" for k, v in state["agent"].items())
        raise CheckpointError(
            f"{state_where}: field step is {state['step']}, but the counters ({counters}) and parts put the "
            f"agent at {learner.progress}; expected them to agree"
        )
    on_restore = getattr(learner, "on_restore", None)
    if on_restore is not None:  # e.g. restart the envs, whose state a checkpoint cannot hold
        on_restore()


def attach_run_dir(learner: Learner, path: Path) -> None:
    """Tell a learner whose work lives in files of its own beside its checkpoints (PBT's members'
    run directories) where its run directory is, before anything is restored into it."""
    attach = getattr(learner, "attach_run_dir", None)
    if attach is not None:
        attach(Path(path))


class Session:
    """One training session of a run: builds the learner, restores it, loops, saves, summarises."""

    def __init__(self, algo: str, config: Any, make: LearnerFactory, env: EnvSpecLike, path: Path) -> None:
        self.algo, self.config, self.env, self.path = algo, config, env, path
        self.rng = seed_everything(config.seed)
        self.learner = make(config, env, self.rng)
        attach_run_dir(self.learner, path)
        self.clock = {"elapsed": 0.0, "train": 0.0}
        self.rows: int | None = None
        self.saved_at: int | None = None
        self.budget = planned_budget(config, self.learner)

    def close(self) -> None:
        """Release what the learner holds (worker pools, envs)."""
        close = getattr(self.learner, "close", None)
        if close is not None:
            close()
        envs = getattr(self.learner, "envs", None)
        if envs is not None:
            envs.close()

    def restore(self) -> None:
        ckpt_dir = ckpt.latest_checkpoint(self.path)
        arrays, state = ckpt.load_checkpoint(ckpt_dir)
        load_learner_state(self.algo, self.learner, arrays, state, str(ckpt_dir))
        where = str(ckpt_dir / ckpt.STATE)
        if self.learner.progress > self.budget:
            raise CheckpointError(
                f"{where}: field step is {self.learner.progress}, past the run's budget "
                f"({self.config.BUDGET}={self.config.budget}); expected at most {self.budget}"
            )
        restore_rng_state(self.rng, state["rng"], where)
        self.clock.update(state["clock"])
        self.rows = int(state["metrics_rows"])
        self.saved_at = self.learner.progress

    # ---- the loop ----
    def run(self, progress: bool | None) -> None:
        from tqdm.auto import tqdm

        cfg, learner = self.config, self.learner
        if self.budget != cfg.budget:
            note(
                f"{cfg.BUDGET}={cfg.budget} is not a multiple of the {learner.budget_granularity} "
                f"{cfg.UNIT}s one iteration takes; the run will end at {self.budget}"
            )
        self.logger = MetricsLogger(self.path, resume_rows=self.rows)
        ckpt_every = cfg.checkpoint_interval or max(cfg.budget // 10, 1)
        last_ckpt = learner.progress // ckpt_every
        last_eval = learner.progress // cfg.eval_interval if cfg.eval_interval else 0
        bar = tqdm(
            total=self.budget,
            initial=min(learner.progress, self.budget),
            unit=cfg.UNIT,
            desc=f"{self.algo} {env_label(self.env)}",
            disable=None if progress is None else not progress,
            dynamic_ncols=True,
        )
        try:
            while learner.progress < cfg.budget and not getattr(learner, "finished", False):
                before = learner.progress
                metrics = self._iterate()
                if cfg.eval_interval and learner.progress // cfg.eval_interval > last_eval:
                    last_eval = learner.progress // cfg.eval_interval
                    metrics.update(self._evaluate(seed_offset=last_eval))
                    hook = getattr(learner, "on_evaluation", None)
                    if hook is not None:  # e.g. an ES search that stops at a target return
                        hook(metrics["eval/return_mean"])
                self.logger.log(metrics)
                bar.update(min(learner.progress, self.budget) - min(before, self.budget))
                if "charts/episodic_return" in metrics:
                    bar.set_postfix(ret=f"{metrics['charts/episodic_return']:.1f}", refresh=False)
                if learner.progress // ckpt_every > last_ckpt:
                    last_ckpt = learner.progress // ckpt_every
                    self.save()
        finally:
            bar.close()
            self.logger.close()

    def _iterate(self) -> dict[str, Any]:
        learner = self.learner
        t0 = time.perf_counter()
        try:
            metrics = learner.iterate()
        except TrainingError as exc:
            raise TrainingError(f"{exc}; training stopped. {self._kept()}") from None
        dt = time.perf_counter() - t0
        self.clock["train"] += dt
        self.clock["elapsed"] += dt
        for key, value in metrics.items():
            if key.startswith("loss/") and not math.isfinite(value):
                raise TrainingError(
                    f"{key} became {value} at step {learner.global_step}; training stopped. {self._kept()} "
                    f"Lower the learning rate or check the rewards"
                )
        metrics["global_step"] = learner.global_step
        metrics["time/sps"] = learner.global_step / max(self.clock["train"], 1e-9)
        metrics["time/train_seconds"] = self.clock["train"]
        return metrics

    def _kept(self) -> str:
        if self.saved_at is None:
            return "No checkpoint was written yet, so there is nothing to resume."
        where = self.path / "checkpoints"
        return f"The last checkpoint ({self.config.UNIT} {self.saved_at}) is kept in {where}."

    def _evaluate(self, seed_offset: int) -> dict[str, float]:
        t0 = time.perf_counter()
        returns = self.evaluate(self.config.eval_episodes, self.config.seed + 10_000 + 97 * seed_offset)
        self.clock["elapsed"] += time.perf_counter() - t0
        return {"eval/return_mean": float(returns.mean()), "eval/return_std": float(returns.std())}

    def evaluate(self, episodes: int, seed: int) -> np.ndarray:
        return evaluate_learner(self.learner, self.config, self.env, episodes, seed)

    def save(self) -> None:
        parts = self.learner.checkpoint_parts()
        state = {
            "algo": self.algo,
            "agent": {name: int(getattr(self.learner, name)) for name in parts.counters},
            "rng": rng_state(self.rng),
            "clock": self.clock,
            "metrics_rows": self.logger.rows,
            "extra": part_json(parts),
        }
        self.logger.sync()  # the rows a checkpoint counts are on disk before it is
        ckpt.save_checkpoint(self.path, self.learner.progress, part_arrays(parts), state)
        self.saved_at = self.learner.progress

    def finish(self, label: str) -> dict[str, Any]:
        if self.saved_at != self.learner.progress:  # the final checkpoint is written once
            self.save()
        on_finish = getattr(self.learner, "on_finish", None)
        if on_finish is not None:  # e.g. export the policy in another format
            on_finish(self.path)
        t0 = time.perf_counter()
        returns = self.evaluate(self.config.eval_episodes, self.config.seed + 10_000)
        eval_time = time.perf_counter() - t0
        learner = self.learner
        summary = {
            "algo": self.algo,
            "env_id": label,
            "seed": self.config.seed,
            "total_timesteps": int(learner.global_step),
            self.config.BUDGET: int(learner.progress),
            "wall_time_s": round(self.clock["elapsed"] + eval_time, 3),
            "train_time_s": round(self.clock["train"], 3),
            "sps": round(learner.global_step / max(self.clock["train"], 1e-9), 1),
            "eval_return_mean": float(returns.mean()),
            "eval_return_std": float(returns.std()),
            "eval_episodes": len(returns),
            **getattr(learner, "summary_extra", dict)(),
        }
        write_summary(self.path, summary)
        return summary


def evaluate_learner(learner: Learner, config: Any, env: EnvSpecLike, episodes: int, seed: int) -> np.ndarray:
    """Returns of ``episodes`` deterministic episodes: on the learner's own evaluation env if it has
    one, else on a copy of the training env with the observation normaliser frozen."""
    n = max(1, min(episodes, 16))
    own = getattr(learner, "eval_env", None)
    if own is not None:
        vec = own(n)
    else:
        obs_norm = normalizers(getattr(learner, "envs", None)).get("obs")
        vec = make_eval_env(config, env, n, obs_norm.state_arrays() if obs_norm is not None else None)
    return evaluate(learner.predict, vec, episodes, seed)
