"""The MLP's fast CPU path (NumPy/oneDNN kernels in one autograd node) computes what plain torch
computes: outputs, parameter and input gradients, second derivatives, and under torch.func."""

import numpy as np
import pytest
import torch

from rlcanon.nets import gemm, kernels
from rlcanon.nets.mlp import MLP


def twins(*args, **kw):
    torch.manual_seed(0)
    return MLP(*args, **kw)


def reference(net, x):
    """The same network in plain torch ops."""
    return net.torch_forward(x, net.flat)


@pytest.mark.parametrize("onednn", [True, False])
@pytest.mark.parametrize(
    ("activation", "hidden", "rows"),
    [("relu", 16, 7), ("tanh", 16, 7), ("relu", 256, 300), ("tanh", 256, 64)],
)
def test_forward_and_gradients_match_torch(activation, hidden, rows, onednn):
    # 256 units x 300 rows is above the oneDNN thresholds: with onednn=True that product uses it
    net = twins(5, (hidden, hidden), 3, activation)
    x = torch.from_numpy(
        np.random.default_rng(0).standard_normal((rows, 5)).astype(np.float32)
    ).requires_grad_()
    dout = torch.from_numpy(np.random.default_rng(1).standard_normal((rows, 3)).astype(np.float32))
    gemm.set_onednn(onednn)
    try:
        out = net(x)
        assert out.grad_fn is not None and type(out.grad_fn).__name__ == "MLPFunctionBackward"
        gx, gw = torch.autograd.grad((out * dout).sum(), (x, net.flat))
    finally:
        gemm.set_onednn(True)
    ref = reference(net, x)
    rx, rw = torch.autograd.grad((ref * dout).sum(), (x, net.flat))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-5)


def test_inference_path_blocks_large_batches_and_matches():
    net = twins(4, (32,), 2)
    x = np.random.default_rng(0).standard_normal((3000, 4)).astype(np.float32)  # > one 1024-row block
    with torch.no_grad():
        ref = reference(net, torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(net.infer(x), ref, rtol=1e-5, atol=1e-5)


def test_second_order_gradients_through_create_graph():
    """MAML needs d/dtheta of a gradient: the kernel node differentiates its own backward."""
    net = twins(3, (8,), 1, "tanh")
    x = torch.randn(10, 3)

    def inner_grad(use_kernels):
        kernels.set_fast_path(use_kernels)
        try:
            loss = net(x).pow(2).mean()
            (g,) = torch.autograd.grad(loss, net.flat, create_graph=True)
            return torch.autograd.grad(g.pow(2).sum(), net.flat)[0]
        finally:
            kernels.set_fast_path(True)

    torch.testing.assert_close(inner_grad(True), inner_grad(False), rtol=1e-4, atol=1e-6)


def test_torch_func_grad_and_vmap():
    net = twins(3, (8,), 2, "tanh")
    x = torch.randn(6, 3)
    params = {"flat": net.flat.detach()}

    def loss(p, xb):
        return torch.func.functional_call(net, p, (xb,)).pow(2).sum()

    g = torch.func.grad(loss)(params, x)["flat"]
    ref = torch.autograd.grad(reference(net, x).pow(2).sum(), net.flat)[0]
    torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-6)
    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, x.unsqueeze(1))["flat"]
    torch.testing.assert_close(per_sample.sum(0), ref, rtol=1e-4, atol=1e-5)
    outs = torch.func.vmap(lambda xb: torch.func.functional_call(net, params, (xb,)))(x.unsqueeze(1))
    torch.testing.assert_close(outs.squeeze(1), reference(net, x).detach(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shared", [True, False])
def test_ensemble_members_are_independent_mlps_in_one_pass(shared):
    net = twins(4, (16,), 2, "relu", ensemble_size=3)
    x = torch.randn(5, 4) if shared else torch.randn(3, 5, 4)
    out = net(x)
    assert out.shape == (3, 5, 2)
    torch.testing.assert_close(out, reference(net, x), rtol=1e-5, atol=1e-6)
    w, b = net.layout.tensor_views(net.flat)
    for e in range(3):  # member e is its own MLP
        xe = x if shared else x[e]
        h = torch.relu(xe @ w[0][e].T + b[0][e])
        torch.testing.assert_close(out[e], h @ w[1][e].T + b[1][e], rtol=1e-5, atol=1e-6)
    gw = torch.autograd.grad(out.pow(2).sum(), net.flat)[0]
    rw = torch.autograd.grad(reference(net, x).pow(2).sum(), net.flat)[0]
    torch.testing.assert_close(gw, rw, rtol=1e-4, atol=1e-5)


def test_non_float32_and_other_devices_fall_back_to_torch():
    net = twins(3, (4,), 2).double()
    out = net(torch.randn(2, 3, dtype=torch.float64))
    assert out.dtype == torch.float64 and "MLPFunction" not in type(out.grad_fn).__name__


def test_leading_dimensions_are_kept():
    net = twins(3, (4,), 2)
    assert net(torch.randn(5, 7, 3)).shape == (5, 7, 2)


def test_bad_activation_is_refused_by_name():
    from rlcanon.errors import ConfigError

    with pytest.raises(ConfigError, match="activation='gelu'"):
        MLP(3, (4,), 2, "gelu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible")
def test_cuda_forward_matches_cpu():
    net = twins(3, (8,), 2)
    x = torch.randn(4, 3)
    cpu = net(x).detach()
    torch.testing.assert_close(net.cuda()(x.cuda()).cpu().detach(), cpu, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("frozen", [False, True])
def test_one_member_of_an_ensemble_matches_plain_torch(frozen):
    """``mlp(x, member=e)`` is member e of the full pass; its gradients (input, and the parameter
    gradient that is zero outside member e) match plain torch, and a frozen MLP gives no parameter
    gradient at all."""
    torch.manual_seed(3)
    mlp = MLP(5, (16, 12), 2, ensemble_size=3)
    mlp.requires_grad_(not frozen)
    x = torch.randn(7, 5)
    with torch.no_grad():
        torch.testing.assert_close(mlp(x, member=1), mlp(x)[1])
    grads = []
    for fast in (True, False):
        kernels.set_fast_path(fast)
        try:
            xg = x.clone().requires_grad_(True)
            mlp.zero_grad(set_to_none=True)
            (mlp(xg, member=1) ** 2).sum().backward()
            grads.append((xg.grad, None if mlp.flat.grad is None else mlp.flat.grad.clone()))
        finally:
            kernels.set_fast_path(True)
    (dx_fast, dflat_fast), (dx_plain, dflat_plain) = grads
    torch.testing.assert_close(dx_fast, dx_plain)
    if frozen:
        assert dflat_fast is None and dflat_plain is None
    else:
        torch.testing.assert_close(dflat_fast, dflat_plain)
        weights, _ = mlp.layout.views(dflat_fast.numpy())
        assert not weights[0][0].any() and not weights[0][2].any() and weights[0][1].any()
    with pytest.raises(ValueError, match="not a member"):
        mlp(x, member=3)


def test_frozen_restores_each_parameters_flag_and_skips_parameter_gradients():
    from rlcanon.nets.mlp import frozen

    mlp = MLP(3, (8,), 1)
    extra = torch.nn.Parameter(torch.ones(1), requires_grad=False)
    mlp.register_parameter("extra", extra)
    x = torch.randn(4, 3, requires_grad=True)
    with frozen(mlp):
        assert not mlp.flat.requires_grad
        out = mlp(x).sum()
    out.backward()
    assert x.grad is not None and mlp.flat.grad is None
    assert mlp.flat.requires_grad and not extra.requires_grad  # each flag as it was
