"""Plain dicts of what exists. Tests, the CLI and ``rlcanon list`` read every entry from here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlcanon.algos import dqn, ppo
from rlcanon.errors import ConfigError
from rlcanon.presets import preset


@dataclass(frozen=True)
class AlgoEntry:
    config: type
    train: Callable[..., Any]
    agent: type
    summary: str


ALGOS: dict[str, AlgoEntry] = {
    "dqn": AlgoEntry(
        dqn.DQNConfig,
        dqn.train,
        dqn.DQNAgent,
        "Deep Q-Network with Double, dueling, n-step and prioritized-replay flags",
    ),
    "ppo": AlgoEntry(
        ppo.PPOConfig,
        ppo.train,
        ppo.PPOAgent,
        "Proximal Policy Optimization (clipped surrogate, GAE); discrete or continuous",
    ),
}


def get_algo(name: str) -> AlgoEntry:
    if name not in ALGOS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of {sorted(ALGOS)}")
    return ALGOS[name]


def make_config(algo: str, env_id: str = "CartPole-v1", **overrides: Any) -> Any:
    """The algorithm's config for ``env_id``: dataclass defaults, then the env's tuned preset,
    then ``overrides``."""
    entry = get_algo(algo)
    return entry.config(**{"env_id": env_id, **preset(algo, env_id), **overrides})


def listing() -> dict[str, list[str]]:
    """Names of everything registered, by family (for ``rlcanon list``)."""
    out: dict[str, list[str]] = {"algos": sorted(ALGOS)}
    for family, module, attr in (
        ("bandits", "rlcanon.bandits", "SOLVERS"),
        ("tabular", "rlcanon.tabular", "METHODS"),
        ("es", "rlcanon.es", "STRATEGIES"),
    ):
        try:
            import importlib

            out[family] = sorted(getattr(importlib.import_module(module), attr))
        except (ImportError, AttributeError):
            continue
    return out
