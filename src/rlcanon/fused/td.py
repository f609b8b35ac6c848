"""The Huber TD loss of DQN (:func:`rlcanon.algos.dqn.td_loss`) with its Q network as one autograd
node, for vector-observation Q networks (plain or dueling) on the CPU.

Forward: Q(s, .) by the MLP kernels, q = Q(s, a), TD error d = q - y, loss = mean(w * h(d)) with h
the Huber function (delta 1). Gradient: d loss / d Q(s, a') = w clip(d, -1, 1) / n for the taken
action a' = a and 0 for the others, the error clipping of the Nature DQN (Mnih et al. 2015,
Methods); through the dueling head Q = V + A - mean(A): dV = sum_a dQ, dA = dQ - mean_a dQ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlcanon.fused import Accelerator, EagerLoss, FitStep, cpu_float32, register
from rlcanon.fused.mlp import mlp_backward, mlp_forward
from rlcanon.nets import kernels
from rlcanon.nets.critics import DiscreteQ
from rlcanon.nets.mlp import MLP


def td_compute(
    q_net: DiscreteQ,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
    buffers: dict[int, np.ndarray] | None = None,
    want_loss: bool = True,
) -> tuple[float, np.ndarray, dict[int, np.ndarray]]:
    """(loss, Q(s, a), gradients of the loss by id of each MLP's flat parameter), the gradients
    written into ``buffers`` (by the same ids) when given; the loss is NaN unless ``want_loss``."""
    bufs = buffers or {}
    mlps = q_net._mlps  # (value, advantage) or (q,): plain references, no module lookups
    x = obs.numpy()
    if x.ndim != 2 or x.dtype != np.float32:
        x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
    outs = [mlp_forward(m, x) for m in mlps]
    if len(mlps) == 2:
        (v, _), (adv, _) = outs
        q = v + adv - adv.mean(axis=1, keepdims=True)
    else:
        q = outs[0][0]
    rows, act = np.arange(len(q)), actions.numpy()
    q_taken = q[rows, act]
    td = q_taken - targets.numpy()
    grad = np.clip(td, -1.0, 1.0) * (1.0 / len(td))
    w = None if weights is None else weights.numpy()
    if w is not None:
        grad *= w
    loss = float("nan")
    if want_loss:
        abs_td = np.abs(td)
        quad = np.minimum(abs_td, 1.0)
        per = 0.5 * quad * quad + (abs_td - quad)
        loss = float((per if w is None else w * per).mean())
    dq = np.zeros_like(q)
    dq[rows, act] = grad
    douts = (dq.sum(axis=1, keepdims=True), dq - dq.mean(axis=1, keepdims=True)) if len(mlps) == 2 else (dq,)
    grads = {}
    for m, (_, cache), d in zip(mlps, outs, douts):
        key = id(m.flat)
        grads[key] = mlp_backward(m, cache, d, bufs.get(key))
    return loss, q_taken, grads


class TDLoss(EagerLoss):
    @staticmethod
    def reference(*args: Any) -> tuple[torch.Tensor, torch.Tensor]:
        from rlcanon.algos.dqn import td_loss

        return td_loss.reference(*args[-5:])  # type: ignore[attr-defined, no-any-return]

    @staticmethod
    def compute(ctx: Any, *args: Any) -> tuple[float, torch.Tensor, dict[int, np.ndarray]]:  # type: ignore[override]
        loss, q_taken, grads = td_compute(*args[-5:])
        return loss, torch.from_numpy(q_taken), grads


def _applies(
    q_net: Any, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor, weights: Any
) -> bool:
    if type(q_net) is not DiscreteQ or q_net.pixels or obs.requires_grad or not torch.is_grad_enabled():
        return False
    nets = q_net._mlps
    if q_net.atoms != 1 or any(type(m) is not MLP or m.ensemble_size for m in nets):  # plain MLPs only
        return False
    if obs.device.type != "cpu" or actions.device.type != "cpu":
        return False
    return cpu_float32(obs, targets, weights, *(m.flat for m in nets))


def _run(
    q_net: DiscreteQ,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    flats = [m.flat for m in q_net._mlps]
    result: tuple[torch.Tensor, torch.Tensor] = TDLoss.apply(*flats, q_net, obs, actions, targets, weights)
    return result


def _fit(update: Any, batches: list[tuple[Any, ...]], stop: Any = None) -> list[torch.Tensor] | None:
    """The gradient steps of ``update.fit(td_loss, batches)`` without autograd: the Q network's
    kernels, the Huber gradient, clipping and the optimizer step, per batch. The plain (not dueling)
    network takes a lean loop whose views and buffers are set up once."""
    q_net = batches[0][0]
    if not _applies(*batches[0]) or any(b[0] is not q_net for b in batches):
        return None
    params = update.params
    if {id(p) for p in params} != {id(m.flat) for m in q_net._mlps}:
        return None
    buffers = {id(p): np.empty(p.shape, dtype=np.float32) for p in params}
    for p in params:
        p.grad = torch.from_numpy(buffers[id(p)])
    step = _PlainStep(q_net._mlps[0], buffers) if len(q_net._mlps) == 1 else None
    apply = FitStep(update, list(buffers.values()))
    out = []
    for args in batches:
        if step is not None:
            q_taken = torch.from_numpy(step(*args[1:]))
        else:
            q, obs, act, y, w = args
            q_taken = torch.from_numpy(td_compute(q, obs, act, y, w, buffers=buffers, want_loss=False)[1])
        if stop is not None and stop(q_taken):
            break
        apply()
        out.append(q_taken)
    return out


class _PlainStep:
    """One TD gradient for a plain MLP Q network, writing into a fixed gradient buffer."""

    def __init__(self, mlp: Any, buffers: dict[int, np.ndarray]) -> None:
        self.mlp = mlp
        self.weights, self.biases = mlp.numpy_views()  # views: optimizer steps update them in place
        self.grad_w, self.grad_b = mlp.grad_views(buffers[id(mlp.flat)])
        self.rows = np.arange(0)

    def __call__(
        self, obs: torch.Tensor, actions: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None
    ) -> np.ndarray:
        x = obs.numpy()
        if x.ndim != 2 or x.dtype != np.float32:
            x = np.asarray(x, dtype=np.float32).reshape(len(x), -1)
        q, cache = kernels.forward(self.weights, self.biases, self.mlp.acts, x)
        if len(self.rows) != len(q):
            self.rows = np.arange(len(q))
        act = actions.numpy()
        q_taken = q[self.rows, act]
        grad = np.clip(q_taken - targets.numpy(), -1.0, 1.0) * (1.0 / len(q))
        if weights is not None:
            grad *= weights.numpy()
        dq = np.zeros_like(q)
        dq[self.rows, act] = grad
        kernels.backward(self.weights, self.mlp.acts, cache, dq, self.grad_w, self.grad_b, False)
        return q_taken  # type: ignore[no-any-return]


def _examples(seed: int) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for n, k, weighted, dueling in ((32, 2, False, False), (64, 5, True, True), (7, 3, False, True)):
        q_net = DiscreteQ((4,), k, (16, 16), dueling)
        obs = torch.from_numpy(rng.normal(0, 1, (n, 4)).astype(np.float32))
        a = torch.from_numpy(rng.integers(0, k, n))
        y = torch.from_numpy(rng.normal(0, 2, n).astype(np.float32))
        w = torch.from_numpy(rng.random(n).astype(np.float32)) if weighted else None
        cases.append(((q_net, obs, a, y, w), {}))
    return cases


register("rlcanon.algos.dqn.td_loss", Accelerator(_applies, _run, _examples, _fit))
