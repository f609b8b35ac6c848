"""The environment side of a deep RL agent, written once: the training vector env (kwargs, named
wrappers, normalisers), its collector, the spaces a user's observations come in, what a checkpoint
holds of it, and the restart after a restore."""

from __future__ import annotations

from typing import Any

import numpy as np

from rlcanon.envs.collectors import VecStepper
from rlcanon.envs.factory import EnvSpecLike, make_training_env, obs_shape
from rlcanon.envs.normalize import EnvState, frozen


class TrainingEnv:
    def __init__(self, config: Any, env: EnvSpecLike) -> None:
        self.envs = make_training_env(config, env)
        self.seed = int(config.seed)
        self.stepper = VecStepper(self.envs, seed=self.seed)
        raw = self.envs.unwrapped  # before any normaliser: what rlcanon.load's users pass in
        self.observation_space, self.action_space = raw.single_observation_space, raw.single_action_space
        self.agent_obs_shape = obs_shape(self.envs.single_observation_space)
        """The shape of one observation as the agent sees it (Box observations only)."""
        self.state = EnvState(self.envs)
        """The checkpointed part: the normalisers' statistics."""

    @property
    def spaces(self) -> tuple[Any, Any]:
        """(observation space, action space) of one env, before any normaliser."""
        return self.observation_space, self.action_space

    @property
    def obs_dim(self) -> int:
        return int(np.prod(self.agent_obs_shape))

    def restart(self, step: int) -> None:
        """Restart the envs of a restored run from a seed tied to the step count (an env's own state
        cannot be checkpointed), holding the observation normaliser still."""
        with frozen(self.envs):
            self.stepper = VecStepper(self.envs, seed=self.seed + step)


def discrete_training_env(config: Any, env: EnvSpecLike, algo: str) -> tuple[TrainingEnv, int]:
    """The training env of an agent that needs discrete actions, and its action count; any other
    action space closes the env and gives a one-line error."""
    import gymnasium as gym

    from rlcanon.errors import ConfigError

    training = TrainingEnv(config, env)
    space = training.spaces[1]
    if not isinstance(space, gym.spaces.Discrete):
        training.envs.close()
        raise ConfigError(f"{algo} needs a discrete action space; {config.env_id} has {space}")
    return training, int(space.n)
