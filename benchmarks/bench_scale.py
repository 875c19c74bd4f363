"""Time per EM / Lloyd iteration: in memory vs from a memmap vs on a 2-worker LocalCluster.

N=2_000_000, D=16, K=16, float64. One iteration is timed as the pass over the
data that dominates it: for GaussianMixture the fused E-step statistics
(``mixture_statistics`` on the array / summed over memmap blocks / one Dask
graph), for KMeans one Lloyd assignment+sums pass; the M-step on the client
is O(K D^2) and the same for all three.

    python -m pytest benchmarks/bench_scale.py --benchmark-only    # pytest-benchmark groups
    python benchmarks/bench_scale.py                              # ratio table

The memmap is read warm (its file is in the page cache after the first
pass). The LocalCluster has 2 worker processes x 1 thread; the data are
persisted on the workers before timing. The table interleaves the three
sources round by round, so load changes on a shared machine hit all alike.
"""
from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import warnings

import numpy as np
import pytest

N, D, K = 2_000_000, 16, 16


def _data():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=3.0, size=(K, D))
    z = rng.integers(0, K, size=N)
    X = centres[z] + rng.standard_normal((N, D))
    return X, centres


def _params(centres):
    from maxlik import MixtureParameters

    U = np.tile(np.eye(D), (K, 1, 1))
    return MixtureParameters("full", np.full(K, 1.0 / K), centres + 0.1, U)


def _passes(setup):
    """{(model, source): callable running one iteration's pass over the data}."""
    from maxlik import _kernels as Kn
    from maxlik._sources import ArraySource, BlockSource
    from maxlik.dask import DaskSource

    p = _params(setup.centres)
    shift = np.ascontiguousarray(setup.X.mean(axis=0))
    C = np.ascontiguousarray(setup.centres + 0.1 - shift)
    labels = np.empty(N, np.int32)
    mem = ArraySource(setup.X)
    mm = BlockSource(setup.mm)
    dk = DaskSource(setup.dask())
    # the engine's own pass over each source (maxlik._engine.fit_mixture / lloyd)
    em = lambda src: src.map_reduce(Kn.em_block, p)  # noqa: E731
    ll = lambda src, out=None: src.map_reduce(  # noqa: E731
        Kn.lloyd_block, shift, C, True, 1.0,
        per_block=lambda i, r0, r1: (None if out is None else out[r0:r1],))
    return {
        ("gmm", "memory"): lambda: em(mem),
        ("gmm", "memmap"): lambda: em(mm),
        ("gmm", "cluster"): lambda: em(dk),
        ("kmeans", "memory"): lambda: ll(mem, labels),
        ("kmeans", "memmap"): lambda: ll(mm, labels),
        ("kmeans", "cluster"): lambda: ll(dk),
    }


class Setup:
    def __init__(self):
        self.X, self.centres = _data()
        self.tmp = tempfile.TemporaryDirectory()
        path = os.path.join(self.tmp.name, "X.npy")
        np.save(path, self.X)
        self.mm = np.load(path, mmap_mode="r")
        self.cluster = self.client = self.dX = None

    def dask(self):
        if self.client is None:
            import dask.array as da
            from distributed import Client, LocalCluster

            self.cluster = LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                        dashboard_address=":0", silence_logs=50)
            self.client = Client(self.cluster)
            with warnings.catch_warnings():  # "Sending large graph": once, on purpose
                warnings.simplefilter("ignore")
                self.dX = self.client.persist(da.from_array(self.X, chunks=(N // 16, D)))
            self.client.wait_for_workers(2)
            from distributed import wait

            wait(self.dX)
        return self.dX

    def close(self):
        if self.client is not None:
            self.client.close()
            self.cluster.close()
        self.tmp.cleanup()


@pytest.fixture(scope="module")
def setup():
    s = Setup()
    s.passes = _passes(s)
    yield s
    s.close()


@pytest.mark.parametrize("source", ["memory", "memmap", "cluster"])
@pytest.mark.parametrize("model", ["gmm", "kmeans"])
def test_iteration(benchmark, setup, model, source):
    benchmark.group = f"scale-{model}-iteration"
    benchmark.pedantic(setup.passes[(model, source)], rounds=5, warmup_rounds=1)


def main(rounds=7):
    s = Setup()
    try:
        passes = _passes(s)
        for f in passes.values():
            f()  # warm-up: page cache, worker imports
        times = {key: [] for key in passes}
        for _ in range(rounds):
            for key, f in passes.items():
                t = time.perf_counter()
                f()
                times[key].append(time.perf_counter() - t)
        med = {key: statistics.median(v) for key, v in times.items()}
        print(f"N={N} D={D} K={K} float64; seconds per iteration, median of {rounds} "
              "interleaved rounds")
        for model in ("gmm", "kmeans"):
            ref = med[(model, "memory")]
            print(f"{model:7s} memory {ref:.3f}   memmap {med[(model, 'memmap')]:.3f} "
                  f"({med[(model, 'memmap')] / ref:.2f}x)   2-worker cluster "
                  f"{med[(model, 'cluster')]:.3f} ({med[(model, 'cluster')] / ref:.2f}x)")
    finally:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
