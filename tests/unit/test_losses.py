"""Huber / clipped-TD gradient, Polyak update and the PPO clip against hand computation."""

import pytest
import torch

from rlcanon.algos.ppo import clipped_surrogate, value_loss
from rlcanon.core.losses import huber_loss, polyak_update


def test_huber_value_and_gradient_is_clipped_td_error():
    pred = torch.zeros(3, requires_grad=True)
    target = torch.tensor([0.5, 3.0, -2.0])
    loss = huber_loss(pred, target)
    # elementwise 0.5*0.25, 3 - 0.5, 2 - 0.5
    assert torch.isclose(loss, torch.tensor((0.125 + 2.5 + 1.5) / 3))
    loss.backward()
    # d/dpred = clip(pred - target, -1, 1) / 3
    torch.testing.assert_close(pred.grad, torch.tensor([-0.5, -1.0, 1.0]) / 3)


def test_huber_importance_weights_scale_each_sample():
    pred, target = torch.zeros(2), torch.tensor([0.5, 3.0])
    w = torch.tensor([2.0, 0.0])
    assert torch.isclose(huber_loss(pred, target, w), torch.tensor(2 * 0.125 / 2))


def test_ppo_clip_value_and_gradient():
    adv = torch.tensor([1.0, -1.0, 1.0, -1.0])
    ratio = torch.tensor([1.5, 1.5, 0.5, 0.5], requires_grad=True)
    loss = clipped_surrogate(adv, ratio, 0.2)
    # min terms: 1.2, -1.5, 0.5, -0.8 -> mean -0.15, loss +0.15
    assert torch.isclose(loss, torch.tensor(0.15))
    loss.backward()
    # Only unclipped terms pass gradient: d(-r A / 4)/dr = -A/4
    torch.testing.assert_close(ratio.grad, torch.tensor([0.0, 0.25, -0.25, 0.0]))


def test_value_clipping_takes_pessimistic_error():
    v, old, ret = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    assert value_loss(v, old, ret, 0.0).item() == 1.0
    # clipped value 0.5 -> error 6.25 beats 1.0
    assert value_loss(v, old, ret, 0.5).item() == 6.25


@pytest.mark.parametrize("fused_calls", [True, False])
def test_polyak_update(fused_calls, monkeypatch):
    if not fused_calls:  # a torch without the private _foreach calls takes the public loop
        monkeypatch.delattr(torch, "_foreach_copy_")
        monkeypatch.delattr(torch, "_foreach_lerp_")
    a, b = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    before = a.weight.detach().clone()
    polyak_update(a, b, 0.25)
    torch.testing.assert_close(a.weight, 0.75 * before + 0.25 * b.weight)
    polyak_update(a, b, 1.0)
    torch.testing.assert_close(a.weight, b.weight)
    torch.testing.assert_close(a.bias, b.bias)


def test_compile_check_without_torch_compiler(monkeypatch):
    """torch before 2.3 has no torch.compiler.is_compiling: the kernels' check falls back to
    torch._dynamo's, and to False where neither exists."""
    from types import SimpleNamespace

    from rlcanon.nets import kernels

    assert kernels._is_compiling() is False  # this torch, not compiling
    old = SimpleNamespace(compiler=SimpleNamespace(), _dynamo=SimpleNamespace(is_compiling=lambda: True))
    monkeypatch.setattr(kernels, "torch", old)
    assert kernels._is_compiling() is True
    monkeypatch.setattr(kernels, "torch", SimpleNamespace())
    assert kernels._is_compiling() is False
