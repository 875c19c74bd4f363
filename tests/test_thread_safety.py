"""The public functions and estimators called from 8 Python threads at once give
results bit-identical to serial calls.

The kernels release the GIL and share one C++ thread pool; a call that finds
the pool busy runs its blocks serially on its own thread. By the determinism
contract (fixed row blocks merged in block order) that must not change a bit.
Each thread runs every job (in a rotated order, so that different kernels
overlap), several rounds, all started together by a barrier.
"""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import maxlik

# warnings.catch_warnings() is not thread-safe; filter the short fits'
# ConvergenceWarning for the whole module instead.
pytestmark = pytest.mark.filterwarnings("ignore::maxlik.exceptions.ConvergenceWarning")

N_THREADS = 8
ROUNDS = 3

_rng = np.random.default_rng(2024)
# sizes above a few 512-row blocks, so that every kernel splits its work
N, D, K = 3000, 6, 4
X = _rng.normal(size=(N, D)) + np.repeat(_rng.normal(scale=4, size=(K, D)), N // K, axis=0)
X32 = X.astype(np.float32)
LOGITS = _rng.normal(size=(N, 7))
LABELS = _rng.integers(0, 7, size=N)
PROBS = maxlik.softmax(_rng.normal(size=(N, 7)), axis=1)
W = _rng.random(N) + 0.1
COVS = np.stack([np.cov(X[i::K].T) for i in range(K)])
MEANS = np.stack([X[i::K].mean(0) for i in range(K)])
PARAMS = maxlik.MixtureParameters("full", np.full(K, 1 / K), MEANS, maxlik.precision_cholesky(COVS))
Y_CLS = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 1)
Y_REG = X @ np.arange(1.0, D + 1) + _rng.normal(size=N)


