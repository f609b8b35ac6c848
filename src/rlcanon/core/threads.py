"""Thread settings. Small RL matrices gain nothing from many threads, and on a busy machine
oversubscribed BLAS/torch threads can be tens of times slower, so one thread is the default.

The command line sets this for its whole process (:func:`default_blas_threads`, before NumPy
loads). A library call changes nothing for good: :func:`thread_limits` sets torch's and the BLAS
libraries' thread counts for the call and restores the caller's settings when it returns.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

_BLAS_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def default_blas_threads() -> None:
    """Ask BLAS for one thread unless the user chose a number (only effective before numpy loads)."""
    for var in _BLAS_VARS:
        os.environ.setdefault(var, "1")


@contextlib.contextmanager
def thread_limits(n: int) -> Iterator[None]:
    """Use ``n`` torch intra-op threads and ``n`` BLAS threads inside the block (``0`` leaves both
    as they are); the previous settings are restored on exit."""
    if n <= 0:
        yield
        return
    import torch
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    if before != n:
        torch.set_num_threads(n)
    try:
        with threadpool_limits(limits=n, user_api="blas"):
            yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
