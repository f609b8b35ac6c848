"""Checkpoints: round trip, atomic pointer, corrupt and foreign files."""

import json

import numpy as np
import pytest

from rlcanon.errors import CheckpointError
from rlcanon.run import checkpoint as ckpt


def test_round_trip_and_latest_pointer(tmp_path):
    ckpt.save_checkpoint(tmp_path, 10, {"w": np.arange(4.0)}, {"algo": "x"})
    ckpt.save_checkpoint(tmp_path, 20, {"w": np.arange(4.0) * 2}, {"algo": "x"})
    ckpt.save_checkpoint(tmp_path, 30, {"w": np.arange(4.0) * 3}, {"algo": "x"})
    path = ckpt.latest_checkpoint(tmp_path)
    arrays, state = ckpt.load_checkpoint(path)
    np.testing.assert_array_equal(arrays["w"], np.arange(4.0) * 3)
    assert state["step"] == 30 and state["algo"] == "x"
    kept = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert len(kept) == 2  # older ones pruned
    assert not list(tmp_path.rglob("*.tmp"))


def test_corrupt_weights_are_reported(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, {"w": np.zeros(3)}, {"algo": "x"})
    path = ckpt.latest_checkpoint(tmp_path)
    (path / ckpt.WEIGHTS).write_bytes(b"\x00garbage not a safetensors file")
    with pytest.raises(CheckpointError, match="corrupt"):
        ckpt.load_checkpoint(path)


def test_foreign_state_file_is_rejected(tmp_path):
    ckpt.save_checkpoint(tmp_path, 1, {"w": np.zeros(3)}, {"algo": "x"})
    path = ckpt.latest_checkpoint(tmp_path)
    (path / ckpt.STATE).write_text(json.dumps({"some": "other tool"}))
    with pytest.raises(CheckpointError, match="not an rlcanon checkpoint"):
        ckpt.load_checkpoint(path)


def test_missing_run_dir(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        ckpt.latest_checkpoint(tmp_path / "nope")


def _two_optimizer_parts(seed):
    """An agent with two modules, each with its own optimizer kind and learning rate (as SAC's actor,
    critic and temperature will have)."""
    import torch

    from rlcanon.run.state import Parts

    torch.manual_seed(seed)
    actor, critic = torch.nn.Linear(3, 2), torch.nn.Linear(3, 1)
    parts = Parts(
        modules={"actor": actor, "critic": critic},
        optimizers={
            "pi": torch.optim.Adam(actor.parameters(), lr=1e-3),
            "q": torch.optim.RMSprop(critic.parameters(), lr=5e-2, alpha=0.99, eps=1e-5),
        },
    )
    return parts


def _steps(parts, n, seed):
    import torch

    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        x = torch.randn(8, 3, generator=gen)
        for opt in parts.optimizers.values():
            opt.zero_grad()
        loss = parts.modules["actor"](x).pow(2).mean() + parts.modules["critic"](x).pow(2).mean()
        loss.backward()
        for opt in parts.optimizers.values():
            opt.step()


def test_several_optimizers_with_their_own_rates_round_trip_per_named_parameter():
    from types import SimpleNamespace

    from rlcanon.run.state import load_parts, part_arrays, part_specs

    trained = _two_optimizer_parts(0)
    _steps(trained, 3, seed=1)
    arrays = {k: v.numpy().copy() for k, v in part_arrays(trained).items()}
    assert {k for k in arrays if k.startswith("optim/")} == {
        "optim/pi/actor.weight/exp_avg", "optim/pi/actor.weight/exp_avg_sq", "optim/pi/actor.weight/step",
        "optim/pi/actor.bias/exp_avg", "optim/pi/actor.bias/exp_avg_sq", "optim/pi/actor.bias/step",
        "optim/q/critic.weight/square_avg", "optim/q/critic.weight/step",
        "optim/q/critic.bias/square_avg", "optim/q/critic.bias/step",
    }  # fmt: skip
    assert set(arrays) == set(part_specs(trained))

    restored = _two_optimizer_parts(5)  # other initial weights, no optimizer state yet
    agent = SimpleNamespace(global_step=0)
    load_parts(restored, agent, arrays, {"global_step": 3}, {}, "arrays.safetensors")
    assert agent.global_step == 3
    # one more step on both: the same parameters, so each optimizer kept its own state and rate
    _steps(trained, 1, seed=2)
    _steps(restored, 1, seed=2)
    for name in ("actor", "critic"):
        for a, b in zip(trained.modules[name].parameters(), restored.modules[name].parameters(), strict=True):
            assert np.array_equal(a.detach().numpy(), b.detach().numpy()), name
