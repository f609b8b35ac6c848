"""IPOP and BIPOP restarts of CMA-ES: which run comes after a stop, and an ask/tell strategy that
restarts itself.

IPOP (Auger & Hansen 2005, "A Restart CMA Evolution Strategy With Increasing Population Size"):
every restart doubles the population. BIPOP (N. Hansen 2009, "Benchmarking a BI-Population CMA-ES
on the BBOB-2009 Function Testbed", Section 2) interleaves two regimes and always runs the one that
has used fewer evaluations so far:

- large: lambda doubles at each of its restarts, sigma0 as given;
- small: lambda_s = floor(lambda_def (lambda_l / (2 lambda_def))^(U^2)) and
  sigma_s = sigma0 10^(-2 U), with independent U ~ U[0, 1] each, where lambda_l = lambda_def 2^(k+1)
  after k large restarts (the large regime's next population), so lambda_def <= lambda_s <= lambda_l / 2.
  A small run is capped at half the large regime's evaluations so far (pycma's ``fmin(bipop=True)``:
  maxiter = 0.5 * sum(large evaluations) / lambda_s).

The first run (lambda_def) counts towards the large regime's evaluations, so the first restart is a
small one. pycma's ``fmin(bipop=True)`` books that first run to the small regime instead (a choice
its source carries over from the Matlab code and marks as possibly a bug), so its first restart is
a large one; the two orders differ only in which regime runs first. A small run here is capped at
0.5 * sum(large evaluations) / lambda_s generations; pycma takes the minimum of that and maxiter.
Every run starts from the same x0; run k is seeded with seed + 1000 k, and its U draws come from a
generator seeded with (seed, k).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.es.base import MAX_POPSIZE
from rlcanon.es.cmaes import CMAES

SCHEMES = ("ipop", "bipop")
MAX_RESTARTS = 100
NOTHING_YET = -float(np.finfo(np.float64).max)
"""The best fitness of the finished runs before any finite one was seen (a finite stand-in for -inf,
so that every stored array stays finite)."""


def small_popsize(default_popsize: int, large_popsize: int, u: float) -> int:
    """BIPOP's small population, floor(lambda_def (lambda_l / (2 lambda_def))^(u^2)) (Hansen 2009)."""
    return max(2, math.floor(default_popsize * (0.5 * large_popsize / default_popsize) ** (u * u)))


def small_sigma(sigma0: float, u: float) -> float:
    """BIPOP's small step size, sigma0 10^(-2 u) (Hansen 2009)."""
    return sigma0 * 10.0 ** (-2.0 * u)


def choose_regime(evals_large: int, evals_small: int) -> str:
    """The regime that has used fewer evaluations so far runs next (ties: large)."""
    return "small" if evals_small < evals_large else "large"


@dataclass(frozen=True)
class Run:
    """One CMA-ES run of a restart scheme."""

    index: int
    regime: str
    popsize: int
    sigma0: float
    seed: int
    max_generations: int | None = None  # small BIPOP runs only


