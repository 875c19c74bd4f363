"""KMeans Lloyd iterations: maxlik vs sklearn.cluster.KMeans, sklearnex.cluster.KMeans and
faiss.Kmeans (each when installed: pip install 'maxlik[bench]'), same data, same init.

Run:  python -m pytest benchmarks/bench_kmeans.py --benchmark-only
Data: make_blobs(200_000, 16, centers=16), K=16, init = the same 16 rows for
both, n_init=1, tol=0, max_iter=20. Both stop early only on strict
convergence (identical labels), which happens at the same iteration for both;
compare the medians within a group (time per fit; n_iter_ is printed in
extra_info so the per-iteration time is median / n_iter).
"""
import numpy as np
import pytest

import maxlik

sk_cluster = pytest.importorskip("sklearn.cluster")
from sklearn.datasets import make_blobs  # noqa: E402

N, D, K = 200_000, 16, 16


@pytest.fixture(scope="module")
def data():
    X, _ = make_blobs(N, D, centers=K, random_state=0)
    # Initial centres: rows drawn at random, so that Lloyd needs all 20 iterations.
    rng = np.random.default_rng(0)
    init = X[rng.choice(N, K, replace=False)]
    return X, init


def _fit(cls, X, init):
    return cls(K, init=init, n_init=1, tol=0.0, max_iter=20).fit(X)


def _faiss_fit(X, init):
    import faiss

    faiss.omp_set_num_threads(maxlik.get_num_threads())
    km = faiss.Kmeans(D, K, niter=20, nredo=1, seed=0, max_points_per_centroid=N, verbose=False)
    km.train(np.ascontiguousarray(X, np.float32), init_centroids=np.ascontiguousarray(init, np.float32))
    return km


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("impl", ["maxlik", "sklearn", "sklearnex", "faiss"])
def test_kmeans_lloyd(benchmark, data, impl, dtype):
    X, init = data
    X = X.astype(dtype)
    init = init.astype(dtype)
    benchmark.group = f"kmeans-lloyd-{dtype}-N{N}-D{D}-K{K}"
    benchmark.extra_info["threads"] = maxlik.get_num_threads()
    if impl == "faiss":  # float32 only: the float64 group gets its float32 time
        pytest.importorskip("faiss")
        benchmark.pedantic(_faiss_fit, args=(X, init), rounds=7, warmup_rounds=1)
        return
    if impl == "sklearnex":
        cls = pytest.importorskip("sklearnex.cluster").KMeans
    else:
        cls = maxlik.KMeans if impl == "maxlik" else sk_cluster.KMeans
    km = benchmark.pedantic(_fit, args=(cls, X, init), rounds=7, warmup_rounds=1)
    benchmark.extra_info["n_iter"] = int(km.n_iter_)
