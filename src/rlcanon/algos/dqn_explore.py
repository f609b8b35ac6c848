"""Exploration for the DQN family beyond epsilon-greedy: NoisyNet (Fortunato et al. 2018) and
parameter-space noise (Plappert et al. 2018). Either turns epsilon-greedy off; the loop asks this
object which net acts, when to redraw noise and what epsilon is.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from rlcanon.core.validate import ArraySpec, Map, Num

if TYPE_CHECKING:
    from rlcanon.algos.dqn import DQNConfig
    from rlcanon.buffers.replay import ReplayBuffer
    from rlcanon.core.param_noise import AdaptiveParamNoise

PARAM_NOISE_BATCH = 128
"""States drawn from replay to measure the perturbed policy's distance (Plappert et al. 2018, C.1)."""


def noisy_kwargs(cfg: DQNConfig) -> dict[str, Any]:
    """The Q network's ``layer`` argument for NoisyNet, or nothing."""
    if not cfg.noisy:
        return {}
    from rlcanon.nets.noisy import NoisyMLP

    def layer(in_dim: int, hidden: Any, out_dim: int, **kw: Any) -> nn.Module:
        return NoisyMLP(in_dim, hidden, out_dim, sigma0=cfg.noisy_sigma0, **kw)

    return {"layer": layer}


def _noisy_layers(net: nn.Module) -> list[Any]:
    return [m for m in net.modules() if hasattr(m, "resample_noise")]


class GeneratorState:
    """A torch generator as a checkpointed part (its state is a fixed-length byte array)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def state_arrays(self) -> dict[str, np.ndarray]:
        return {"state": self.generator.get_state().numpy().copy()}

    def array_specs(self) -> dict[str, ArraySpec]:
        return {"state": ArraySpec((len(self.generator.get_state()),), "uint8")}

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.generator.set_state(torch.from_numpy(np.ascontiguousarray(arrays["state"])))


class Exploration:
    """NoisyNet's noise draws, or parameter noise's perturbed net and adaptive scale, or nothing."""

    def __init__(
        self,
        cfg: DQNConfig,
        q: nn.Module,
        n_actions: int,
        q_values: Callable[[np.ndarray], np.ndarray],
        rng: np.random.Generator,
    ) -> None:
        self.cfg, self.q, self.n_actions, self.q_values, self.rng = cfg, q, n_actions, q_values, rng
        self.generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        self.noisy = _noisy_layers(q) if cfg.noisy else []
        self.perturbed: nn.Module | None = None
        self.scale: AdaptiveParamNoise | None = None
        if cfg.param_noise:
            from rlcanon.core.param_noise import AdaptiveParamNoise

            self.perturbed = copy.deepcopy(q).requires_grad_(False)
            # Plappert et al. 2018, C.1: sigma starts at 0.01 and moves by the factor alpha = 1.01
            delta = kl_target(cfg.exploration_initial_eps, n_actions)
            self.scale = AdaptiveParamNoise(sigma=0.01, target=delta)
            self._perturb()
        self.last_distance = float("nan")

    def epsilon(self, scheduled: float) -> float:
        """Epsilon-greedy's epsilon: 0 when noise in the weights explores instead."""
        return 0.0 if (self.cfg.noisy or self.cfg.param_noise) else scheduled

    def acting_net(self) -> Any:
        """The net that acts while training: the perturbed copy, or the online net with fresh noise."""
        if self.perturbed is not None:
            return self.perturbed
        for layer in self.noisy:  # NoisyNet: new noise at every acting step (Fortunato et al., Alg. 1)
            layer.resample_noise(self.generator)
        return self.q

    @contextlib.contextmanager
    def evaluation(self) -> Iterator[None]:
        """Deterministic evaluation acts on the noise-free weights (the means of NoisyNet's layers)."""
        with contextlib.ExitStack() as stack:
            for layer in self.noisy:
                stack.enter_context(layer.noise_off())
            yield

    def before_update(self, q: nn.Module, q_target: nn.Module) -> None:
        """NoisyNet: independent noise for the online and the target net at each gradient step."""
        if self.noisy:
            for layer in _noisy_layers(q) + _noisy_layers(q_target):
                layer.resample_noise(self.generator)

    def after_step(self, ended: np.ndarray, step: int, scheduled_eps: float, buffer: ReplayBuffer) -> None:
        """Parameter noise: adapt the scale every ``param_noise_adapt_interval`` steps and redraw the
        perturbation when an episode ends."""
        if self.scale is None:
            return
        interval = self.cfg.param_noise_adapt_interval
        if step // interval != (step - self.cfg.num_envs) // interval and len(buffer) > 0:
            self._adapt(buffer, scheduled_eps)
        if ended.any():
            self._perturb()

    def _adapt(self, buffer: ReplayBuffer, scheduled_eps: float) -> None:
        from rlcanon.core.param_noise import q_policy_distance

        assert self.scale is not None and self.perturbed is not None
        obs = buffer.batch(buffer.sample_indices(self.rng, PARAM_NOISE_BATCH))["obs"]
        self.scale.target = kl_target(scheduled_eps, self.n_actions)
        q_plain, q_perturbed = (self.q_values(net.infer(obs)) for net in (self.q, self.perturbed))  # type: ignore[operator]
        self.last_distance = q_policy_distance(q_plain, q_perturbed)
        self.scale.adapt(self.last_distance)
        self._perturb()

    def _perturb(self) -> None:
        from rlcanon.core.param_noise import perturb_

        assert self.scale is not None and self.perturbed is not None
        perturb_(self.perturbed, self.q, self.scale.sigma, self.generator)

    def metrics(self) -> dict[str, float]:
        if self.scale is None:
            return {}
        out = {"charts/param_noise_sigma": self.scale.sigma}
        if np.isfinite(self.last_distance):
            out["charts/param_noise_distance"] = self.last_distance
        return out

    # ---- checkpoints ----
    def modules(self) -> dict[str, nn.Module]:
        return {} if self.perturbed is None else {"q_perturbed": self.perturbed}

    def stateful(self) -> dict[str, Any]:
        return {"noise_rng": GeneratorState(self.generator)} if (self.noisy or self.scale) else {}

    def json_parts(self) -> dict[str, Any]:
        return {} if self.scale is None else {"param_noise": _ScaleState(self.scale)}


def kl_target(epsilon: float, n_actions: int) -> float:
    """delta = -log(1 - eps + eps / |A|), the KL distance of the eps-greedy policy from the greedy
    one (Plappert et al. 2018, C.1), kept above 0 so that an epsilon of 0 still leaves a scale."""
    from rlcanon.core.param_noise import epsilon_greedy_kl_target

    return max(epsilon_greedy_kl_target(epsilon, n_actions), 1e-6)


class _ScaleState:
    """The adaptive scale as a JSON checkpoint part."""

    def __init__(self, scale: AdaptiveParamNoise) -> None:
        self.scale = scale

    def state_json(self) -> dict[str, float]:
        return self.scale.state_dict()

    def json_schema(self) -> Map:
        return Map({"sigma": Num(), "target": Num(), "factor": Num(low=1.0)})

    def load_state_json(self, obj: dict[str, Any]) -> None:
        self.scale.load_state_dict(obj)
