"""Ratios for the exp-bound kernels (issue 16): logsumexp, softmax, softmax
cross-entropy, gaussian_logpdf and the GaussianMixture E-step.

    python benchmarks/exp_kernel.py [--only NAME ...] [--runs 5] [--threads N]

Each line times maxlik and one peer on the same data in this process,
interleaved (rounds of ours / peer), median of `--runs` per round and median
over rounds; ratio = peer / maxlik (> 1: maxlik faster). Peers that are not
installed (jax, torch, scipy, scikit-learn) are skipped. Each maxlik line also
reports the fraction of its memory floor: bytes the kernel must move divided
by its time, against a streaming-read rate measured here (np.sum of a large
array, one thread), or for GEMM-shaped work the GFLOP/s of numpy's matmul.
"""
from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

import maxlik


def _median_time(fn, runs):
    ts = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def pair(name, ours, peer, runs, rounds=3, note=""):
    ours()
    peer()  # warm-up (jit compilation, first-touch pages)
    a, b = [], []
    for _ in range(rounds):
        a.append(_median_time(ours, runs))
        b.append(_median_time(peer, runs))
    ta, tb = float(np.median(a)), float(np.median(b))
    print(f"{name:<58s} maxlik {ta * 1e3:8.2f} ms  peer {tb * 1e3:8.2f} ms  ratio {tb / ta:6.2f}x {note}",
          flush=True)
    return ta, tb


def stream_rate():
    """Bytes/s of one read of a 256 MB array (np.sum), the streaming floor."""
    a = np.ones(32_000_000)
    a.sum()
    t = _median_time(lambda: a.sum(), 5)
    return a.nbytes / t


def _peers():
    out = {}
    try:
        import torch
        torch.set_num_threads(maxlik.get_num_threads())
        out["torch"] = torch
    except ImportError:
        pass
    try:
        os.environ.setdefault("JAX_PLATFORMS", "cpu")
        import jax
        jax.config.update("jax_enable_x64", True)
        out["jax"] = jax
    except ImportError:
        pass
    return out


def bench_logsumexp(P, runs, rate):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1_000_000, 16))
    floor = x.nbytes / rate
    if "jax" in P:
        jax = P["jax"]
        f = jax.jit(lambda a: jax.nn.logsumexp(a, axis=1))
        jx = jax.device_put(x)
        pair("logsumexp (1e6,16) f64 axis=1 vs jax.jit", lambda: maxlik.logsumexp(x, axis=1),
             lambda: f(jx).block_until_ready(), runs)
    if "torch" in P:
        torch = P["torch"]
        tx = torch.from_numpy(x)
        ta, _ = pair("logsumexp (1e6,16) f64 axis=1 vs torch", lambda: maxlik.logsumexp(x, axis=1),
                     lambda: torch.logsumexp(tx, 1), runs)
        print(f"    floor (one read of 128 MB) {floor * 1e3:.2f} ms: {floor / ta:.0%} of floor")
    y = np.ascontiguousarray(x.T)
    try:
        import scipy.special as sp
        ta, _ = pair("logsumexp (16,1e6) f64 axis=0 vs scipy", lambda: maxlik.logsumexp(y, axis=0),
                     lambda: sp.logsumexp(y, axis=0), runs, rounds=2)
        print(f"    {floor / ta:.0%} of floor")
    except ImportError:
        pass


def bench_softmax(P, runs, rate):
    if "torch" not in P:
        return
    torch = P["torch"]
    rng = np.random.default_rng(0)
    x = rng.normal(size=(4096, 4096)).astype(np.float32)
    tx = torch.from_numpy(x)
    ta, _ = pair("softmax 4096x4096 f32 axis=1 vs torch", lambda: maxlik.softmax(x, axis=1),
                 lambda: torch.softmax(tx, 1), runs)
    floor = 2 * x.nbytes / rate
    print(f"    floor (read + write 128 MB) {floor * 1e3:.2f} ms: {floor / ta:.0%} of floor")


