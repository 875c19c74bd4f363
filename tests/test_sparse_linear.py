"""Sparse (scipy.sparse) input for LinearRegression and LogisticRegression.

The references: the dense fit of the same matrix (toarray() in the test),
scipy.sparse.linalg.lsqr, scikit-learn's lbfgs on the same sparse data, and
dense numpy products for the C++ CSR kernels themselves.
"""
import subprocess
import sys
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import GaussianMixture, LinearRegression, LogisticRegression, _core
from maxlik import _kernels as K

sp = pytest.importorskip("scipy.sparse")

FORMATS = [("csr_matrix", sp.csr_matrix), ("csc_matrix", sp.csc_matrix),
           ("csr_array", sp.csr_array), ("csc_array", sp.csc_array)]


def _sparse_X(n, d, density, seed, itype=np.int32):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=rng,
                  data_rvs=lambda k: rng.normal(size=k) * 2.0 + 0.5)
    X.indices = X.indices.astype(itype)
    X.indptr = X.indptr.astype(itype)
    return X


def _rows(X):
    return maxlik._sources.check_csr(X, dtype=np.float64)[1]


# ---- the C++ CSR kernels against dense products ------------------------------------------

@pytest.mark.parametrize("itype", [np.int32, np.int64])
def test_csr_matmul_and_gram_match_dense(itype):
    Xd = _sparse_X(203, 17, 0.3, 0, itype).toarray()
    Xd[5] = 0  # an empty row
    X = sp.csr_matrix(Xd)
    X.indices, X.indptr = X.indices.astype(itype), X.indptr.astype(itype)
    Xd = X.toarray()
    rows = _rows(X)
    assert rows.indices.dtype == itype
    B = np.random.default_rng(1).normal(size=(17, 3))
    np.testing.assert_allclose(K.csr_matmul(rows, B), Xd @ B, rtol=1e-13, atol=1e-13)
    w = np.random.default_rng(2).random(203)
    xt = K.csr_transpose(rows)
    np.testing.assert_array_equal(sp.csr_matrix((xt.data, xt.indices, xt.indptr),
                                                 shape=(17, 203)).toarray(), Xd.T)
    G = _core.csr_gram(*xt.args()[:3], *rows.args(), w)
    np.testing.assert_allclose(G, Xd.T @ (w[:, None] * Xd), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(G, G.T)
    G1 = _core.csr_gram(*xt.args()[:3], *rows.args(), None)
    np.testing.assert_allclose(G1, Xd.T @ Xd, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("K_", [1, 2, 5, 13])
def test_csr_linear_ce_matches_dense_kernel_and_reference(K_):
    rng = np.random.default_rng(K_)
    X = _sparse_X(3001, 23, 0.15, K_)
    rows = _rows(X)
    Xd = X.toarray()
    W = rng.normal(size=(K_, 23))
    b = rng.normal(size=K_)
    y = rng.integers(0, 2 if K_ == 1 else K_, size=3001).astype(np.int64)
    sw = rng.random(3001)
    loss, gW, gb = _core.csr_linear_ce(*rows.args(), W, b, y, sw)
    dloss, dgW, dgb = _core._linear_ce(Xd, W, b, y, sw)
    np.testing.assert_allclose(loss, dloss, rtol=1e-12)
    np.testing.assert_allclose(gW, dgW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, dgb, rtol=1e-10, atol=1e-12)
    # an independent reference written here (numpy, float64)
    Z = Xd @ W.T + b
    if K_ == 1:
        z = Z[:, 0]
        ref = np.sum(sw * (np.logaddexp(0, z) - y * z))
        G = (sw * (1 / (1 + np.exp(-z)) - y))[:, None]
    else:
        lse = np.logaddexp.reduce(Z, axis=1)
        ref = np.sum(sw * (lse - Z[np.arange(3001), y]))
        P = np.exp(Z - lse[:, None])
        P[np.arange(3001), y] -= 1
        G = sw[:, None] * P
    np.testing.assert_allclose(loss, ref, rtol=1e-12)
    np.testing.assert_allclose(gW, G.T @ Xd, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gb, G.sum(axis=0), rtol=1e-10, atol=1e-12)
    # no intercept
    loss0, gW0, _ = _core.csr_linear_ce(*rows.args(), W, None, y, sw)
    dloss0, dgW0, _ = _core._linear_ce(Xd, W, None, y, sw)
    np.testing.assert_allclose(loss0, dloss0, rtol=1e-12)
    np.testing.assert_allclose(gW0, dgW0, rtol=1e-10, atol=1e-12)


def test_dense_linear_ce_matches_reference_many_classes():
    # the outer-product (GEMM micro-kernel) path for K >= 2: class counts around the
    # vector width, feature counts not a multiple of the tile, rows not a multiple of 4
    rng = np.random.default_rng(7)
    for K_, D, N in [(2, 1, 7), (3, 5, 258), (4, 9, 513), (8, 16, 1030), (10, 100, 2001),
                     (17, 3, 300), (25, 31, 999)]:
        X = rng.normal(size=(N, D))
        W = rng.normal(size=(K_, D)) * 0.3
        b = rng.normal(size=K_)
        y = rng.integers(0, K_, size=N).astype(np.int64)
        sw = rng.random(N)
        loss, gW, gb = _core._linear_ce(X, W, b, y, sw)
        Z = X @ W.T + b
        lse = np.logaddexp.reduce(Z, axis=1)
        P = np.exp(Z - lse[:, None])
        P[np.arange(N), y] -= 1
        G = sw[:, None] * P
        np.testing.assert_allclose(loss, np.sum(sw * (lse - Z[np.arange(N), y])), rtol=1e-12)
        np.testing.assert_allclose(gW, G.T @ X, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(gb, G.sum(axis=0), rtol=1e-10, atol=1e-12)


# ---- LinearRegression ----------------------------------------------------------------------

def _regression(n=400, d=15, density=0.25, seed=0, targets=None):
    X = _sparse_X(n, d, density, seed)
    rng = np.random.default_rng(seed + 100)
    beta = rng.normal(size=(d,) if targets is None else (d, targets))
    y = X @ beta + 3.0 + 0.1 * rng.normal(size=beta.shape[:0] + (n,) if targets is None
                                          else (n, targets))
    return X, np.asarray(y)


@pytest.mark.parametrize("name,fmt", FORMATS)
@pytest.mark.parametrize("fit_intercept", [True, False])
def test_linear_regression_sparse_equals_dense(name, fmt, fit_intercept):
    X, y = _regression()
    Xs = fmt(X)
    sparse_fit = LinearRegression(fit_intercept=fit_intercept).fit(Xs, y)
    dense_fit = LinearRegression(fit_intercept=fit_intercept).fit(X.toarray(), y)
    np.testing.assert_allclose(sparse_fit.coef_, dense_fit.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(sparse_fit.intercept_, dense_fit.intercept_, rtol=1e-10,
                               atol=1e-12)
    np.testing.assert_allclose(sparse_fit.noise_variance_, dense_fit.noise_variance_, rtol=1e-9)
    np.testing.assert_allclose(sparse_fit.log_likelihood_, dense_fit.log_likelihood_, rtol=1e-10)
    np.testing.assert_allclose(sparse_fit.singular_values_, dense_fit.singular_values_,
                               rtol=1e-8)
    assert sparse_fit.rank_ == dense_fit.rank_ == 15
    np.testing.assert_allclose(sparse_fit.predict(Xs), dense_fit.predict(X.toarray()),
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sparse_fit.score(Xs, y), dense_fit.score(X.toarray(), y),
                               rtol=1e-12)
    np.testing.assert_allclose(sparse_fit.stderr_, dense_fit.stderr_, rtol=1e-7)


def test_linear_regression_sparse_weights_and_targets():
    X, y = _regression(targets=3, seed=3)
    w = np.random.default_rng(4).random(X.shape[0]) * 3
    w[:10] = 0.0
    a = LinearRegression().fit(X, y, sample_weight=w)
    b = LinearRegression().fit(X.toarray(), y, sample_weight=w)
    assert a.coef_.shape == (3, 15)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-10)
    np.testing.assert_allclose(a.noise_variance_, b.noise_variance_, rtol=1e-9)
    np.testing.assert_allclose(a.predict(X), b.predict(X.toarray()), rtol=1e-10, atol=1e-10)


def test_linear_regression_sparse_vs_lsqr():
    linalg = pytest.importorskip("scipy.sparse.linalg")
    X, y = _regression(n=600, d=20, seed=5)
    # no intercept: lsqr on X itself
    ref = linalg.lsqr(X, y, atol=1e-15, btol=1e-15, iter_lim=10_000)[0]
    fit = LinearRegression(fit_intercept=False).fit(X, y)
    np.testing.assert_allclose(fit.coef_, ref, rtol=1e-9, atol=1e-11)
    # intercept: lsqr on the implicitly centred operator (scikit-learn's sparse path)
    xm = np.asarray(X.mean(axis=0)).ravel()
    op = linalg.LinearOperator(X.shape, matvec=lambda b: X @ b - xm @ b,
                               rmatvec=lambda r: X.T @ r - xm * r.sum(), dtype=np.float64)
    ref = linalg.lsqr(op, y - y.mean(), atol=1e-15, btol=1e-15, iter_lim=10_000)[0]
    fit = LinearRegression().fit(X, y)
    np.testing.assert_allclose(fit.coef_, ref, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(fit.intercept_, y.mean() - xm @ ref, rtol=1e-10)


def test_linear_regression_sparse_rank_deficient_is_minimum_norm():
    X, y = _regression(n=300, d=8, seed=6)
    Xd = X.toarray()
    Xd = np.column_stack([Xd, Xd[:, 2], np.zeros(300)])  # a duplicate and an all-zero column
    Xs = sp.csr_matrix(Xd)
    a = LinearRegression().fit(Xs, y)
    b = LinearRegression().fit(Xd, y)
    assert a.rank_ == b.rank_ == 8
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(a.coef_[2], a.coef_[8], rtol=1e-10)
    assert a.coef_[9] == 0.0 or abs(a.coef_[9]) < 1e-12
    np.testing.assert_allclose(a.predict(Xs), b.predict(Xd), rtol=1e-9, atol=1e-9)


def test_linear_regression_sparse_extreme_scale():
    X, y = _regression(n=200, d=5, seed=8)
    Xs = X * 1e200  # squares overflow: fitted in power-of-two units
    a = LinearRegression().fit(Xs, y)
    b = LinearRegression().fit(Xs.toarray(), y)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
    assert np.all(np.isfinite(a.coef_))


# ---- LogisticRegression ---------------------------------------------------------------------

def _classification(n=1500, d=30, k=4, density=0.2, seed=0):
    X = _sparse_X(n, d, density, seed)
    rng = np.random.default_rng(seed + 1)
    W = rng.normal(size=(k, d))
    Z = X @ W.T + rng.normal(size=(n, k))
    return X, np.argmax(Z, axis=1)


def _sk_objective(clf, X, y, C=1.0, w=None):
    Xd = X.toarray() if sp.issparse(X) else X
    Z = Xd @ clf.coef_.T + clf.intercept_
    w = np.ones(len(y)) if w is None else w
    if Z.shape[1] == 1:
        z = Z[:, 0]
        t = (y == clf.classes_[1]).astype(float)
        ce = np.logaddexp(0, z) - t * z
    else:
        codes = np.searchsorted(clf.classes_, y)
        ce = np.logaddexp.reduce(Z, axis=1) - Z[np.arange(len(y)), codes]
    return (w @ ce + np.sum(clf.coef_ ** 2) / (2 * C)) / w.sum()


@pytest.mark.parametrize("name,fmt", FORMATS)
@pytest.mark.parametrize("k", [2, 4])
def test_logistic_sparse_equals_dense(name, fmt, k):
    X, y = _classification(k=k, seed=k)
    Xs = fmt(X)
    a = LogisticRegression(tol=1e-10, max_iter=1000).fit(Xs, y)
    b = LogisticRegression(tol=1e-10, max_iter=1000).fit(X.toarray(), y)
    np.testing.assert_allclose(a.objective_, b.objective_, rtol=1e-12)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(a.intercept_, b.intercept_, rtol=1e-6, atol=1e-8)
    Xd = X.toarray()
    np.testing.assert_allclose(a.decision_function(Xs), a.decision_function(Xd),
                               rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.predict_proba(Xs), b.predict_proba(Xd), rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(a.predict(Xs), a.predict(Xd))
    assert a.score(Xs, y) == a.score(Xd, y)


def test_logistic_sparse_weights_class_weight_no_intercept():
    X, y = _classification(k=3, seed=11)
    w = np.random.default_rng(12).random(X.shape[0]) * 2
    kw = dict(tol=1e-10, max_iter=1000, class_weight="balanced", fit_intercept=False, C=0.5)
    a = LogisticRegression(**kw).fit(X, y, sample_weight=w)
    b = LogisticRegression(**kw).fit(X.toarray(), y, sample_weight=w)
    np.testing.assert_allclose(a.objective_, b.objective_, rtol=1e-12)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-6, atol=1e-8)
    np.testing.assert_array_equal(a.intercept_, 0.0)


@pytest.mark.parametrize("k", [2, 5])
def test_logistic_sparse_vs_sklearn_lbfgs(k):
    sklm = pytest.importorskip("sklearn.linear_model")
    X, y = _classification(n=2000, d=40, k=k, seed=20 + k)
    ours = LogisticRegression(tol=1e-10, max_iter=2000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sklm.LogisticRegression(tol=1e-10, max_iter=2000).fit(X, y)
    f_ours, f_ref = _sk_objective(ours, X, y), _sk_objective(ref, X, y)
    np.testing.assert_allclose(ours.objective_, f_ours, rtol=1e-12)
    assert f_ours <= f_ref * (1 + 1e-10)
    np.testing.assert_allclose(f_ours, f_ref, rtol=1e-9)
    np.testing.assert_allclose(ours.coef_, ref.coef_, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-5)


def test_sparse_fits_are_thread_count_independent():
    X, y = _classification(n=20_000, d=50, k=3, density=0.1, seed=30)
    Xr, yr = _regression(n=20_000, d=50, density=0.1, seed=31)
    old = maxlik.get_num_threads()
    try:
        out = []
        for t in (1, 2, 3):
            maxlik.set_num_threads(t)
            lo = LogisticRegression(max_iter=50).fit(X, y)
            li = LinearRegression().fit(Xr, yr)
            out.append((lo.coef_, lo.intercept_, li.coef_, li.intercept_))
    finally:
        maxlik.set_num_threads(old)
    for o in out[1:]:
        for a, b in zip(out[0], o):
            np.testing.assert_array_equal(a, b)


class _NoDense:
    """Mixin: a scipy.sparse matrix whose densifying methods fail the test."""

    def toarray(self, *a, **k):
        raise AssertionError("sparse X was densified")

    todense = toarray


def test_sparse_x_is_never_densified():
    class NoDenseCSR(_NoDense, sp.csr_array):
        pass

    NoDenseCSR.__module__ = "scipy.sparse._test_no_dense"  # what the duck typing reads
    X, y = _classification(n=500, d=10, k=3, seed=40)
    Xn = NoDenseCSR(X)
    LogisticRegression().fit(Xn, y).predict_proba(Xn)
    Xr, yr = _regression(n=500, d=10, seed=41)
    LinearRegression().fit(NoDenseCSR(Xr), yr).predict(NoDenseCSR(Xr))


def test_sparse_bad_input():
    X, y = _classification(n=100, d=5, k=2, seed=50)
    bad = X.copy()
    bad.data[3] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        LogisticRegression().fit(bad, y)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        LinearRegression().fit(bad, y.astype(float))
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(sp.csr_matrix(np.ones((3, 4))))
    with pytest.raises(ValueError):
        LinearRegression().fit(X, y[:50].astype(float))


def test_gaussian_mixture_rejects_sparse_with_a_clear_type_error():
    X = _sparse_X(50, 3, 0.5, 60)
    for Xs in (X, sp.csc_array(X)):
        with pytest.raises(TypeError, match="sparse"):
            GaussianMixture(n_components=2).fit(Xs)
    gm = GaussianMixture(n_components=2, random_state=0).fit(X.toarray())
    with pytest.raises(TypeError, match="sparse"):
        gm.predict(X)


def test_import_maxlik_does_not_need_scipy():
    code = ("import sys\n"
            "sys.modules['scipy'] = None\n"  # any `import scipy...` now fails
            "sys.modules['sklearn'] = None\n"
            "import numpy as np, maxlik\n"
            "X = np.arange(20.0).reshape(10, 2); y = (X[:, 0] > 9).astype(int)\n"
            "maxlik.LogisticRegression().fit(X, y); maxlik.LinearRegression().fit(X, X[:, 0])\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
