"""Parameter-space noise (Plappert et al. 2018): perturbation, adaptive scale, policy distances."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from rlcanon.core.param_noise import (
    ADAPTATION_FACTOR,
    DDPG_ACTION_STD,
    AdaptiveParamNoise,
    action_distance,
    adapt_sigma,
    epsilon_greedy_kl_target,
    perturb_,
    q_policy_distance,
)
from rlcanon.errors import CheckpointError, ConfigError
from rlcanon.nets.mlp import MLP


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def flat_params(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def test_perturb_with_sigma_zero_copies_exactly() -> None:
    torch.manual_seed(0)
    source, perturbed = MLP(6, [16], 3), MLP(6, [16], 3)
    assert not torch.equal(flat_params(source), flat_params(perturbed))
    perturb_(perturbed, source, 0.0, gen(1))
    assert torch.equal(flat_params(source), flat_params(perturbed))
    x = np.random.default_rng(2).normal(size=(4, 6)).astype(np.float32)
    np.testing.assert_array_equal(perturbed.infer(x), source.infer(x))  # the kernels see the copy too


def test_perturbation_has_the_asked_standard_deviation() -> None:
    torch.manual_seed(3)
    source = MLP(32, [128, 128], 8)
    perturbed = copy.deepcopy(source)
    sigma = 0.1
    perturb_(perturbed, source, sigma, gen(4))
    noise = flat_params(perturbed) - flat_params(source)
    assert noise.numel() > 20_000
    assert abs(float(noise.std()) / sigma - 1) < 0.03
    assert abs(float(noise.mean())) < 0.003


def test_perturbation_is_reproducible_and_leaves_source_alone() -> None:
    torch.manual_seed(5)
    source = MLP(4, [8], 2)
    before = flat_params(source).clone()
    a, b = copy.deepcopy(source), copy.deepcopy(source)
    perturb_(a, source, 0.5, gen(6))
    perturb_(b, source, 0.5, gen(6))
    assert torch.equal(flat_params(a), flat_params(b))
    perturb_(b, source, 0.5, gen(7))
    assert not torch.equal(flat_params(a), flat_params(b))
    assert torch.equal(flat_params(source), before)
    # perturbing again starts from the source, it does not accumulate noise
    perturb_(a, source, 0.5, gen(6))
    c = copy.deepcopy(source)
    perturb_(c, source, 0.5, gen(6))
    assert torch.equal(flat_params(a), flat_params(c))


def test_normalisation_parameters_are_copied_and_buffers_follow() -> None:
    torch.manual_seed(8)
    source = nn.Sequential(nn.Linear(4, 8), nn.LayerNorm(8), nn.ReLU(), nn.Linear(8, 2), nn.BatchNorm1d(2))
    with torch.no_grad():
        source[1].weight.uniform_(0.5, 1.5)
        source[4].running_mean.fill_(0.25)
    perturbed = copy.deepcopy(source)
    with torch.no_grad():
        perturbed[4].running_mean.fill_(-1.0)
    perturb_(perturbed, source, 0.3, gen(9))
    for name in ("1.weight", "1.bias", "4.weight", "4.bias"):
        assert torch.equal(dict(perturbed.named_parameters())[name], dict(source.named_parameters())[name])
    for name in ("0.weight", "0.bias", "3.weight", "3.bias"):
        assert not torch.equal(
            dict(perturbed.named_parameters())[name], dict(source.named_parameters())[name]
        )
    assert torch.equal(perturbed[4].running_mean, source[4].running_mean)


def test_perturb_rejects_other_architectures_and_bad_sigma() -> None:
    source = MLP(4, [8], 2)
    for other, sigma in (
        (MLP(4, [9], 2), 0.1),
        (copy.deepcopy(source), -0.1),
        (copy.deepcopy(source), math.nan),
    ):
        with pytest.raises(ConfigError) as err:
            perturb_(other, source, sigma, gen(0))
        assert "\n" not in str(err.value)


def test_adapt_multiplies_or_divides_by_alpha_around_the_target() -> None:
    assert ADAPTATION_FACTOR == 1.01
    noise = AdaptiveParamNoise(sigma=0.1, target=0.05)
    assert noise.adapt(0.04) == pytest.approx(0.101, rel=1e-12)  # closer than δ: explore more
    assert noise.adapt(0.05) == pytest.approx(0.10201, rel=1e-12)  # d = δ counts as close enough
    assert noise.adapt(0.06) == pytest.approx(0.101, rel=1e-12)  # farther: explore less
    assert noise.adapt(math.nan) == pytest.approx(0.1, rel=1e-12)  # a NaN distance is never "close"
    assert noise.sigma == pytest.approx(0.1, rel=1e-12)
    assert adapt_sigma(2.0, 1.0, 0.5, factor=2.0) == 1.0 and adapt_sigma(2.0, 0.1, 0.5, factor=2.0) == 4.0


def test_q_policy_distance_against_a_hand_computation() -> None:
    # softmax([0, ln 3]) = (1/4, 3/4), softmax([0, 0]) = (1/2, 1/2), softmax([1, 1]) = (1/2, 1/2)
    q = [[0.0, math.log(3)], [1.0, 1.0]]
    q_tilde = [[0.0, 0.0], [0.0, math.log(3)]]
    kl_row0 = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    kl_row1 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert q_policy_distance(q, q_tilde) == pytest.approx((kl_row0 + kl_row1) / 2, rel=1e-12)
    # KL(softmax Q ‖ softmax Q̃), not the other way round: the order matters
    reverse_row0 = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert q_policy_distance(q[:1], q_tilde[:1]) == pytest.approx(kl_row0, rel=1e-12)
    assert q_policy_distance(q_tilde[:1], q[:1]) == pytest.approx(reverse_row0, rel=1e-12)
    assert abs(kl_row0 - reverse_row0) > 1e-2
    # a constant per state shifts no probability
    assert q_policy_distance(np.asarray(q) + 7.0, q_tilde) == pytest.approx((kl_row0 + kl_row1) / 2)


def test_q_policy_distance_against_torch_distributions() -> None:
    g = gen(10)
    q, q_tilde = torch.randn(64, 5, generator=g) * 3, torch.randn(64, 5, generator=g) * 3
    expected = torch.distributions.kl_divergence(
        torch.distributions.Categorical(logits=q), torch.distributions.Categorical(logits=q_tilde)
    ).mean()
    assert q_policy_distance(q, q_tilde) == pytest.approx(float(expected), rel=1e-6)
    assert q_policy_distance(q, q) == 0.0
    with pytest.raises(ConfigError):
        q_policy_distance(q, q_tilde[:, :4])
    with pytest.raises(ConfigError):
        q_policy_distance(q[0], q_tilde[0])


def test_epsilon_greedy_target_by_hand() -> None:
    # ε = 0.1, |A| = 2: the greedy action keeps 1 - 0.1 + 0.1/2 = 0.95 of the mass
    assert epsilon_greedy_kl_target(0.1, 2) == pytest.approx(-math.log(0.95), rel=1e-12)
    assert epsilon_greedy_kl_target(0.1, 2) == pytest.approx(0.05129329438755058, rel=1e-12)
    # it is KL(greedy ‖ ε-greedy) written out over the actions
    eps, n = 0.3, 4
    greedy = np.array([1.0, 0.0, 0.0, 0.0])
    eps_greedy = np.full(n, eps / n) + (1 - eps) * greedy
    kl = sum(p * math.log(p / r) for p, r in zip(greedy, eps_greedy) if p > 0)
    assert epsilon_greedy_kl_target(eps, n) == pytest.approx(kl, rel=1e-12)
    assert epsilon_greedy_kl_target(0.0, 6) == 0.0
    assert epsilon_greedy_kl_target(1.0, 4) == pytest.approx(math.log(4), rel=1e-12)
    for bad in ((-0.1, 2), (1.5, 2), (0.1, 0), (0.1, 2.0)):
        with pytest.raises(ConfigError):
            epsilon_greedy_kl_target(*bad)  # type: ignore[arg-type]


def test_action_distance_by_hand() -> None:
    actions = [[0.0, 0.0], [1.0, 1.0]]
    perturbed = [[0.0, 1.0], [1.0, -1.0]]
    # squared differences 0, 1, 0, 4: mean 1.25
    assert action_distance(actions, perturbed) == pytest.approx(math.sqrt(1.25), rel=1e-12)
    assert action_distance(torch.ones(3, 2), torch.ones(3, 2)) == 0.0
    assert DDPG_ACTION_STD == 0.2
    with pytest.raises(ConfigError):
        action_distance(np.zeros((3, 2)), np.zeros((3, 1)))


def test_state_dict_round_trip_and_rejected_values() -> None:
    noise = AdaptiveParamNoise(sigma=0.2, target=epsilon_greedy_kl_target(0.1, 2))
    noise.adapt(0.0)
    restored = AdaptiveParamNoise(sigma=1.0, target=1.0)
    restored.load_state_dict(json.loads(json.dumps(noise.state_dict())))
    assert restored == noise
    good = noise.state_dict()
    for key, value in (
        ("sigma", -0.1),
        ("sigma", math.nan),
        ("sigma", 0.0),
        ("target", math.inf),
        ("factor", 0.5),
    ):
        state = json.loads(json.dumps({**good, key: value}))
        with pytest.raises(CheckpointError) as err:
            restored.load_state_dict(state)
        message = str(err.value)
        assert "\n" not in message and key in message
    with pytest.raises(CheckpointError):
        restored.load_state_dict({"sigma": 0.1, "target": 0.1})
    assert restored == noise  # a rejected state changes nothing
    for kwargs in (
        {"sigma": -1.0, "target": 0.1},
        {"sigma": 0.1, "target": 0.0},
        {"sigma": 0.1, "target": 0.1, "factor": 0.9},
    ):
        with pytest.raises(ConfigError):
            AdaptiveParamNoise(**kwargs)


def test_adaptive_scale_brings_the_q_policy_distance_to_its_target() -> None:
    """The loop the DQN agent runs: perturb, measure d on a batch of states, adapt σ."""
    torch.manual_seed(11)
    q_net = MLP(8, [64, 64], 4)
    perturbed = copy.deepcopy(q_net)
    states = np.random.default_rng(12).normal(size=(128, 8)).astype(np.float32)
    q_values = q_net.infer(states)
    target = epsilon_greedy_kl_target(0.1, 4)
    noise, g = AdaptiveParamNoise(sigma=1e-3, target=target), gen(13)
    distances = []
    for _ in range(1500):
        perturb_(perturbed, q_net, noise.sigma, g)
        distance = q_policy_distance(q_values, perturbed.infer(states))
        noise.adapt(distance)
        distances.append(distance)
    late = np.asarray(distances[-500:])
    assert target / 2 < float(np.median(late)) < 2 * target
    assert noise.sigma > 1e-2  # it had to grow by more than a factor 10 from its start
