"""Black-box baselines behind ask/tell: stochastic hill climbing and simulated annealing.

Both keep one current point and sample Gaussian steps around it; fitness is maximised. Each
generation evaluates ``popsize`` candidates (1 by default: one candidate per step, as both methods
were published). The very first generation evaluates the start point x0 itself in row 0, so that
the current point always carries a measured fitness and "never worse" has a meaning.

Hill climbing is the (1+lambda) elitist scheme: the best of lambda Gaussian steps N(x, sigma^2 I)
replaces x when it is at least as good (ties move, so a plateau is crossed by a random walk). The
step size follows the 1/5th success rule (Rechenberg 1973) in the smooth form of Hansen, Arnold &
Auger, "Evolution Strategies" (Springer Handbook of Computational Intelligence, 2015), Algorithm 3:
sigma <- sigma * exp((1_success - 1/5) / d) with d = sqrt(n + 1). With lambda > 1 the indicator
becomes the fraction of the generation's steps that were successes (lambda = 1 is Algorithm 3).

Simulated annealing (Kirkpatrick, Gelatt & Vecchi 1983) proposes x' ~ N(x, sigma_k^2 I) and accepts it
with the Metropolis probability min(1, exp((f(x') - f(x)) / T_k)) for maximisation; with lambda > 1 the
best of the generation's proposals faces that test. The temperature cools geometrically,
T_k = T0 alpha^k (k = generations told), or logarithmically, T_k = T0 ln 2 / ln(k + 2) (the c / log k
form of Geman & Geman 1984). The proposal scale follows the temperature,
sigma_k = sigma0 (T_k / T0)^p: p = 1/2 makes the proposal variance proportional to T, the
generating distribution of Boltzmann annealing (Ingber 1993, "Simulated annealing: practice versus
theory"); p = 0 keeps sigma0.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.es.base import MAX_POPSIZE, Tracker, clean_fitness, prepare_x0

SUCCESS_TARGET = 0.2
"""The 1/5th success rule's target rate (Rechenberg 1973)."""
SIGMA_LIMITS = (1e-300, 1e300)
"""Step sizes stay positive and finite, so ask() never produces NaN and a checkpoint stays valid."""
STOP_SIGMA = 1e-12
"""should_stop() reports "tolsigma" once sigma < STOP_SIGMA * sigma0: the steps no longer move x."""
SCHEDULES = ("geometric", "logarithmic")


def prepare(x0: Any, sigma0: float, popsize: int | None, default: int = 1) -> tuple[np.ndarray, int]:
    """x0 as a vector and the population size: these baselines also allow popsize 1 (one step per
    generation), which the shared check refuses for the population-based strategies."""
    if popsize is None:
        return prepare_x0(x0, sigma0, None), default
    is_int = isinstance(popsize, (int, np.integer)) and not isinstance(popsize, bool)
    if not is_int or not 1 <= popsize <= MAX_POPSIZE:
        raise ConfigError(f"popsize={popsize!r} is not allowed; it must be an integer in [1, {MAX_POPSIZE}]")
    x = prepare_x0(x0, sigma0, popsize if popsize >= 2 else None)  # the shared memory check
    return x, int(popsize)


def check_number(name: str, value: Any, low: float, high: float, allowed: str) -> float:
    """A finite real number in [low, high]; ``allowed`` says what is, in the one-line error."""
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(f"{name}={value!r} is not allowed; it must be {allowed}")
    return float(value)