class RestartSchedule:
    """The runs of an IPOP or BIPOP scheme, one after another: :meth:`next_run` after each stop,
    given the evaluations the finished run used. Its state is a handful of integers."""

    STATE = ("run_index", "large_restarts", "evals_large", "evals_small", "small_regime")

    def __init__(self, scheme: str, default_popsize: int, sigma0: float, seed: int) -> None:
        if scheme not in SCHEMES:
            raise ConfigError(f"restart_scheme={scheme!r} is not allowed; choose one of {list(SCHEMES)}")
        self.scheme, self.default_popsize, self.sigma0, self.seed = scheme, default_popsize, sigma0, seed
        self.run_index = 0
        self.large_restarts = 0
        self.evals_large = 0
        self.evals_small = 0
        self.small_regime = 0  # the regime of the current run: 1 small, 0 large

    def current(self) -> Run:
        """The run now under way (rebuilt from the state, so that a checkpoint can resume it)."""
        seed = self.seed + 1000 * self.run_index
        if not self.small_regime:
            popsize = self.default_popsize * 2**self.large_restarts
            return Run(self.run_index, "large", popsize, self.sigma0, seed)
        u_popsize, u_sigma = np.random.default_rng([self.seed, self.run_index]).random(2)
        large = self.default_popsize * 2 ** (self.large_restarts + 1)
        popsize = small_popsize(self.default_popsize, large, float(u_popsize))
        cap = max(1, int(0.5 * self.evals_large / popsize))
        return Run(self.run_index, "small", popsize, small_sigma(self.sigma0, float(u_sigma)), seed, cap)

    def next_run(self, evaluations_used: int) -> Run:
        """Book the finished run's evaluations to its regime and return the next run."""
        if self.small_regime:
            self.evals_small += evaluations_used
        else:
            self.evals_large += evaluations_used
        self.run_index += 1
        small = self.scheme == "bipop" and choose_regime(self.evals_large, self.evals_small) == "small"
        self.small_regime = int(small)
        if not small:
            self.large_restarts += 1
        return self.current()

    def peek_popsize(self) -> int:
        """The largest population the next run could have (the large regime's next one)."""
        return self.default_popsize * 2 ** (self.large_restarts + 1)


