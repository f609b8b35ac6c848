"""Every registered accelerator computes what the torch definition of its loss computes: the loss,
its statistics and the gradients of every parameter; its fit loop takes the same steps; and a loss
that is differentiated twice falls back to the definition."""

import copy

import pytest
import torch

import rlcanon.fused as fused
from rlcanon.core.optim import GradientStep

fused._load()
NAMES = sorted(fused.REGISTRY)


def _definition(name):
    module, fn = name.rsplit(".", 1)
    import importlib

    return getattr(importlib.import_module(module), fn)


def _params(args):
    """The trainable parameters reachable from a loss's arguments (modules first)."""
    out = []
    for a in args:
        if isinstance(a, torch.nn.Module):
            out += [p for p in a.parameters() if p.requires_grad]
    return out


@pytest.mark.parametrize("name", NAMES)
def test_accelerator_matches_the_definition(name):
    acc, loss_fn = fused.REGISTRY[name], _definition(name)
    for args, kwargs in acc.examples(0):
        assert acc.applies(*args, **kwargs)
        params = _params(args)
        loss, aux = acc.run(*args, **kwargs)
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        ref_loss, ref_aux = loss_fn.reference(*args, **kwargs)
        ref_grads = torch.autograd.grad(ref_loss, params, allow_unused=True)
        torch.testing.assert_close(loss, ref_loss, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(aux, ref_aux, rtol=1e-5, atol=1e-6)
        for g, r in zip(grads, ref_grads):
            if r is None:
                assert g is None or not g.any()
            else:
                torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_fit_loop_takes_the_same_steps(name):
    acc, loss_fn = fused.REGISTRY[name], _definition(name)
    for args, _ in acc.examples(1):
        _same_steps(loss_fn, args)


def _same_steps(loss_fn, args):
    batches = [args] * 3
    twin = copy.deepcopy(args)
    fast_update = GradientStep(_params(args), lr=1e-2, max_grad_norm=0.5)
    slow_update = GradientStep(_params(twin), lr=1e-2, max_grad_norm=0.5)
    fast = fast_update.fit(loss_fn, batches)
    fused.set_fused(False)
    try:
        slow = slow_update.fit(loss_fn, [twin] * 3)
    finally:
        fused.set_fused(True)
    assert len(fast) == len(slow) == 3
    for a, b in zip(fast, slow):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    for p, q in zip(_params(args), _params(twin)):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_fit_stops_before_the_step_that_stop_rejects(name):
    acc, loss_fn = fused.REGISTRY[name], _definition(name)
    args, _ = acc.examples(2)[0]
    update = GradientStep(_params(args), lr=1e-2)
    seen = []

    def stop(aux):
        seen.append(aux)
        return len(seen) == 2

    before = [p.detach().clone() for p in _params(args)]
    out = update.fit(loss_fn, [args] * 4, stop=stop)
    assert len(out) == 1 and len(seen) == 2  # one step taken; the second was refused before stepping
    assert any(not torch.equal(p, q) for p, q in zip(_params(args), before))


@pytest.mark.parametrize("name", NAMES)
def test_second_derivatives_fall_back_to_the_definition(name):
    acc, loss_fn = fused.REGISTRY[name], _definition(name)
    args, kwargs = acc.examples(3)[0]
    params = _params(args)

    def hessian_vector(fn):
        loss, _ = fn(*args, **kwargs)
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True)
        total = sum((g * g).sum() for g in grads if g is not None)
        return torch.autograd.grad(total, params, allow_unused=True)

    for a, b in zip(hessian_vector(acc.run), hessian_vector(loss_fn.reference)):
        if b is not None:
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5)
