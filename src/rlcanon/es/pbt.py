"""Population-based training (Jaderberg et al. 2017, "Population Based Training of Neural
Networks", arXiv:1711.09846).

A population of members trains with its own hyperparameters. Every ``interval`` steps (a round
here: the paper's members get "ready" one by one; these are synchronous, as Ray Tune's synchronous
PBT) each member's recent performance is read, and

* **exploit** (truncation selection, as the paper uses it for RL): rank the members; each of the
  bottom ``truncation_fraction`` copies the weights *and* the hyperparameters of a member drawn
  uniformly from the top ``truncation_fraction``;
* **explore** then changes the copied hyperparameters: *perturb* multiplies each by a factor drawn
  from ``perturb_factors`` (the paper's 0.8 or 1.2), *resample* draws each again from its prior
  with probability ``resample_probability``.

Members are any :class:`rlcanon.es.pbt_members.Population`: runs of the shared harness (any deep RL
registry entry, each in ``members/mNN/`` with its own checkpoints) or the paper's toy quadratic,
through the same :func:`pbt_round`. Fitness is maximised, as everywhere in :mod:`rlcanon.es`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from rlcanon.core.config import check_choice, check_int, check_positive, check_range
from rlcanon.core.validate import AnyJSON, Int, Map, check_json
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.es.backends import ray_host_port
from rlcanon.es.pbt_core import (
    Rules,
    initial_hyperparameters,
    parse_member_settings,
    parse_search_space,
    pbt_round,
)
from rlcanon.es.pbt_members import Hyperparameters, MemberRuns, make_runner, member_config, member_dir
from rlcanon.run.config import MAX_BUDGET, BaseConfig
from rlcanon.run.state import Parts

MAX_WORKERS = 1024


# ---- PBT over runs of any deep RL algorithm, in the one harness -------------------------------------


@dataclass(frozen=True)
class PBTConfig(BaseConfig):
    """Settings of a PBT run over members of any deep RL registry entry. Each member trains for
    ``total_timesteps`` env steps; the PBT run's budget counts those per-member steps."""

    BUDGET: ClassVar[str] = "total_timesteps"

    seed: int = 1
    """Seed of PBT's own draws (priors, selection, explore); each member's seed derives from it."""
    algo: str = "ppo"
    """The deep RL algorithm every member runs (any 'rlcanon train' algorithm)."""
    population_size: int = 8
    """Members trained side by side (Jaderberg et al. 2017 use tens; 8 keeps a CPU run small)."""
    search_space: tuple[str, ...] = ("learning_rate=1e-4:1e-2:log", "ent_coef=0:0.05")
    """Searched settings of the algorithm: NAME=LOW:HIGH (uniform), NAME=LOW:HIGH:log (log-uniform)
    or NAME=A,B,C (choices); only int and float settings."""
    member_settings: tuple[str, ...] = ()
    """Fixed settings of every member, NAME=VALUE (over the algorithm's preset for the env). The
    algorithm's own schedules (anneal_lr, anneal_clip) are off unless turned on here: a member's
    budget ends with each round, so they would restart every round."""
    total_timesteps: int = 100_000
    """Env steps each member trains for."""
    interval: int = 10_000
    """Env steps of each member between two exploit/explore steps (a round); best a multiple of the
    member's steps per update (PPO: num_envs * num_steps)."""
    truncation_fraction: float = 0.2
    """Exploit: the bottom fraction copies the top fraction (truncation selection; a fifth in the paper);
    0 never exploits (the same members with their first hyperparameters: random search)."""
    explore: str = "perturb"
    """Explore: perturb (multiply by a factor of perturb_factors) or resample (from the prior)."""
    perturb_factors: tuple[float, ...] = (0.8, 1.2)
    """Factors perturb draws from, uniformly (0.8 or 1.2 in the paper)."""
    resample_probability: float = 0.25
    """Probability that resample draws a value again (Ray Tune's default for its PBT scheduler)."""
    backend: str = "local"
    """Where members train: local (this process for one worker, a process pool for more) or ray."""
    workers: int = 4
    """Members trained at once (worker processes or Ray tasks); results do not depend on it."""
    ray_address: str = ""
    """Ray cluster address ('' starts a local Ray); the run directory must be shared by its nodes."""
    checkpoint_interval: int = 1
    """Save the PBT state every this many steps; at most interval, so that every round is saved and
    the members' own checkpoints never run ahead of it (1: after every round)."""

    def validate(self) -> None:
        from rlcanon.registry import ALGOS

        check_choice("algo", self.algo, sorted(ALGOS))
        check_choice("explore", self.explore, ["perturb", "resample"])
        check_choice("backend", self.backend, ["local", "ray"])
        check_int("population_size", self.population_size, 2, 10_000)
        check_int("total_timesteps", self.total_timesteps, 1, MAX_BUDGET)
        check_int("interval", self.interval, 1, MAX_BUDGET)
        check_int("workers", self.workers, 1, MAX_WORKERS)
        check_int("checkpoint_interval", self.checkpoint_interval, 1, self.interval)
        check_range("truncation_fraction", self.truncation_fraction, 0.0, 0.5)
        check_range("resample_probability", self.resample_probability, 0.0, 1.0)
        if not self.perturb_factors:
            raise ConfigError(
                "perturb_factors=[] is not allowed; give at least one factor > 0 (e.g. 0.8 1.2)"
            )
        for factor in self.perturb_factors:
            check_positive("perturb_factors", factor)
            check_range("perturb_factors", factor, 0.0, 1e3)
        if self.ray_address and self.backend != "ray":
            raise ConfigError(
                f"ray_address is set but backend={self.backend!r}; add --backend ray, or drop it"
            )
        ray_host_port(self.ray_address)
        space = parse_search_space(self.search_space, ALGOS[self.algo].config, self.algo)
        fixed = parse_member_settings(self.member_settings, ALGOS[self.algo].config, self.algo)
        both = sorted({h.name for h in space} & set(fixed))
        if both:
            raise ConfigError(f"{both[0]} is in both search_space and member_settings; give it in one")
        for h in space:  # the algorithm's own checks, at both ends of each range
            for value in h.choices or (h.low, h.high):
                try:
                    member_config(self, 0, {h.name: value}, fixed)
                except ConfigError as exc:
                    raise ConfigError(f"search_space entry for {h.name}: {exc}") from None
        member_config(self, 0, {}, fixed)