def bench_ce(P, runs, rate):
    rng = np.random.default_rng(0)
    N, C = 262_144, 128
    logits = rng.normal(size=(N, C)).astype(np.float32)
    target = rng.integers(0, C, size=N)
    ours = lambda: maxlik.softmax_cross_entropy(logits, target, return_grad=True)  # noqa: E731
    if "jax" in P:
        jax = P["jax"]
        import jax.numpy as jnp

        def loss(z, t):
            lp = jax.nn.log_softmax(z, axis=1)
            return -jnp.mean(jnp.take_along_axis(lp, t[:, None], axis=1))
        vg = jax.jit(jax.value_and_grad(loss))
        jz, jt = jax.device_put(logits), jax.device_put(target.astype(np.int32))
        pair("softmax CE loss+grad 262144x128 f32 vs jax jit v&g", ours,
             lambda: jax.block_until_ready(vg(jz, jt)), runs)
    if "torch" in P:
        torch = P["torch"]
        F = torch.nn.functional
        tl, tt = torch.from_numpy(logits), torch.from_numpy(target)

        def peer():
            z = tl.detach().requires_grad_(True)
            F.cross_entropy(z, tt).backward()
        ta, _ = pair("softmax CE loss+grad 262144x128 f32 vs torch", ours, peer, runs)
        floor = 2 * logits.nbytes / rate
        print(f"    floor (read + write 256 MB) {floor * 1e3:.2f} ms: {floor / ta:.0%} of floor")


def bench_gaussian(P, runs, rate):
    from scipy.stats import multivariate_normal
    rng = np.random.default_rng(0)
    N, D = 200_000, 16
    X = rng.normal(size=(N, D))
    A = rng.normal(size=(D, D))
    cov = A @ A.T / D + np.eye(D)
    mu = rng.normal(size=D)
    frozen = multivariate_normal(mu, cov)
    ta, _ = pair("gaussian_logpdf full N=2e5 D=16 vs frozen scipy mvn",
                 lambda: maxlik.gaussian_logpdf(X, mu, cov), lambda: frozen.logpdf(X), runs)
    print(f"    floor (one read of 25.6 MB) {X.nbytes / rate * 1e3:.2f} ms: {X.nbytes / rate / ta:.0%}")
    if "torch" in P:
        torch = P["torch"]
        mvn = torch.distributions.MultivariateNormal(torch.from_numpy(mu), torch.from_numpy(cov))
        tX = torch.from_numpy(X)
        pair("gaussian_logpdf full N=2e5 D=16 vs torch MVN", lambda: maxlik.gaussian_logpdf(X, mu, cov),
             lambda: mvn.log_prob(tX), runs)


def bench_em(P, runs, rate):
    from sklearn.datasets import make_blobs
    from sklearn.mixture import GaussianMixture as SkGM
    X, _ = make_blobs(200_000, 16, centers=16, random_state=0)
    K, iters = 16, 10
    rng = np.random.default_rng(0)
    init_means = X[rng.choice(len(X), K, replace=False)]
    a = np.random.default_rng(1).normal(size=(2000, 2000))
    t = _median_time(lambda: a @ a, 3)
    gemm = 2 * 2000 ** 3 / t
    for ct in ("diag", "full"):
        def ours(ct=ct):
            maxlik.GaussianMixture(K, covariance_type=ct, max_iter=iters, tol=0, means_init=init_means,
                                   random_state=0).fit(X)

        def peer(ct=ct):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                SkGM(K, covariance_type=ct, max_iter=iters, tol=0, means_init=init_means,
                     random_state=0).fit(X)
        ta, _ = pair(f"GaussianMixture {ct} 2e5x16 K=16, 10 EM iterations vs sklearn", ours, peer,
                     max(1, runs // 2), rounds=2)
        N, D = X.shape
        # E-step + M-step statistics per iteration, in multiply-adds x 2
        flop = (2 * N * K * D * (D + 1) + 2 * N * K * D * (D + 3) / 2 if ct == "full"
                else 2 * N * K * D * 2 + 2 * N * K * D * 3)
        print(f"    {flop * iters / ta / 1e9:.1f} GFLOP/s = {flop * iters / ta / gemm:.0%} of numpy DGEMM "
              f"({gemm / 1e9:.0f} GFLOP/s)")


ALL = {"logsumexp": bench_logsumexp, "softmax": bench_softmax, "ce": bench_ce,
       "gaussian": bench_gaussian, "em": bench_em}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="*", choices=sorted(ALL))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        maxlik.set_num_threads(args.threads)
    P = _peers()
    print(f"maxlik {maxlik.__version__}, {maxlik.get_num_threads()} threads, ISA "
          f"{getattr(maxlik, '_isa_level', '?')}; "
          f"peers: {', '.join(sorted(P)) or 'none'}; load average {os.getloadavg()[0]:.1f}")
    rate = stream_rate()
    print(f"streaming read {rate / 1e9:.1f} GB/s (np.sum, this run)")
    for name in args.only or ALL:
        ALL[name](P, args.runs, rate)


if __name__ == "__main__":
    main()