def _arrays(obj):
    """The arrays / numbers of a result, flattened for bit comparison."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [a for o in obj for a in _arrays(o)]
    if isinstance(obj, (float, int, np.floating, np.integer)):
        return [np.asarray(obj)]
    if isinstance(obj, str) or obj is None:
        return [np.frombuffer(str(obj).encode(), dtype=np.uint8)]
    if hasattr(obj, "__dataclass_fields__"):
        return [a for f in obj.__dataclass_fields__ for a in _arrays(getattr(obj, f))]
    raise TypeError(type(obj))


def _fitted(est, *names):
    return tuple(getattr(est, n) for n in names)


JOBS = {
    "logsumexp": lambda: maxlik.logsumexp(LOGITS, axis=1),
    "logsumexp_all_b": lambda: maxlik.logsumexp(LOGITS, b=PROBS, return_sign=True),
    "logsumexp_axis0_f32": lambda: maxlik.logsumexp(X32, axis=0),
    "softmax": lambda: maxlik.softmax(LOGITS, axis=1),
    "log_softmax_axis0": lambda: maxlik.log_softmax(LOGITS, axis=0),
    "gaussian_logpdf_full": lambda: maxlik.gaussian_logpdf(X, MEANS, COVS),
    "gaussian_logpdf_diag32": lambda: maxlik.gaussian_logpdf(X32, MEANS, np.ones((K, D)), "diag"),
    "fit_gaussian": lambda: maxlik.fit_gaussian(X, sample_weight=W),
    "entropy": lambda: maxlik.entropy(PROBS),
    "kl_divergence": lambda: maxlik.kl_divergence(PROBS, PROBS[::-1]),
    "kl_to_standard_normal": lambda: maxlik.kl_to_standard_normal(X, X * 0.1, return_grad=True),
    "softmax_cross_entropy": lambda: maxlik.softmax_cross_entropy(LOGITS, LABELS, return_grad=True,
                                                                  label_smoothing=0.1),
    "softmax_cross_entropy_prob": lambda: maxlik.softmax_cross_entropy(LOGITS, PROBS,
                                                                       reduction="sum"),
    "bce": lambda: maxlik.binary_cross_entropy_with_logits(LOGITS, PROBS, return_grad=True),
    "gaussian_nll": lambda: maxlik.gaussian_nll(X, X[::-1], np.ones_like(X), return_grad=True),
    "mse": lambda: maxlik.mse(X, X[::-1], return_grad=True),
    "mixture_statistics": lambda: maxlik.mixture_statistics(X, PARAMS, sample_weight=W),
    "kmeans_plusplus": lambda: maxlik.kmeans_plusplus(X, K, random_state=3),
    "KMeans": lambda: _fitted(maxlik.KMeans(K, n_init=2, random_state=0).fit(X),
                              "cluster_centers_", "labels_", "inertia_", "n_iter_"),
    "GaussianMixture": lambda: _fitted(
        maxlik.GaussianMixture(K, random_state=0, max_iter=15, tol=0).fit(X),
        "weights_", "means_", "precisions_cholesky_", "lower_bound_"),
    "GaussianMixture_f32_diag": lambda: _fitted(
        maxlik.GaussianMixture(K, covariance_type="diag", random_state=1, max_iter=10).fit(X32),
        "means_", "covariances_"),
    "LogisticRegression": lambda: _fitted(maxlik.LogisticRegression(max_iter=30).fit(X, Y_CLS),
                                          "coef_", "intercept_"),
    "LinearRegression": lambda: _fitted(maxlik.LinearRegression().fit(X, Y_REG, sample_weight=W),
                                        "coef_", "intercept_"),
}


def _run(name):
    return _arrays(JOBS[name]())


@pytest.fixture(scope="module")
def serial():
    return {name: _run(name) for name in JOBS}


def _assert_bit_equal(got, want, what):
    assert len(got) == len(want), what
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype, what
        # bit equality, NaN included
        assert g.tobytes() == w.tobytes(), f"{what}: differs from the serial call"


@pytest.mark.parametrize("n_threads_kernel", [1, 2])
def test_concurrent_calls_equal_serial(serial, threads, n_threads_kernel):
    threads(n_threads_kernel)
    names = list(JOBS)
    barrier = threading.Barrier(N_THREADS)

    def worker(t):
        order = names[t % len(names):] + names[: t % len(names)]
        barrier.wait()
        out = []
        for _ in range(ROUNDS):
            for name in order:
                out.append((name, _run(name)))
        return out

    with ThreadPoolExecutor(N_THREADS) as ex:
        results = list(ex.map(worker, range(N_THREADS)))
    for t, res in enumerate(results):
        for name, arrays in res:
            _assert_bit_equal(arrays, serial[name], f"thread {t}, {name}")


def test_same_estimator_type_many_threads(serial):
    """All 8 threads fit the same estimator type at the same moment (maximum
    contention on one kernel)."""
    for name in ("GaussianMixture", "KMeans", "mixture_statistics", "gaussian_logpdf_full"):
        barrier = threading.Barrier(N_THREADS)

        def worker(_):
            barrier.wait()
            return _run(name)

        with ThreadPoolExecutor(N_THREADS) as ex:
            for arrays in ex.map(worker, range(N_THREADS)):
                _assert_bit_equal(arrays, serial[name], name)


def test_set_num_threads_while_running(serial):
    """Changing the thread count while other threads compute changes no result."""
    stop = threading.Event()

    def toggler():
        n = 1
        while not stop.is_set():
            maxlik.set_num_threads(n)
            n = 3 - n

    old = maxlik.get_num_threads()
    tog = threading.Thread(target=toggler)
    tog.start()
    try:
        with ThreadPoolExecutor(4) as ex:
            futs = [ex.submit(_run, name) for name in ("GaussianMixture", "logsumexp",
                                                       "softmax_cross_entropy", "KMeans") * 2]
            outs = [f.result() for f in futs]
    finally:
        stop.set()
        tog.join()
        maxlik.set_num_threads(old)
    for name, arrays in zip(("GaussianMixture", "logsumexp", "softmax_cross_entropy", "KMeans") * 2,
                            outs):
        _assert_bit_equal(arrays, serial[name], name)


def test_estimator_instances_are_independent():
    """Fitting different instances concurrently does not mix their state."""
    datasets = [X[i::4] * (i + 1) for i in range(N_THREADS // 2)] * 2

    def fit(i):
        return maxlik.KMeans(3, n_init=1, random_state=i % 4).fit(datasets[i]).cluster_centers_

    with ThreadPoolExecutor(N_THREADS) as ex:
        conc = list(ex.map(fit, range(N_THREADS)))
    for i in range(N_THREADS):
        np.testing.assert_array_equal(conc[i], fit(i))


_BIG = np.random.default_rng(5).normal(size=(200_000, 24))
_BIG_COV = np.broadcast_to(np.eye(24), (24, 24, 24)).copy()
_BIG_P = maxlik.MixtureParameters("full", np.full(24, 1 / 24), _BIG[:24].copy(),
                                  maxlik.precision_cholesky(_BIG_COV))
# single kernel calls of ~0.2-1 s each
GIL_JOBS = {
    "mixture_statistics": lambda: maxlik.mixture_statistics(_BIG, _BIG_P),
    "gaussian_logpdf": lambda: maxlik.gaussian_logpdf(_BIG, _BIG_P.means, _BIG_COV),
}


@pytest.mark.parametrize("name", sorted(GIL_JOBS))
def test_kernels_release_the_gil(name):
    """While one thread is inside a kernel, another Python thread keeps running.

    Ordering, not speed: the main thread counts how often it runs Python
    between the worker entering the kernel and the worker's next Python line.
    A kernel that held the GIL would let it run at most a couple of times
    (before the call starts); a released GIL lets it loop for the whole call
    (0.2-1 s here, i.e. hundreds of 1 ms naps).
    """
    import time
    started = threading.Event()
    done = []

    def worker():
        started.set()
        GIL_JOBS[name]()
        done.append(True)  # first Python line after the kernel

    t = threading.Thread(target=worker)
    t.start()
    started.wait()
    n = 0
    while not done:
        n += 1
        time.sleep(0.001)
    t.join()
    assert n >= 20, (name, n)
