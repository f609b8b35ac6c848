"""CMA-ES with weighted recombination, cumulative step-size adaptation, rank-one and rank-mu
covariance updates with negative (active) weights, the h_sigma stall and a lazy eigendecomposition.

Every constant follows N. Hansen, "The CMA Evolution Strategy: A Tutorial" (arXiv:1604.00772,
2016), Table 1 and Section 3-4; equation numbers below refer to it. Box bounds are handled by
clipping sampled points into the box before they are evaluated and used (a simple repair).

``should_stop()`` names the termination criteria that hold (es/termination.py, pycma's set). A stop
is advice: ask/tell may go on, and never raises. The numerical guards that make this so follow the
tutorial (Appendix B.2, "numerical issues") and pycma: C is kept exactly symmetric, its eigenvalues
are floored at max / 1e16, a failed or non-finite eigendecomposition keeps the previous B and D,
the scale of C is moved into sigma when it drifts (sigma and C only matter as sigma^2 C), sigma
stays within [1e-290, 1e150] / max(D), and an update that would leave a non-finite mean or path is
not applied. NaN fitness ranks worst; +-inf keep their order.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from rlcanon.errors import ConfigError
from rlcanon.es.base import Tracker, clean_fitness, prepare_x0
from rlcanon.es.termination import FitnessHistory, StopCriteria, stop_reasons

MAX_CONDITION = 1e16
"""C's eigenvalues are floored at max / MAX_CONDITION: eigh's error is about 1e-16 max, so smaller
ones are rounding noise and could turn negative."""
SCALE_RANGE = (1e-100, 1e100)
"""The largest eigenvalue of C is kept in this range by moving the scale into sigma."""
STD_RANGE = (1e-290, 1e150)
"""sigma * max(D), the largest sampled standard deviation, stays in this range (no underflow of the
steps, no overflow of the samples or of f at them)."""


@dataclass(frozen=True)
class CMAConstants:
    n: int
    popsize: int
    mu: int
    weights: np.ndarray  # all lambda weights, positive ones summing to 1, negative ones scaled
    mueff: float
    c_sigma: float
    d_sigma: float
    c_c: float
    c_1: float
    c_mu: float
    chi_n: float  # E||N(0, I)||
    eigen_every: int

    @classmethod
    def for_dim(cls, n: int, popsize: int | None = None, eigen_gap_factor: float = 0.5) -> CMAConstants:
        lam = popsize or 4 + math.floor(3 * math.log(n))  # Table 1: lambda = 4 + floor(3 ln n)
        mu = lam // 2  # mu = floor(lambda / 2)
        w_raw = math.log((lam + 1) / 2) - np.log(np.arange(1, lam + 1))  # eq. 49
        pos, neg = w_raw[:mu], w_raw[mu:]
        mueff = pos.sum() ** 2 / (pos**2).sum()  # mu_eff, from the positive weights
        mueff_neg = neg.sum() ** 2 / (neg**2).sum() if len(neg) and neg.sum() else 0.0
        alpha_cov = 2.0
        c_1 = alpha_cov / ((n + 1.3) ** 2 + mueff)  # eq. 57
        c_mu = min(
            1 - c_1, alpha_cov * (0.25 + mueff + 1 / mueff - 2) / ((n + 2) ** 2 + alpha_cov * mueff / 2)
        )
        c_sigma = (mueff + 2) / (n + mueff + 5)  # eq. 55
        d_sigma = 1 + 2 * max(0.0, math.sqrt((mueff - 1) / (n + 1)) - 1) + c_sigma
        c_c = (4 + mueff / n) / (n + 4 + 2 * mueff / n)  # eq. 56
        # eq. 50-53: negative weights scaled by min(alpha_mu^-, alpha_mueff^-, alpha_posdef^-)
        alpha_mu_neg = 1 + c_1 / c_mu
        alpha_mueff_neg = 1 + 2 * mueff_neg / (mueff + 2)
        alpha_posdef_neg = (1 - c_1 - c_mu) / (n * c_mu)
        scale_neg = min(alpha_mu_neg, alpha_mueff_neg, alpha_posdef_neg)
        weights = np.where(w_raw >= 0, w_raw / pos.sum(), scale_neg * w_raw / -neg.sum() if len(neg) else 0.0)
        chi_n = math.sqrt(n) * (1 - 1 / (4 * n) + 1 / (21 * n * n))  # E||N(0, I)||, p. 29
        # lazy eigendecomposition: at least eigen_gap_factor / (n (c_1 + c_mu)) generations apart,
        # rounded up as pycma does. The tutorial (Section B.2) and pycma's main class use 0.1; the
        # default 0.5 is the gap of purecma, the tutorial author's minimal reference implementation
        # (cma/more_algorithms/purecma.py, lazy_gap_evals), chosen there so that eig costs about
        # twice a tell. Evaluation counts are the same with either (docs/benchmarks.md).
        eigen_every = max(1, math.ceil(eigen_gap_factor / (n * (c_1 + c_mu))))
        return cls(n, lam, mu, weights, mueff, c_sigma, d_sigma, c_c, c_1, c_mu, chi_n, eigen_every)


class CMAES(Tracker):
    """Ask/tell CMA-ES (maximises fitness). ``bounds`` = (low, high), scalars or arrays.

    ``eigen_gap_factor`` sets how lazily C is decomposed: at least eigen_gap_factor / (n (c1 + cmu))
    generations apart (0.5, purecma's gap, by default; 0.1 is the tutorial's and pycma's). The other
    keywords are the termination criteria's settings (:class:`StopCriteria`, pycma's defaults)."""

    name = "cma-es"
    _STATE = (
        "mean",
        "sigma",
        "C",
        "B",
        "D",
        "p_sigma",
        "p_c",
        "evaluations",
        "generation",
        "best_x",
        "best_f",
        "last_eigen",
    )
    _STOP_OPTIONS = (
        "tolx",
        "tolfun",
        "tolfunhist",
        "tolstagnation",
        "conditioncov",
        "tolfacupx",
        "maxiter",
        "maxfevals",
    )

    def __init__(
        self,
        x0: Any,
        sigma0: float,
        seed: int = 0,
        popsize: int | None = None,
        bounds: tuple[Any, Any] | None = None,
        eigen_gap_factor: float = 0.5,
        tolx: float = 1e-11,
        tolfun: float = 1e-11,
        tolfunhist: float = 1e-12,
        tolstagnation: int | None = None,
        conditioncov: float = 1e14,
        tolfacupx: float = 1e3,
        maxiter: int | None = None,
        maxfevals: float = math.inf,
    ) -> None:
        from rlcanon.core.config import check_memory

        x0 = prepare_x0(x0, sigma0, popsize)
        if (
            not isinstance(eigen_gap_factor, (int, float, np.integer, np.floating))
            or isinstance(eigen_gap_factor, bool)
            or not 0 <= eigen_gap_factor <= 1e6  # also catches NaN and infinity
        ):
            raise ConfigError(
                f"eigen_gap_factor={eigen_gap_factor!r} is not allowed; it must be a number in [0, 1e6] "
                "(0: decompose every generation, 0.1: the tutorial's gap, 0.5: the default)"
            )
        self.stop_criteria = StopCriteria(
            tolx, tolfun, tolfunhist, tolstagnation, conditioncov, tolfacupx, maxiter, maxfevals
        )
        self.stop_criteria.validate()
        self.dim = n = len(x0)
        check_memory("dimension", 5 * 8 * n * n)  # C, B and the temporaries of its eigendecomposition
        self.k = CMAConstants.for_dim(n, popsize, eigen_gap_factor)
        self.popsize = self.k.popsize
        self.rng = np.random.default_rng(seed)
        self.bounds = None if bounds is None else _check_bounds(bounds, n)
        self.mean = x0.copy()
        self.sigma = self.sigma0 = float(sigma0)
        self.C = np.eye(n)
        self.B = np.eye(n)  # eigenvectors as columns: C = B diag(D^2) B^T
        self.D = np.ones(n)
        self._d_max = 1.0  # max(D), read by every sigma update
        self.p_sigma = np.zeros(n)
        self.p_c = np.zeros(n)
        self.last_eigen = 0
        self.history = FitnessHistory(n, self.popsize)
        self._init_tracker(x0)

    # ---- ask / tell ----
    def ask(self) -> np.ndarray:
        z = self.rng.standard_normal((self.popsize, self.dim))
        y = (z * self.D) @ self.B.T  # y ~ N(0, C)  (eq. 38-39)
        x = self.mean + self.sigma * y
        if self.bounds is not None:
            x = np.clip(x, *self.bounds)
        return x

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        population = np.asarray(population, dtype=np.float64)
        # one sum finds NaN and infinity (the asked samples are far below the float range's end)
        if population.shape != (self.popsize, self.dim) or not math.isfinite(float(population.sum())):
            raise ConfigError(
                f"tell() needs the asked population: a finite array of shape ({self.popsize}, {self.dim}); "
                f"got shape {population.shape}" + ("" if population.size == 0 else " or non-finite entries")
            )
        best_before = self.best_f
        self._record(population, f)
        self.history.record(f, self.generation, self.evaluations, self.best_f > best_before)
        with np.errstate(all="ignore"):  # the guards below handle what overflows or underflows
            self._update(population, f)
            if self.generation - self.last_eigen >= self.k.eigen_every:
                self._eigen()

    def _update(self, population: np.ndarray, f: np.ndarray) -> None:
        """One generation of eq. 41-47 (tutorial Section 4). A step whose mean or paths would not be
        finite is not applied (it can only come from numbers at the edge of the float range)."""
        k = self.k
        order = np.argsort(-f, kind="stable")  # best first (maximisation)
        y = (population[order] - self.mean) / self.sigma
        w = k.weights
        y_w = w[: k.mu] @ y[: k.mu]  # eq. 41 (positive weights)
        mean = self.mean + self.sigma * y_w  # eq. 42, c_m = 1
        c_inv_sqrt_y_w = self.B @ ((self.B.T @ y_w) / self.D)  # C^{-1/2} y_w
        p_sigma = (1 - k.c_sigma) * self.p_sigma + math.sqrt(
            k.c_sigma * (2 - k.c_sigma) * k.mueff
        ) * c_inv_sqrt_y_w
        norm_ps = math.sqrt(float(p_sigma @ p_sigma))
        # h_sigma stalls the p_c update while ||p_sigma|| is large (p. 30)
        h_sigma = (
            norm_ps / math.sqrt(1 - (1 - k.c_sigma) ** (2 * self.generation))
            < (1.4 + 2 / (k.n + 1)) * k.chi_n
        )
        p_c = (1 - k.c_c) * self.p_c + h_sigma * math.sqrt(k.c_c * (2 - k.c_c) * k.mueff) * y_w  # eq. 45
        if not math.isfinite(float(mean.sum() + p_sigma.sum() + p_c.sum())):  # one check: NaN or inf
            return
        self.mean, self.p_sigma, self.p_c = mean, p_sigma, p_c
        # negative weights act on Mahalanobis-normalised steps: w_i * n / ||C^{-1/2} y_i||^2 (eq. 46)
        w_circ = w.copy()
        neg = w < 0
        if neg.any():
            cy = (y[neg] @ self.B) / self.D
            w_circ[neg] *= k.n / np.maximum((cy * cy).sum(axis=1), 1e-300)
        delta_h = (1 - h_sigma) * k.c_c * (2 - k.c_c)
        # eq. 47 as one weighted Gram product: rank-one (p_c, weight c_1) and rank-mu rows together
        rows = np.concatenate([self.p_c[None], y])
        coef = np.concatenate([[k.c_1], k.c_mu * w_circ])
        self.C *= 1 + k.c_1 * delta_h - k.c_1 - k.c_mu * w.sum()
        self.C += (rows.T * coef) @ rows
        sigma = self.sigma * math.exp(min(1.0, (k.c_sigma / k.d_sigma) * (norm_ps / k.chi_n - 1)))  # eq. 44
        self._set_sigma(sigma)

    def _set_sigma(self, sigma: float) -> None:
        """sigma, unless it is not finite, clipped so that sigma * max(D) stays in STD_RANGE."""
        if not math.isfinite(sigma) or sigma <= 0:
            return
        top = self._d_max
        self.sigma = min(max(sigma, STD_RANGE[0] / top), STD_RANGE[1] / top)

    def _eigen(self) -> None:
        """C = B diag(D^2) B^T, with the guards of the module docstring."""
        self.last_eigen = self.generation
        old_d2 = self.D**2
        d2, B, C = old_d2, self.B, self.C  # the fallback: keep the last decomposition
        if np.isfinite(C).all():
            C = self.C + self.C.T  # keep C exactly symmetric (a + b == b + a in floating point)
            C *= 0.5
            with contextlib.suppress(np.linalg.LinAlgError):  # a failed eigh keeps the last B, D
                d2, B = np.linalg.eigh(C)
        top = float(d2.max())
        if not (np.isfinite(d2).all() and np.isfinite(B).all() and top > 0):
            d2, B, top = old_d2, self.B, float(old_d2.max())
        floored = d2 < top / MAX_CONDITION
        if floored.any() or d2 is old_d2:  # make C the matrix that B and D describe
            d2 = np.maximum(d2, top / MAX_CONDITION)
            C = (B * d2) @ B.T
            C = 0.5 * (C + C.T)
        if not SCALE_RANGE[0] <= top <= SCALE_RANGE[1]:
            # (sigma, C, p_c) -> (sigma sqrt(s), C / s, p_c / sqrt(s)) samples the same distribution
            C, d2 = C / top, d2 / top
            self.p_c = self.p_c / math.sqrt(top)
            self.sigma *= math.sqrt(top)
        self.C, self.B, self.D = C, B, np.sqrt(d2)
        self._d_max = float(self.D.max())
        self._set_sigma(self.sigma)

    # ---- diagnostics, stopping, state ----
    @property
    def condition(self) -> float:
        return float((self.D.max() / self.D.min()) ** 2)

    def should_stop(self) -> dict[str, float]:
        """The termination criteria that hold, by name (empty, hence falsy, while the run should go
        on); see :func:`rlcanon.es.termination.stop_reasons`. Continuing after a stop is safe."""
        return stop_reasons(self, self.stop_criteria)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **self.history.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.history.load_state_dict(state)
        self.sigma = float(self.sigma)
        self._d_max = float(self.D.max())


def _check_bounds(bounds: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``bounds`` = (low, high), each a number or n numbers, low < high everywhere (inf allowed)."""
    message = (
        f"bounds={bounds!r:.80} is not allowed; give [low, high], each a number or {n} numbers, "
        "with low < high (NaN is not a bound)"
    )
    try:
        if len(bounds) != 2:
            raise ConfigError(message)
        low, high = (np.broadcast_to(np.asarray(b, dtype=np.float64), n) for b in bounds)
    except (TypeError, ValueError):
        raise ConfigError(message) from None
    if np.isnan(low).any() or np.isnan(high).any() or not (low < high).all():
        raise ConfigError(message)
    return low, high
