"""Nelder-Mead (Nelder & Mead 1965) behind ask/tell: SciPy's own solver,
``scipy.optimize.minimize(method="Nelder-Mead")``, driven point by point.

SciPy's solver calls f(x) and waits for the value; ask/tell hands the value in later. So the solver
runs in a daemon worker thread whose objective posts each point it wants and blocks until ``tell()``
answers. ``ask()`` returns that point; SciPy minimises -fitness, and a NaN fitness reaches it as +inf
(the worst value). The initial simplex is x0 plus sigma0 along each axis (SciPy's
``initial_simplex``), so sigma0 sets the first steps as it does for the other strategies.

Batches: the method is sequential (each point depends on the previous value), so popsize is 1 by
default. A larger popsize evaluates SciPy's point popsize times and tells SciPy the mean, which
averages the noise of a noisy fitness such as an episode return (ES policy search evaluates every
row on other episode seeds); on a deterministic function it only costs evaluations.

When SciPy returns (its xatol and fatol tests held, or maxiter / maxfev ran out), ``ask()`` keeps
returning the best point, ``sigma`` is 0 and ``should_stop()`` gives ``{"scipy": message}``; no
restart. The state for checkpoints is x0, sigma0 and the fitness values SciPy was told: the method
is deterministic given them, so loading replays SciPy's run against the recorded values (without
waiting on anyone) and stops at the same point. A worker is stopped by ``close()``, by loading a
state, or when the strategy is garbage collected; it never holds a reference to the strategy.
"""

from __future__ import annotations

import math
import queue
import threading
import weakref
from collections import deque
from typing import Any

import numpy as np

from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.es.base import clean_fitness
from rlcanon.es.baselines import check_number, prepare

MAX_CALLS = 10**12
"""Upper bound of maxiter and maxfev (unset: no limit of SciPy's own; the caller's budget ends the run)."""
_STOP = object()


class _StopRequestedError(Exception):
    """Raised in the worker's objective to unwind SciPy's solver when the strategy stops it."""


class _Channel:
    """The two queues between the strategy (main thread) and the worker that runs SciPy."""

    def __init__(self) -> None:
        self.requests: queue.Queue[tuple[Any, ...]] = queue.Queue()  # worker -> strategy
        self.replies: queue.Queue[Any] = queue.Queue()  # strategy -> worker: -fitness or _STOP

    def stop(self) -> None:
        self.replies.put(_STOP)


def _solve(
    channel: _Channel, x0: np.ndarray, simplex: np.ndarray, options: dict[str, Any], replay: list[float]
) -> None:
    """The worker: SciPy's Nelder-Mead on an objective that first answers from ``replay`` (fitness
    values recorded earlier) and then asks the strategy for each value."""
    from scipy.optimize import minimize

    recorded = iter(replay)

    def objective(x: np.ndarray) -> float:
        fitness = next(recorded, None)
        if fitness is None:
            channel.requests.put(("ask", x))
            reply = channel.replies.get()
            if reply is _STOP:
                raise _StopRequestedError
            return float(reply)
        channel.requests.put(("replayed", x, fitness))
        return -fitness

    try:
        # differences of infinite values (a NaN fitness is +inf here) in SciPy's fatol test are NaN
        with np.errstate(invalid="ignore", over="ignore"):
            result = minimize(
                objective, x0, method="Nelder-Mead", options={**options, "initial_simplex": simplex}
            )
        channel.requests.put(("done", str(result.message)))
    except _StopRequestedError:
        pass
    except Exception as exc:  # reported to the strategy, which raises it in one line
        channel.requests.put(("error", f"{type(exc).__name__}: {exc}"))


