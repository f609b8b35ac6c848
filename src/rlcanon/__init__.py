"""rlcanon: the reinforcement-learning canon as one fast, tested library.

    import rlcanon
    result = rlcanon.train("ppo", env_id="CartPole-v1", seed=1)   # the call the CLI makes
    policy = rlcanon.load(result.run_dir)
    action, state = policy.predict(obs)                            # one observation or a batch

Families live in subpackages: ``rlcanon.algos`` (DQN, PPO, A2C), ``rlcanon.bandits``,
``rlcanon.tabular`` and ``rlcanon.es``. Heavy modules load on first use. Our own environments are
Gymnasium ids in the ``rlcanon/`` namespace, registered when rlcanon is imported.
"""

from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "ALGOS": "rlcanon.registry",
    "ENTRIES": "rlcanon.registry",
    "make_config": "rlcanon.registry",
    "evaluate_run": "rlcanon.runs",
    "resume": "rlcanon.runs",
    "load": "rlcanon.runs",
    "RLCanonError": "rlcanon.errors",
    "ConfigError": "rlcanon.errors",
    "CheckpointError": "rlcanon.errors",
    "TrainingError": "rlcanon.errors",
}

__all__ = ["__version__", "train", *_LAZY]


def train(
    algo: str,
    /,
    env_id: str | None = None,
    *,
    run_dir: Any = None,
    overwrite: bool = False,
    progress: bool | None = None,
    **overrides: Any,
) -> Any:
    """Train a registered algorithm (``rlcanon list``) on ``env_id`` with its tuned preset and the
    config ``overrides``; returns the run directory, summary and agent (as ``rlcanon train`` does)."""
    from rlcanon.registry import get_entry, make_config

    config = make_config(algo, env_id, **overrides)
    return get_entry(algo).train(config, run_dir=run_dir, overwrite=overwrite, progress=progress)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rlcanon' has no attribute {name!r}")


def _register_envs() -> None:
    try:
        from rlcanon.envs.registration import register_envs
    except ImportError:  # gymnasium missing: nothing to register into
        return
    register_envs()


_register_envs()
