"""Gaussian log-densities: maxlik.gaussian_logpdf against scipy.stats on the same data.

    python -m pytest benchmarks/bench_gaussian.py --benchmark-only
    python benchmarks/bench_gaussian.py            # interleaved ratio table (median of runs)
"""
import time

import numpy as np
import pytest

import maxlik

stats = pytest.importorskip("scipy.stats")

N_HEADLINE = 200_000


def _data(N, D, K, ctype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D))
    means = rng.normal(size=(K, D))
    A = rng.normal(size=(K, D, D))
    full = A @ np.swapaxes(A, 1, 2) + D * np.eye(D)
    if ctype == "full":
        cov, dense = full, full
    elif ctype == "tied":
        cov, dense = full[0], np.repeat(full[:1], K, axis=0)
    elif ctype == "diag":
        cov = rng.uniform(0.5, 2, size=(K, D))
        dense = np.stack([np.diag(c) for c in cov])
    else:
        cov = rng.uniform(0.5, 2, size=K)
        dense = np.stack([c * np.eye(D) for c in cov])
    return X, means, cov, dense


def _scipy_all(X, means, dense):
    return np.stack([stats.multivariate_normal(m, c).logpdf(X) for m, c in zip(means, dense)], 1)


# -- headline: one full Gaussian, N=200k, D=16 -------------------------------------
@pytest.mark.benchmark(group="logpdf-one-full-N200k-D16")
def test_one_full_maxlik(benchmark):
    X, means, cov, _ = _data(N_HEADLINE, 16, 1, "full")
    benchmark(maxlik.gaussian_logpdf, X, means[0], cov[0])


@pytest.mark.benchmark(group="logpdf-one-full-N200k-D16")
def test_one_full_scipy(benchmark):
    X, means, cov, _ = _data(N_HEADLINE, 16, 1, "full")
    benchmark(lambda: stats.multivariate_normal(means[0], cov[0]).logpdf(X))


# -- K=16 at once vs 16 scipy calls --------------------------------------------------
@pytest.mark.benchmark(group="logpdf-K16-full-N200k-D16")
def test_k16_maxlik(benchmark):
    X, means, cov, _ = _data(N_HEADLINE, 16, 16, "full")
    benchmark(maxlik.gaussian_logpdf, X, means, cov)


@pytest.mark.benchmark(group="logpdf-K16-full-N200k-D16")
def test_k16_scipy(benchmark):
    X, means, _, dense = _data(N_HEADLINE, 16, 16, "full")
    benchmark(_scipy_all, X, means, dense)


# -- sweep: all covariance types, D in {2, 16, 64}, K=4, N=50k ------------------------
SWEEP = [(c, d) for c in ("full", "tied", "diag", "spherical") for d in (2, 16, 64)]


@pytest.mark.parametrize("ctype,D", SWEEP)
def test_sweep_maxlik(benchmark, ctype, D):
    benchmark.group = f"logpdf-{ctype}-D{D}-K4-N50k"
    X, means, cov, _ = _data(50_000, D, 4, ctype)
    benchmark(maxlik.gaussian_logpdf, X, means, cov, ctype)


@pytest.mark.parametrize("ctype,D", SWEEP)
def test_sweep_scipy(benchmark, ctype, D):
    benchmark.group = f"logpdf-{ctype}-D{D}-K4-N50k"
    X, means, _, dense = _data(50_000, D, 4, ctype)
    benchmark(_scipy_all, X, means, dense)


def _median_time(fn, repeat):
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def main(repeat=7):
    rows = []
    X, means, cov, dense = _data(N_HEADLINE, 16, 16, "full")
    cases = {
        "one full, N=200k, D=16": (lambda: maxlik.gaussian_logpdf(X, means[0], cov[0]),
                                   lambda: stats.multivariate_normal(means[0], cov[0]).logpdf(X)),
        "K=16 full, N=200k, D=16": (lambda: maxlik.gaussian_logpdf(X, means, cov),
                                    lambda: _scipy_all(X, means, dense)),
    }
    for name, (ours, peer) in cases.items():
        ours(), peer()
        # interleave so both see the same machine load
        t_ours, t_peer = [], []
        for _ in range(repeat):
            t_ours.append(_median_time(ours, 1))
            t_peer.append(_median_time(peer, 1))
        a, b = np.median(t_ours), np.median(t_peer)
        rows.append((name, a, b))
        print(f"{name:28s} maxlik {a * 1e3:8.2f} ms   scipy {b * 1e3:8.2f} ms   ratio {b / a:6.1f}x",
              flush=True)
    return rows


if __name__ == "__main__":
    main()