class _CurrentPoint(Tracker):
    """What both baselines share: one current point ``mean``, Gaussian candidates around it, and x0
    evaluated in row 0 of the first generation."""

    mean: np.ndarray
    popsize: int
    dim: int
    sigma: float

    def ask(self) -> np.ndarray:
        steps = self.rng.standard_normal((self.popsize, self.dim))
        population = self.mean + self.sigma * steps
        if self.generation == 0:
            population[0] = self.mean  # x0 itself, so that the current point has a fitness
        return population

    def _candidates(self, population: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The rows that are steps from the current point (all but x0's row in the first generation)."""
        if self.generation == 0:
            return population[1:], f[1:]
        return population, f


class HillClimbing(_CurrentPoint):
    """(1+lambda) stochastic hill climbing with the 1/5th success rule (``success_rule=False`` keeps
    sigma0). ``damping`` is the rule's d (default sqrt(n + 1), Hansen, Arnold & Auger 2015)."""

    name = "hill-climbing"
    _STATE = ("mean", "sigma", "evaluations", "generation", "best_x", "best_f")

    def __init__(
        self,
        x0: Any,
        sigma0: float,
        seed: int = 0,
        popsize: int | None = None,
        success_rule: bool = True,
        damping: float | None = None,
    ) -> None:
        x0, self.popsize = prepare(x0, sigma0, popsize)
        if not isinstance(success_rule, (bool, np.bool_)):
            raise ConfigError(f"success_rule={success_rule!r} is not allowed; it must be true or false")
        self.dim = len(x0)
        self.success_rule = bool(success_rule)
        default_damping = math.sqrt(self.dim + 1)  # Hansen, Arnold & Auger 2015, Algorithm 3
        self.damping = (
            default_damping
            if damping is None
            else check_number("damping", damping, 1e-3, 1e6, "a number in [0.001, 1e6] (default sqrt(n + 1))")
        )
        self.sigma0 = float(sigma0)
        self.mean, self.sigma = x0.copy(), float(sigma0)
        self.rng = np.random.default_rng(seed)
        self._init_tracker(x0)

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        population = np.asarray(population, dtype=np.float64)
        if self.generation == 0:
            self.mean, self.best_f = population[0].copy(), float(f[0])  # x0's fitness: the parent's
        steps, step_f = self._candidates(population, f)
        parent_f = self.best_f  # elitist: the parent is always a best point seen (ties included)
        if len(step_f):
            i = int(np.argmax(step_f))
            if step_f[i] >= parent_f:  # never worse; equal moves
                self.mean = steps[i].copy()
            if self.success_rule:
                success_rate = float(np.mean(step_f >= parent_f))
                factor = math.exp((success_rate - SUCCESS_TARGET) / self.damping)
                self.sigma = float(np.clip(self.sigma * factor, *SIGMA_LIMITS))
        if self.generation == 0:
            self.best_f = -np.inf  # let the record below count x0 like any other evaluation
        self._record(population, f)

    def should_stop(self) -> dict[str, float]:
        """The criteria that hold, by name and threshold (empty: keep going), as CMA-ES reports
        them: "tolsigma" once sigma < STOP_SIGMA * sigma0 (the steps no longer move x)."""
        threshold = STOP_SIGMA * self.sigma0
        return {"tolsigma": threshold} if self.sigma < threshold else {}


class SimulatedAnnealing(_CurrentPoint):
    """Simulated annealing with Gaussian proposals and Metropolis acceptance (maximisation).

    ``initial_temperature`` is T0 in fitness units (differences of about T0 are accepted with
    probability 1/e at the start); ``cooling_rate`` is the geometric schedule's alpha per generation;
    ``step_power`` is p in sigma_k = sigma0 (T_k / T0)^p."""

    name = "simulated-annealing"
    _STATE = ("mean", "mean_f", "evaluations", "generation", "best_x", "best_f")

    def __init__(
        self,
        x0: Any,
        sigma0: float,
        seed: int = 0,
        popsize: int | None = None,
        initial_temperature: float = 1.0,
        cooling_rate: float = 0.99,
        schedule: str = "geometric",
        step_power: float = 0.5,
    ) -> None:
        x0, self.popsize = prepare(x0, sigma0, popsize)
        if schedule not in SCHEDULES:
            raise ConfigError(f"schedule={schedule!r} is not allowed; choose one of {list(SCHEDULES)}")
        self.initial_temperature = check_number(
            "initial_temperature", initial_temperature, 1e-300, 1e300, "a finite number > 0"
        )
        if not self.initial_temperature > 0:
            raise ConfigError(f"initial_temperature={initial_temperature!r} is not allowed; it must be > 0")
        # alpha in (0, 1): 1 would never cool; common choices lie in [0.8, 0.99] (Kirkpatrick et al.
        # 1983 lowered T by 0.9 per stage of many moves; one generation is one stage here, so 0.99)
        self.cooling_rate = check_number("cooling_rate", cooling_rate, 1e-6, 1 - 1e-12, "a number in (0, 1)")
        self.step_power = check_number("step_power", step_power, 0.0, 10.0, "a number in [0, 10]")
        self.schedule = schedule
        self.dim = len(x0)
        self.sigma0 = float(sigma0)
        self.mean, self.mean_f = x0.copy(), -np.inf
        self.rng = np.random.default_rng(seed)
        self._init_tracker(x0)

    @property
    def temperature(self) -> float:
        """T_k after k = ``generation`` generations (a function of k, so no state of its own)."""
        k = self.generation
        if self.schedule == "logarithmic":
            return self.initial_temperature * math.log(2) / math.log(k + 2)
        return self.initial_temperature * self.cooling_rate**k  # may underflow to 0: then greedy

    @property
    def sigma(self) -> float:  # type: ignore[override]  # a function of T here, a stored step size in hill climbing
        ratio = self.temperature / self.initial_temperature
        return float(np.clip(self.sigma0 * ratio**self.step_power, *SIGMA_LIMITS))

    def acceptance_probability(self, candidate_f: float, current_f: float) -> float:
        """Metropolis: min(1, exp((f' - f) / T)) for maximisation; a candidate at least as good is
        always taken (so -inf to -inf and +inf to +inf move, and no NaN arises from inf - inf)."""
        if candidate_f >= current_f:
            return 1.0
        temperature = self.temperature
        if temperature <= 0:
            return 0.0
        return math.exp((candidate_f - current_f) / temperature)  # a worse candidate: argument < 0

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        population = np.asarray(population, dtype=np.float64)
        if self.generation == 0:
            self.mean, self.mean_f = population[0].copy(), float(f[0])
        proposals, proposal_f = self._candidates(population, f)
        if len(proposal_f):
            i = int(np.argmax(proposal_f))
            uniform = self.rng.random()  # drawn every generation, so the stream never depends on f
            if uniform < self.acceptance_probability(float(proposal_f[i]), self.mean_f):
                self.mean, self.mean_f = proposals[i].copy(), float(proposal_f[i])
        self._record(population, f)

    def should_stop(self) -> dict[str, float]:
        """The criteria that hold, by name and threshold (empty: keep going): "temperature" once T
        has underflowed to 0 (only improvements are accepted), "tolsigma" once the proposals'
        sigma < STOP_SIGMA * sigma0."""
        reasons = {}
        if self.temperature <= 0:
            reasons["temperature"] = 0.0
        if self.step_power > 0 and self.sigma < STOP_SIGMA * self.sigma0:
            reasons["tolsigma"] = STOP_SIGMA * self.sigma0
        return reasons