class RestartCMAES:
    """Ask/tell CMA-ES that restarts itself when its run stops (maximises fitness): BIPOP by default,
    IPOP with ``scheme = "ipop"``. The population may change between generations, so read
    ``popsize`` before each ``ask``. ``should_stop()`` is empty until the last allowed run stops."""

    name = "bipop-cma-es"
    scheme = "bipop"

    def __init__(
        self,
        x0: Any,
        sigma0: float,
        seed: int = 0,
        popsize: int | None = None,
        bounds: tuple[Any, Any] | None = None,
        eigen_gap_factor: float = 0.5,
        max_restarts: int = 9,
    ) -> None:
        # 9 restarts: pycma's documented BIPOP example, ``cma.fmin(..., restarts=9, bipop=True)``
        is_int = isinstance(max_restarts, (int, np.integer)) and not isinstance(max_restarts, bool)
        if not is_int or not 0 <= max_restarts <= MAX_RESTARTS:
            raise ConfigError(
                f"max_restarts={max_restarts!r} is not allowed; it must be an integer in [0, {MAX_RESTARTS}]"
            )
        self.max_restarts = int(max_restarts)
        self._settings: dict[str, Any] = {"bounds": bounds, "eigen_gap_factor": eigen_gap_factor}
        self.inner = CMAES(x0, sigma0, seed=seed, popsize=popsize, **self._settings)
        self.x0 = self.inner.mean.copy()
        self.dim = self.inner.dim
        self.schedule = RestartSchedule(self.scheme, self.inner.popsize, float(sigma0), seed)
        self.evaluations = 0
        self.generation = 0
        self.previous_best_x = self.x0.copy()
        self.previous_best_f = NOTHING_YET
        self.last_stop: dict[str, float] = {}  # why the latest finished run stopped

    # ---- what callers read ----
    @property
    def popsize(self) -> int:
        return self.inner.popsize

    @property
    def mean(self) -> np.ndarray:
        return self.inner.mean

    @property
    def sigma(self) -> float:
        return self.inner.sigma

    @property
    def best_f(self) -> float:
        inner = self.inner.best_f
        return (
            inner
            if inner > self.previous_best_f or self.previous_best_f == NOTHING_YET
            else self.previous_best_f
        )

    @property
    def best_x(self) -> np.ndarray:
        return self.inner.best_x if self.best_f == self.inner.best_f else self.previous_best_x

    # ---- ask / tell ----
    def ask(self) -> np.ndarray:
        return self.inner.ask()

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        self.inner.tell(population, fitness)
        self.evaluations += self.inner.popsize
        self.generation += 1
        stop = self.inner.should_stop()
        if stop and not self._budget_spent():
            self.last_stop = stop
            if self.inner.best_f > self.previous_best_f:
                self.previous_best_f, self.previous_best_x = self.inner.best_f, self.inner.best_x.copy()
            self._start(self.schedule.next_run(self.inner.evaluations))

    def _budget_spent(self) -> bool:
        return self.schedule.run_index >= self.max_restarts or self.schedule.peek_popsize() > MAX_POPSIZE

    def _start(self, run: Run) -> None:
        self.inner = CMAES(
            self.x0,
            run.sigma0,
            seed=run.seed,
            popsize=run.popsize,
            maxiter=run.max_generations,
            **self._settings,
        )

    def should_stop(self) -> dict[str, float]:
        """The last run's stop reasons once no restart is left; empty before."""
        return self.inner.should_stop() if self._budget_spent() else {}

    # ---- state ----
    def state_dict(self) -> dict[str, Any]:
        """The current run's CMA-ES state under its own names, plus the scheme's counters."""
        return {
            **self.inner.state_dict(),
            **{key: getattr(self.schedule, key) for key in RestartSchedule.STATE},
            "total_evaluations": self.evaluations,
            "total_generations": self.generation,
            "run_popsize": self.inner.popsize,
            "previous_best_x": self.previous_best_x.copy(),
            "previous_best_f": self.previous_best_f,
        }

    def check_state_json(self, obj: dict[str, Any], where: str, path: str) -> None:
        """Restart counters that this scheme can reach, and a current run that they rebuild with the
        population size that was saved (checked on a scratch schedule before anything is loaded)."""
        from rlcanon.errors import CheckpointError

        def refuse(key: str, allowed: str) -> None:
            raise CheckpointError(f"{where}: field {path}.{key} = {obj.get(key)!r}; expected {allowed}")

        ints: dict[str, int] = {}
        for key in (*RestartSchedule.STATE, "total_evaluations", "run_popsize"):
            value = obj.get(key)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                refuse(key, "an integer >= 0")
            ints[key] = int(value)  # type: ignore[arg-type]  # an int: checked just above
        if ints["small_regime"] not in ((0, 1) if self.scheme == "bipop" else (0,)):
            refuse(
                "small_regime",
                "0 (large)" + (" or 1 (small)" if self.scheme == "bipop" else f" for {self.scheme}"),
            )
        if not ints["run_index"] <= self.max_restarts:
            refuse("run_index", f"at most max_restarts = {self.max_restarts}")
        if not ints["large_restarts"] <= ints["run_index"]:
            refuse("large_restarts", f"at most run_index = {ints['run_index']}")
        if self.scheme == "ipop" and ints["large_restarts"] != ints["run_index"]:
            refuse(
                "large_restarts", f"equal to run_index = {ints['run_index']} (every IPOP restart is large)"
            )
        if ints["evals_large"] + ints["evals_small"] > ints["total_evaluations"]:
            refuse(
                "evals_large", f"evals_large + evals_small <= total_evaluations = {ints['total_evaluations']}"
            )
        scratch = RestartSchedule(
            self.scheme, self.schedule.default_popsize, self.schedule.sigma0, self.schedule.seed
        )
        for key in RestartSchedule.STATE:
            setattr(scratch, key, ints[key])
        if scratch.peek_popsize() > 2 * MAX_POPSIZE or scratch.current().popsize != ints["run_popsize"]:
            refuse("run_popsize", "the population size that the restart counters give for the current run")

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in RestartSchedule.STATE:
            setattr(self.schedule, key, int(state[key]))
        self._start(self.schedule.current())
        self.inner.load_state_dict(state)
        self.evaluations = int(state["total_evaluations"])
        self.generation = int(state["total_generations"])
        self.previous_best_x = np.array(state["previous_best_x"], dtype=np.float64)
        self.previous_best_f = float(state["previous_best_f"])


class IPOPCMAES(RestartCMAES):
    """The same self-restarting strategy with IPOP's schedule (the population doubles every run)."""

    name = "ipop-cma-es"
    scheme = "ipop"