class PBTLearner:
    """One round per iteration: train every member ``interval`` more steps in its own run directory
    (``members/mNN/`` under the PBT run's), read their final evaluations, exploit and explore, and
    write the lineage (``lineage.json``). The PBT checkpoint holds the round, the hyperparameters,
    the lineage and the PBT generator; the members' checkpoints hold their weights. The PBT run's
    policy is the best member's at the last round."""

    def __init__(self, config: PBTConfig, env: Any, rng: np.random.Generator) -> None:
        from rlcanon.envs.factory import make_env
        from rlcanon.registry import ALGOS

        if not isinstance(env, str):
            raise ConfigError("PBT needs an env id (every member rebuilds its env from it)")
        self.cfg = config = dataclasses.replace(config, env_id=env) if env != config.env_id else config
        member_cls = ALGOS[config.algo].config
        self.space = parse_search_space(config.search_space, member_cls, config.algo)
        self.fixed = parse_member_settings(config.member_settings, member_cls, config.algo)
        self.rules = Rules(
            self.space,
            config.truncation_fraction,
            config.explore,
            config.perturb_factors,
            config.resample_probability,
        )
        # PBT's own generator (the priors, selection and explore), apart from every member's
        self.generator = np.random.default_rng(np.random.SeedSequence([config.seed, 0x9B7]))
        self.hyperparameters = initial_hyperparameters(self.space, config.population_size, self.generator)
        self.performance: list[float | None] = [None] * config.population_size
        self.lineage: list[dict[str, Any]] = []
        self.round = 0
        self.global_step = 0
        self.budget_granularity = config.interval
        probe = make_env(config.env_id, config.env_kwargs, config.wrappers)
        self.observation_space, self.action_space = probe.observation_space, probe.action_space
        probe.close()
        self.run_dir: Path | None = None
        self.envs: Any = None  # the best member's envs, once it is loaded (its observation normaliser)
        self._runner: Any = None
        self._best: Any = None

    @property
    def progress(self) -> int:
        return self.round * self.cfg.interval

    def attach_run_dir(self, path: Path) -> None:
        self.run_dir = path

    def _members_root(self) -> Path:
        if self.run_dir is None:
            raise ConfigError("PBT needs a run directory for its members; train it through the run harness")
        return self.run_dir / "members"

    def _member_config(self, index: int, hyperparameters: Hyperparameters, until: int) -> Any:
        return member_config(self.cfg, index, hyperparameters, self.fixed, until)

    def iterate(self) -> dict[str, float]:
        cfg = self.cfg
        if self._runner is None:
            self._runner = make_runner(cfg.backend, cfg.workers, cfg.ray_address or None)
        self._drop_best()  # its checkpoint is about to move on
        members = MemberRuns(
            cfg.algo,
            self._members_root(),
            cfg.population_size,
            self._member_config,
            self._runner,
            fresh=self.round == 0,
        )
        until = (self.round + 1) * cfg.interval
        performance, new, rows = pbt_round(
            members, self.hyperparameters, until, self.rules, self.generator, self.round + 1
        )
        self.round += 1
        self.hyperparameters = new
        self.performance = [row["performance"] for row in rows]
        self.lineage.extend(rows)
        self.global_step = int(sum(members.steps))
        self._write_lineage()
        best = self.best_member()
        finite = performance[np.isfinite(performance)]
        metrics = {
            "pbt/round": float(self.round),
            "pbt/copies": float(sum(row["copied_from"] is not None for row in rows)),
            "pbt/best_member": float(best),
            "charts/episodic_return": float(finite.mean()) if finite.size else float("nan"),
            "charts/best_return": float(finite.max()) if finite.size else float("nan"),
        }
        # the values the best member trained with this round (a copy never lands on a top member)
        metrics.update({f"hparams/{k}": float(v) for k, v in rows[best]["old"].items()})
        return metrics

    def _write_lineage(self) -> None:
        from rlcanon.run.checkpoint import atomic_write_json

        assert self.run_dir is not None
        atomic_write_json(
            self.run_dir / "lineage.json", {"space": list(self.cfg.search_space), "rows": self.lineage}
        )

    def best_member(self) -> int:
        """The member with the best performance at the last round (the lowest index among ties)."""
        perf = [p if p is not None else -np.inf for p in self.performance]
        return int(np.argmax(perf))

    # ---- acting: the best member's policy ----
    def _load_best(self) -> Any:
        if self._best is None:
            from rlcanon.runs import load_learner

            self._best, self._best_config, _ = load_learner(
                member_dir(self._members_root(), self.best_member())
            )
            self.envs = getattr(self._best, "envs", None)
        return self._best

    def _drop_best(self) -> None:
        if self._best is not None:
            close = getattr(self._best, "close", None)
            if close is not None:
                close()
            if self.envs is not None:
                self.envs.close()
            self._best, self.envs = None, None

    def on_restore(self) -> None:
        self._load_best()  # now: a loaded policy reads the best member's observation normaliser

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        return self._load_best().predict(obs, state, episode_start, deterministic)  # type: ignore[no-any-return]

    def eval_env(self, num_envs: int) -> Any:
        """The best member's evaluation env (its observation normaliser frozen)."""
        from rlcanon.envs.factory import make_eval_env
        from rlcanon.envs.normalize import normalizers

        best = self._load_best()
        own = getattr(best, "eval_env", None)
        if own is not None:
            return own(num_envs)
        obs_norm = normalizers(getattr(best, "envs", None)).get("obs")
        state = obs_norm.state_arrays() if obs_norm is not None else None
        return make_eval_env(self._best_config, None, num_envs, state)

    def checkpoint_parts(self) -> Parts:
        return Parts(counters=("global_step", "round"), json_parts={"pbt": PBTState(self)})

    def summary_extra(self) -> dict[str, Any]:
        best = self.best_member()
        return {
            "rounds": self.round,
            "population_size": self.cfg.population_size,
            "best_member": member_dir(Path("members"), best).as_posix(),
            "best_member_return": self.performance[best],
            "best_hyperparameters": self.lineage[-self.cfg.population_size + best]["old"]
            if self.lineage
            else {},
        }

    def close(self) -> None:
        self._drop_best()
        if self._runner is not None:
            self._runner.close()
            self._runner = None


