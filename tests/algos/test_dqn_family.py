"""The DQN family's maths by hand: the C51 projection, the quantile Huber loss, bootstrap masks,
frozen priors, and NoisyNet/parameter noise wired into the one loop."""

import numpy as np
import pytest
import torch

from rlcanon.algos.bootstrapped_dqn import BootstrappedDQNConfig, bootstrapped_loss
from rlcanon.algos.c51 import categorical_projection
from rlcanon.algos.dqn import DQNAgent, DQNConfig, q_learning_target
from rlcanon.algos.qr_dqn import quantile_huber_loss, quantile_midpoints
from rlcanon.errors import ConfigError

SUPPORT = np.array([0.0, 1.0, 2.0, 3.0, 4.0], dtype=np.float32)


def test_c51_projection_hand_example():
    # all mass on atom 1 (z = 1): r = 0.5, discount 0.5 -> Tz = 1.0 exactly on atom 1
    p = np.array([[0, 1, 0, 0, 0]], dtype=np.float32)
    out = categorical_projection(np.array([0.5]), np.array([0.5]), p, SUPPORT)
    np.testing.assert_allclose(out, [[0, 1, 0, 0, 0]])
    # mass on atom 2 (z = 2): r = 0.25, discount 1 -> Tz = 2.25 splits 0.75 / 0.25 between 2 and 3
    p = np.array([[0, 0, 1, 0, 0]], dtype=np.float32)
    out = categorical_projection(np.array([0.25]), np.array([1.0]), p, SUPPORT)
    np.testing.assert_allclose(out, [[0, 0, 0.75, 0.25, 0]], atol=1e-6)


def test_c51_projection_clips_outside_the_support_and_terminal_transitions():
    p = np.full((1, 5), 0.2, dtype=np.float32)
    # r = 10 beyond v_max: every atom lands on v_max
    np.testing.assert_allclose(
        categorical_projection(np.array([10.0]), np.array([1.0]), p, SUPPORT), [[0, 0, 0, 0, 1]]
    )
    # terminal (discount 0): the whole mass at r = 1.5, split between atoms 1 and 2
    out = categorical_projection(np.array([1.5]), np.array([0.0]), p, SUPPORT)
    np.testing.assert_allclose(out, [[0, 0.5, 0.5, 0, 0]], atol=1e-6)
    # r = -3 below v_min: all on v_min; the mass is conserved everywhere
    out = categorical_projection(np.array([-3.0]), np.array([0.5]), p, SUPPORT)
    np.testing.assert_allclose(out, [[1, 0, 0, 0, 0]], atol=1e-6)


def test_quantile_huber_loss_by_hand():
    taus = torch.from_numpy(quantile_midpoints(2))  # 0.25, 0.75
    np.testing.assert_allclose(taus.numpy(), [0.25, 0.75])
    theta = torch.tensor([[0.0, 1.0]])
    target = torch.tensor([[2.0]])
    # u = 2 - 0 = 2 (huber 1.5, weight 0.25); u = 2 - 1 = 1 (huber 0.5, weight 0.75)
    expected = 0.25 * 1.5 + 0.75 * 0.5
    assert quantile_huber_loss(theta, target, taus).item() == pytest.approx(expected)
    # a negative error weighs 1 - tau: target 0, prediction 0.5 at tau 0.25 -> 0.75 * 0.125
    loss = quantile_huber_loss(torch.tensor([[0.5]]), torch.tensor([[0.0]]), torch.tensor([0.25]))
    assert loss.item() == pytest.approx(0.75 * 0.125)


def test_scalar_target_and_double_choice():
    target_next = np.array([[1.0, 3.0]], dtype=np.float32)
    online_next = np.array([[5.0, 0.0]], dtype=np.float32)
    assert q_learning_target(np.array([1.0]), np.array([0.5]), target_next, None)[0] == pytest.approx(2.5)
    assert q_learning_target(np.array([1.0]), np.array([0.5]), target_next, online_next)[0] == pytest.approx(
        1.5
    )


def test_a_head_never_trains_on_a_masked_out_transition():
    cfg = BootstrappedDQNConfig(env_id="CartPole-v1", n_heads=3, prior_scale=0.0, hidden=(8,))
    agent = DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))
    obs = torch.randn(4, 4)
    actions = torch.tensor([0, 1, 0, 1])
    targets = torch.randn(4, 3)
    masks = torch.tensor([[1.0, 0.0, 1.0]] * 4)  # head 1 sees none of the batch
    loss, _ = bootstrapped_loss(agent.q, obs, actions, targets, masks)
    loss.backward()
    grad = agent.q.q.flat.grad
    weights, biases = agent.q.q.layout.views(grad.numpy())
    per_head = [
        sum(np.abs(w[k]).sum() + np.abs(b[k]).sum() for w, b in zip(weights, biases)) for k in range(3)
    ]
    assert per_head[1] == 0.0 and per_head[0] > 0 and per_head[2] > 0


def test_prior_network_never_changes_and_masks_are_stored():
    cfg = BootstrappedDQNConfig(
        env_id="CartPole-v1",
        n_heads=4,
        prior_scale=3.0,
        bootstrap_prob=0.5,
        hidden=(8,),
        learning_starts=0,
        batch_size=8,
        buffer_size=500,
        train_freq=16,
        total_timesteps=1000,
    )
    agent = DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))
    prior_before = agent.q.prior.q.flat.detach().clone()
    trained_before = agent.q.trained.q.flat.detach().clone()
    agent._collect(64)
    agent._train(5)
    assert torch.equal(agent.q.prior.q.flat, prior_before)
    assert not torch.equal(agent.q.trained.q.flat, trained_before)
    masks = agent.buffer.masks[:64]
    assert set(np.unique(masks)) <= {0.0, 1.0} and 0.3 < masks.mean() < 0.7


def test_noisy_with_zero_sigma_equals_its_means_and_epsilon_is_off():
    cfg = DQNConfig(env_id="CartPole-v1", noisy=True, noisy_sigma0=0.0, hidden=(8,), total_timesteps=1000)
    agent = DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))
    obs = np.random.default_rng(1).normal(size=(5, 4)).astype(np.float32)
    noisy = agent.explore.acting_net().infer(obs)  # fresh noise, but sigma = 0
    with agent.explore.evaluation():
        means = agent.q.infer(obs)
    np.testing.assert_allclose(noisy, means, rtol=1e-6)
    assert agent.epsilon() == 0.0


def test_param_noise_perturbs_a_copy_and_rejects_noisy_too():
    cfg = DQNConfig(env_id="CartPole-v1", param_noise=True, hidden=(8,), total_timesteps=1000)
    agent = DQNAgent(cfg, cfg.env_id, np.random.default_rng(0))
    assert not torch.equal(agent.explore.perturbed.q.flat, agent.q.q.flat)
    assert agent.epsilon() == 0.0
    with pytest.raises(ConfigError, match="choose one"):
        DQNConfig(env_id="CartPole-v1", noisy=True, param_noise=True).validate()
