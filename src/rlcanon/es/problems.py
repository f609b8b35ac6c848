"""Benchmark functions to minimise (the CLI minimises; strategies maximise -f). Every function
takes a population [lambda, n] and returns [lambda] values, vectorised. Definitions follow the
BBOB noiseless suite (Hansen et al. 2009) without its random shifts, so every optimum is f(x*) = 0
at x* = 0, except Rosenbrock's at x* = 1."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from rlcanon.errors import ConfigError


def sphere(x: np.ndarray) -> np.ndarray:
    return (x * x).sum(axis=1)


def _ill(n: int, cond: float = 1e6) -> np.ndarray:
    return cond ** (np.arange(n) / max(n - 1, 1))


def ellipsoid(x: np.ndarray) -> np.ndarray:
    """Axis-parallel ellipsoid with condition number 1e6 (BBOB f2)."""
    return (_ill(x.shape[1]) * x * x).sum(axis=1)


_ROTATIONS: dict[int, np.ndarray] = {}


def rotation(n: int) -> np.ndarray:
    """A fixed random orthogonal matrix for dimension n (seeded, so the problem is the same everywhere)."""
    if n not in _ROTATIONS:
        q, r = np.linalg.qr(np.random.default_rng(12345 + n).standard_normal((n, n)))
        _ROTATIONS[n] = q * np.sign(np.diag(r))
    return _ROTATIONS[n]


def rotated_ellipsoid(x: np.ndarray) -> np.ndarray:
    """The ellipsoid in a rotated basis (BBOB f10): no separability to exploit."""
    return ellipsoid(x @ rotation(x.shape[1]).T)


def rosenbrock(x: np.ndarray) -> np.ndarray:
    """sum 100 (x_i^2 - x_{i+1})^2 + (x_i - 1)^2, minimum 0 at x = 1 (BBOB f8 unshifted)."""
    return (100 * (x[:, :-1] ** 2 - x[:, 1:]) ** 2 + (x[:, :-1] - 1) ** 2).sum(axis=1)


def rastrigin(x: np.ndarray) -> np.ndarray:
    """10 n + sum x_i^2 - 10 cos(2 pi x_i) (BBOB f3 without its transformations)."""
    return 10 * x.shape[1] + (x * x - 10 * np.cos(2 * np.pi * x)).sum(axis=1)


def bent_cigar(x: np.ndarray) -> np.ndarray:
    """x_1^2 + 1e6 sum_{i>1} x_i^2 (BBOB f12, unrotated)."""
    return x[:, 0] ** 2 + 1e6 * (x[:, 1:] ** 2).sum(axis=1)


def discus(x: np.ndarray) -> np.ndarray:
    """1e6 x_1^2 + sum_{i>1} x_i^2 (BBOB f11, unrotated)."""
    return 1e6 * x[:, 0] ** 2 + (x[:, 1:] ** 2).sum(axis=1)


def different_powers(x: np.ndarray) -> np.ndarray:
    """sqrt(sum |x_i|^(2 + 4 (i-1)/(n-1))) (BBOB f14, unrotated)."""
    n = x.shape[1]
    return np.sqrt((np.abs(x) ** (2 + 4 * np.arange(n) / max(n - 1, 1))).sum(axis=1))


def linear_slope(x: np.ndarray) -> np.ndarray:
    """-sum x_i: unbounded below; a test bed for step-size growth."""
    return -x.sum(axis=1)


PROBLEMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sphere": sphere,
    "ellipsoid": ellipsoid,
    "rotated-ellipsoid": rotated_ellipsoid,
    "rosenbrock": rosenbrock,
    "rastrigin": rastrigin,
    "bent-cigar": bent_cigar,
    "discus": discus,
    "different-powers": different_powers,
    "linear-slope": linear_slope,
}


def get_problem(name: str) -> Callable[[np.ndarray], np.ndarray]:
    if name not in PROBLEMS:
        raise ConfigError(f"unknown problem {name!r}; choose one of {sorted(PROBLEMS)}")
    return PROBLEMS[name]
