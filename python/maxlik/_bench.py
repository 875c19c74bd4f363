"""``maxlik bench``: maxlik against the installed peers, same data, same process.

Every case builds its data once, then times each implementation with one
warm-up call and `repeat` timed calls, and reports the median. The speed-up
column is peer median / maxlik median (> 1 means maxlik is faster).
"""
from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from importlib import util

import numpy as np

# Per-area problem sizes. "small" keeps the whole `maxlik bench` under a minute
# on a 2-core machine.
SIZES = {
    "logsumexp": {"small": (2_000, 1_000), "medium": (20_000, 1_000), "large": (100_000, 1_000)},
    "gaussian": {"small": (20_000, 16), "medium": (200_000, 16), "large": (1_000_000, 16)},
    "gmm": {"small": (20_000, 8, 8), "medium": (200_000, 16, 16), "large": (1_000_000, 16, 16)},
    "kmeans": {"small": (20_000, 16, 16), "medium": (200_000, 16, 16),
               "large": (1_000_000, 16, 16)},
    "cross-entropy": {"small": (20_000, 100), "medium": (200_000, 100),
                      "large": (1_000_000, 100)},
    "logistic": {"small": (5_000, 20, 3), "medium": (50_000, 50, 5), "large": (200_000, 50, 10)},
}
GMM_ITERS = 10
KMEANS_ITERS = 20


def _have(module):
    return util.find_spec(module) is not None


def _blobs(n, d, k, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d))
    labels = rng.integers(0, k, size=n)
    X = centers[labels] + rng.normal(size=(n, d))
    return X.astype(dtype), labels


def _torch():
    import torch

    import maxlik

    torch.set_num_threads(maxlik.get_num_threads())  # same core budget as maxlik
    return torch


# Each case function returns (skip_reason, cases); a case is (label, [(impl, fn), ...]).
def _case_logsumexp(size):
    import maxlik

    if not hasattr(maxlik, "logsumexp"):
        return "maxlik.logsumexp is not available in this build", []
    n, c = SIZES["logsumexp"][size]
    a = np.random.default_rng(0).normal(size=(n, c)) * 5
    impls = [("maxlik", lambda: maxlik.logsumexp(a, axis=1))]
    if _have("scipy"):
        from scipy.special import logsumexp

        impls.append(("scipy", lambda: logsumexp(a, axis=1)))
    if _have("torch"):
        torch = _torch()
        t = torch.from_numpy(a)
        impls.append(("torch", lambda: torch.logsumexp(t, dim=1)))
    return None, [(f"logsumexp axis=1, {n}x{c} float64", impls)]


def _case_gaussian(size):
    import maxlik

    if not hasattr(maxlik, "gaussian_logpdf"):
        return "maxlik.gaussian_logpdf is not available in this build", []
    n, d = SIZES["gaussian"][size]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    A = rng.normal(size=(d, d))
    cov = A @ A.T / d + np.eye(d)
    mean = rng.normal(size=d)
    impls = [("maxlik", lambda: maxlik.gaussian_logpdf(X, mean, cov))]
    if _have("scipy"):
        from scipy.stats import multivariate_normal

        impls.append(("scipy", lambda: multivariate_normal(mean, cov).logpdf(X)))
    if _have("torch"):
        torch = _torch()
        tX, tm, tc = (torch.from_numpy(v) for v in (X, mean, cov))
        impls.append(("torch", lambda: torch.distributions.MultivariateNormal(
            tm, covariance_matrix=tc).log_prob(tX)))
    return None, [(f"full-covariance log-density, N={n} D={d} float64", impls)]


def _case_gmm(size):
    import maxlik

    if not hasattr(maxlik, "GaussianMixture"):
        return "maxlik.GaussianMixture is not available in this build", []
    if not _have("sklearn"):
        return "no peer installed (needs scikit-learn)", []
    from sklearn.mixture import GaussianMixture as SK

    n, d, k = SIZES["gmm"][size]
    X, _ = _blobs(n, d, k)
    rng = np.random.default_rng(1)
    means = X[rng.choice(n, k, replace=False)]
    weights = np.full(k, 1.0 / k)
    cases = []
    for ctype in ("full", "diag"):
        prec = {"full": np.broadcast_to(np.eye(d), (k, d, d)).copy(),
                "diag": np.ones((k, d))}[ctype]
        kw = dict(n_components=k, covariance_type=ctype, tol=0.0, max_iter=GMM_ITERS,
                  init_params="random", weights_init=weights, means_init=means,
                  precisions_init=prec, random_state=0)

        def run(cls, kw=kw):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tol=0: "did not converge" by design
                return cls(**kw).fit(X)

        cases.append((f"GaussianMixture {ctype}, N={n} D={d} K={k}, {GMM_ITERS} EM iterations",
                      [("maxlik", lambda run=run: run(maxlik.GaussianMixture)),
                       ("sklearn", lambda run=run: run(SK))]))
    return None, cases


