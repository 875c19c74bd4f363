"""random_state gives bit-identical fits across runs, processes and thread counts.

In-process: the same fit twice, and under maxlik.set_num_threads(1) vs 2 (and
3, which splits blocks unevenly). Across processes: fresh interpreters started
with MAXLIK_NUM_THREADS=1 and =2 reproduce this process's bytes (a fresh
thread pool, fresh allocations; catches state carried between calls).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import maxlik

pytestmark = pytest.mark.filterwarnings("ignore::maxlik.exceptions.ConvergenceWarning")


def _data():
    rng = np.random.default_rng(7)
    # several 512-row blocks, uneven last block, overlapping clusters (many EM steps)
    N, D, K = 2600 + 77, 5, 4
    centers = rng.normal(scale=2.5, size=(K, D))
    X = centers[rng.integers(0, K, size=N)] + rng.normal(size=(N, D))
    y = (X @ rng.normal(size=D) + rng.normal(size=N) > 0).astype(int) + (X[:, 0] > 1.5)
    w = rng.random(N) + 0.2
    return X, y, w


def _digest(*values) -> str:
    h = hashlib.sha256()
    for v in values:
        a = np.ascontiguousarray(np.asarray(v))
        h.update(str((a.dtype, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _fits():
    """name -> digest of everything a fit or kernel produced."""
    X, y, w = _data()
    X32 = X.astype(np.float32)
    out = {}
    for ctype in ("full", "tied", "diag", "spherical"):
        for init in ("kmeans", "k-means++", "random"):
            g = maxlik.GaussianMixture(4, covariance_type=ctype, init_params=init, n_init=2,
                                       max_iter=30, tol=1e-8, random_state=11).fit(X, sample_weight=w)
            out[f"gmm-{ctype}-{init}"] = _digest(g.weights_, g.means_, g.precisions_cholesky_,
                                                g.lower_bound_, g.n_iter_, g.predict_proba(X))
    g = maxlik.GaussianMixture(3, random_state=np.random.RandomState(5), max_iter=20).fit(X32)
    out["gmm-f32"] = _digest(g.means_, g.covariances_, g.score_samples(X32))
    for algo_seed in (0, 1):
        k = maxlik.KMeans(5, n_init=3, random_state=algo_seed).fit(X, sample_weight=w)
        out[f"kmeans-{algo_seed}"] = _digest(k.cluster_centers_, k.labels_, k.inertia_, k.n_iter_,
                                             k.transform(X))
    k = maxlik.KMeans(4, init="random", n_init=2, random_state=3).fit(X32)
    out["kmeans-f32-random"] = _digest(k.cluster_centers_, k.labels_, k.inertia_)
    c, idx = maxlik.kmeans_plusplus(X, 6, random_state=4)
    out["kmeans_plusplus"] = _digest(c, idx)
    lr = maxlik.LogisticRegression(C=0.5, max_iter=200).fit(X, y, sample_weight=w)
    out["logreg-multinomial"] = _digest(lr.coef_, lr.intercept_, lr.n_iter_, lr.predict_proba(X))
    lr = maxlik.LogisticRegression(max_iter=200).fit(X, y > 0)
    out["logreg-binary"] = _digest(lr.coef_, lr.intercept_, lr.decision_function(X))
    lin = maxlik.LinearRegression().fit(X, X @ np.arange(5.0), sample_weight=w)
    out["linreg"] = _digest(lin.coef_, lin.intercept_, lin.noise_variance_)
    # the kernels
    Z = np.random.default_rng(1).normal(size=(3000, 9)) * 4
    P = maxlik.softmax(Z, axis=1)
    out["logsumexp"] = _digest(maxlik.logsumexp(Z, axis=1), maxlik.logsumexp(Z),
                               maxlik.logsumexp(Z, axis=0, b=P, return_sign=True))
    out["softmax"] = _digest(maxlik.softmax(Z, axis=0), maxlik.log_softmax(Z.T.copy(), axis=0))
    out["gaussian_logpdf"] = _digest(*(maxlik.gaussian_logpdf(X, g.means_, g.covariances_, "full")
                                       for g in [maxlik.GaussianMixture(3, random_state=0).fit(X)]))
    params = maxlik.GaussianMixture(4, covariance_type="diag", random_state=0).fit(X).parameters()
    s = maxlik.mixture_statistics(X, params, sample_weight=w)
    out["mixture_statistics"] = _digest(s.resp_sum, s.sum_x, s.sum_xx, s.log_likelihood)
    fg = maxlik.fit_gaussian(X, sample_weight=w)
    out["fit_gaussian"] = _digest(fg.mean, fg.covariance, fg.log_likelihood)
    labels = np.arange(3000) % 9
    out["losses"] = _digest(
        *maxlik.softmax_cross_entropy(Z, labels, return_grad=True, label_smoothing=0.05),
        *maxlik.binary_cross_entropy_with_logits(Z, P, return_grad=True),
        *maxlik.gaussian_nll(Z, Z[::-1], P + 0.1, return_grad=True),
        *maxlik.mse(Z, Z[::-1], return_grad=True),
        *maxlik.kl_to_standard_normal(Z, Z * 0.1, return_grad=True),
    )
    out["divergences"] = _digest(maxlik.entropy(P), maxlik.kl_divergence(P, P[::-1]),
                                 maxlik.cross_entropy(P, P[::-1]))
    return out


@pytest.fixture(scope="module")
def reference():
    old = maxlik.get_num_threads()
    maxlik.set_num_threads(2)
    try:
        return _fits()
    finally:
        maxlik.set_num_threads(old)


def _diff(a, b):
    return sorted(k for k in a if a[k] != b.get(k))


def test_same_fit_twice_is_bit_identical(reference, threads):
    threads(2)
    assert _diff(_fits(), reference) == []


@pytest.mark.parametrize("n", [1, 3])
def test_thread_count_does_not_change_a_bit(reference, threads, n):
    threads(n)
    assert _diff(_fits(), reference) == []


def test_fresh_processes_reproduce(reference):
    code = textwrap.dedent("""
        import json, sys, warnings
        warnings.simplefilter("ignore")
        sys.path.insert(0, sys.argv[1])
        import test_determinism as T
        print(json.dumps(T._fits()))
    """)
    here = os.path.dirname(__file__)
    for n in ("1", "2"):
        env = dict(os.environ, MAXLIK_NUM_THREADS=n)
        res = subprocess.run([sys.executable, "-c", code, here], capture_output=True, text=True,
                             env=env, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
        got = json.loads(res.stdout.strip().splitlines()[-1])
        assert _diff(got, reference) == [], f"MAXLIK_NUM_THREADS={n}"


def test_random_state_matters():
    """The digests are sensitive: a different seed gives a different fit."""
    X, _, _ = _data()
    a = maxlik.GaussianMixture(4, init_params="random", random_state=1, max_iter=3).fit(X)
    b = maxlik.GaussianMixture(4, init_params="random", random_state=2, max_iter=3).fit(X)
    assert _digest(a.means_) != _digest(b.means_)
    a = maxlik.KMeans(4, init="random", n_init=1, random_state=1, max_iter=2).fit(X)
    b = maxlik.KMeans(4, init="random", n_init=1, random_state=2, max_iter=2).fit(X)
    assert _digest(a.cluster_centers_) != _digest(b.cluster_centers_)
