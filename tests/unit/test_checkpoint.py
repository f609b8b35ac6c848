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
