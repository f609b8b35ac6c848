"""Thread settings. Small RL matrices gain nothing from many threads, and on a busy machine
oversubscribed BLAS/torch threads can be tens of times slower, so one thread is the default."""

from __future__ import annotations

import os

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_blas_threads() -> None:
    """Ask BLAS for one thread unless the user chose a number (only effective before numpy loads)."""
    for var in _BLAS_VARS:
        os.environ.setdefault(var, "1")


def set_torch_threads(n: int) -> None:
    """Use ``n`` intra-op threads in torch (``0`` leaves torch's own choice)."""
    if n <= 0:
        return
    import torch

    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
