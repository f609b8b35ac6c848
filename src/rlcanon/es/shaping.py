"""Fitness shaping: rank-based transforms that make an ES invariant to monotone changes of f."""

from __future__ import annotations

import numpy as np


def ranks(fitness: np.ndarray) -> np.ndarray:
    """0-based ranks in ascending order of fitness (ties broken by position). NaN ranks lowest."""
    f = np.where(np.isnan(fitness), -np.inf, fitness)
    order = np.argsort(f, kind="stable")
    out = np.empty(len(f), dtype=np.int64)
    out[order] = np.arange(len(f))
    return out


def centered_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks mapped linearly onto [-0.5, 0.5] (Salimans et al. 2017, the OpenAI-ES shaping)."""
    n = len(fitness)
    if n == 1:
        return np.zeros(1)
    return ranks(fitness) / (n - 1) - 0.5


def nes_utilities(n: int) -> np.ndarray:
    """Utilities for sorted fitness, best first (Wierstra et al. 2014, eq. 19):
    u_k = max(0, ln(n/2 + 1) - ln k) / sum_j max(0, ln(n/2 + 1) - ln j) - 1/n."""
    k = np.arange(1, n + 1)
    raw = np.maximum(0.0, np.log(n / 2 + 1) - np.log(k))
    return raw / raw.sum() - 1.0 / n


def utilities_for(fitness: np.ndarray) -> np.ndarray:
    """NES utility of each individual (best gets the largest), in the original order."""
    u = nes_utilities(len(fitness))
    out = np.empty(len(fitness))
    out[np.argsort(-np.where(np.isnan(fitness), -np.inf, fitness), kind="stable")] = u
    return out
