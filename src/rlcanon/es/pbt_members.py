"""What population-based training drives: a population of members that train for a while with
given hyperparameters and report how well they do, and whose weights can be copied from one to
another (:class:`Population`). Two populations satisfy it: the toy quadratic of Jaderberg et al.
2017 (their Fig. 2), which needs no RL, and :class:`MemberRuns`, whose members are runs of the
shared harness (any deep RL registry entry), each in its own run directory with its own checkpoints.

Member runs are trained in this process, in a pool of local processes, or on Ray; every member's
run is deterministic given its own seed, so the result does not depend on where it ran.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rlcanon.errors import ConfigError

Hyperparameters = dict[str, float]
"""One member's hyperparameter values, by config field (ints are stored as whole floats in JSON)."""


class Population(Protocol):
    """Members PBT can drive: train them, read their performance, copy one's weights over another's."""

    size: int

    def train(self, hyperparameters: Sequence[Hyperparameters], until: int) -> np.ndarray:
        """Train member i with ``hyperparameters[i]`` until it has done ``until`` steps in all; return
        each member's recent performance (higher is better)."""

    def copy(self, target: int, source: int) -> None:
        """Replace member ``target``'s trained state (weights, optimizer, normalisers) by ``source``'s."""


# ---- the toy of Jaderberg et al. 2017 (their Fig. 2) ------------------------------------------


class ToyPopulation:
    """Members are points theta in R^2. The objective is Q(theta) = 1.2 - theta_0^2 - theta_1^2, but
    each member ascends the surrogate Q_hat(theta | h) = 1.2 - h_0 theta_0^2 - h_1 theta_1^2, whose
    hyperparameters h weight the two terms: one gradient step is theta_i += step_size * (-2 h_i
    theta_i). A member with h = (1, 0) never moves theta_1, so a fixed h is only as good as its draw;
    PBT can reach the optimum by copying theta and moving h (the paper's point, Fig. 2)."""

    def __init__(self, size: int, theta0: Sequence[float] = (0.9, 0.9), step_size: float = 0.01) -> None:
        self.size, self.step_size = size, step_size
        self.theta = np.tile(np.asarray(theta0, dtype=np.float64), (size, 1))
        self.steps = 0
        self.trajectory: list[np.ndarray] = [self.theta.copy()]
        """theta of every member after every step (for the figure)."""

    @staticmethod
    def objective(theta: np.ndarray) -> np.ndarray:
        """Q(theta) = 1.2 - sum_i theta_i^2, per row."""
        return 1.2 - np.sum(np.square(theta), axis=-1)

    def train(self, hyperparameters: Sequence[Hyperparameters], until: int) -> np.ndarray:
        h = np.array([[hp["h0"], hp["h1"]] for hp in hyperparameters], dtype=np.float64)
        for _ in range(until - self.steps):
            self.theta = self.theta + self.step_size * (-2.0 * h * self.theta)  # grad of Q_hat(theta | h)
            self.trajectory.append(self.theta.copy())
        self.steps = max(self.steps, until)
        return self.objective(self.theta)

    def copy(self, target: int, source: int) -> None:
        self.theta[target] = self.theta[source]


# ---- members that are runs of the shared harness ----------------------------------------------


@dataclass(frozen=True)
class MemberJob:
    """One member's training for one round, as it travels to a worker."""

    algo: str
    run_dir: str
    config: dict[str, Any]
    """The member's config as :func:`rlcanon.core.config.to_dict` writes it (its hyperparameters,
    its own seed, and the round's end as its budget)."""
    fresh: bool
    """The first round: a new run, replacing whatever a stopped earlier PBT run left there."""


def train_member(job: MemberJob) -> tuple[float, int]:
    """Train one member to its budget in its run directory (new, or continued from its latest
    checkpoint with the round's hyperparameters); returns (the final evaluation's mean return, the
    member's env steps so far). Runs in any process."""
    from rlcanon.core.config import from_dict
    from rlcanon.core.seeding import preserved_global_rng
    from rlcanon.registry import get_entry
    from rlcanon.run.harness import train_run

    entry = get_entry(job.algo)
    config = from_dict(entry.config, job.config)
    with preserved_global_rng():  # the harness seeds torch's global generator: leave the caller's alone
        result = train_run(
            entry.name,
            config,
            entry.make,
            run_dir=job.run_dir,
            resume=not job.fresh,
            overwrite=job.fresh,
            progress=False,
        )
    return float(result.summary["eval_return_mean"]), int(result.summary["total_timesteps"])


def copy_member_checkpoint(source: Path, target: Path) -> None:
    """Exploit, on disk: write a new latest checkpoint of ``target`` that holds ``source``'s latest
    weights, optimizer state, normalisers and counters, but keeps ``target``'s own generator state,
    clock and metrics row count (its run goes on with its own random stream and its own history).
    The next round then continues ``target`` from it with its new hyperparameters."""
    from rlcanon.run import checkpoint as ckpt
    from rlcanon.run.rundir import RunLock

    arrays, donor = ckpt.load_checkpoint(ckpt.latest_checkpoint(source))
    with RunLock(target):
        _, own = ckpt.load_checkpoint(ckpt.latest_checkpoint(target))
        state = {k: v for k, v in donor.items() if k not in ("format", "format_version", "step")}
        state.update(rng=own["rng"], clock=own["clock"], metrics_rows=own["metrics_rows"])
        ckpt.save_checkpoint(target, int(donor["step"]), arrays, state)


