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

from rlcanon.fused import Accelerator, EagerLoss, cpu_float32, register
from rlcanon.fused.mlp import mlp_backward, mlp_forward
from rlcanon.nets.critics import DiscreteQ


def _nets(q_net: DiscreteQ) -> list[Any]:
    return [q_net.value, q_net.advantage] if q_net.dueling else [q_net.q]


def td_compute(
    q_net: DiscreteQ,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
    buffers: dict[int, np.ndarray] | None = None,
) -> tuple[float, np.ndarray, dict[int, np.ndarray]]:
    """(loss, Q(s, a), gradients of the loss by id of each MLP's flat parameter), the gradients
    written into ``buffers`` (by the same ids) when given."""
    bufs = buffers or {}
    x = np.asarray(obs.numpy(), dtype=np.float32).reshape(len(obs), -1)
    if q_net.dueling:
        v, v_cache = mlp_forward(q_net.value, x)
        adv, a_cache = mlp_forward(q_net.advantage, x)
        q = v + adv - adv.mean(axis=1, keepdims=True)
    else:
        q, cache = mlp_forward(q_net.q, x)
    rows, act = np.arange(len(q)), actions.numpy()
    q_taken = q[rows, act]
    td = q_taken - targets.numpy()
    abs_td = np.abs(td)
    quad = np.minimum(abs_td, 1.0)
    per = 0.5 * quad * quad + (abs_td - quad)
    grad = np.clip(td, -1.0, 1.0) / len(td)
    if weights is not None:
        w = weights.numpy()
        per, grad = w * per, grad * w
    dq = np.zeros_like(q)
    dq[rows, act] = grad
    if q_net.dueling:
        vid, aid = id(q_net.value.flat), id(q_net.advantage.flat)
        grads = {
            vid: mlp_backward(q_net.value, v_cache, dq.sum(axis=1, keepdims=True), bufs.get(vid)),
            aid: mlp_backward(q_net.advantage, a_cache, dq - dq.mean(axis=1, keepdims=True), bufs.get(aid)),
        }
    else:
        qid = id(q_net.q.flat)
        grads = {qid: mlp_backward(q_net.q, cache, dq, bufs.get(qid))}
    return float(per.mean()), q_taken, grads


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
    nets = _nets(q_net)
    if any(m.ensemble_size for m in nets) or obs.device.type != "cpu" or actions.device.type != "cpu":
        return False
    return cpu_float32(targets, weights, *(m.flat for m in nets))


def _run(
    q_net: DiscreteQ,
    obs: torch.Tensor,
    actions: torch.Tensor,
    targets: torch.Tensor,
    weights: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    flats = [m.flat for m in _nets(q_net)]
    result: tuple[torch.Tensor, torch.Tensor] = TDLoss.apply(*flats, q_net, obs, actions, targets, weights)
    return result


def _fit(update: Any, batches: list[tuple[Any, ...]], stop: Any = None) -> list[torch.Tensor] | None:
    """The gradient steps of ``update.fit(td_loss, batches)`` without autograd: the Q network's
    kernels, the Huber gradient, clipping and the optimizer step, per batch."""
    from rlcanon.core.optim import clip_grad_norm

    q_net = batches[0][0]
    if not _applies(*batches[0]) or any(b[0] is not q_net for b in batches):
        return None
    params = update.params
    if {id(p) for p in params} != {id(m.flat) for m in _nets(q_net)}:
        return None
    buffers = {id(p): np.empty(p.shape, dtype=np.float32) for p in params}
    out = []
    for args in batches:
        q_taken = torch.from_numpy(td_compute(*args, buffers=buffers)[1])
        if stop is not None and stop(q_taken):
            break
        for p in params:
            p.grad = torch.from_numpy(buffers[id(p)])
        clip_grad_norm(params, update.max_grad_norm)
        update.optimizer.step()
        out.append(q_taken)
    return out


def _examples(seed: int) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cases = []
    for n, k, weighted, dueling in ((32, 2, False, False), (64, 5, True, True), (7, 3, False, True)):
        q_net = DiscreteQ((4,), k, (16, 16), dueling)
        obs = torch.from_numpy(rng.normal(0, 1, (n, 4)).astype(np.float32))
        a = torch.from_numpy(rng.integers(0, k, n))
        y = torch.from_numpy(rng.normal(0, 2, n).astype(np.float32))
        w = torch.from_numpy(rng.random(n).astype(np.float32)) if weighted else None
        cases.append(((q_net, obs, a, y, w), {}))
    return cases


register("rlcanon.algos.dqn.td_loss", Accelerator(_applies, _run, _examples, _fit))
