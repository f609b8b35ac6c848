"""Settings every run has (:class:`BaseConfig`), every deep RL run has (:class:`RunConfig`), and
every on-policy actor-critic has (:class:`OnPolicyConfig`).

Configs are frozen dataclasses whose fields carry a docstring (the CLI help). Validation runs in
``__post_init__``: every field's type, then the ranges and upper bounds here, then the subclass's
own :meth:`validate`. Each error names the field, the bad value and what is allowed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rlcanon.core.config import check_choice, check_int, check_positive, check_range, check_types
from rlcanon.core.device import check_device
from rlcanon.errors import ConfigError

MAX_SEED = 2**32 - 1
MAX_BUDGET = 10**12
MAX_ENVS = 1024
MAX_EPISODES = 100_000
MAX_UNITS = 65_536
MAX_LAYERS = 16


@dataclass(frozen=True)
class BaseConfig:
    """Settings of every run, whatever the family."""

    BUDGET: ClassVar[str] = "total_timesteps"
    """The field that holds the run's length (a resumed run may raise it)."""
    UNIT: ClassVar[str] = "step"
    """What the budget counts (the progress bar's unit, and the unit of the intervals)."""

    env_id: str = "CartPole-v1"
    """Gymnasium environment id (rlcanon's own envs are 'rlcanon/...'; see 'rlcanon list')."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for gym.make (CLI: --env-kwargs NAME=VALUE ...)."""
    wrappers: tuple[str, ...] = ()
    """Per-env wrappers, each 'name' or 'name:key=value,...' (see 'rlcanon list')."""
    seed: int = 1
    """Seed of the networks, exploration and the environments."""
    eval_episodes: int = 10
    """Episodes of the deterministic policy in the final evaluation (and periodic ones)."""
    eval_interval: int = 0
    """Evaluate every this many budget units during training (0: only at the end)."""
    checkpoint_interval: int = 0
    """Save a checkpoint every this many budget units (0: every tenth of the run)."""

    def __post_init__(self) -> None:
        check_types(self)
        self._validate_base()
        self.validate()

    def _validate_base(self) -> None:
        check_int("seed", self.seed, 0, MAX_SEED)
        check_int("eval_episodes", self.eval_episodes, 1, MAX_EPISODES)
        check_int("eval_interval", self.eval_interval, 0, MAX_BUDGET)
        check_int("checkpoint_interval", self.checkpoint_interval, 0, MAX_BUDGET)
        from rlcanon.envs.wrappers import parse_wrapper

        for spec in self.wrappers:
            parse_wrapper(spec)
        if not self.env_id:
            raise ConfigError("env_id='' is not allowed; give a Gymnasium id such as 'CartPole-v1'")
        try:  # the config is saved as JSON: kwargs must be JSON with finite numbers
            json.dumps(self.env_kwargs, allow_nan=False)
        except (TypeError, ValueError):
            raise ConfigError(
                f"env_kwargs={self.env_kwargs!r} is not allowed; values must be JSON (strings, finite "
                f"numbers, booleans, lists, objects)"
            ) from None

    def validate(self) -> None:
        """The subclass's own checks (ranges that depend on several fields, for example)."""

    @property
    def budget(self) -> int:
        return int(getattr(self, self.BUDGET))


@dataclass(frozen=True)
class RunConfig(BaseConfig):
    """Settings every deep RL run has."""

    total_timesteps: int = 100_000
    """Environment steps to train for (summed over parallel envs)."""
    num_envs: int = 1
    """Parallel environments."""
    gamma: float = 0.99
    """Discount factor."""
    normalize_obs: bool = False
    """Normalise observations with running statistics (saved in checkpoints, frozen in evaluation)."""
    normalize_reward: bool = False
    """Scale rewards by the running std of the discounted return."""
    frame_stack: int = 4
    """Frames stacked for pixel (Atari) observations."""
    torch_threads: int = 1
    """Torch intra-op threads. One is fastest for small RL networks (0 keeps torch's choice)."""
    device: str = "auto"
    """Torch device: 'cpu', 'cuda', 'cuda:N', or 'auto' (CUDA for pixel networks when a GPU is
    available, else the CPU, which is fastest for small MLPs)."""

    def _validate_base(self) -> None:
        super()._validate_base()
        check_int("total_timesteps", self.total_timesteps, 1, MAX_BUDGET)
        check_int("num_envs", self.num_envs, 1, MAX_ENVS)
        check_range("gamma", self.gamma, 0.0, 1.0)
        check_int("frame_stack", self.frame_stack, 1, 64)
        check_int("torch_threads", self.torch_threads, 0, 256)
        check_device(self.device)


