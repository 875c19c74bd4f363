"""LogisticRegression, 1e5 x 100, 10 classes, tol 1e-6 (issue 16's row): maxlik vs the peers.

Run:  python benchmarks/bench_logistic_speed.py [--runs 5] [--sklearn] [--threads 2]

Same process, same data (sklearn.datasets.make_classification, random_state 0),
runs interleaved (maxlik, scikit-learn-intelex, [scikit-learn], maxlik, ...),
median wall time of each; ratio = peer / maxlik. scikit-learn-intelex is used
when ``import sklearnex`` works; scikit-learn's own lbfgs (15 s a fit on a quiet
machine) only with --sklearn. Equal accuracy: every fit's final value of the
objective ``mean CE + ||W||^2 / (2 C n)`` is recomputed here in numpy and printed
as its relative excess over the best of all fits. Also printed: maxlik's
iterations, objective+gradient evaluations (per iteration: the line-search cost),
and the achieved GFLOP/s of one evaluation (4 N D K flops: the two products)
against the machine's DGEMM rate measured here (numpy matmul, 2000^3).
"""
from __future__ import annotations

import argparse
import statistics
import time
import warnings

import numpy as np

N, D, K = 100_000, 100, 10


def objective(coef, intercept, X, y, C=1.0):
    Z = X @ coef.T + intercept
    lse = np.logaddexp.reduce(Z, axis=1)
    return float(np.mean(lse - Z[np.arange(len(y)), y]) + np.sum(coef ** 2) / (2 * C * len(y)))


def dgemm_gflops():
    a = np.random.default_rng(0).normal(size=(2000, 2000))
    a @ a
    t = time.perf_counter()
    a @ a
    return 2 * 2000 ** 3 / (time.perf_counter() - t) / 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--sklearn", action="store_true", help="also time scikit-learn's lbfgs")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-stderr", action="store_true",
                    help="time maxlik's fit without the standard-error (Hessian) pass that fit "
                         "ran for up to 1024 coefficients before 30a195d; now only up to 256 (this problem has 1010)")
    args = ap.parse_args()

    import maxlik
    from maxlik import _engine, _optimize
    from sklearn.datasets import make_classification

    maxlik.set_num_threads(args.threads)
    if args.no_stderr:
        maxlik.LogisticRegression._set_stderr = lambda self, *a, **k: None
    X, y = make_classification(N, D, n_informative=50, n_classes=K, random_state=0)
    peers = {"maxlik": lambda: maxlik.LogisticRegression(tol=1e-6, max_iter=1000)}
    try:
        import sklearnex.linear_model as skx

        peers["sklearnex"] = lambda: skx.LogisticRegression(tol=1e-6, max_iter=1000)
    except ImportError:
        print("scikit-learn-intelex not importable: skipped")
    if args.sklearn:
        import sklearn.linear_model as skl

        peers["sklearn"] = lambda: skl.LogisticRegression(tol=1e-6, max_iter=1000)

    info = {}
    orig = _optimize.minimize_lbfgs

    def counting(*a, **k):
        res = orig(*a, **k)
        info["res"] = res
        return res

    _engine.minimize_lbfgs = counting
    times = {k: [] for k in peers}
    objs = {}
    for r in range(args.runs):
        for name, make in peers.items():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t = time.perf_counter()
                clf = make().fit(X, y)
                times[name].append(time.perf_counter() - t)
            objs[name] = objective(clf.coef_, clf.intercept_, X, y)
            print(f"run {r} {name}: {times[name][-1]:.3f} s, n_iter {np.ravel(clf.n_iter_)[0]}")
    _engine.minimize_lbfgs = orig

    # one evaluation of maxlik's objective + gradient (the fused kernel), median of 20
    from maxlik import _kernels

    theta = np.random.default_rng(0).normal(size=K * (D + 1)) * 0.01
    codes, w = y.astype(np.int64), np.full(N, 1.0 / N)
    ev = []
    for _ in range(20):
        t = time.perf_counter()
        _kernels.ce_block(X, codes, w, theta, K, True)
        ev.append(time.perf_counter() - t)
    t_eval = statistics.median(ev)
    peak = dgemm_gflops()

    best = min(objs.values())
    med = {k: statistics.median(v) for k, v in times.items()}
    res = info["res"]
    print(f"\nmaxlik: {res.n_iter} iterations, {res.n_fev} evaluations "
          f"({res.n_fev / max(res.n_iter, 1):.3f} per iteration), {res.message}")
    print(f"one evaluation {t_eval * 1e3:.2f} ms = {4 * N * D * K / t_eval / 1e9:.1f} GFLOP/s; "
          f"DGEMM here {peak:.1f} GFLOP/s ({4 * N * D * K / t_eval / 1e9 / peak:.0%} of it)")
    for name in peers:
        ratio = med[name] / med["maxlik"]
        print(f"{name:10s} median {med[name]:8.3f} s  ratio {ratio:6.2f}x  objective "
              f"{objs[name]!r} (excess {(objs[name] - best) / best:.2e})")


if __name__ == "__main__":
    main()
