"""The lean Adam and RMSprop steps are the stock steps, bit for bit."""

import copy

import torch

from rlcanon.core.optim import GradientStep, LeanAdam, LeanRMSprop, adam


def test_lean_adam_matches_stock_fused_adam_bitwise():
    torch.manual_seed(0)
    a = torch.nn.Parameter(torch.randn(1000))
    b = torch.nn.Parameter(a.detach().clone())
    lean = adam([a], lr=1e-2, eps=1e-5)
    stock = torch.optim.Adam([b], lr=1e-2, eps=1e-5, fused=True)
    assert isinstance(lean, LeanAdam)
    for i in range(30):
        g = torch.randn(1000)
        a.grad, b.grad = g.clone(), g.clone()
        lean.step()
        stock.step()
        if i == 10:  # learning-rate annealing writes the group's lr between steps
            for opt in (lean, stock):
                opt.param_groups[0]["lr"] = 3e-3
    assert torch.equal(a, b)
    for key in ("exp_avg", "exp_avg_sq", "step"):
        assert torch.equal(lean.state[a][key], stock.state[b][key])
    assert lean.state_dict()["state"][0]["step"] == 30


def test_lean_adam_state_dict_round_trip():
    p = torch.nn.Parameter(torch.ones(10))
    opt = adam([p], lr=0.1)
    p.grad = torch.ones(10)
    opt.step()
    q = torch.nn.Parameter(torch.ones(10))
    other = adam([q], lr=0.1)
    other.load_state_dict(copy.deepcopy(opt.state_dict()))  # as if read back from a file
    q.data.copy_(p.data)
    p.grad, q.grad = torch.full((10,), 0.5), torch.full((10,), 0.5)
    opt.step()
    other.step()
    assert torch.equal(p, q)


def test_lean_rmsprop_matches_stock_rmsprop_bitwise():
    torch.manual_seed(0)
    a = [torch.nn.Parameter(torch.randn(300)), torch.nn.Parameter(torch.randn(7, 5))]
    b = [torch.nn.Parameter(p.detach().clone()) for p in a]
    lean = GradientStep(a, 7e-4, eps=1e-5, optimizer="rmsprop", alpha=0.99).optimizer
    stock = torch.optim.RMSprop(b, lr=7e-4, alpha=0.99, eps=1e-5, foreach=True)
    assert isinstance(lean, LeanRMSprop)
    for i in range(30):
        for p, q in zip(a, b):
            g = torch.randn_like(p)
            p.grad, q.grad = g.clone(), g.clone()
        lean.step()  # the first step creates the state through the stock path
        stock.step()
        if i == 10:
            for opt in (lean, stock):
                opt.param_groups[0]["lr"] = 3e-4
    for p, q in zip(a, b):
        assert torch.equal(p, q)
        for key in ("square_avg", "step"):
            assert torch.equal(lean.state[p][key], stock.state[q][key])


def test_lean_rmsprop_takes_the_stock_step_for_momentum_and_centred():
    for extra in ({"momentum": 0.9}, {"centered": True}):
        p, q = torch.nn.Parameter(torch.ones(4)), torch.nn.Parameter(torch.ones(4))
        lean = LeanRMSprop([p], lr=0.1, **extra)
        stock = torch.optim.RMSprop([q], lr=0.1, **extra)
        for k in range(3):
            p.grad, q.grad = torch.full((4,), 0.5 - k), torch.full((4,), 0.5 - k)
            lean.step()
            stock.step()
        assert torch.equal(p, q)
