"""Where the torch networks live.

Small MLPs train fastest on the CPU here (the NumPy kernels; a GPU launch costs more than the whole
product), so ``auto`` picks a GPU only for pixel networks, which are convolution-bound. Replay
buffers, rollouts and checkpoints stay in host memory either way: a checkpoint written on a GPU
machine loads on a CPU-only one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rlcanon.errors import ConfigError

if TYPE_CHECKING:
    import numpy as np
    import torch

DEVICE_CHOICES = "'auto', 'cpu', 'cuda' or 'cuda:N'"


def check_device(name: str) -> None:
    """Reject a malformed device name (availability is checked by :func:`resolve_device`)."""
    if name not in ("auto", "cpu", "cuda") and not re.fullmatch(r"cuda:\d+", name):
        raise ConfigError(f"device={name!r} is not allowed; choose {DEVICE_CHOICES}")


def resolve_device(name: str, pixels: bool) -> torch.device:
    """The torch device for ``name``; ``auto`` means CUDA for pixel networks when it is available."""
    import torch

    check_device(name)
    if name == "auto":
        return torch.device("cuda" if pixels and torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"device={name!r} but this torch ({torch.__version__}) sees no CUDA GPU; "
            f"use device='cpu' or 'auto'"
        )
    dev = torch.device(name)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ConfigError(
            f"device={name!r} but only {torch.cuda.device_count()} CUDA device(s) exist; "
            f"use an index below {torch.cuda.device_count()}"
        )
    return dev


def to_numpy(t: torch.Tensor) -> np.ndarray:
    """A detached host copy of ``t`` (no copy for CPU tensors)."""
    return t.detach().cpu().numpy()  # type: ignore[no-any-return]
