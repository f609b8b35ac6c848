"""rlcanon: the reinforcement-learning canon as one fast, tested library.

    from rlcanon import make_config, ALGOS
    result = ALGOS["ppo"].train(make_config("ppo", "CartPole-v1", seed=1))

Families live in subpackages: ``rlcanon.algos`` (DQN, PPO), ``rlcanon.bandits``,
``rlcanon.tabular`` and ``rlcanon.es``. Heavy modules load on first use.

Small RL matrices gain nothing from many BLAS threads and can be far slower with them on a busy
machine, so importing rlcanon asks for one BLAS thread unless the user has chosen a number.
"""

from typing import Any

from rlcanon.core.threads import default_blas_threads

default_blas_threads()

__version__ = "0.1.0"

_LAZY = {
    "ALGOS": "rlcanon.registry",
    "make_config": "rlcanon.registry",
    "evaluate_run": "rlcanon.runs",
    "resume": "rlcanon.runs",
    "RLCanonError": "rlcanon.errors",
    "ConfigError": "rlcanon.errors",
    "CheckpointError": "rlcanon.errors",
    "TrainingError": "rlcanon.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlcanon' has no attribute {name!r}")
