"""The PPO loss (:func:`rlcanon.algos.ppo.ppo_loss`) with its actor and critic as one autograd node,
for categorical and diagonal-Gaussian heads on MLPs on the CPU.

Forward: the actor and critic MLP kernels, log pi(a|s), ratio r = exp(log pi - log pi_old), the
clipped surrogate -mean(min(r A, clip(r) A)), the (optionally clipped) value error and the entropy.
Gradients, with n the batch size:

- d/d log pi_i = -(1/n) A_i r_i where the unclipped term is the minimum, else 0;
- categorical logits: d log pi(a)/d z = onehot(a) - p; dH/dz_j = -p_j (log p_j + H);
- Gaussian: d log pi/d mu = (a - mu)/sigma^2; d log pi/d log sigma = ((a - mu)/sigma)^2 - 1;
  dH/d log sigma = 1;
- d/d v_i = vf_coef (2/n) (v_i - R_i), or through the pessimistic max when values are clipped;

then back through both MLPs (:func:`rlcanon.nets.kernels.backward`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from rlcanon.fused import Accelerator, EagerLoss, FitStep, cpu_float32, register
from rlcanon.fused.mlp import mlp_backward, mlp_forward
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import ValueCritic
from rlcanon.nets.heads import CategoricalHead, DiagGaussianHead
from rlcanon.nets.mlp import MLP

LOG_2PI = math.log(2 * math.pi)


def head_terms(o: np.ndarray, act: np.ndarray, log_std: np.ndarray | None) -> tuple[Any, ...]:
    """(log pi(a|s), entropy per row, context for the gradient)."""
    if log_std is None:  # categorical
        z = o - o.max(axis=1, keepdims=True)
        logp_all = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        probs = np.exp(logp_all)
        ent = -(probs * logp_all).sum(axis=1)
        rows = np.arange(len(act))
        return logp_all[rows, act], ent, (probs, logp_all, ent, rows)
    d = o.shape[1]
    zz = (act - o) * np.exp(-log_std)
    logp = (-0.5 * zz * zz).sum(axis=1) - (log_std.sum() + 0.5 * LOG_2PI * d)
    ent = np.full(len(o), log_std.sum() + (0.5 + 0.5 * LOG_2PI) * d, dtype=np.float32)
    return logp, ent, zz


def head_grads(
    head_ctx: Any, act: np.ndarray, ls: np.ndarray | None, dlogp: np.ndarray, ent_coef: float, inv_n: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """d(loss)/d(actor outputs), and d(loss)/d(log std) for a Gaussian head (else None), for a loss
    sum_i dlogp_i log pi(a_i|s_i) - ent_coef mean_i H_i (``head_ctx`` from :func:`head_terms`)."""
    if ls is None:
        probs, logp_all, ent_rows, rows = head_ctx
        dout = -probs * dlogp[:, None]  # d log softmax_a / d logits = onehot(a) - p
        dout[rows, act] += dlogp
        if ent_coef:
            dout += (ent_coef * inv_n) * probs * (logp_all + ent_rows[:, None])
        return dout, None
    zz = head_ctx
    dout = dlogp[:, None] * zz * np.exp(-ls)
    return dout, (dlogp[:, None] * (zz * zz - 1.0)).sum(axis=0) - ent_coef


def ppo_compute(
    actor: Actor,
    critic: ValueCritic,
    b: dict[str, torch.Tensor],
    clip: float,
    value_clip: float,
    vf_coef: float,
    ent_coef: float,
    buffers: dict[int, np.ndarray] | None = None,
) -> tuple[float, np.ndarray, dict[int, np.ndarray]]:
    """(loss, statistics, gradients by id of actor.net.flat, critic.net.flat and the Gaussian log
    std), the gradients written into ``buffers`` (by the same ids) when given."""
    bufs = buffers or {}
    x = b["obs"].numpy().reshape(len(b["obs"]), -1)
    o, a_cache = mlp_forward(actor.net, x)
    v, c_cache = mlp_forward(critic.net, x)
    v = v[:, 0]
    act, adv, ret, old_v = b["act"].numpy(), b["adv"].numpy(), b["ret"].numpy(), b["val"].numpy()
    head = actor.head
    log_std = head.log_std if isinstance(head, DiagGaussianHead) else None
    ls = None if log_std is None else log_std.detach().numpy()
    logp, ent, head_ctx = head_terms(o, act, ls)
    # (sums times 1/n and minimum/maximum: np.mean and np.clip add microseconds of wrapper code)
    log_ratio = logp - b["logp"].numpy()
    ratio = np.exp(log_ratio)
    n = len(ratio)
    inv_n = 1.0 / n
    s1 = ratio * adv
    s2 = np.minimum(np.maximum(ratio, 1.0 - clip), 1.0 + clip) * adv
    pg = -np.minimum(s1, s2).sum() * inv_n
    err = v - ret
    if value_clip > 0:
        delta = v - old_v
        err_c = old_v + np.minimum(np.maximum(delta, -value_clip), value_clip) - ret
        vl = np.maximum(err * err, err_c * err_c).sum() * inv_n
        dv = np.where(err_c * err_c > err * err, 2.0 * err_c * (np.abs(delta) <= value_clip), 2.0 * err)
    else:
        vl = (err * err).sum() * inv_n
        dv = 2.0 * err
    ent_mean = float(ent.sum()) * inv_n
    loss = pg + vf_coef * vl - ent_coef * ent_mean
    kl = ((ratio - 1.0) - log_ratio).sum() * inv_n
    stats = np.array(
        [pg, vl, ent_mean, kl, np.count_nonzero(np.abs(ratio - 1.0) > clip) * inv_n], dtype=np.float32
    )
    grads: dict[int, np.ndarray] = {}
    dlogp = np.where(s1 <= s2, adv * ratio, 0.0) * -inv_n
    dout, g_std = head_grads(head_ctx, act, ls, dlogp, ent_coef, inv_n)
    if log_std is not None:
        grads[id(log_std)] = into(bufs.get(id(log_std)), g_std)
    aid, cid = id(actor.net.flat), id(critic.net.flat)
    grads[aid] = mlp_backward(actor.net, a_cache, dout.astype(np.float32, copy=False), bufs.get(aid))
    dv = (dv * (vf_coef * inv_n)).astype(np.float32)[:, None]
    grads[cid] = mlp_backward(critic.net, c_cache, dv, bufs.get(cid))
    return float(loss), stats, grads


def into(buf: np.ndarray | None, value: np.ndarray) -> np.ndarray:
    if buf is None:
        return value.astype(np.float32)
    buf[...] = value
    return buf


class PPOLoss(EagerLoss):
    @staticmethod
    def reference(
        a_flat: Any, c_flat: Any, log_std: Any, actor: Actor, critic: ValueCritic, batch: Any, *rest: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from rlcanon.algos.ppo import ppo_loss

        return ppo_loss.reference(actor, critic, batch, *rest)  # type: ignore[attr-defined, no-any-return]

    @staticmethod
    def compute(ctx: Any, *args: Any) -> tuple[float, torch.Tensor, dict[int, np.ndarray]]:  # type: ignore[override]
        loss, stats, grads = ppo_compute(*args[3:])
        return loss, torch.from_numpy(stats), grads


def actor_critic_applies(
    actor: Any, critic: Any, batch: dict[str, torch.Tensor], *args: Any, **kwargs: Any
) -> bool:
    if not (isinstance(actor, Actor) and isinstance(critic, ValueCritic)):
        return False
    if type(actor.head) not in (CategoricalHead, DiagGaussianHead) or not torch.is_grad_enabled():
        return False
    nets: list[MLP] = [actor.net, critic.net]
    if any(m.ensemble_size for m in nets) or batch["obs"].requires_grad:
        return False
    return cpu_float32(batch["obs"], actor.net.flat, critic.net.flat) and all(
        t.device.type == "cpu" for t in batch.values()
    )


def _run(
    actor: Actor, critic: ValueCritic, batch: dict[str, torch.Tensor], *rest: float
) -> tuple[torch.Tensor, torch.Tensor]:
    log_std = actor.head.log_std if isinstance(actor.head, DiagGaussianHead) else torch.zeros(0)
    result: tuple[torch.Tensor, torch.Tensor] = PPOLoss.apply(
        actor.net.flat, critic.net.flat, log_std, actor, critic, batch, *(float(r) for r in rest)
    )
    return result


def _fit(update: Any, batches: list[tuple[Any, ...]], stop: Any = None) -> list[torch.Tensor] | None:
    """The steps of ``update.fit(ppo_loss, batches, stop)`` without autograd."""

    actor, critic = batches[0][0], batches[0][1]
    if not actor_critic_applies(*batches[0]) or any(b[0] is not actor or b[1] is not critic for b in batches):
        return None
    params = update.params
    wanted = [actor.net.flat, critic.net.flat]
    if isinstance(actor.head, DiagGaussianHead):
        wanted.append(actor.head.log_std)
    if {id(p) for p in params} != {id(p) for p in wanted}:
        return None
    buffers = {id(p): np.empty(p.shape, dtype=np.float32) for p in params}
    for p in params:
        p.grad = torch.from_numpy(buffers[id(p)])
    apply = FitStep(update, list(buffers.values()))
    out = []
    for args in batches:
        actor, critic, batch, clip, value_clip, vf_coef, ent_coef = args
        values = ppo_compute(actor, critic, batch, clip, value_clip, vf_coef, ent_coef, buffers=buffers)[1]
        stats = torch.from_numpy(values)
        if stop is not None and stop(stats):
            break
        apply()
        out.append(stats)
    return out


def _examples(seed: int) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    import gymnasium as gym

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for space, (vc, ent), act_fn in (
        (gym.spaces.Discrete(3), (0.0, 0.0), "relu"),
        (gym.spaces.Discrete(4), (0.2, 0.01), "tanh"),
        (gym.spaces.Box(-1, 1, (2,)), (0.0, 0.01), "tanh"),
        (gym.spaces.Box(-2, 2, (3,)), (0.3, 0.0), "relu"),
    ):
        n, d = 48, 5
        actor = Actor(d, space, (16, 16), act_fn, log_std_init=-0.3, out_gain=1.0)
        critic = ValueCritic(d, (16,), act_fn)
        obs = torch.from_numpy(rng.standard_normal((n, d)).astype(np.float32))
        with torch.no_grad():
            out = actor(obs)
            act = actor.head.sample(out)[0]
            logp = actor.head.log_prob(out, act) + torch.from_numpy(rng.normal(0, 0.3, n).astype(np.float32))
            values = critic(obs)
        batch = {
            "obs": obs,
            "act": act,
            "logp": logp,
            "adv": torch.from_numpy(rng.standard_normal(n).astype(np.float32)),
            "ret": torch.from_numpy(rng.standard_normal(n).astype(np.float32)),
            "val": values + torch.from_numpy(rng.normal(0, 0.3, n).astype(np.float32)),
        }
        cases.append(((actor, critic, batch, 0.2, vc, 0.5, ent), {}))
    return cases


register("rlcanon.algos.ppo.ppo_loss", Accelerator(actor_critic_applies, _run, _examples, _fit))
