"""Seeding and RNG state capture. Generators are passed around explicitly; these helpers only seed
torch's global generator (used by torch.nn.init and sampling) and save/restore every RNG state."""

from __future__ import annotations

import base64
import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> np.random.Generator:
    """Seed Python, torch and return a fresh NumPy generator for this run."""
    random.seed(seed)
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """JSON-ready snapshot of the NumPy generator and torch's CPU generator."""
    return {
        "numpy": rng.bit_generator.state,
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
    }


def restore_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state["numpy"]
    raw = np.frombuffer(base64.b64decode(state["torch"]), dtype=np.uint8).copy()
    torch.set_rng_state(torch.from_numpy(raw))