def _case_kmeans(size):
    import maxlik

    if not hasattr(maxlik, "KMeans"):
        return "maxlik.KMeans is not available in this build", []
    if not _have("sklearn"):
        return "no peer installed (needs scikit-learn)", []
    from sklearn.cluster import KMeans as SK

    n, d, k = SIZES["kmeans"][size]
    X, _ = _blobs(n, d, k)
    init = X[np.random.default_rng(1).choice(n, k, replace=False)]
    kw = dict(n_clusters=k, init=init, n_init=1, tol=0.0, max_iter=KMEANS_ITERS)
    return None, [(f"KMeans Lloyd, N={n} D={d} K={k}, up to {KMEANS_ITERS} iterations, "
                   "same init",
                   [("maxlik", lambda: maxlik.KMeans(**kw).fit(X)),
                    ("sklearn", lambda: SK(**kw).fit(X))])]


def _case_cross_entropy(size):
    import maxlik

    if not hasattr(maxlik, "softmax_cross_entropy"):
        return "maxlik.softmax_cross_entropy is not available in this build", []
    if not _have("torch"):
        return "no peer installed (needs torch)", []
    torch = _torch()
    n, c = SIZES["cross-entropy"][size]
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(n, c)).astype(np.float32)
    target = rng.integers(0, c, size=n)
    tl = torch.from_numpy(logits.copy()).requires_grad_(True)
    tt = torch.from_numpy(target)

    def torch_fwd_bwd():
        tl.grad = None
        loss = torch.nn.functional.cross_entropy(tl, tt)
        loss.backward()
        return loss

    return None, [(f"softmax cross-entropy loss + gradient, N={n} C={c} float32",
                   [("maxlik", lambda: maxlik.softmax_cross_entropy(logits, target,
                                                                   return_grad=True)),
                    ("torch", torch_fwd_bwd)])]


def _case_logistic(size):
    import maxlik

    if not hasattr(maxlik, "LogisticRegression"):
        return "maxlik.LogisticRegression is not available in this build", []
    if not _have("sklearn"):
        return "no peer installed (needs scikit-learn)", []
    from sklearn.linear_model import LogisticRegression as SK

    n, d, k = SIZES["logistic"][size]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k))
    y = np.argmax(X @ W + rng.gumbel(size=(n, k)), axis=1)
    kw = dict(C=1.0, max_iter=100, tol=1e-4)

    def fit(cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**kw).fit(X, y)

    return None, [(f"LogisticRegression fit (L-BFGS), N={n} D={d} classes={k}",
                   [("maxlik", lambda: fit(maxlik.LogisticRegression)),
                    ("sklearn", lambda: fit(SK))])]


CASES = {
    "logsumexp": _case_logsumexp,
    "gaussian": _case_gaussian,
    "gmm": _case_gmm,
    "kmeans": _case_kmeans,
    "cross-entropy": _case_cross_entropy,
    "logistic": _case_logistic,
}


def _time(fn, repeat, budget_s, min_runs):
    fn()  # warm-up: thread pool start, first-touch allocations, imports
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= min_runs and sum(times) > budget_s:
            break
    return statistics.median(times), len(times)


def run(area="all", size="small", as_json=False, repeat=None):
    import maxlik

    areas = list(CASES) if area == "all" else [area]
    repeat = repeat or (5 if size == "small" else 7)
    budget = {"small": 2.0, "medium": 10.0, "large": 30.0}[size]
    info = maxlik.build_info()
    header = (f"maxlik bench: size {size}, maxlik {info['version']} ({info['isa']}), "
              f"{info['num_threads']} thread(s); median of up to {repeat} runs after a warm-up; "
              "speed-up = peer time / maxlik time")
    results, skipped = [], []
    out = sys.stdout
    if not as_json:
        print(header, file=out)
        print(f"{'area':<14s} {'impl':<8s} {'median ms':>10s} {'runs':>5s} {'speed-up':>9s}",
              file=out)
    for name in areas:
        try:
            reason, cases = CASES[name](size)
        except ImportError as exc:  # a peer that is installed but broken
            reason, cases = f"import failed: {exc}", []
        if reason:
            skipped.append({"area": name, "reason": reason})
            if not as_json:
                print(f"{name:<14s} skipped: {reason}", file=out, flush=True)
            continue
        for label, impls in cases:
            if not as_json:
                print(f"{name:<14s} {label}", file=out, flush=True)
            base = None
            for impl, fn in impls:
                med, runs = _time(fn, repeat, budget, 2 if size == "small" else 3)
                if impl == "maxlik":
                    base = med
                speedup = med / base if base else None
                results.append({"area": name, "case": label, "impl": impl, "median_s": med,
                                "runs": runs, "speedup_vs_maxlik": speedup})
                if not as_json:
                    sp = f"{speedup:8.2f}x" if speedup is not None else ""
                    print(f"{'':<14s} {impl:<8s} {med * 1e3:10.3f} {runs:5d} {sp:>9s}",
                          file=out, flush=True)
    if as_json:
        print(json.dumps({"size": size, "version": info["version"], "isa": info["isa"],
                          "threads": info["num_threads"], "repeat": repeat,
                          "results": results, "skipped": skipped}, indent=2), file=out)
    return 0
