"""Time per EM / Lloyd iteration: in memory vs from a memmap vs on a 2-worker LocalCluster.

N=2_000_000, D=16, K=16, float64; one benchmark round = one fit with
``max_iter=1`` from a given initialisation (no data-driven init), so the time
is one iteration plus the fixed per-fit overhead (validation, and for dask
building and sending one graph).

    python -m pytest benchmarks/bench_scale.py --benchmark-only    # pytest-benchmark groups
    python benchmarks/bench_scale.py                              # ratio table (median of 3)

The memmap is read warm (its file is in the page cache after the first
round). The LocalCluster has 2 worker processes x 1 thread; the data are
persisted on the workers before timing.
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


def _gmm(centres):
    from maxlik import GaussianMixture

    return GaussianMixture(K, covariance_type="full", max_iter=1, tol=0,
                           weights_init=np.full(K, 1.0 / K), means_init=centres + 0.1,
                           precisions_init=np.tile(np.eye(D), (K, 1, 1)))


def _kmeans(centres):
    from maxlik import KMeans

    return KMeans(K, init=centres + 0.1, n_init=1, max_iter=1, tol=0)


def _fit(est, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    return est


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
                                        dashboard_address=None, silence_logs=50)
            self.client = Client(self.cluster)
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
    yield s
    s.close()


@pytest.mark.parametrize("source", ["memory", "memmap", "cluster"])
@pytest.mark.parametrize("model", ["gmm", "kmeans"])
def test_iteration(benchmark, setup, model, source):
    benchmark.group = f"scale-{model}-iteration"
    make = _gmm if model == "gmm" else _kmeans
    X = {"memory": lambda: setup.X, "memmap": lambda: setup.mm,
         "cluster": setup.dask}[source]()
    benchmark.pedantic(lambda: _fit(make(setup.centres), X), rounds=3, warmup_rounds=1)


def _median_time(make, centres, X, max_iter, reps):
    ts, n_iter = [], None
    for _ in range(reps):
        est = make(centres)
        est.max_iter = max_iter
        t = time.perf_counter()
        _fit(est, X)
        ts.append(time.perf_counter() - t)
        n_iter = est.n_iter_
    return statistics.median(ts), n_iter


def main(reps=3):
    """Median over `reps` fits of 1 and of 3 iterations; per iteration = (t3 - t1) / 2."""
    s = Setup()
    try:
        rows = []
        for model, make in (("gmm", _gmm), ("kmeans", _kmeans)):
            res = {}
            for source, X in (("memory", s.X), ("memmap", s.mm), ("cluster", s.dask())):
                _fit(make(s.centres), X)  # warm-up (page cache, worker imports)
                t1, _ = _median_time(make, s.centres, X, 1, reps)
                t3, n3 = _median_time(make, s.centres, X, 3, reps)
                assert n3 == 3, (model, source, n3)
                res[source] = (t1, (t3 - t1) / 2)
            rows.append((model, res))
        print(f"N={N} D={D} K={K} float64, median of {reps}; seconds")
        print("model   source   fit(max_iter=1)  ratio   per-iteration  ratio")
        for model, res in rows:
            for source in ("memory", "memmap", "cluster"):
                t1, it = res[source]
                print(f"{model:7s} {source:8s} {t1:10.3f} {t1 / res['memory'][0]:9.2f}x "
                      f"{it:12.3f} {it / res['memory'][1]:8.2f}x")
    finally:
        s.close()


if __name__ == "__main__":
    sys.exit(main())
