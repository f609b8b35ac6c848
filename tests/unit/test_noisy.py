"""NoisyNet layers (Fortunato et al. 2018): factorised noise, init, means-only path, gradients, state."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save
from torch import nn

from rlcanon.errors import ConfigError
from rlcanon.nets import kernels
from rlcanon.nets.noisy import (
    FACTORISED_ROWS,
    NoisyLinear,
    NoisyMLP,
    noise_off,
    noisy_layers,
    resample_noise,
    scaled_noise,
)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def means_only(net: NoisyMLP, x: torch.Tensor) -> torch.Tensor:
    """The same network written out by hand with the means: relu(F.linear(.)) ... F.linear(.)."""
    h = x
    for k, layer in enumerate(net.layers):
        h = F.linear(h, layer.weight_mu, layer.bias_mu)
        if k < len(net.layers) - 1:
            h = torch.relu(h)
    return h


def test_scaled_noise_is_signed_square_root() -> None:
    x = torch.tensor([-4.0, -0.25, 0.0, 1.0, 9.0])
    assert torch.equal(scaled_noise(x), torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0]))


def test_factorised_noise_statistics_and_rank_one() -> None:
    layer = NoisyLinear(3, 2)
    g = gen(0)
    n = 20_000
    noise_in, noise_out = torch.empty(n, 3), torch.empty(n, 2)
    for k in range(n):
        layer.resample(g)
        noise_in[k], noise_out[k] = layer.noise_in, layer.noise_out
    w = noise_out[:, :, None] * noise_in[:, None, :]  # each draw's ε_w, (n, out, in)
    b, raw = noise_out, noise_in.sign() * noise_in**2  # f^-1: the Gaussian draws themselves
    assert layer.weight_noise().shape == (2, 3)
    # E[f(x)] = 0; Var f(x) = E|x| = sqrt(2/pi); Var of f(x) f(y) with x, y independent = (2/pi)
    assert w.mean(0).abs().max() < 0.03 and b.mean(0).abs().max() < 0.03
    assert torch.allclose(b.var(0), torch.full((2,), math.sqrt(2 / math.pi)), atol=0.03)
    assert torch.allclose(w.var(0), torch.full((2, 3), 2 / math.pi), atol=0.03)
    assert torch.allclose(raw.var(0), torch.ones(3), atol=0.05)  # the draws under f are N(0, 1)
    # ε_w is the outer product f(ε_out) f(ε_in)ᵀ, hence rank one, and ε_b = f(ε_out)
    assert torch.equal(layer.weight_noise(), torch.outer(layer.noise_out, layer.noise_in))
    assert int(torch.linalg.matrix_rank(layer.weight_noise())) == 1


def test_init_ranges_of_mu_and_sigma() -> None:
    p, q = 50, 40
    layer = NoisyLinear(p, q, generator=gen(1))
    bound = 1 / math.sqrt(p)
    for mu in (layer.weight_mu, layer.bias_mu):
        assert mu.abs().max() <= bound
    # uniform over the whole interval, not a narrower one
    assert layer.weight_mu.min() < -0.9 * bound and layer.weight_mu.max() > 0.9 * bound
    assert abs(float(layer.weight_mu.detach().mean())) < 0.1 * bound
    for sigma in (layer.weight_sigma, layer.bias_sigma):
        assert torch.allclose(sigma, torch.full_like(sigma, 0.5 / math.sqrt(p)))
    # a fresh layer holds no noise until resampled: its output is the means'
    x = torch.randn(5, p, generator=gen(2))
    assert torch.equal(layer(x), F.linear(x, layer.weight_mu, layer.bias_mu))


def test_sigma0_zero_and_noise_off_give_the_plain_network_of_the_means() -> None:
    x = torch.randn(7, 4, generator=gen(3))
    silent = NoisyMLP(4, [16, 16], 3, sigma0=0.0, generator=gen(4))
    silent.resample_noise(gen(5))
    assert torch.equal(silent(x), means_only(silent, x))

    net = NoisyMLP(4, [16, 16], 3, generator=gen(4))
    net.resample_noise(gen(5))
    noisy = net(x)
    assert not torch.allclose(noisy, means_only(net, x))
    with net.noise_off():
        assert torch.equal(net(x), means_only(net, x))
        with noise_off(net):  # nested: the inner exit must not switch the noise back on
            pass
        assert torch.equal(net(x), means_only(net, x))
    assert torch.equal(net(x), noisy)  # back on, with the noise it held before


def test_resampling_with_the_same_seed_is_reproducible() -> None:
    x = torch.randn(6, 4, generator=gen(6))
    a, b = NoisyMLP(4, [8], 2, generator=gen(7)), NoisyMLP(4, [8], 2, generator=gen(7))
    a.resample_noise(gen(8))
    b.resample_noise(gen(8))
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert torch.equal(a(x), b(x))
    b.resample_noise(gen(9))
    assert not torch.equal(a(x), b(x))


def test_online_and_target_copies_get_independent_noise() -> None:
    online = NoisyMLP(4, [8], 2, generator=gen(10))
    target = copy.deepcopy(online)
    x = torch.randn(3, 4, generator=gen(11))
    assert torch.equal(online(x), target(x))
    g = gen(12)
    resample_noise(online, g)  # ε
    resample_noise(target, g)  # ε', the generator has moved on
    assert not torch.equal(online.layers[0].noise_in, target.layers[0].noise_in)
    for p_online, p_target in zip(online.parameters(), target.parameters()):
        assert torch.equal(p_online, p_target)  # the parameters are untouched by resampling


def test_gradients_reach_mu_and_sigma_exactly() -> None:
    layer = NoisyLinear(3, 2, generator=gen(13))
    layer.resample(gen(14))
    x = torch.randn(5, 3, generator=gen(15))
    layer(x).sum().backward()
    # L = sum_b sum_i y_bi: dL/dW = 1ᵀ x summed over the batch; W = μ + σ ⊙ ε_w
    dw = torch.ones(5, 2).T @ x
    assert torch.allclose(layer.weight_mu.grad, dw)
    assert torch.allclose(layer.weight_sigma.grad, dw * layer.weight_noise())
    assert torch.allclose(layer.bias_mu.grad, torch.full((2,), 5.0))
    assert torch.allclose(layer.bias_sigma.grad, 5.0 * layer.noise_out)
    assert layer.noise_in.grad is None and not layer.noise_in.requires_grad


@pytest.mark.parametrize("rows", [1, FACTORISED_ROWS, FACTORISED_ROWS + 1, 64])
def test_infer_equals_forward_without_a_graph(rows: int) -> None:
    net = NoisyMLP(4, [8, 8], 3, generator=gen(16))
    net.resample_noise(gen(17))
    x = np.random.default_rng(18).normal(size=(rows, 4)).astype(np.float32)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    out = net.infer(x)  # NumPy on the CPU: factorised up to FACTORISED_ROWS rows, whole weight beyond
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (rows, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    with net.noise_off():
        means = means_only(net, torch.from_numpy(x)).detach().numpy()
        np.testing.assert_allclose(net.infer(x), means, rtol=1e-5, atol=1e-6)
    kernels.set_fast_path(False)
    try:  # the torch path of infer is forward itself
        np.testing.assert_array_equal(net.infer(x), expected)
    finally:
        kernels.set_fast_path(True)


def test_infer_follows_parameter_updates_and_dtype_changes() -> None:
    net = NoisyMLP(4, [8], 2, noisy_hidden=False, generator=gen(29))
    net.resample_noise(gen(30))
    x = np.random.default_rng(31).normal(size=(5, 4)).astype(np.float32)
    before = net.infer(x)
    net(torch.from_numpy(x)).sum().backward()
    with torch.no_grad():  # an SGD step, in place as optimizers make it: the cached NumPy views must see it
        for p in net.parameters():
            p.sub_(0.5 * p.grad)
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert not np.allclose(before, expected)
    np.testing.assert_allclose(net.infer(x), expected, rtol=1e-5, atol=1e-6)
    net.double()  # new storage and dtype: the torch path serves
    with torch.no_grad():
        np.testing.assert_allclose(net.infer(x), net(torch.from_numpy(x).double()).numpy(), rtol=1e-6)


def test_resampling_paths_draw_the_same_noise() -> None:
    fast, plain = NoisyMLP(4, [8], 2, generator=gen(32)), NoisyMLP(4, [8], 2, generator=gen(32))
    fast.resample_noise(gen(33))  # NumPy writes into the buffers
    kernels.set_fast_path(False)
    try:
        resample_noise(plain, gen(33))  # torch ops
    finally:
        kernels.set_fast_path(True)
    for (_, a), (_, b) in zip(fast.named_buffers(), plain.named_buffers()):
        assert torch.equal(a, b)
    # the generator's draws, transformed: f^-1 of the stored noise is the N(0, 1) sample itself
    draws = torch.randn((4 + 8) + (8 + 2), generator=gen(33))  # (in + out) per layer, in order
    stored = torch.cat([b for _, b in fast.named_buffers()])
    assert torch.allclose(stored.sign() * stored**2, draws, rtol=1e-6, atol=1e-7)


def test_noise_travels_in_the_state_dict_through_safetensors() -> None:
    net = NoisyMLP(4, [8], 2, generator=gen(19))
    net.resample_noise(gen(20))
    state = net.state_dict()
    noise_keys = {f"layers.{k}.noise_{side}" for k in (0, 1) for side in ("in", "out")}
    assert noise_keys <= set(state)
    restored = NoisyMLP(4, [8], 2, generator=gen(21))
    restored.load_state_dict(st_load(st_save(dict(state))))
    x = torch.randn(5, 4, generator=gen(22))
    assert torch.equal(restored(x), net(x))


def test_constructor_matches_mlp_and_rejects_what_it_cannot_do() -> None:
    net = NoisyMLP(5, [7, 6], 3, "tanh", out_activation="tanh", generator=gen(23))
    assert net.dims == [5, 7, 6, 3] and (net.in_dim, net.out_dim) == (5, 3)
    assert net.acts == ["tanh", "tanh", "tanh"]
    assert len(noisy_layers(net)) == 3
    assert net(torch.zeros(2, 4, 5)).shape == (2, 4, 3)  # leading dimensions pass through
    partly = NoisyMLP(5, [7, 6], 3, noisy_hidden=False, generator=gen(23))
    assert [type(m) for m in partly.layers] == [nn.Linear, nn.Linear, NoisyLinear]
    scaled = NoisyMLP(5, [7], 3, out_gain=0.01, generator=gen(24))
    reference = NoisyMLP(5, [7], 3, generator=gen(24))
    assert torch.allclose(scaled.layers[-1].weight_mu, 0.01 * reference.layers[-1].weight_mu)
    for kwargs in (
        {"activation": "gelu"},
        {"out_activation": "softmax"},
        {"orthogonal": True},
        {"ensemble_size": 2},
        {"sigma0": -0.1},
        {"sigma0": float("nan")},
    ):
        with pytest.raises(ConfigError) as err:
            NoisyMLP(5, [7], 3, **kwargs)  # type: ignore[arg-type]
        assert "\n" not in str(err.value) and "not allowed" in str(err.value)


def test_resample_and_noise_off_reach_every_noisy_part_of_a_larger_module() -> None:
    class TwoHeads(nn.Module):  # as a dueling Q network holds a value and an advantage net
        def __init__(self) -> None:
            super().__init__()
            self.value = NoisyMLP(4, [8], 1, generator=gen(25))
            self.advantage = NoisyMLP(4, [8], 2, generator=gen(26))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.value(x) + self.advantage(x)

    heads = TwoHeads()
    resample_noise(heads, gen(27))
    assert len(noisy_layers(heads)) == 4
    assert all(bool(layer.noise_out.abs().sum() > 0) for layer in noisy_layers(heads))
    x = torch.randn(3, 4, generator=gen(28))
    with noise_off(heads):
        plain = means_only(heads.value, x) + means_only(heads.advantage, x)
        assert torch.equal(heads(x), plain)