class NelderMead:
    """Ask/tell Nelder-Mead through SciPy (maximises fitness). Options are SciPy's: ``xatol``,
    ``fatol`` (both tighter than SciPy's 1e-4 by default, so that the 1e-8 targets of the benchmark
    runs are reached before SciPy stops), ``maxiter``, ``maxfev`` and ``adaptive`` (Gao & Han 2012
    coefficients). ``seed`` is accepted for the common interface; the method draws nothing."""

    name = "nelder-mead"

    def __init__(
        self,
        x0: Any,
        sigma0: float,
        seed: int = 0,
        popsize: int | None = None,
        xatol: float = 1e-10,
        fatol: float = 1e-12,
        maxiter: int | None = None,
        maxfev: int | None = None,
        adaptive: bool = False,
    ) -> None:
        from rlcanon.core.config import check_memory

        x0, self.popsize = prepare(x0, sigma0, popsize)
        self.dim = n = len(x0)
        check_memory("dimension", 4 * 8 * (n + 1) * n)  # SciPy's simplex, its sorted copies, our window
        if not isinstance(adaptive, (bool, np.bool_)):
            raise ConfigError(f"adaptive={adaptive!r} is not allowed; it must be true or false")
        self.options: dict[str, Any] = {
            "xatol": check_number("xatol", xatol, 0.0, 1e6, "a number in [0, 1e6]"),
            "fatol": check_number("fatol", fatol, 0.0, 1e300, "a number >= 0"),
            "maxiter": _calls("maxiter", maxiter),
            "maxfev": _calls("maxfev", maxfev),
            "adaptive": bool(adaptive),
        }
        self.x0, self.sigma0 = x0.copy(), float(sigma0)
        self._worker: threading.Thread | None = None
        self._stop_worker: weakref.finalize | None = None
        self._reset()

    def _reset(self) -> None:
        self.evaluations = 0
        self.generation = 0
        self.best_x = self.x0.copy()
        self.best_f = -np.inf
        self.history: list[float] = []  # the fitness SciPy was told, in order
        self._recent: deque[np.ndarray] = deque(maxlen=self.dim + 1)  # SciPy's last n + 1 points
        self._pending: np.ndarray | None = None
        self.message: str | None = None  # SciPy's, once it returned
        self._replayed = 0  # values the worker answered from a loaded record

    # ---- the worker ----
    def _start(self, replay: list[float]) -> None:
        channel = _Channel()
        simplex = np.vstack([self.x0, self.x0 + self.sigma0 * np.eye(self.dim)])
        self._channel = channel
        self._worker = threading.Thread(
            target=_solve, args=(channel, self.x0.copy(), simplex, self.options, replay), daemon=True
        )
        self._stop_worker = weakref.finalize(self, channel.stop)
        self._worker.start()

    def _advance(self) -> None:
        """Wait for SciPy's next point (or its end), taking in the points it replays on the way."""
        if self._pending is not None or self.message is not None:
            return
        if self._worker is None:  # the first point, or after close(): replay what SciPy was told
            self._recent.clear()
            self._start(list(self.history))
        while True:
            kind, *rest = self._channel.requests.get()
            if kind == "replayed":
                self._replayed += 1
                self._note(rest[0], rest[1])
            elif kind == "ask":
                self._pending = np.asarray(rest[0], dtype=np.float64)
                return
            elif kind == "done":
                self.message = rest[0]
                return
            else:
                raise ConfigError(f"SciPy's Nelder-Mead failed: {rest[0]}")

    def _note(self, x: np.ndarray, fitness: float) -> None:
        self._recent.append(np.array(x, dtype=np.float64))
        if fitness > self.best_f:
            self.best_f, self.best_x = fitness, np.array(x, dtype=np.float64)

    def close(self) -> None:
        """Stop the worker thread (also done when the strategy is garbage collected). A later ask()
        starts a new worker that replays the record, so the run goes on where it was."""
        if self._stop_worker is not None:
            self._stop_worker()
        if self._worker is not None:
            self._worker.join(timeout=10)
        self._worker = self._stop_worker = None

    # ---- ask / tell ----
    @property
    def mean(self) -> np.ndarray:
        """The best point told so far (SciPy's best vertex)."""
        return self.best_x

    @property
    def sigma(self) -> float:
        """The spread of SciPy's last n + 1 points about the best, max |x_i - x_best| (SciPy's xatol
        test on its simplex); sigma0 until the initial simplex is evaluated, 0 once SciPy has returned."""
        if self.message is not None:
            return 0.0
        if len(self._recent) <= self.dim:
            return self.sigma0
        return float(max(np.abs(x - self.best_x).max() for x in self._recent))

    def ask(self) -> np.ndarray:
        self._advance()
        point = self.best_x if self._pending is None else self._pending
        return np.tile(point, (self.popsize, 1))

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        population = np.asarray(population, dtype=np.float64)
        self._advance()  # (a no-op after ask(); a tell() without one is checked against SciPy's point)
        expected = self.best_x if self._pending is None else self._pending
        if population.shape != (self.popsize, self.dim) or not (population == expected).all():
            raise ConfigError(
                "tell() got a population that ask() did not return; nelder-mead needs SciPy's point"
            )
        with np.errstate(invalid="ignore"):
            value = float(f.mean())  # +inf and -inf together: NaN, which ranks worst
        value = -math.inf if math.isnan(value) else value
        self.evaluations += len(f)
        self.generation += 1
        if self._pending is None:  # SciPy has returned: the best point is re-evaluated
            self.best_f = max(self.best_f, value)
            return
        self.history.append(value)
        self._note(self._pending, value)
        self._pending = None
        self._channel.replies.put(-value)

    def should_stop(self) -> dict[str, str]:
        """``{"scipy": message}`` once SciPy's solver has returned, else empty."""
        if self.history:
            self._advance()  # SciPy decides whether it has converged only after the last value
        return {} if self.message is None else {"scipy": self.message}

    # ---- state ----
    def state_dict(self) -> dict[str, Any]:
        return {
            "x0": self.x0.copy(),
            "sigma0": self.sigma0,
            "fitness_history": np.array(self.history, dtype=np.float64),
            "evaluations": self.evaluations,
            "generation": self.generation,
            "best_x": self.best_x.copy(),
            "best_f": self.best_f,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay SciPy's run against the recorded values; a record SciPy could not have produced
        from this x0 and sigma0 is refused."""
        x0, sigma0, history = _checked_state(state, self.dim)
        self.close()
        self.x0, self.sigma0 = x0, sigma0
        self._reset()
        self._start(history)
        self._advance()
        replayed = self._replayed
        if replayed != len(history):
            raise CheckpointError(
                f"strategy state: SciPy returned after {replayed} of the {len(history)} recorded values; "
                "expected a record of this run"
            )
        self.history = list(history)
        self.evaluations, self.generation = int(state["evaluations"]), int(state["generation"])
        self.best_x, self.best_f = np.array(state["best_x"], dtype=np.float64), float(state["best_f"])


def _calls(name: str, value: Any) -> float:
    """maxiter / maxfev: an integer in [1, MAX_CALLS], or None for no limit (np.inf for SciPy, whose
    own default, 200 n, would end a benchmark run long before its budget)."""
    if value is None:
        return math.inf
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or not 1 <= value <= MAX_CALLS:
        raise ConfigError(
            f"{name}={value!r} is not allowed; it must be an integer in [1, {MAX_CALLS}] (or unset)"
        )
    return int(value)


def _checked_state(state: dict[str, Any], dim: int) -> tuple[np.ndarray, float, list[float]]:
    """x0, sigma0 and the fitness record of a state, after checking every value a replay relies on."""
    x0 = np.asarray(state["x0"], dtype=np.float64)
    sigma0 = float(state["sigma0"])
    history = np.asarray(state["fitness_history"], dtype=np.float64)
    best_x = np.asarray(state["best_x"], dtype=np.float64)
    if (
        x0.shape != (dim,)
        or best_x.shape != (dim,)
        or not (np.isfinite(x0).all() and np.isfinite(best_x).all())
    ):
        raise CheckpointError(f"strategy state: x0 and best_x must be {dim} finite numbers each")
    if not (math.isfinite(sigma0) and sigma0 > 0):
        raise CheckpointError(f"strategy state: sigma0 is {sigma0}; expected a finite number > 0")
    if history.ndim != 1 or np.isnan(history).any():
        raise CheckpointError(
            "strategy state: fitness_history must be a vector without NaN (NaN is stored as -inf)"
        )
    if math.isnan(float(state["best_f"])):
        raise CheckpointError("strategy state: best_f is NaN; expected a number or -inf")
    generation, evaluations = state["generation"], state["evaluations"]
    if (
        not (isinstance(generation, int) and isinstance(evaluations, int))
        or not len(history) <= generation <= evaluations
    ):
        raise CheckpointError(
            f"strategy state: generation={generation!r}, evaluations={evaluations!r} with {len(history)} "
            "recorded values; expected integers with values <= generation <= evaluations"
        )
    return x0, sigma0, [float(v) for v in history]
