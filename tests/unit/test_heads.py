"""Policy heads against torch.distributions, and critics' shapes and gradients."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch.distributions import AffineTransform, Categorical, Normal, TanhTransform, TransformedDistribution

from rlcanon.errors import ConfigError
from rlcanon.nets.critics import ContinuousQ, DiscreteQ, ValueCritic
from rlcanon.nets.heads import (
    CategoricalHead,
    DeterministicHead,
    DiagGaussianHead,
    PolicyHead,
    SquashedGaussianHead,
    make_head,
)

BOX = gym.spaces.Box(np.array([-2.0, 0.0], np.float32), np.array([2.0, 1.0], np.float32))


def test_every_head_implements_the_protocol():
    for head in (
        CategoricalHead(3),
        DiagGaussianHead(BOX),
        SquashedGaussianHead(BOX),
        DeterministicHead(BOX),
    ):
        assert isinstance(head, PolicyHead)


def test_categorical_matches_torch_and_samples_softmax():
    head = CategoricalHead(3)
    out = torch.randn(5, 3)
    actions = torch.tensor([0, 1, 2, 1, 0])
    ref = Categorical(logits=out)
    torch.testing.assert_close(head.log_prob(out, actions), ref.log_prob(actions))
    torch.testing.assert_close(head.entropy(out), ref.entropy())
    logits = np.log(np.array([[0.2, 0.3, 0.5]], np.float32))
    draws = head.act(np.repeat(logits, 20_000, axis=0), np.random.default_rng(0))
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 20_000, [0.2, 0.3, 0.5], atol=0.015)
    assert head.act(logits, None).tolist() == [2]


def test_diag_gaussian_matches_torch():
    head = DiagGaussianHead(BOX, log_std_init=-0.5)
    mean, actions = torch.randn(6, 2), torch.randn(6, 2)
    ref = Normal(mean, torch.exp(head.log_std))
    torch.testing.assert_close(head.log_prob(mean, actions), ref.log_prob(actions).sum(-1))
    torch.testing.assert_close(head.entropy(mean), ref.entropy().sum(-1))


def test_squashed_gaussian_log_prob_has_the_tanh_correction():
    """Haarnoja et al. 2018, Appendix C: log pi(a) = log N(u) - sum log |da/du|."""
    head = SquashedGaussianHead(BOX)
    torch.manual_seed(0)
    out = torch.randn(7, 4)
    mean, log_std = out.chunk(2, dim=-1)
    scale = torch.from_numpy(head.half_np)
    center = torch.from_numpy(head.mid_np)
    ref = TransformedDistribution(
        Normal(mean, log_std.exp()), [TanhTransform(cache_size=1), AffineTransform(center, scale)]
    )
    actions, logp = head.sample(out)
    low, high = torch.from_numpy(BOX.low), torch.from_numpy(BOX.high)
    assert ((actions >= low) & (actions <= high)).all()
    torch.testing.assert_close(logp, ref.log_prob(actions).sum(-1), rtol=1e-3, atol=1e-3)
    torch.testing.assert_close(head.log_prob(out, actions), logp, rtol=1e-3, atol=1e-3)
    # reparameterised: the sample carries gradients to the mean and log std
    out.requires_grad_(True)
    actions, _ = head.sample(out)
    assert torch.autograd.grad(actions.sum(), out)[0].abs().sum() > 0
    np_actions = head.act(out.detach().numpy(), np.random.default_rng(0))
    assert ((np_actions >= BOX.low) & (np_actions <= BOX.high)).all()


def test_deterministic_head_stays_in_the_box_and_has_no_log_prob():
    head = DeterministicHead(BOX)
    a = head.mode(torch.tensor([[100.0, -100.0], [0.0, 0.0]]))
    torch.testing.assert_close(a, torch.tensor([[2.0, 0.0], [0.0, 0.5]]))
    with pytest.raises(ConfigError, match="deterministic"):
        head.log_prob(a, a)


def test_make_head_branches_on_the_space_once():
    assert isinstance(make_head(gym.spaces.Discrete(4)), CategoricalHead)
    assert isinstance(make_head(BOX), DiagGaussianHead)
    assert isinstance(make_head(BOX, "squashed"), SquashedGaussianHead)
    with pytest.raises(ConfigError, match="needs a Box action space"):
        make_head(gym.spaces.Discrete(4), "squashed")
    with pytest.raises(ConfigError, match="not supported"):
        make_head(gym.spaces.MultiBinary(3))


def test_q_of_s_a_ensemble_gradients_reach_the_actions():
    """DDPG/TD3/SAC need dQ/da: the kernel path returns input gradients like torch does."""
    torch.manual_seed(0)
    q = ContinuousQ(3, 2, (16, 16), ensemble_size=2)
    obs, act = torch.randn(5, 3), torch.randn(5, 2, requires_grad=True)
    out = q(obs, act)
    assert out.shape == (2, 5)
    (g,) = torch.autograd.grad(out.sum(), act)
    x = torch.cat([obs, act], -1)
    ref = q.net.torch_forward(x, q.net.flat).squeeze(-1)
    (r,) = torch.autograd.grad(ref.sum(), act)
    torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-6)


def test_dueling_q_is_value_plus_centred_advantage():
    torch.manual_seed(0)
    q = DiscreteQ((4,), 3, (8,), dueling=True)
    obs = torch.randn(6, 4)
    v, a = q.value(obs), q.advantage(obs)
    torch.testing.assert_close(q(obs), v + a - a.mean(-1, keepdim=True))
    np.testing.assert_allclose(q.infer(obs.numpy()), q(obs).detach().numpy(), rtol=1e-5, atol=1e-6)


def test_value_critic_shape():
    assert ValueCritic(4, (8,)).forward(torch.randn(3, 4)).shape == (3,)


def _networks():
    from rlcanon.nets.actor import Actor

    torch.manual_seed(0)
    return {
        "actor (categorical)": (Actor(4, gym.spaces.Discrete(3), (8,)), (torch.randn(5, 4),)),
        "actor (squashed)": (Actor(4, BOX, (8,), head="squashed"), (torch.randn(5, 4),)),
        "actor (diagonal Gaussian)": (Actor(4, BOX, (8,), head="gaussian"), (torch.randn(5, 4),)),
        "actor (deterministic)": (Actor(4, BOX, (8,), head="deterministic"), (torch.randn(5, 4),)),
        "value critic": (ValueCritic(4, (8,)), (torch.randn(5, 4),)),
        "Q(s, .)": (DiscreteQ((4,), 3, (8,)), (torch.randn(5, 4),)),
        "Q(s, .) dueling": (DiscreteQ((4,), 3, (8,), dueling=True), (torch.randn(5, 4),)),
        "Q(s, .) ensemble": (DiscreteQ((4,), 3, (8,), ensemble_size=3), (torch.randn(5, 4),)),
        "Q(s, .) pixels (Nature CNN)": (
            DiscreteQ((2, 84, 84), 3, (8,)),
            (torch.randint(0, 256, (2, 2, 84, 84)).float(),),
        ),
        "Q(s, a) ensemble": (
            ContinuousQ(4, 2, (8,), ensemble_size=2),
            (torch.randn(5, 4), torch.randn(5, 2)),
        ),
    }


@pytest.mark.parametrize("name", sorted(_networks()))
def test_every_network_supports_func_grad_vmap_and_create_graph(name):
    """MAML, per-sample gradients and vmapped ensembles need these on every network."""
    from rlcanon.nets import kernels

    net, inputs = _networks()[name]
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p, *xs):
        return torch.func.functional_call(net, p, xs).pow(2).sum()

    kernels.set_fast_path(False)
    try:  # a parameter the forward pass does not use (a Gaussian head's log std) has gradient 0
        ref = [
            torch.zeros_like(p) if r is None else r
            for p, r in zip(
                net.parameters(),
                torch.autograd.grad(net(*inputs).pow(2).sum(), list(net.parameters()), allow_unused=True),
                strict=True,
            )
        ]
    finally:
        kernels.set_fast_path(True)
    grads = torch.func.grad(loss)(params, *inputs)
    for (k, _), r in zip(net.named_parameters(), ref, strict=True):
        torch.testing.assert_close(grads[k], r, rtol=1e-4, atol=1e-5)
    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, *([0] * len(inputs))))(
        params, *(x.unsqueeze(1) for x in inputs)
    )
    for (k, _), r in zip(net.named_parameters(), ref, strict=True):
        torch.testing.assert_close(per_sample[k].sum(0), r, rtol=1e-4, atol=1e-5)

    def second_order():
        used = [p for p, r in zip(net.parameters(), ref, strict=True) if r.abs().sum() > 0]
        g = torch.autograd.grad(net(*inputs).pow(2).sum(), used, create_graph=True)
        return torch.autograd.grad(sum((x * x).sum() for x in g), used, allow_unused=True)

    second = second_order()
    assert any(s is not None and s.abs().sum() > 0 for s in second)
    kernels.set_fast_path(False)
    try:
        plain = second_order()
    finally:
        kernels.set_fast_path(True)
    for s, r in zip(second, plain, strict=True):
        assert (s is None) == (r is None)
        if s is not None:
            torch.testing.assert_close(s, r, rtol=1e-4, atol=1e-5)
