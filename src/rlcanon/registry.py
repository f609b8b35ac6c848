"""One registry of everything that trains: deep RL algorithms, ES policy search and tabular
learners. Tests, the CLI, ``rlcanon list`` and the docs read every entry from here.

Each entry carries its config class, its learner factory, a one-line description, its tuned
presets, and what its smoke and determinism tests need (a small config and a compatible env). A new
algorithm is one file in ``algos/`` plus one entry here; nothing else needs an edit.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rlcanon.errors import ConfigError
from rlcanon.presets import Presets


@dataclass(frozen=True)
class Entry:
    name: str
    family: str
    """'deep' (rlcanon train), 'es' (rlcanon es --env-id) or 'tabular' (rlcanon tabular)."""
    module: str
    """Module holding the config class and the learner factory."""
    config_name: str
    learner_name: str
    summary: str
    smoke: Mapping[str, Any] = field(default_factory=dict)
    """Overrides that make a run of about a second, the budget included (smoke, determinism and
    resume tests use them)."""
    smoke_env: str = "CartPole-v1"
    presets: Presets = field(default_factory=Presets)
    actions: tuple[str, ...] = ("discrete", "continuous")
    """The action spaces a deep RL entry trains on; it refuses the others in one line (a test
    checks both)."""

    @property
    def config(self) -> type:
        return getattr(importlib.import_module(self.module), self.config_name)  # type: ignore[no-any-return]

    @property
    def make(self) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), self.learner_name)  # type: ignore[no-any-return]

    @property
    def agent(self) -> Callable[..., Any]:
        return self.make

    def train(self, config: Any, env: Any = None, **kwargs: Any) -> Any:
        """Train with the one harness (same keywords as :func:`rlcanon.run.harness.train_run`)."""
        from rlcanon.run.harness import train_run

        return train_run(self.name, config, self.make, env=env, **kwargs)


DQN_SMOKE: Mapping[str, Any] = {
    "total_timesteps": 512,
    "learning_starts": 64,
    "train_freq": 16,
    "gradient_steps": 4,
    "batch_size": 16,
    "buffer_size": 2048,
}
"""A run of about a second for every member of the DQN family (one loop, one smoke setting)."""

DQN_VARIANTS = (
    ("c51", "rlcanon.algos.c51", "C51Config", "C51: a categorical return distribution on fixed atoms"),
    ("qr-dqn", "rlcanon.algos.qr_dqn", "QRDQNConfig", "QR-DQN: N return quantiles, quantile Huber loss"),
    (
        "rainbow",
        "rlcanon.algos.rainbow",
        "RainbowConfig",
        "Rainbow: Double, dueling, prioritized, n-step, C51 and NoisyNet together",
    ),
    (
        "bootstrapped-dqn",
        "rlcanon.algos.bootstrapped_dqn",
        "BootstrappedDQNConfig",
        "Bootstrapped DQN: K masked heads, one per episode, with randomized prior functions",
    ),
)
"""The DQN variants: each is a config subclass (a head, a loss and flags) of the one DQN loop."""


def _entries() -> dict[str, Entry]:
    from rlcanon import presets as p

    entries = [
        Entry(
            "dqn",
            "deep",
            "rlcanon.algos.dqn",
            "DQNConfig",
            "DQNAgent",
            "Deep Q-Network with Double, dueling, n-step and prioritized-replay flags",
            smoke=DQN_SMOKE,
            presets=Presets(p.PRESETS["dqn"], p.VALUE_BASED_RULES),
            actions=("discrete",),
        ),
        *(
            Entry(
                name,
                "deep",
                module,
                config_name,
                "DQNAgent",
                summary,
                smoke=DQN_SMOKE,
                presets=Presets(p.PRESETS.get(name, {}), p.VALUE_BASED_RULES),
                actions=("discrete",),
            )
            for name, module, config_name, summary in DQN_VARIANTS
        ),
        Entry(
            "mfec",
            "deep",
            "rlcanon.algos.mfec",
            "MFECConfig",
            "MFECAgent",
            "Model-free episodic control: best returns per action over a random projection, k-NN reads",
            smoke={"total_timesteps": 512},
            actions=("discrete",),
        ),
        Entry(
            "nec",
            "deep",
            "rlcanon.algos.nec",
            "NECConfig",
            "NECAgent",
            "Neural episodic control: differentiable neural dictionaries per action, N-step targets",
            smoke={"total_timesteps": 512, "learning_starts": 128, "batch_size": 16, "buffer_size": 2048},
            actions=("discrete",),
        ),
        Entry(
            "ppo",
            "deep",
            "rlcanon.algos.ppo",
            "PPOConfig",
            "PPOAgent",
            "Proximal Policy Optimization (clipped surrogate, GAE); discrete or continuous",
            smoke={"total_timesteps": 512, "num_envs": 2, "num_steps": 64, "batch_size": 64},
            presets=Presets(p.PRESETS["ppo"]),
        ),
        Entry(
            "a2c",
            "deep",
            "rlcanon.algos.a2c",
            "A2CConfig",
            "A2CAgent",
            "Advantage actor-critic, synchronous (n-step returns or GAE, RMSProp); discrete or continuous",
            smoke={"total_timesteps": 400, "num_envs": 4, "num_steps": 5},
            presets=Presets(p.PRESETS["a2c"]),
        ),
        Entry(
            "reinforce",
            "deep",
            "rlcanon.algos.reinforce",
            "REINFORCEConfig",
            "REINFORCEAgent",
            "REINFORCE: Monte Carlo policy gradient, Psi = return, Q or advantage (learned baseline, GAE)",
            smoke={"total_timesteps": 512, "num_envs": 2, "num_steps": 128},
            presets=Presets(p.PRESETS["reinforce"]),
        ),
        Entry(
            "sac",
            "deep",
            "rlcanon.algos.sac",
            "SACConfig",
            "SACAgent",
            "Soft actor-critic: twin Q critics, tanh-squashed Gaussian policy, automatic temperature",
            smoke={"total_timesteps": 300, "learning_starts": 100, "batch_size": 32, "hidden": (32, 32)},
            smoke_env="Pendulum-v1",
            presets=Presets(p.PRESETS["sac"]),
            actions=("continuous",),
        ),
        Entry(
            "sac-discrete",
            "deep",
            "rlcanon.algos.sac_discrete",
            "DiscreteSACConfig",
            "DiscreteSACAgent",
            "Soft actor-critic for discrete actions: exact sums over the actions, automatic temperature",
            smoke={"total_timesteps": 300, "learning_starts": 100, "batch_size": 32, "hidden": (32, 32)},
            actions=("discrete",),
        ),
        Entry(
            "ppg",
            "deep",
            "rlcanon.algos.ppg",
            "PPGConfig",
            "PPGAgent",
            "Phasic Policy Gradient: PPO phases, then value distillation under a KL constraint",
            # 3 iterations of 2 x 32 steps: one auxiliary phase within the budget
            smoke={
                "total_timesteps": 256,
                "num_envs": 2,
                "num_steps": 32,
                "batch_size": 32,
                "aux_batch_size": 64,
                "policy_iterations": 3,
                "aux_epochs": 2,
            },
            presets=Presets(p.PRESETS["ppg"]),
        ),
        Entry(
            "td3",
            "deep",
            "rlcanon.algos.td3",
            "TD3Config",
            "TD3Agent",
            "Twin delayed DDPG: clipped double-Q, target policy smoothing, delayed actor updates",
            smoke={"total_timesteps": 300, "learning_starts": 100, "batch_size": 32, "hidden": (32, 32)},
            smoke_env="Pendulum-v1",
            presets=Presets(p.PRESETS["td3"]),
            actions=("continuous",),
        ),
        Entry(
            "ddpg",
            "deep",
            "rlcanon.algos.ddpg",
            "DDPGConfig",
            "DDPGAgent",
            "Deep deterministic policy gradient, with Gaussian or Ornstein-Uhlenbeck exploration noise",
            smoke={"total_timesteps": 300, "learning_starts": 100, "batch_size": 32, "hidden": (32, 32)},
            smoke_env="Pendulum-v1",
            presets=Presets(p.PRESETS["ddpg"]),
            actions=("continuous",),
        ),
        Entry(
            "es-policy",
            "es",
            "rlcanon.es.policy",
            "ESPolicyConfig",
            "ESLearner",
            "ES policy search: any strategy over the weights of a linear or MLP policy",
            smoke={"generations": 3, "popsize": 8},
        ),
        # ---- ES methods (rlcanon es NAME): each is a learner in the one harness ----
        Entry(
            "ns-es",
            "es",
            "rlcanon.es.novelty",
            "NSESConfig",
            "NoveltyLearner",
            "NS-ES: ES on novelty alone, over a meta-population chosen by novelty (Conti et al. 2018)",
            smoke={"generations": 3, "popsize": 6, "meta_population": 3, "hidden": (4,)},
            smoke_env="rlcanon/UTrap-v0",
        ),
        Entry(
            "nsr-es",
            "es",
            "rlcanon.es.novelty",
            "NSRESConfig",
            "NoveltyLearner",
            "NSR-ES: ES on the mean of novelty and fitness ranks (Conti et al. 2018)",
            smoke={"generations": 3, "popsize": 6, "meta_population": 3, "hidden": (4,)},
            smoke_env="rlcanon/UTrap-v0",
        ),
        Entry(
            "nsra-es",
            "es",
            "rlcanon.es.novelty",
            "NSRAESConfig",
            "NoveltyLearner",
            "NSRA-ES: novelty and fitness with an adaptive weight w (Conti et al. 2018)",
            smoke={"generations": 3, "popsize": 6, "meta_population": 3, "hidden": (4,)},
            smoke_env="rlcanon/UTrap-v0",
        ),
        Entry(
            "cem-rl",
            "es",
            "rlcanon.es.cem_rl",
            "CEMRLConfig",
            "CEMRLLearner",
            "CEM-RL: CEM over actor weights, half the population improved by a shared TD3 critic",
            smoke={
                "total_timesteps": 600,
                "max_episode_steps": 50,
                "popsize": 4,
                "hidden": (16, 16),
                "learning_starts": 200,
                "batch_size": 16,
                "buffer_size": 2048,
                "gradient_steps_scale": 0.25,
            },
            smoke_env="Pendulum-v1",
            actions=("continuous",),
        ),
        Entry(
            "erl",
            "es",
            "rlcanon.es.erl",
            "ERLConfig",
            "ERLLearner",
            "ERL: a GA population of actors feeding a DDPG learner, injected back periodically",
            smoke={
                "total_timesteps": 600,
                "max_episode_steps": 50,
                "popsize": 4,
                "hidden": (16, 16),
                "learning_starts": 200,
                "batch_size": 16,
                "buffer_size": 2048,
                "gradient_steps_scale": 0.2,
            },
            smoke_env="Pendulum-v1",
            actions=("continuous",),
        ),
        Entry(
            "pbt",
            "es",
            "rlcanon.es.pbt",
            "PBTConfig",
            "PBTLearner",
            "population-based training: exploit better members' weights, explore their hyperparameters",
            # two tiny PPO members trained in this process, one round of 128 steps
            smoke={
                "population_size": 2,
                "total_timesteps": 128,
                "interval": 128,
                "workers": 1,
                "member_settings": ("num_envs=2", "num_steps=64", "batch_size=64", "eval_episodes=1"),
            },
        ),
        Entry(
            "wann",
            "es",
            "rlcanon.es.wann",
            "WANNConfig",
            "WANNLearner",
            "weight-agnostic networks: NEAT-style topology search under one shared weight",
            smoke={
                "generations": 2,
                "population_size": 8,
                "tournament_size": 4,
                "tune_points": 5,
                "tune_episodes": 1,
                "max_episode_steps": 200,
            },
        ),
        Entry(
            "tabular",
            "tabular",
            "rlcanon.tabular.learn",
            "TabularConfig",
            "TabularLearner",
            "tabular DP, Monte Carlo and TD control on discrete environments",
            smoke={"episodes": 20},
            smoke_env="FrozenLake-v1",
        ),
    ]
    return {e.name: e for e in entries}


ENTRIES: dict[str, Entry] = _entries()
ALGOS: dict[str, Entry] = {k: e for k, e in ENTRIES.items() if e.family == "deep"}
"""The deep RL algorithms (``rlcanon train ALGO``)."""


def get_entry(name: str) -> Entry:
    if name not in ENTRIES:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of {sorted(ENTRIES)}")
    return ENTRIES[name]


def get_algo(name: str) -> Entry:
    if name not in ALGOS:
        raise ConfigError(f"unknown algorithm {name!r}; choose one of {sorted(ALGOS)}")
    return ALGOS[name]


def make_config(algo: str, /, env_id: str | None = None, **overrides: Any) -> Any:
    """The config of ``algo`` for ``env_id`` (default: the config class's own): dataclass
    defaults, then the env's tuned preset, then ``overrides``."""
    entry = get_entry(algo)
    cls: Any = entry.config
    env = env_id if env_id is not None else cls.env_id
    return cls(**{"env_id": env, **entry.presets.for_env(env), **overrides})


def listing() -> dict[str, list[str]]:
    """Names of everything registered, by family (for ``rlcanon list``)."""
    from rlcanon.envs.registration import OWN_ENVS
    from rlcanon.envs.wrappers import WRAPPERS

    out: dict[str, list[str]] = {"algos": sorted(ALGOS)}
    for family, module, attr in (
        ("bandits", "rlcanon.bandits", "SOLVERS"),
        ("tabular", "rlcanon.tabular", "METHODS"),
        ("es", "rlcanon.es", "STRATEGIES"),
    ):
        out[family] = sorted(getattr(importlib.import_module(module), attr))
    out["es-methods"] = sorted(k for k, e in ENTRIES.items() if e.family == "es" and k != "es-policy")
    out["envs"] = sorted(OWN_ENVS)
    out["wrappers"] = sorted(WRAPPERS)
    return out
