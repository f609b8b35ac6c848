"""Seeding and RNG state capture. Generators are passed around explicitly; these helpers only seed
torch's global generator (used by torch.nn.init and sampling) and save/restore every RNG state."""

from __future__ import annotations

import base64
import binascii
import contextlib
import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from rlcanon.core.validate import Int, Map, Str, check_json
from rlcanon.errors import CheckpointError

RNG_SCHEMA = Map(
    {
        "numpy": Map(
            {
                "bit_generator": Str(("PCG64",)),
                "state": Map({"state": Int(0, 2**128 - 1), "inc": Int(0, 2**128 - 1)}),
                "has_uint32": Int(0, 1),
                "uinteger": Int(0, 2**32 - 1),
            }
        ),
        "torch": Str(),
    }
)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, torch and return a fresh NumPy generator for this run."""
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


@contextlib.contextmanager
def preserved_global_rng() -> Iterator[None]:
    """Put Python's and torch's global generators back as they were on exit, so loading or
    evaluating a run (which seeds them) leaves the caller's random streams alone."""
    py, th = random.getstate(), torch.get_rng_state()
    try:
        yield
    finally:
        random.setstate(py)
        torch.set_rng_state(th)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-ready snapshot of the NumPy generator and torch's CPU generator."""
    return {
        "numpy": rng.bit_generator.state,
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
    }


def check_rng_state(state: Any, where: str = "checkpoint") -> np.ndarray:
    """Check a snapshot of :func:`rng_state` (a bad one raises CheckpointError naming the field);
    returns the torch state's bytes."""
    check_json(where, state, RNG_SCHEMA, "rng")
    try:
        raw = np.frombuffer(base64.b64decode(state["torch"], validate=True), dtype=np.uint8).copy()
    except (binascii.Error, ValueError):
        raise CheckpointError(
            f"{where}: field rng.torch is not base64; expected a torch generator state"
        ) from None
    current = torch.get_rng_state()
    if raw.size != current.numel():
        raise CheckpointError(f"{where}: field rng.torch holds {raw.size} bytes, expected {current.numel()}")
    try:  # torch checks the state's own fields when it is set; set it, then put the current one back
        torch.set_rng_state(torch.from_numpy(raw))
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: field rng.torch is not a torch generator state ({exc})") from None
    finally:
        torch.set_rng_state(current)
    return raw


def restore_rng_state(rng: np.random.Generator, state: Any, where: str = "checkpoint") -> None:
    """Restore a snapshot of :func:`rng_state`, checked first (a bad one raises CheckpointError)."""
    raw = check_rng_state(state, where)
    try:
        torch_state = torch.get_rng_state()
        torch.set_rng_state(torch.from_numpy(raw))
    except RuntimeError as exc:
        raise CheckpointError(f"{where}: field rng.torch is not a torch generator state ({exc})") from None
    try:
        rng.bit_generator.state = state["numpy"]
    except (TypeError, ValueError) as exc:
        torch.set_rng_state(torch_state)
        kind = state["numpy"]["bit_generator"]
        raise CheckpointError(f"{where}: field rng.numpy is not a {kind} state ({exc})") from None
