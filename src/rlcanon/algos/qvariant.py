"""What a member of the DQN family gives the one DQN loop (:mod:`rlcanon.algos.dqn`): a Q head, a
pure TD-target function and a loss. DQN itself, C51, QR-DQN and bootstrapped DQN are each one
:class:`QVariant`; Rainbow is C51 with the loop's flags on.

The loop owns everything else: the replay buffer, exploration (epsilon, NoisyNet, parameter noise),
the target network and its refresh, Double DQN's action choice, prioritized replay, the optimizer and
checkpoints. A variant sees NumPy batches and network outputs and returns NumPy targets, so its
target function is pure and testable by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

LossFn = Callable[..., tuple[torch.Tensor, torch.Tensor]]
"""``loss(q_net, obs, actions, targets, weights) -> (loss, per-sample statistic, detached)``."""


class QVariant:
    """The defaults are those of a scalar Q head: act greedily on ``q_values``, no extra replay
    fields, importance weights as the loss weights. Subclasses override what differs."""

    loss: LossFn
    """The loss of one batch (a plain torch function, optionally ``@accelerated``)."""

    def build(self, obs_shape: tuple[int, ...], n_actions: int, **net_kwargs: Any) -> nn.Module:
        """The online Q network; it has ``forward`` (torch) and ``infer`` (NumPy) giving raw outputs."""
        raise NotImplementedError

    def q_values(self, out: np.ndarray) -> np.ndarray:
        """(B, A) action values from raw network outputs (the mean of a distribution)."""
        return out

    def td_target(
        self, batch: dict[str, np.ndarray], target_next: np.ndarray, online_next: np.ndarray | None
    ) -> np.ndarray:
        """The regression target of each sampled transition from the target network's raw outputs at
        s' (and the online network's, for Double DQN's action choice, when given)."""
        raise NotImplementedError

    def errors(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """(B,) per-transition errors from the loss's statistic: the priorities of prioritized replay
        (their absolute value) and the logged TD errors."""
        return stat - targets  # type: ignore[no-any-return]

    def loss_metric(self, errors: np.ndarray) -> float:
        """The logged ``loss/td`` of a phase: the unweighted Huber loss of its TD errors."""
        abs_err = np.abs(errors)
        quad = np.minimum(abs_err, 1.0)
        return float((0.5 * quad * quad + abs_err - quad).mean())

    def q_taken(self, stat: np.ndarray, targets: np.ndarray) -> np.ndarray | None:
        """Q(s, a) of the batch for the logged mean, if the statistic gives it."""
        return stat

    # ---- acting ----
    def greedy(self, out: np.ndarray) -> np.ndarray:
        """The deterministic (evaluation) action of each observation."""
        return np.argmax(self.q_values(out), axis=-1)

    def behaviour(self, out: np.ndarray) -> np.ndarray:
        """The greedy part of the behaviour policy while training (one head of an ensemble, ...)."""
        return self.greedy(out)

    def episodes_started(self, starts: np.ndarray, rng: np.random.Generator) -> None:
        """Sub-envs whose new episode starts at the next step (``starts``: (N,) bool)."""

    # ---- replay ----
    def replay_fields(self) -> dict[str, tuple[tuple[int, ...], Any]]:
        """Extra per-transition fields the replay buffer stores for this variant."""
        return {}

    def draw_fields(self, rng: np.random.Generator, num_envs: int) -> dict[str, np.ndarray]:
        """The extra fields of the transitions about to be stored, drawn at insertion."""
        return {}

    def weights(self, batch: dict[str, np.ndarray], importance: np.ndarray | None) -> np.ndarray | None:
        """Per-sample loss weights: prioritized replay's importance weights, by default."""
        return importance

    def stateful(self) -> dict[str, Any]:
        """Checkpointed state of the variant (``Parts.stateful`` entries)."""
        return {}


def select_next(online_next_q: np.ndarray | None, target_next_q: np.ndarray) -> np.ndarray:
    """The bootstrap action at s': argmax of the online net's values for Double DQN (van Hasselt
    et al. 2016, eq. 4), else of the target net's (Mnih et al. 2015)."""
    return np.argmax(target_next_q if online_next_q is None else online_next_q, axis=-1)


def take(values: np.ndarray, actions: np.ndarray) -> np.ndarray:
    """values[..., b, actions[..., b], ...] along the action axis -1 or -2: (B, A) -> (B,),
    (B, A, K) -> (B, K), (E, B, A) with (E, B) actions -> (E, B)."""
    if values.ndim == actions.ndim + 1:
        return np.take_along_axis(values, actions[..., None], axis=-1)[..., 0]
    return np.take_along_axis(values, actions[..., None, None], axis=-2)[..., 0, :]
