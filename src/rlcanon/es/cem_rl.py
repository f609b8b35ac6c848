"""CEM-RL (Pourchot & Sigaud 2019, "CEM-RL: Combining evolutionary and gradient-based methods for
policy search", ICLR; Algorithm 1): the cross-entropy method over the weights of a deterministic
actor, with half of every generation improved by gradient steps against a shared TD3 critic.

Each generation:

1. sample ``popsize`` actors z_i ~ N(mu, diag(Sigma));
2. once the buffer holds ``learning_starts`` steps, each of the first popsize/2 actors, in turn,
   becomes the TD3 actor (its target actor starts from the same weights): the shared twin critic
   takes 2 T / popsize steps with that target actor, then the actor takes T steps of the TD3
   actor loss -Q_1(s, mu(s)), T being the env steps of the previous generation (the paper's
   schedule); the improved weights replace z_i;
3. every actor plays one episode; every transition goes into the one replay buffer;
4. CEM refits the distribution to the mu = popsize / 2 best (post-gradient) actors with the
   weights lambda_i proportional to log((mu + 1) / i) (CMA-ES's log-rank weights, which the paper uses):
   mu' = sum_i lambda_i z_(i) and Sigma' = sum_i lambda_i (z_(i) - mu)^2 + eps (the variance about
   the OLD mean, eq. 2 with a diagonal covariance), where the added noise eps decays from
   eps_init = 1e-3 to eps_end = 1e-5 by eps <- tau_eps eps + (1 - tau_eps) eps_end (tau_eps = 0.95).

The initial covariance is Sigma_0 = sigma_init I with sigma_init = 1e-3 (the paper's value, read here
as a variance: the covariance is sigma_init times the identity). Budget: env steps, as the paper reports.
``predict`` plays the CEM mean actor.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from rlcanon.core.config import check_int, check_range
from rlcanon.core.optim import GradientStep
from rlcanon.envs.factory import EnvSpecLike
from rlcanon.errors import ConfigError
from rlcanon.es.actors import (
    EpisodeRunner,
    HybridConfig,
    SharedCritic,
    actor_step,
    check_rates,
    critic_step,
    episode_seed,
    flat_of,
    load_flat,
    make_actor,
    sample_batch,
)
from rlcanon.es.base import Tracker, clean_fitness, prepare_x0
from rlcanon.es.state import StrategyState
from rlcanon.run.state import Parts


@dataclass(frozen=True)
class CEMRLConfig(HybridConfig):
    """CEM-RL settings. Defaults are the paper's (its experimental setup: population 10, sigma_init
    1e-3, eps 1e-3 -> 1e-5 with tau 0.95, 400-300 networks, Adam 1e-3, batch 100, tau 0.005,
    10^4 start steps), with TD3's target smoothing (0.2, clipped at 0.5)."""

    popsize: int = 10
    """Actors per generation (the paper's 10); the first half takes gradient steps, the best half
    are the elites."""
    sigma_init: float = 1e-3
    """Initial variance of every actor weight (Sigma_0 = sigma_init I)."""
    noise_init: float = 1e-3
    """Noise eps added to the variance at the first update (delays the collapse)."""
    noise_end: float = 1e-5
    """Value the added noise decays to."""
    noise_decay: float = 0.95
    """Decay of the added noise: eps <- noise_decay * eps + (1 - noise_decay) * noise_end."""
    actor_lr: float = 1e-3
    """Adam step size of the gradient actors (each starts a fresh Adam from its sampled weights)."""
    critic_lr: float = 1e-3
    """Adam step size of the shared twin critic."""
    target_policy_noise: float = 0.2
    """Std of TD3's target-smoothing noise, in half-widths of the action box (0 turns it off)."""
    target_noise_clip: float = 0.5
    """Clip of the target-smoothing noise, in half-widths of the action box."""
    gradient_steps_scale: float = 1.0
    """Multiplier on the paper's gradient-step counts (1: the critic 2 T / popsize and each actor
    T steps, T the env steps of the previous generation); below 1 trades learning for time."""

    def validate(self) -> None:
        check_int("popsize", self.popsize, 2, 10_000)
        check_range("sigma_init", self.sigma_init, 1e-12, 1e6)
        check_range("noise_init", self.noise_init, 0.0, 1e6)
        check_range("noise_end", self.noise_end, 0.0, 1e6)
        check_range("noise_decay", self.noise_decay, 0.0, 1.0)
        check_rates(self, "actor_lr", "critic_lr")
        check_range("target_policy_noise", self.target_policy_noise, 0.0, 10.0)
        check_range("target_noise_clip", self.target_noise_clip, 0.0, 10.0)
        check_range("gradient_steps_scale", self.gradient_steps_scale, 0.0, 100.0)
        if self.popsize % 2:
            raise ConfigError(
                f"popsize={self.popsize} is not allowed; it must be even (half the population takes "
                f"gradient steps)"
            )