class PBTState:
    """The PBT learner's JSON checkpoint part: the hyperparameters, the last performances, the
    lineage and the PBT generator, each value checked against the search space before loading."""

    def __init__(self, learner: PBTLearner) -> None:
        self.learner = learner

    def state_json(self) -> dict[str, Any]:
        pbt = self.learner
        return {
            "hyperparameters": pbt.hyperparameters,
            "performance": pbt.performance,
            "lineage": pbt.lineage,
            "rng": pbt.generator.bit_generator.state,
        }

    def json_schema(self) -> Map:
        from rlcanon.core.seeding import RNG_SCHEMA

        # lists are checked value by value in check_state_json
        return Map(
            {
                "hyperparameters": AnyJSON(),
                "performance": AnyJSON(),
                "lineage": AnyJSON(),
                "rng": RNG_SCHEMA.fields["numpy"],
            }
        )

    def check_state_json(self, obj: dict[str, Any], where: str, path: str) -> None:
        size = self.learner.cfg.population_size
        hypers, perf, lineage = obj["hyperparameters"], obj["performance"], obj["lineage"]
        if not isinstance(hypers, list) or len(hypers) != size:
            raise CheckpointError(f"{where}: field {path}.hyperparameters is not a list of {size} members")
        for i, h in enumerate(hypers):
            self._check_values(h, where, f"{path}.hyperparameters[{i}]")
        if not isinstance(perf, list) or len(perf) != size or not all(_finite_or_none(p) for p in perf):
            raise CheckpointError(
                f"{where}: field {path}.performance is not a list of {size} finite numbers or nulls"
            )
        if not isinstance(lineage, list):
            raise CheckpointError(f"{where}: field {path}.lineage is not a list")
        for n, row in enumerate(lineage):
            self._check_row(row, where, f"{path}.lineage[{n}]", size)
        try:
            np.random.default_rng(0).bit_generator.state = obj["rng"]
        except (TypeError, ValueError, KeyError) as exc:
            raise CheckpointError(f"{where}: field {path}.rng is not a generator state ({exc})") from None

    def _check_values(self, values: Any, where: str, path: str) -> None:
        names = sorted(h.name for h in self.learner.space)
        if not isinstance(values, dict) or sorted(values) != names:
            raise CheckpointError(f"{where}: field {path} is not an object with exactly the keys {names}")
        for h in self.learner.space:
            if not h.contains(values[h.name]):
                allowed = f"one of {list(h.choices)}" if h.choices else f"a number in [{h.low:g}, {h.high:g}]"
                raise CheckpointError(
                    f"{where}: field {path}.{h.name} is {values[h.name]!r}, expected {allowed}"
                )

    def _check_row(self, row: Any, where: str, path: str, size: int) -> None:
        keys = ["copied_from", "member", "new", "old", "performance", "round"]
        if not isinstance(row, dict) or sorted(row) != keys:
            raise CheckpointError(f"{where}: field {path} is not an object with exactly the keys {keys}")
        check_json(where, row["round"], Int(1, MAX_BUDGET), f"{path}.round")
        check_json(where, row["member"], Int(0, size - 1), f"{path}.member")
        if row["copied_from"] is not None:
            check_json(where, row["copied_from"], Int(0, size - 1), f"{path}.copied_from")
        if not _finite_or_none(row["performance"]):
            raise CheckpointError(
                f"{where}: field {path}.performance is {row['performance']!r}, expected a number"
            )
        self._check_values(row["old"], where, f"{path}.old")
        self._check_values(row["new"], where, f"{path}.new")

    def load_state_json(self, obj: dict[str, Any]) -> None:
        pbt = self.learner
        pbt.hyperparameters = [{k: float(v) for k, v in h.items()} for h in obj["hyperparameters"]]
        pbt.performance = [None if p is None else float(p) for p in obj["performance"]]
        pbt.lineage = list(obj["lineage"])
        pbt.generator.bit_generator.state = obj["rng"]


def _finite_or_none(value: Any) -> bool:
    if value is None:
        return True
    return not isinstance(value, bool) and isinstance(value, int | float) and math.isfinite(value)