def check_rate(name: str, value: float, high: float = 10.0) -> None:
    """A step size (or another positive coefficient) in (0, high]."""
    from rlcanon.core.config import check_positive

    check_positive(name, value)
    check_range(name, value, 0.0, high)


def check_hidden(name: str, hidden: tuple[int, ...]) -> None:
    """Hidden layer sizes: at most :data:`MAX_LAYERS` layers of 1 to :data:`MAX_UNITS` units."""
    if len(hidden) > MAX_LAYERS:
        raise ConfigError(f"{name}={list(hidden)} is not allowed; at most {MAX_LAYERS} layers")
    for h in hidden:
        check_int(name, h, 1, MAX_UNITS)


@dataclass(frozen=True)
class OnPolicyConfig(RunConfig):
    """Settings every on-policy actor-critic has (rollouts of num_envs x num_steps, separate actor
    and critic MLPs, a value and an entropy term). An algorithm redeclares a field to change its
    default; the docstring here stays unless it writes its own."""

    num_steps: int = 128
    """Steps per environment per rollout; a rollout holds num_envs * num_steps transitions."""
    learning_rate: float = 3e-4
    """Optimizer step size."""
    anneal_lr: bool = False
    """Decay the learning rate linearly to 0 over training."""
    gae_lambda: float = 0.95
    """GAE lambda: 0 is one-step TD, 1 is Monte Carlo (bootstrapped n-step returns)."""
    ent_coef: float = 0.0
    """Entropy bonus coefficient."""
    vf_coef: float = 0.5
    """Value loss coefficient."""
    max_grad_norm: float = 0.5
    """Global gradient-norm clip."""
    norm_adv: bool = False
    """Normalise the advantages over each minibatch (the whole rollout when it is one)."""
    hidden: tuple[int, ...] = (64, 64)
    """Hidden layer sizes of the separate actor and critic MLPs."""
    activation: str = "tanh"
    """Hidden activation: tanh or relu."""
    log_std_init: float = 0.0
    """Initial log standard deviation of the Gaussian head (continuous actions)."""

    def _validate_base(self) -> None:
        super()._validate_base()
        check_int("num_steps", self.num_steps, 1, 10**7)
        check_rate("learning_rate", self.learning_rate)
        check_rate("vf_coef", self.vf_coef, 1e6)
        check_rate("max_grad_norm", self.max_grad_norm, 1e12)
        check_positive("ent_coef", self.ent_coef, allow_zero=True)
        check_range("ent_coef", self.ent_coef, 0.0, 1e6)
        check_range("gae_lambda", self.gae_lambda, 0.0, 1.0)
        check_range("log_std_init", self.log_std_init, -20.0, 5.0)
        check_choice("activation", self.activation, ["tanh", "relu"])
        check_hidden("hidden", self.hidden)

    @property
    def rollout_size(self) -> int:
        return self.num_envs * self.num_steps


@dataclass(frozen=True)
class OffPolicyConfig(RunConfig):
    """Settings every replay-based actor-critic has (SAC, TD3, DDPG): a replay buffer, a warm-up of
    uniformly random actions, the update cadence and Polyak-averaged target critics. Defaults are
    Stable-Baselines3's; an algorithm redeclares a field to change its default."""

    buffer_size: int = 1_000_000
    """Replay capacity in transitions; the oldest are overwritten first (FIFO)."""
    learning_starts: int = 100
    """Env steps of uniformly random actions before the first update (the warm-up)."""
    batch_size: int = 256
    """Transitions per gradient step."""
    train_freq: int = 1
    """Vector-env steps between training phases."""
    gradient_steps: int = 1
    """Gradient steps per training phase."""
    tau: float = 0.005
    """Polyak coefficient of the target networks: target <- tau * online + (1 - tau) * target."""
    learning_rate: float = 3e-4
    """Adam step size of the actor, the critics (and the temperature, where there is one)."""
    hidden: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of the actor and of each critic (ReLU)."""

    def _validate_base(self) -> None:
        super()._validate_base()
        check_int("buffer_size", self.buffer_size, 1, 10**9)
        check_int("learning_starts", self.learning_starts, 0, MAX_BUDGET)
        check_int("batch_size", self.batch_size, 1, 65_536)
        check_int("train_freq", self.train_freq, 1, 10**9)
        check_int("gradient_steps", self.gradient_steps, 1, 10**6)
        check_range("tau", self.tau, 1e-8, 1.0)
        check_rate("learning_rate", self.learning_rate)
        check_hidden("hidden", self.hidden)
        if self.batch_size > self.buffer_size:
            raise ConfigError(
                f"batch_size={self.batch_size} is larger than buffer_size={self.buffer_size}; "
                f"it must be <= buffer_size"
            )