# ---- the search distribution ---------------------------------------------------------------------


def elite_weights(elites: int) -> np.ndarray:
    """lambda_i proportional to log((mu + 1) / i), i = 1..mu, summing to 1 (best first)."""
    raw = np.log((elites + 1) / np.arange(1, elites + 1))
    return raw / raw.sum()  # type: ignore[no-any-return]


def weighted_elite_update(
    population: np.ndarray, fitness: np.ndarray, mean: np.ndarray, weights: np.ndarray, noise: float
) -> tuple[np.ndarray, np.ndarray]:
    """The CEM-RL update (eq. 1-2, diagonal): the best len(weights) rows z_(i) by fitness
    (maximised, ties by index) give mu' = sum_i lambda_i z_(i) and
    Sigma' = sum_i lambda_i (z_(i) - mu)^2 + noise, about the OLD mean mu."""
    elite = population[np.argsort(-fitness, kind="stable")[: len(weights)]]
    return weights @ elite, weights @ (elite - mean) ** 2 + noise


class WeightedCEM(Tracker):
    """CEM with a diagonal Gaussian, weighted elites and decaying added noise (ask/tell, maximising)."""

    name = "cem-rl"
    _STATE = ("mean", "var", "noise", "evaluations", "generation", "best_x", "best_f")

    def __init__(
        self,
        x0: Any,
        sigma_init: float,
        seed: int = 0,
        popsize: int = 10,
        noise_init: float = 1e-3,
        noise_end: float = 1e-5,
        noise_decay: float = 0.95,
    ) -> None:
        x0 = prepare_x0(x0, sigma_init, popsize)
        self.dim, self.popsize = len(x0), int(popsize)
        self.weights = elite_weights(max(self.popsize // 2, 1))
        self.mean, self.var = x0.copy(), np.full(self.dim, float(sigma_init))
        self.noise, self.noise_end, self.noise_decay = float(noise_init), float(noise_end), float(noise_decay)
        self.rng = np.random.default_rng(seed)
        self._init_tracker(x0)

    @property
    def sigma(self) -> float:
        return float(np.sqrt(self.var.mean()))

    def ask(self) -> np.ndarray:
        return self.mean + np.sqrt(self.var) * self.rng.standard_normal((self.popsize, self.dim))

    def tell(self, population: np.ndarray, fitness: Any) -> None:
        f = clean_fitness(fitness, self.popsize)
        self._record(population, f)
        # the noise decays first and the decayed value is added (an order chosen here)
        self.noise = self.noise_decay * self.noise + (1 - self.noise_decay) * self.noise_end
        self.mean, self.var = weighted_elite_update(population, f, self.mean, self.weights, self.noise)


class CEMState(StrategyState):
    """The distribution's checkpointed state; the added noise must be >= 0."""

    def array_specs(self) -> dict[str, Any]:
        specs = super().array_specs()
        specs["scalar/noise"] = type(specs["scalar/noise"])((), "float64", low=0.0, high=1e6)
        return specs


# ---- the learner ---------------------------------------------------------------------------------


class CEMRLLearner:
    """One generation per iteration: sample, improve half by TD3 gradient steps, evaluate, refit."""

    def __init__(self, config: CEMRLConfig, env: EnvSpecLike, rng: np.random.Generator) -> None:
        self.cfg, self.rng = config, rng
        self.runner = EpisodeRunner(config, env)
        self.observation_space, self.action_space = self.runner.observation_space, self.runner.action_space
        self.buffer = self.runner.buffer
        self.actor = make_actor(self.runner, config.hidden)  # the scratch gradient actor
        self.actor_target = copy.deepcopy(self.actor).requires_grad_(False)
        self.mean_actor = copy.deepcopy(self.actor).requires_grad_(False)
        self.critic = SharedCritic(self.runner, config.hidden, 2, config.critic_lr, math.inf)
        self.cem = WeightedCEM(
            flat_of(self.actor).astype(np.float64),
            config.sigma_init,
            seed=config.seed,
            popsize=config.popsize,
            noise_init=config.noise_init,
            noise_end=config.noise_end,
            noise_decay=config.noise_decay,
        )
        self.global_step = 0
        self.updates = 0
        self.generation_steps = 0
        """Env steps of the previous generation (the paper's T)."""
        self.budget_granularity = 1
        self.sampled: np.ndarray | None = None
        """The last generation as sampled, and as evaluated (after the gradient steps)."""
        self.evaluated: np.ndarray | None = None
        self.fitness = np.zeros(0)
        """The returns of the last generation's actors, in population order."""

    @property
    def progress(self) -> int:
        return self.global_step

    def iterate(self) -> dict[str, float]:
        cfg = self.cfg
        population = self.cem.ask()
        self.sampled = population.copy()
        losses: dict[str, list[torch.Tensor]] = {"loss/critic": [], "loss/actor": []}
        if self.global_step >= cfg.learning_starts and self.generation_steps > 0 and len(self.buffer):
            for i in range(cfg.popsize // 2):
                population[i] = self._improve(population[i], losses)
        self.evaluated = population
        fitness, complete = self._evaluate(population)
        self.fitness = fitness
        if complete:  # a generation the budget cut short only feeds the buffer
            self.cem.tell(population, fitness)
            load_flat(self.mean_actor, self.cem.mean)
        metrics = {
            "generation": float(self.cem.generation),
            "charts/episodic_return": float(np.mean(fitness)),
            "charts/fitness_max": float(np.max(fitness)),
            "charts/sigma": self.cem.sigma,
            "charts/added_noise": self.cem.noise,
            "charts/buffer_size": float(len(self.buffer)),
        }
        metrics.update({k: float(torch.stack(v).mean()) for k, v in losses.items() if v})
        return metrics

    def _improve(self, member: np.ndarray, losses: dict[str, list[torch.Tensor]]) -> np.ndarray:
        """Algorithm 1's inner loop for one actor: the critic, then the actor, against each other."""
        cfg, scale = self.cfg, self.cfg.gradient_steps_scale
        load_flat(self.actor, member)
        load_flat(self.actor_target, member)
        step = GradientStep(self.actor.parameters(), cfg.actor_lr)
        critic_steps = round(scale * 2 * self.generation_steps / cfg.popsize)
        for _ in range(critic_steps):
            batch = sample_batch(self.buffer, self.rng, cfg.batch_size)
            noise, clip = cfg.target_policy_noise, cfg.target_noise_clip
            losses["loss/critic"].append(
                critic_step(self.critic, self.actor_target, batch, cfg.tau, noise, clip)
            )
            self.updates += 1
        for _ in range(round(scale * self.generation_steps)):
            obs = sample_batch(self.buffer, self.rng, cfg.batch_size)["obs"]
            losses["loss/actor"].append(
                actor_step(self.actor, self.actor_target, step, self.critic, obs, cfg.tau)
            )
        return flat_of(self.actor).astype(np.float64)

    def _evaluate(self, population: np.ndarray) -> tuple[np.ndarray, bool]:
        """One episode per actor, each cut at the budget; returns the returns of the actors that
        played and whether all of them played whole episodes."""
        returns: list[float] = []
        steps_this_generation, complete = 0, True
        for i, member in enumerate(population):
            remaining = self.cfg.total_timesteps - self.global_step
            if remaining <= 0:
                complete = False
                break
            load_flat(self.actor, member)
            seed = episode_seed(self.cfg.seed, self.cem.generation, i)
            ret, steps, ended = self.runner.run(self.actor, seed, remaining)
            returns.append(ret)
            self.global_step += steps
            steps_this_generation += steps
            complete = complete and (ended or steps < remaining)
        self.generation_steps = steps_this_generation
        return np.array(returns), complete and len(returns) == len(population)

    def predict(
        self,
        obs: np.ndarray,
        state: Any = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, Any]:
        x = np.asarray(obs, dtype=np.float32).reshape(len(obs), -1)
        return self.mean_actor.act(x, None), state

    def eval_env(self, num_envs: int) -> Any:
        return self.runner.eval_env(num_envs)

    def checkpoint_parts(self) -> Parts:
        cem = CEMState(self.cem)
        return Parts(
            modules={"critic": self.critic.q, "critic_target": self.critic.target},
            optimizers={"critic": self.critic.step.optimizer},
            stateful={"replay": self.buffer, "cem": cem},
            counters=("global_step", "updates", "generation_steps"),
            json_parts={"cem": cem},
        )

    def on_restore(self) -> None:
        load_flat(self.mean_actor, self.cem.mean)

    def summary_extra(self) -> dict[str, Any]:
        return {"generations": int(self.cem.generation), "gradient_updates": int(self.updates)}

    def close(self) -> None:
        self.runner.close()
