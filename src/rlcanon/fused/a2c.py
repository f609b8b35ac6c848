"""The A2C loss (:func:`rlcanon.algos.a2c.a2c_loss`) with its actor and critic as one autograd node,
for categorical and diagonal-Gaussian heads on MLPs on the CPU.

Forward: the actor and critic MLP kernels, log pi(a|s), the policy term -mean(log pi(a|s) A), the
value error mean((V(s) - R)^2) and the entropy. Gradients, with n the batch size: d/d log pi_i =
-A_i / n, through the head as in :func:`rlcanon.fused.ppo.head_grads`, and d/d v_i = vf_coef
(2/n) (v_i - R_i); then back through both MLPs. It saves A2C's per-update autograd graph (about a
fifth of an A2C iteration on CartPole), with the definition's results.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from rlcanon.fused import Accelerator, EagerLoss, register
from rlcanon.fused.mlp import mlp_backward, mlp_forward
from rlcanon.fused.ppo import actor_critic_applies, head_grads, head_terms
from rlcanon.nets.actor import Actor
from rlcanon.nets.critics import ValueCritic
from rlcanon.nets.heads import DiagGaussianHead


def a2c_compute(
    actor: Actor, critic: ValueCritic, b: dict[str, torch.Tensor], vf_coef: float, ent_coef: float
) -> tuple[float, np.ndarray, dict[int, np.ndarray]]:
    """(loss, [policy loss, value loss, entropy], gradients by id of actor.net.flat,
    critic.net.flat and the Gaussian log std)."""
    x = b["obs"].numpy().reshape(len(b["obs"]), -1)
    o, a_cache = mlp_forward(actor.net, x)
    v, c_cache = mlp_forward(critic.net, x)
    act, adv, ret = b["act"].numpy(), b["adv"].numpy(), b["ret"].numpy()
    log_std = actor.head.log_std if isinstance(actor.head, DiagGaussianHead) else None
    ls = None if log_std is None else log_std.detach().numpy()
    logp, ent, head_ctx = head_terms(o, act, ls)
    inv_n = 1.0 / len(adv)
    pg = -(logp * adv).sum() * inv_n
    err = v[:, 0] - ret
    vl = (err * err).sum() * inv_n
    ent_mean = float(ent.sum()) * inv_n
    loss = pg + vf_coef * vl - ent_coef * ent_mean
    grads: dict[int, np.ndarray] = {}
    dout, g_std = head_grads(head_ctx, act, ls, adv * -inv_n, ent_coef, inv_n)
    if log_std is not None:
        grads[id(log_std)] = np.asarray(g_std, dtype=np.float32)
    grads[id(actor.net.flat)] = mlp_backward(actor.net, a_cache, dout.astype(np.float32, copy=False), None)
    dv = (err * (2.0 * vf_coef * inv_n)).astype(np.float32)[:, None]
    grads[id(critic.net.flat)] = mlp_backward(critic.net, c_cache, dv, None)
    return float(loss), np.array([pg, vl, ent_mean], dtype=np.float32), grads


class A2CLoss(EagerLoss):
    @staticmethod
    def reference(
        a_flat: Any, c_flat: Any, log_std: Any, actor: Actor, critic: ValueCritic, batch: Any, *rest: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        from rlcanon.algos.a2c import a2c_loss

        return a2c_loss.reference(actor, critic, batch, *rest)  # type: ignore[attr-defined, no-any-return]

    @staticmethod
    def compute(ctx: Any, *args: Any) -> tuple[float, torch.Tensor, dict[int, np.ndarray]]:  # type: ignore[override]
        loss, stats, grads = a2c_compute(*args[3:])
        return loss, torch.from_numpy(stats), grads


def _run(
    actor: Actor, critic: ValueCritic, batch: dict[str, torch.Tensor], vf_coef: float, ent_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    log_std = actor.head.log_std if isinstance(actor.head, DiagGaussianHead) else torch.zeros(0)
    result: tuple[torch.Tensor, torch.Tensor] = A2CLoss.apply(
        actor.net.flat, critic.net.flat, log_std, actor, critic, batch, float(vf_coef), float(ent_coef)
    )
    return result


def _examples(seed: int) -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    import gymnasium as gym

    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    cases: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    for space, ent, act_fn in (
        (gym.spaces.Discrete(3), 0.0, "relu"),
        (gym.spaces.Discrete(4), 0.01, "tanh"),
        (gym.spaces.Box(-1, 1, (2,)), 0.01, "tanh"),
        (gym.spaces.Box(-2, 2, (3,)), 0.0, "relu"),
    ):
        n, d = 40, 5
        actor = Actor(d, space, (16, 16), act_fn, log_std_init=-0.3, out_gain=1.0)
        critic = ValueCritic(d, (16,), act_fn)
        obs = torch.from_numpy(rng.standard_normal((n, d)).astype(np.float32))
        with torch.no_grad():
            act = actor.head.sample(actor(obs))[0]
        batch = {
            "obs": obs,
            "act": act,
            "adv": torch.from_numpy(rng.standard_normal(n).astype(np.float32)),
            "ret": torch.from_numpy(rng.standard_normal(n).astype(np.float32)),
        }
        cases.append(((actor, critic, batch, 0.5, ent), {}))
    return cases


register("rlcanon.algos.a2c.a2c_loss", Accelerator(actor_critic_applies, _run, _examples))
