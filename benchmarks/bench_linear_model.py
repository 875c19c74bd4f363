"""LogisticRegression.fit vs scikit-learn's lbfgs on the same data, same process.

Run:  python -m pytest benchmarks/bench_linear_model.py --benchmark-only -s
Slow (scikit-learn takes ~15 s per fit on an idle 2-core machine): one round
each. The final objectives are printed and checked to agree to 1e-8 relative
(maxlik's must not be worse than scikit-learn's by more than that).
"""
import warnings

import numpy as np
import pytest

import maxlik

N, D, K = 100_000, 100, 10
_objectives = {}


@pytest.fixture(scope="module")
def data():
    datasets = pytest.importorskip("sklearn.datasets")
    X, y = datasets.make_classification(N, D, n_informative=50, n_classes=K, random_state=0)
    return X, y


def _objective(coef, intercept, X, y, C=1.0):
    """scikit-learn's lbfgs objective: mean CE + ||W||^2 / (2 C n)."""
    Z = X @ coef.T + intercept
    lse = np.logaddexp.reduce(Z, axis=1)
    return np.mean(lse - Z[np.arange(len(y)), y]) + np.sum(coef**2) / (2 * C * len(y))


def _fit(make, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a ConvergenceWarning is part of what is timed
        return make().fit(X, y)


@pytest.mark.benchmark(group="logistic_fit_100000x100_10classes")
def test_sklearn_lbfgs(benchmark, data):
    sk = pytest.importorskip("sklearn.linear_model")
    X, y = data
    clf = benchmark.pedantic(lambda: _fit(lambda: sk.LogisticRegression(C=1.0), X, y),
                             rounds=1, iterations=1)
    _objectives["sklearn"] = _objective(clf.coef_, clf.intercept_, X, y)
    benchmark.extra_info.update(objective=_objectives["sklearn"], n_iter=int(clf.n_iter_[0]))
    print(f"\nsklearn lbfgs: objective {_objectives['sklearn']!r}, n_iter {clf.n_iter_}")


@pytest.mark.benchmark(group="logistic_fit_100000x100_10classes")
def test_maxlik_lbfgs(benchmark, data):
    X, y = data
    clf = benchmark.pedantic(lambda: _fit(lambda: maxlik.LogisticRegression(C=1.0), X, y),
                             rounds=3, iterations=1)
    obj = _objective(clf.coef_, clf.intercept_, X, y)
    benchmark.extra_info.update(objective=obj, n_iter=int(clf.n_iter_[0]))
    print(f"\nmaxlik: objective {obj!r}, n_iter {clf.n_iter_}")
    if "sklearn" in _objectives:
        ref = _objectives["sklearn"]
        print(f"relative objective difference (maxlik - sklearn) / sklearn: {(obj - ref) / ref:.3e}")
        assert obj <= ref * (1 + 1e-8)


# One objective+gradient evaluation, both on one thread (OpenBLAS limited with
# threadpoolctl): the per-iteration cost without thread-scheduling effects.
@pytest.fixture(scope="module")
def theta(data):
    X, y = data
    return np.random.default_rng(0).normal(size=K * (D + 1)) * 0.01


@pytest.mark.benchmark(group="logistic_objective+gradient_1thread")
def test_sklearn_loss_gradient_1thread(benchmark, data, theta):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    linear_loss = pytest.importorskip("sklearn.linear_model._linear_loss")
    loss_mod = pytest.importorskip("sklearn._loss.loss")
    X, y = data
    lml = linear_loss.LinearModelLoss(base_loss=loss_mod.HalfMultinomialLoss(n_classes=K),
                                      fit_intercept=True)
    yf = y.astype(np.float64)
    with threadpoolctl.threadpool_limits(1):
        benchmark.pedantic(lambda: lml.loss_gradient(theta, X, yf, None, 1.0 / N, 1),
                           rounds=9, warmup_rounds=1)


@pytest.mark.benchmark(group="logistic_objective+gradient_1thread")
def test_maxlik_objective_1thread(benchmark, data, theta):
    from maxlik.linear_model import LogisticRegression

    X, y = data
    fun = LogisticRegression._objective(np.ascontiguousarray(X), y.astype(np.int64),
                                        np.full(N, 1.0 / N), 1.0 / N, True, K)
    old = maxlik.get_num_threads()
    maxlik.set_num_threads(1)
    try:
        benchmark.pedantic(lambda: fun(theta), rounds=9, warmup_rounds=1)
    finally:
        maxlik.set_num_threads(old)
