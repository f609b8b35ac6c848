"""Where policy fitness is evaluated: in this process, in a process pool, or on Ray.

All three call :func:`rlcanon.es.rollout.evaluate_many` on disjoint slices of the population and
return per-candidate results that the caller reassembles in candidate order, so results are
identical across backends. For OpenAI-ES only noise seeds travel to the workers, which rebuild
their candidates from (mean, sigma, seed) (:func:`population_from_seeds`); the mean is sent once
per generation as the state the workers would otherwise replay from the same seeds and scalars.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.es.rollout import PolicySpec, evaluate_many


class Backend(Protocol):
    workers: int

    def evaluate(self, job: dict[str, Any]) -> list[tuple[Any, ...]]: ...
    def close(self) -> None: ...


def run_job(spec: PolicySpec, job: dict[str, Any], indices: list[int]) -> list[tuple[Any, ...]]:
    """Rebuild the candidates ``indices`` of a generation and evaluate them (runs on any worker)."""
    from rlcanon.es.openai_es import population_from_seeds

    if "noise_seeds" in job:  # OpenAI-ES: candidates 2i, 2i+1 come from seed i
        pairs = sorted({j // 2 for j in indices})
        pop = population_from_seeds(job["mean"], job["sigma"], job["noise_seeds"][pairs])
        rows = {2 * p + k: pop[2 * n + k] for n, p in enumerate(pairs) for k in (0, 1)}
        thetas = np.stack([rows[j] for j in indices])
    else:
        thetas = job["population"][indices]
    return evaluate_many(
        spec,
        thetas,
        indices,
        job["run_seed"],
        job["generation"],
        job["obs_mean"],
        job["obs_std"],
        job.get("behaviour"),  # novelty search: also each candidate's behaviour characterisation
    )


def _chunks(n: int, workers: int) -> list[list[int]]:
    # contiguous, pair-aligned slices so each worker rebuilds whole mirrored pairs
    pairs = [list(range(i, min(i + 2, n))) for i in range(0, n, 2)]
    out = [[j for pair in pairs[w::workers] for j in pair] for w in range(workers)]
    return [c for c in out if c]


class LocalBackend:
    def __init__(self, spec: PolicySpec, workers: int = 1) -> None:
        self.spec, self.workers = spec, 1

    def evaluate(self, job: dict[str, Any]) -> list[tuple[Any, ...]]:
        return run_job(self.spec, job, list(range(job["popsize"])))

    def close(self) -> None:
        pass


def _pool_job(args: tuple[PolicySpec, dict[str, Any], list[int]]) -> list[tuple[Any, ...]]:
    return run_job(*args)


class ProcessBackend:
    def __init__(self, spec: PolicySpec, workers: int = 2) -> None:
        import multiprocessing as mp

        self.spec, self.workers = spec, workers
        self.pool = mp.get_context("spawn").Pool(workers, initializer=_single_thread)

    def evaluate(self, job: dict[str, Any]) -> list[tuple[Any, ...]]:
        parts = self.pool.map(_pool_job, [(self.spec, job, c) for c in _chunks(job["popsize"], self.workers)])
        return [r for part in parts for r in part]

    def close(self) -> None:
        self.pool.close()
        self.pool.join()


def _single_thread() -> None:
    from rlcanon.core.threads import default_blas_threads

    default_blas_threads()


def ray_host_port(address: str | None) -> tuple[str, int] | None:
    """(host, port) of a Ray address, None for none or 'auto'; a malformed one is refused."""
    if not address or address in ("auto", "local"):
        return None
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        raise ConfigError(f"ray_address={address!r} is not allowed; write HOST:PORT, ray://HOST:PORT or auto")
    return host, int(port)


def check_reachable(address: str | None, timeout: float = 5.0) -> None:
    """Refuse, in one line, a Ray address (``HOST:PORT`` or ``ray://HOST:PORT``) with no server."""
    host_port = ray_host_port(address)
    if host_port is None:
        return
    host, port = host_port
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise ConfigError(
            f"cannot reach a Ray cluster at {address} ({exc.strerror or exc}); start one with "
            f"'ray start --head', or leave --ray-address out to start a local one"
        ) from None


class RayBackend:
    def __init__(self, spec: PolicySpec, workers: int = 2, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                "backend 'ray' needs Ray; install it with: pip install 'rlcanon[ray]'"
            ) from None
        self.ray, self.spec, self.workers = ray, spec, workers
        if not ray.is_initialized():
            check_reachable(address)  # Ray itself retries an unreachable address for minutes
            ray.init(
                address=address,
                num_cpus=None if address else workers,
                include_dashboard=False,
                log_to_driver=False,
                ignore_reinit_error=True,
            )
        self._remote = ray.remote(num_cpus=1)(run_job)
        self._spec_ref = ray.put(spec)

    def evaluate(self, job: dict[str, Any]) -> list[tuple[Any, ...]]:
        job_ref = self.ray.put(job)
        futures = [
            self._remote.remote(self._spec_ref, job_ref, c) for c in _chunks(job["popsize"], self.workers)
        ]
        return [r for part in self.ray.get(futures) for r in part]

    def close(self) -> None:
        pass


BACKENDS = {"local": LocalBackend, "process": ProcessBackend, "ray": RayBackend}


def make_backend(name: str, spec: PolicySpec, workers: int, address: str | None = None) -> Backend:
    if name not in BACKENDS:
        raise ConfigError(f"unknown backend {name!r}; choose one of {sorted(BACKENDS)}")
    if workers < 1:
        raise ConfigError(f"workers={workers} is not allowed; it must be >= 1")
    if name == "ray":
        return RayBackend(spec, workers, address)
    if name == "local" and workers > 1:  # --workers N on this machine means a process pool
        return ProcessBackend(spec, workers)
    backend: Backend = LocalBackend(spec) if name == "local" else ProcessBackend(spec, workers)
    return backend
