"""Operations on finished or interrupted run directories, for every family alike: load, evaluate,
resume. The registry entry named in ``config.json`` says how to rebuild the learner; nothing here
knows an algorithm by name."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from rlcanon.core.config import from_dict, jsonable, to_dict
from rlcanon.core.seeding import preserved_global_rng, seed_everything
from rlcanon.core.threads import thread_limits
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.registry import Entry, get_entry
from rlcanon.run import checkpoint as ckpt
from rlcanon.run.harness import (
    TrainResult,
    attach_run_dir,
    evaluate_learner,
    load_learner_state,
    train_run,
)
from rlcanon.run.rundir import read_config

MUTABLE = ("device",)
"""Settings a resumed or evaluated run may change besides its budget."""


def load_config(run_dir: str | Path, **overrides: Any) -> tuple[Entry, Any]:
    """(registry entry, config) of a run directory, with the ``overrides`` that are not None
    applied (checked like any config: a bad value raises ConfigError)."""
    record = read_config(run_dir)
    try:
        entry = get_entry(record["algo"])
    except ConfigError:
        raise CheckpointError(
            f"{run_dir}/config.json names {record['algo']!r}, which this rlcanon does not know"
        ) from None
    try:
        config = from_dict(entry.config, record["config"])
    except (TypeError, ConfigError) as exc:
        raise CheckpointError(f"{run_dir}/config.json does not match this rlcanon ({exc})") from None
    changes = {k: v for k, v in overrides.items() if v is not None}
    fields = {f.name for f in dataclasses.fields(config)}
    for name in changes:
        if name not in fields:
            raise ConfigError(
                f"--{name.replace('_', '-')} does not apply to {run_dir}: {record['algo']} runs have no "
                f"{name} setting"
            )
    return entry, dataclasses.replace(config, **changes) if changes else config


def changed_settings(entry: Entry, recorded: Any, flags: dict[str, Any]) -> dict[str, Any]:
    """The flags a resume may apply: the budget (never below the recorded one) and :data:`MUTABLE`
    settings; a flag equal to its recorded value is accepted and dropped; any other change is
    refused by name."""
    budget = recorded.BUDGET
    old = to_dict(recorded)
    # compared one by one, before any merged config is built: a changed flag is named even when
    # the merged settings would fail a check of their own (a batch larger than the new rollout)
    new = {name: jsonable(value) for name, value in flags.items()}
    mutable = [m for m in MUTABLE if m in old]
    changes = {}
    for name in flags:
        if new[name] == old[name]:
            continue
        if name == budget:
            if flags[name] < getattr(recorded, budget):
                flag, was = name.replace("_", "-"), getattr(recorded, budget)
                raise ConfigError(
                    f"--{flag} {flags[name]} is below the run's {was}; a resumed run's budget may only grow"
                )
        elif name not in MUTABLE:
            may = " and ".join(f"--{n.replace('_', '-')}" for n in (budget, *mutable))
            raise ConfigError(
                f"--resume continues the recorded run, whose {name} is {old[name]!r}, not {new[name]!r}; "
                f"only {may} may change (start a new run for other settings)"
            )
        changes[name] = flags[name]
    return changes


def run_env(run_dir: str | Path, env: EnvSpecLike | None) -> EnvSpecLike | None:
    """The env to rebuild a run on: ``env`` if given; None (the recorded id) for a run trained on
    an id. A run trained on an env object (``custom_env`` in config.json) needs ``env`` again."""
    record = read_config(run_dir)
    if env is None and record.get("custom_env"):
        raise ConfigError(
            f"{run_dir} was trained on a custom env ({record.get('env')!r}) that its files cannot "
            f"rebuild; pass env= (the same env, or a function that returns one)"
        )
    return env


def load_learner(
    run_dir: str | Path, device: str | None = None, env: EnvSpecLike | None = None
) -> tuple[Any, Any, dict[str, Any]]:
    """(learner with the latest checkpoint loaded, config, checkpoint state); ``device`` overrides
    the run's torch device (a run trained on a GPU loads on a CPU-only machine with 'cpu'), and
    ``env`` gives a run trained on a custom env its env."""
    env = run_env(run_dir, env)
    entry, config = load_config(run_dir, device=device) if device else load_config(run_dir)
    return _load_learner(run_dir, entry, config, env)


def _load_learner(
    run_dir: str | Path, entry: Entry, config: Any, env: EnvSpecLike | None
) -> tuple[Any, Any, dict[str, Any]]:
    """Read the latest checkpoint, build the learner, then check and load the checkpoint into it
    (a checkpoint that fails any check loads nothing, and the learner is closed)."""
    ckpt_dir = ckpt.latest_checkpoint(run_dir)
    arrays, state = ckpt.load_checkpoint(ckpt_dir)
    with preserved_global_rng():
        learner = entry.make(config, env if env is not None else config.env_id, seed_everything(config.seed))
    attach_run_dir(learner, Path(run_dir))
    try:
        load_learner_state(entry.name, learner, arrays, state, str(ckpt_dir))
    except BaseException:
        _close(learner)
        raise
    return learner, config, state


def _close(learner: Any) -> None:
    for part in (getattr(learner, "close", None), getattr(getattr(learner, "envs", None), "close", None)):
        if part is not None:
            part()


def evaluate_run(
    run_dir: str | Path,
    episodes: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    env: EnvSpecLike | None = None,
) -> dict[str, Any]:
    """Evaluate the latest checkpoint with the deterministic policy; same keys as summary.json.
    ``env`` is needed (only) for a run trained on a custom env."""
    if episodes is not None and not 1 <= episodes <= 100_000:
        raise ConfigError(f"episodes={episodes} is not allowed; it must be an integer in [1, 100000]")
    if seed is not None and not 0 <= seed <= 2**32 - 1:
        raise ConfigError(f"seed={seed} is not allowed; it must be an integer in [0, {2**32 - 1}]")
    env = run_env(run_dir, env)
    entry, config = load_config(run_dir, device=device) if device else load_config(run_dir)
    with thread_limits(getattr(config, "torch_threads", 1)):
        learner, config, state = _load_learner(run_dir, entry, config, env)
        try:
            n = episodes if episodes is not None else config.eval_episodes
            eval_seed = seed if seed is not None else config.seed + 20_000
            with preserved_global_rng():
                returns = evaluate_learner(
                    learner, config, env if env is not None else config.env_id, n, eval_seed
                )
        finally:
            _close(learner)
    return {
        "run_dir": str(run_dir),
        "env_id": config.env_id,
        "checkpoint_step": int(state["step"]),
        "eval_return_mean": float(np.mean(returns)),
        "eval_return_std": float(np.std(returns)),
        "eval_episodes": len(returns),
    }


def resume(
    run_dir: str | Path, progress: bool | None = None, env: EnvSpecLike | None = None, **flags: Any
) -> TrainResult:
    """Continue a run from its last checkpoint. ``flags`` may repeat recorded settings; only the
    budget (``total_timesteps``, ``generations``, ``episodes``; it may grow) and the device may
    change, and anything else is refused by name. ``env`` is needed (only) for a run trained on a
    custom env."""
    if not str(run_dir):
        raise ConfigError("--resume needs a run directory; got ''")
    env = run_env(run_dir, env)
    entry, recorded = load_config(run_dir)
    changes = changed_settings(entry, recorded, {k: v for k, v in flags.items() if v is not None})
    config = dataclasses.replace(recorded, **changes) if changes else recorded
    return train_run(entry.name, config, entry.make, env=env, run_dir=run_dir, resume=True, progress=progress)


class Policy:
    """A trained run's policy for use outside rlcanon: ``predict(obs, state=None,
    episode_start=None, deterministic=True) -> (actions, state)`` for one observation or a batch.
    Observations are normalised with the run's frozen statistics when it trained with them."""

    def __init__(self, learner: Any, config: Any) -> None:
        from rlcanon.envs.normalize import normalizers

        self.learner, self.config = learner, config
        self.observation_space, self.action_space = learner.observation_space, learner.action_space
        self._obs_norm = normalizers(getattr(learner, "envs", None)).get("obs")

    def predict(
        self,
        obs: Any,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        x = np.asarray(obs)
        shape = tuple(getattr(self.observation_space, "shape", None) or ())
        single = x.shape == shape
        batch = x[None] if single else x
        if batch.ndim < 1 or batch.shape[1:] != shape:
            raise ConfigError(
                f"observation of shape {x.shape} does not fit this policy; expected {shape} or (n, *{shape})"
            )
        if self._obs_norm is not None:
            batch = self._obs_norm.rms.normalize(batch.astype(np.float64))
        start = np.ones(len(batch), dtype=bool) if episode_start is None else np.atleast_1d(episode_start)
        actions, state = self.learner.predict(batch, state, start, deterministic)
        return (actions[0] if single else actions), state


def load(run_dir: str | Path, device: str | None = None, env: EnvSpecLike | None = None) -> Policy:
    """The policy of a run directory's latest checkpoint (see :class:`Policy`); ``env`` is needed
    (only) for a run trained on a custom env."""
    learner, config, _ = load_learner(run_dir, device, env)
    return Policy(learner, config)
