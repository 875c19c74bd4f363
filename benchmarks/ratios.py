"""Headline speed ratios of maxlik against its peers, measured in one process.

    python benchmarks/ratios.py [--quick] [--only NAME ...]

Every line times maxlik and the peer on the same data, interleaved, and
reports the median over several runs and the ratio peer / maxlik (> 1 means
maxlik is faster). Both use the same thread count (maxlik.get_num_threads()).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import maxlik


def median_time(fn, runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def pair(name, ours, peer, runs=7, peer_runs=None, rounds=3):
    """Interleave rounds of (ours, peer) so both see the same machine load."""
    a, b = [], []
    for _ in range(rounds):
        a.append(median_time(ours, runs))
        b.append(median_time(peer, peer_runs or runs))
    ta, tb = float(np.median(a)), float(np.median(b))
    print(f"{name:<62s} maxlik {ta * 1e3:9.2f} ms   peer {tb * 1e3:9.2f} ms   ratio {tb / ta:6.2f}x",
          flush=True)
    return tb / ta


def bench_logsumexp(quick):
    import scipy.special as sp
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1_000_000, 16))
    pair("logsumexp (1e6,16) f64 axis=1 vs scipy", lambda: maxlik.logsumexp(x, axis=1),
         lambda: sp.logsumexp(x, axis=1), peer_runs=3)
    try:
        import torch
        torch.set_num_threads(maxlik.get_num_threads())
        tx = torch.from_numpy(x)
        pair("logsumexp (1e6,16) f64 axis=1 vs torch", lambda: maxlik.logsumexp(x, axis=1),
             lambda: torch.logsumexp(tx, 1))
    except ImportError:
        print("torch not installed: skipped")
    y = np.ascontiguousarray(x.T)
    pair("logsumexp (16,1e6) f64 axis=0 vs scipy", lambda: maxlik.logsumexp(y, axis=0),
         lambda: sp.logsumexp(y, axis=0), peer_runs=3)
    x32 = x.astype(np.float32)
    y32 = y.astype(np.float32)
    pair("logsumexp (1e6,16) axis=1: f32 throughput vs our f64", lambda: maxlik.logsumexp(x32, axis=1),
         lambda: maxlik.logsumexp(x, axis=1))
    pair("logsumexp (16,1e6) axis=0: f32 throughput vs our f64", lambda: maxlik.logsumexp(y32, axis=0),
         lambda: maxlik.logsumexp(y, axis=0))


def bench_gaussian(quick):
    from scipy.stats import multivariate_normal
    rng = np.random.default_rng(0)
    N, D, K = 200_000, 16, 16
    X = rng.normal(size=(N, D))
    A = rng.normal(size=(K, D, D))
    covs = A @ A.transpose(0, 2, 1) / D + np.eye(D)
    means = rng.normal(size=(K, D))
    pair("gaussian_logpdf 1 full Gaussian N=2e5 D=16 vs scipy mvn.logpdf",
         lambda: maxlik.gaussian_logpdf(X, means[0], covs[0]),
         lambda: multivariate_normal(means[0], covs[0]).logpdf(X), peer_runs=3)
    pair("gaussian_logpdf K=16 full at once vs 16 scipy calls",
         lambda: maxlik.gaussian_logpdf(X, means, covs),
         lambda: [multivariate_normal(means[k], covs[k]).logpdf(X) for k in range(K)],
         runs=3, peer_runs=1, rounds=2)


def bench_em(quick):
    import warnings
    from sklearn.datasets import make_blobs
    from sklearn.mixture import GaussianMixture as SkGM
    from sklearn.cluster import KMeans as SkKM

    X, _ = make_blobs(200_000, 16, centers=16, random_state=0)
    K, iters = 16, 20
    rng = np.random.default_rng(0)
    init_means = X[rng.choice(len(X), K, replace=False)]
    for ct in ("full", "tied", "diag", "spherical"):
        def ours(ct=ct, Xd=X):
            maxlik.GaussianMixture(K, covariance_type=ct, max_iter=iters, tol=0, means_init=init_means,
                                   random_state=0).fit(Xd)

        def peer(ct=ct):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                SkGM(K, covariance_type=ct, max_iter=iters, tol=0, means_init=init_means,
                     random_state=0).fit(X)
        pair(f"GaussianMixture {ct:9s} 200k x16 K=16, 20 EM iterations vs sklearn", ours, peer,
             runs=1 if quick else 3, rounds=1 if quick else 2)
    X32 = X.astype(np.float32)
    pair("GaussianMixture full: float32 vs our float64 (same fit)",
         lambda: maxlik.GaussianMixture(K, max_iter=iters, tol=0, means_init=init_means).fit(X32),
         lambda: maxlik.GaussianMixture(K, max_iter=iters, tol=0, means_init=init_means).fit(X),
         runs=1 if quick else 3, rounds=1 if quick else 2)
    X64, _ = make_blobs(200_000, 64, centers=8, random_state=0)
    m64 = X64[rng.choice(len(X64), 8, replace=False)]

    def peer64():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            SkGM(8, max_iter=iters, tol=0, means_init=m64).fit(X64)
    pair("GaussianMixture full D=64 K=8, 20 EM iterations vs sklearn",
         lambda: maxlik.GaussianMixture(8, max_iter=iters, tol=0, means_init=m64).fit(X64), peer64,
         runs=1 if quick else 3, rounds=1 if quick else 2)

    def km_ours():
        maxlik.KMeans(K, init=init_means, n_init=1, max_iter=iters, tol=0).fit(X)

    def km_peer():
        SkKM(K, init=init_means, n_init=1, max_iter=iters, tol=0, algorithm="lloyd").fit(X)
    pair("KMeans Lloyd 200k x16 K=16, 20 iterations vs sklearn", km_ours, km_peer, runs=5)


def bench_losses(quick):
    rng = np.random.default_rng(0)
    N, C = 262_144, 128
    logits = rng.normal(size=(N, C)).astype(np.float32)
    target = rng.integers(0, C, size=N)
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch not installed: skipped")
        return
    torch.set_num_threads(maxlik.get_num_threads())
    tl = torch.from_numpy(logits)
    tt = torch.from_numpy(target)

    def peer():
        x = tl.detach().requires_grad_(True)
        F.cross_entropy(x, tt).backward()

    pair("softmax_cross_entropy loss+grad (262144x128) f32 vs torch fwd+bwd",
         lambda: maxlik.softmax_cross_entropy(logits, target, return_grad=True), peer)


def bench_logistic(quick):
    import warnings
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression as SkLR
    n = 20_000 if quick else 100_000
    X, y = make_classification(n, 100, n_informative=50, n_classes=10, random_state=0)
    pair(f"LogisticRegression fit make_classification({n},100,10 classes) vs sklearn lbfgs",
         lambda: maxlik.LogisticRegression(C=1.0, max_iter=1000, tol=1e-10).fit(X, y),
         lambda: (warnings.simplefilter("ignore"), SkLR(C=1.0, max_iter=1000, tol=1e-10).fit(X, y)),
         runs=1, rounds=1)


ALL = {"logsumexp": bench_logsumexp, "gaussian": bench_gaussian, "em": bench_em,
       "losses": bench_losses, "logistic": bench_logistic}

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", nargs="*", choices=sorted(ALL))
    args = ap.parse_args()
    print(f"maxlik {maxlik.__version__}, ISA {maxlik.build_info()['isa']}, threads {maxlik.get_num_threads()}")
    for name in args.only or ALL:
        ALL[name](args.quick)
