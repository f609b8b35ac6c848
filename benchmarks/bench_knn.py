"""k-nearest-neighbour query time of the searches episodic control could use, with one thread.

For memories of 1e3, 1e4 and 5e4 keys (dimensions 64, the default key size of NEC and MFEC, and 4,
CartPole's raw observation), and query batches of 1 and 32, it times k = 50 exact neighbours by:

- torch, ||q||^2 - 2 q.k + ||k||^2 as one addmm, then topk (what ``rlcanon.nets.knn`` does);
- torch.cdist, then topk;
- NumPy, the same expansion, then argpartition;
- scikit-learn NearestNeighbors, brute force and kd-tree; the kd-tree is rebuilt before every query
  because episodic memories change at every write, and its build is timed with the query;
- faiss IndexFlatL2 (exact), when faiss-cpu is importable.

scikit-learn and faiss are optional here (``pip install scikit-learn faiss-cpu``); a missing one is
reported and skipped. Usage: python benchmarks/bench_knn.py [--repeats 20] [--extra-path DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np
import torch

from rlcanon.nets.knn import nearest

K = 50


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median seconds of one call (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def methods(keys: np.ndarray, queries: np.ndarray) -> dict[str, Callable[[], object]]:
    kt, qt = torch.from_numpy(keys), torch.from_numpy(queries)
    key_norms = (keys * keys).sum(1)

    def numpy_argpartition() -> object:
        d2 = key_norms[None, :] - 2.0 * queries @ keys.T + (queries * queries).sum(1, keepdims=True)
        part = np.argpartition(d2, K - 1, axis=1)[:, :K]
        return np.take_along_axis(part, np.argsort(np.take_along_axis(d2, part, 1), 1), 1)

    out: dict[str, Callable[[], object]] = {
        "torch addmm+topk": lambda: nearest(qt, kt, K),
        "torch cdist+topk": lambda: torch.topk(torch.cdist(qt, kt), K, dim=1, largest=False),
        "numpy argpartition": numpy_argpartition,
    }
    try:
        from sklearn.neighbors import NearestNeighbors

        brute = NearestNeighbors(n_neighbors=K, algorithm="brute").fit(keys)
        out["sklearn brute"] = lambda: brute.kneighbors(queries)
        out["sklearn kd-tree (rebuild)"] = lambda: (
            NearestNeighbors(n_neighbors=K, algorithm="kd_tree").fit(keys).kneighbors(queries)
        )
    except ImportError:
        print("scikit-learn is not installed: skipped", file=sys.stderr)
    try:
        import faiss

        faiss.omp_set_num_threads(1)
        index = faiss.IndexFlatL2(keys.shape[1])
        index.add(keys)
        out["faiss IndexFlatL2"] = lambda: index.search(queries, K)
    except ImportError:
        print("faiss-cpu is not installed: skipped", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--extra-path", help="a folder holding optional libraries (pip --target)")
    args = parser.parse_args()
    if args.extra_path:
        sys.path.append(args.extra_path)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print("| keys | dim | batch | method | ms per query batch |")
    print("|---:|---:|---:|---|---:|")
    for dim in (64, 4):
        for size in (1_000, 10_000, 50_000):
            keys = rng.standard_normal((size, dim)).astype(np.float32)
            for batch in (1, 32):
                queries = rng.standard_normal((batch, dim)).astype(np.float32)
                for name, fn in methods(keys, queries).items():
                    seconds = timed(fn, args.repeats)
                    print(f"| {size} | {dim} | {batch} | {name} | {1e3 * seconds:.3f} |", flush=True)


if __name__ == "__main__":
    main()