def member_seed(seed: int, index: int) -> int:
    """Member ``index``'s own seed, derived from the PBT run's seed (distinct runs, distinct seeds)."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def member_config(
    cfg: Any, index: int, hyperparameters: Hyperparameters, fixed: Mapping[str, Any], until: int = 1
) -> Any:
    """Member ``index``'s config for a round ending at ``until`` steps: the algorithm's preset for the
    env, the fixed member settings, the round's hyperparameters, its own seed, one checkpoint per
    round."""
    from rlcanon.core.config import resolved_types
    from rlcanon.registry import ALGOS, make_config

    types = resolved_types(ALGOS[cfg.algo].config)
    values = {k: int(v) if types.get(k) is int else v for k, v in hyperparameters.items()}
    # A member's budget ends with the round, so a schedule of the algorithm's own (anneal_lr,
    # anneal_clip) would restart its decay every round: off unless member_settings turns it on.
    schedules_off = {k: False for k, tp in types.items() if k.startswith("anneal_") and tp is bool}
    overrides = {
        "checkpoint_interval": cfg.interval,
        **schedules_off,
        **fixed,
        **values,
        "env_kwargs": cfg.env_kwargs,
        "wrappers": cfg.wrappers,
        "seed": member_seed(cfg.seed, index),
        "total_timesteps": until,
    }
    return make_config(cfg.algo, cfg.env_id, **overrides)


class Runner(Protocol):
    def map(self, fn: Callable[[MemberJob], tuple[float, int]], jobs: list[MemberJob]) -> list[Any]: ...
    def close(self) -> None: ...


class InProcessRunner:
    """Members one after another in this process (no start-up cost: tiny runs and tests)."""

    def map(self, fn: Callable[[MemberJob], tuple[float, int]], jobs: list[MemberJob]) -> list[Any]:
        return [fn(job) for job in jobs]

    def close(self) -> None:
        pass


def _single_thread() -> None:
    from rlcanon.core.threads import default_blas_threads

    default_blas_threads()


class ProcessRunner:
    """Members in a pool of local worker processes (spawned: no torch state is forked)."""

    def __init__(self, workers: int) -> None:
        import multiprocessing as mp

        self.pool = mp.get_context("spawn").Pool(workers, initializer=_single_thread)

    def map(self, fn: Callable[[MemberJob], tuple[float, int]], jobs: list[MemberJob]) -> list[Any]:
        return self.pool.map(fn, jobs, chunksize=1)

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


class RayRunner:
    """Members as Ray tasks of one CPU each. On a cluster, the PBT run directory must be on a file
    system every node shares (the members' checkpoints are copied between them)."""

    def __init__(self, workers: int, address: str | None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "backend 'ray' needs Ray; install it with: pip install 'rlcanon[ray]'"
            ) from None
        from rlcanon.es.backends import check_reachable

        self.ray = ray
        if not ray.is_initialized():
            check_reachable(address)  # Ray itself retries an unreachable address for minutes
            ray.init(
                address=address,
                num_cpus=None if address else workers,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )

    def map(self, fn: Callable[[MemberJob], tuple[float, int]], jobs: list[MemberJob]) -> list[Any]:
        remote = self.ray.remote(num_cpus=1)(fn)
        return list(self.ray.get([remote.remote(job) for job in jobs]))

    def close(self) -> None:
        pass


def make_runner(backend: str, workers: int, address: str | None) -> Runner:
    """'local': this process for one worker, a process pool for more; 'ray': Ray tasks."""
    if backend == "ray":
        return RayRunner(workers, address)
    return InProcessRunner() if workers == 1 else ProcessRunner(workers)


class MemberRuns:
    """A population of harness runs in ``root/mNN/``: ``make_config(i, hyperparameters, until)`` gives
    member i's config for a round; training continues each run from its own latest checkpoint, and
    a copy rewrites the target's latest checkpoint from the source's (:func:`copy_member_checkpoint`)."""

    def __init__(
        self,
        algo: str,
        root: Path,
        size: int,
        make_config: Callable[[int, Hyperparameters, int], Any],
        runner: Runner,
        fresh: bool,
    ) -> None:
        self.algo, self.root, self.size = algo, root, size
        self.make_config, self.runner, self.fresh = make_config, runner, fresh
        self.steps = [0] * size

    def member_dir(self, index: int) -> Path:
        return member_dir(self.root, index)

    def train(self, hyperparameters: Sequence[Hyperparameters], until: int) -> np.ndarray:
        from rlcanon.core.config import to_dict

        jobs = [
            MemberJob(self.algo, str(self.member_dir(i)), to_dict(self.make_config(i, h, until)), self.fresh)
            for i, h in enumerate(hyperparameters)
        ]
        results = self.runner.map(train_member, jobs)
        self.steps = [int(steps) for _, steps in results]
        return np.array([perf for perf, _ in results], dtype=np.float64)

    def copy(self, target: int, source: int) -> None:
        copy_member_checkpoint(self.member_dir(source), self.member_dir(target))


def member_dir(root: Path, index: int) -> Path:
    """Member ``index``'s run directory: ``root/m03`` for member 3."""
    return root / f"m{index:02d}"
