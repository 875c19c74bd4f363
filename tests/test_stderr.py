"""Standard errors and confidence intervals (issue 14 §2).

References: statsmodels (OLS / WLS / Logit / MNLogit ``bse`` and
``conf_int``), scipy (quantiles), and finite-difference Hessians of
log-likelihoods written here independently of the package.
"""
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import maxlik
from maxlik import GaussianMixture, LinearRegression, LogisticRegression, fit_gaussian
from maxlik._inference import t_quantile
from maxlik._readers import _bundled_faithful

sm = pytest.importorskip("statsmodels.api")


def fd_hessian(f, theta, rel=1e-4, floor=1e-2):
    """Central second differences of f at theta (steps relative to |theta|)."""
    th = np.asarray(theta, dtype=np.float64)
    P = th.size
    h = rel * np.maximum(np.abs(th), floor)
    H = np.zeros((P, P))
    for i in range(P):
        for j in range(i, P):
            def F(si, sj, i=i, j=j):
                t = th.copy()
                t[i] += si * h[i]
                t[j] += sj * h[j]
                return f(t)
            H[i, j] = H[j, i] = (F(1, 1) - F(1, -1) - F(-1, 1) + F(-1, -1)) / (4 * h[i] * h[j])
    return H


# ---- quantiles ---------------------------------------------------------------------------

@pytest.mark.parametrize("df", [1, 2, 3, 4, 5, 10, 57, 999, 1000, 1001, 5000, 10**6])
@pytest.mark.parametrize("alpha", [0.5, 0.05, 0.01, 1e-4])
def test_t_quantile_matches_scipy(df, alpha):
    assert t_quantile(alpha, df) == pytest.approx(stats.t.ppf(1 - alpha / 2, df), rel=1e-10)


# ---- fit_gaussian --------------------------------------------------------------------------

def _gauss_loglik(theta, X, ct):
    """Σ log N(x | μ, Σ) with θ = (μ, unique covariance entries of the model)."""
    n, D = X.shape
    mu = theta[:D]
    if ct == "full":
        a, b = np.triu_indices(D)
        S = np.zeros((D, D))
        S[a, b] = theta[D:]
        S[b, a] = theta[D:]
    elif ct == "diag":
        S = np.diag(theta[D:])
    else:
        S = theta[D] * np.eye(D)
    return float(np.sum(stats.multivariate_normal(mu, S).logpdf(X)))


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
def test_gaussian_stderr_is_inverse_fisher_information(ct):
    rng = np.random.default_rng(1)
    D, n = 3, 400
    A = rng.normal(size=(D, D))
    X = rng.multivariate_normal([1.0, -2.0, 0.5], A @ A.T + np.eye(D), size=n)
    fit = fit_gaussian(X, covariance_type=ct)
    cov = fit.covariance
    if ct == "full":
        a, b = np.triu_indices(D)
        theta = np.concatenate([fit.mean, cov[a, b]])
    else:
        theta = np.concatenate([fit.mean, np.atleast_1d(cov)])
    H = fd_hessian(lambda t: _gauss_loglik(t, X, ct), theta)
    se = np.sqrt(np.diag(np.linalg.inv(-H)))
    np.testing.assert_allclose(fit.stderr_mean, se[:D], rtol=1e-5)
    if ct == "full":
        got = fit.stderr_covariance[a, b]
        np.testing.assert_allclose(fit.stderr_covariance, fit.stderr_covariance.T)
    else:
        got = np.atleast_1d(fit.stderr_covariance)
    assert got.shape == se[D:].shape
    np.testing.assert_allclose(got, se[D:], rtol=1e-5)


def test_gaussian_stderr_closed_forms_and_ddof():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(50, 2)) @ np.array([[2.0, 0.0], [0.7, 0.5]])
    n = X.shape[0]
    for ddof in (0, 1, -1, 2.5):
        f = fit_gaussian(X, ddof=ddof)
        S = f.covariance
        expect = np.sqrt((np.outer(np.diag(S), np.diag(S)) + S**2) / n)
        np.testing.assert_allclose(f.stderr_covariance, expect, rtol=1e-13)
        ml = fit_gaussian(X).stderr_covariance
        np.testing.assert_allclose(f.stderr_covariance, ml * n / (n - ddof), rtol=1e-13)
        d = fit_gaussian(X, covariance_type="diag", ddof=ddof)
        np.testing.assert_allclose(d.stderr_covariance, np.sqrt(2 / n) * d.covariance, rtol=1e-13)
        s = fit_gaussian(X, covariance_type="spherical", ddof=ddof)
        assert s.stderr_covariance == pytest.approx(np.sqrt(2 / (2 * n)) * s.covariance, rel=1e-13)
    one = fit_gaussian(X[:, 0])
    assert isinstance(one.stderr_covariance, float)
    assert one.stderr_covariance == pytest.approx(np.sqrt(2 / n) * one.covariance, rel=1e-13)


def test_gaussian_stderr_frequency_weights_are_repeated_rows():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(30, 3))
    w = rng.integers(1, 4, size=30)
    a = fit_gaussian(X, sample_weight=w, ddof=1)
    b = fit_gaussian(np.repeat(X, w, axis=0), ddof=1)
    np.testing.assert_allclose(a.stderr_covariance, b.stderr_covariance, rtol=1e-11)
    np.testing.assert_allclose(a.stderr_mean, b.stderr_mean, rtol=1e-11)


def test_gaussian_confint():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(80, 2))
    f = fit_gaussian(X)
    ci = f.confint(alpha=0.1)
    z = stats.norm.ppf(0.95)
    assert ci["mean"].shape == (2, 2) and ci["covariance"].shape == (2, 2, 2)
    np.testing.assert_allclose(ci["mean"][..., 0], f.mean - z * f.stderr_mean, rtol=1e-14)
    np.testing.assert_allclose(ci["mean"][..., 1], f.mean + z * f.stderr_mean, rtol=1e-14)
    np.testing.assert_allclose(ci["covariance"][..., 1],
                               f.covariance + z * f.stderr_covariance, rtol=1e-14)
    assert fit_gaussian(X[:, 0]).confint()["covariance"].shape == (2,)
    assert fit_gaussian(X, covariance_type="spherical").confint()["covariance"].shape == (2,)
    for bad in (0, 1, -0.1, 2.0):
        with pytest.raises(ValueError, match="alpha"):
            f.confint(alpha=bad)
    with pytest.raises(TypeError, match="alpha"):
        f.confint(alpha="0.05")


def test_gaussian_stderr_extreme_magnitude_does_not_overflow():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(40, 2))
    ref = fit_gaussian(X)
    big = fit_gaussian(np.ldexp(X, 510))  # covariances ~ 2**1020: their squares overflow
    np.testing.assert_allclose(big.stderr_covariance, np.ldexp(ref.stderr_covariance, 1020),
                               rtol=1e-12)


# ---- LinearRegression ----------------------------------------------------------------------

def _ols_data(n=60, D=3, T=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D)) + np.arange(D)
    beta = rng.normal(size=(D,) if T is None else (D, T))
    y = X @ beta + 0.7 + rng.normal(scale=0.5, size=(n,) if T is None else (n, T))
    return X, y


@pytest.mark.parametrize("fit_intercept", [True, False])
def test_ols_stderr_matches_statsmodels(fit_intercept):
    X, y = _ols_data()
    reg = LinearRegression(fit_intercept=fit_intercept).fit(X, y)
    exog = sm.add_constant(X, prepend=False) if fit_intercept else X
    ref = sm.OLS(y, exog).fit()
    D = X.shape[1]
    np.testing.assert_allclose(reg.stderr_, ref.bse[:D], rtol=1e-10)
    assert reg.df_resid_ == ref.df_resid
    ci = reg.confint(alpha=0.05)
    np.testing.assert_allclose(ci["coef"], ref.conf_int(0.05)[:D], rtol=1e-10)
    if fit_intercept:
        assert reg.intercept_stderr_ == pytest.approx(ref.bse[D], rel=1e-10)
        np.testing.assert_allclose(ci["intercept"], ref.conf_int(0.05)[D], rtol=1e-10)
    else:
        assert reg.intercept_stderr_ == 0.0
    np.testing.assert_allclose(reg.confint(alpha=0.01)["coef"], ref.conf_int(0.01)[:D],
                               rtol=1e-10)


def test_ols_stderr_does_not_depend_on_ddof():
    X, y = _ols_data()
    a = LinearRegression().fit(X, y)
    b = LinearRegression(ddof=4).fit(X, y)
    np.testing.assert_array_equal(a.stderr_, b.stderr_)


def test_ols_stderr_multi_output_shapes():
    X, y = _ols_data(T=3)
    reg = LinearRegression().fit(X, y)
    assert reg.stderr_.shape == reg.coef_.shape == (3, 3)
    assert reg.intercept_stderr_.shape == reg.intercept_.shape == (3,)
    ci = reg.confint()
    assert ci["coef"].shape == (3, 3, 2) and ci["intercept"].shape == (3, 2)
    for t in range(3):
        ref = sm.OLS(y[:, t], sm.add_constant(X, prepend=False)).fit()
        np.testing.assert_allclose(reg.stderr_[t], ref.bse[:3], rtol=1e-10)
        assert reg.intercept_stderr_[t] == pytest.approx(ref.bse[3], rel=1e-10)
        np.testing.assert_allclose(ci["coef"][t], ref.conf_int()[:3], rtol=1e-10)


def test_ols_stderr_weights_match_statsmodels_wls():
    X, y = _ols_data(seed=1)
    w = np.random.default_rng(1).uniform(0.2, 3.0, size=X.shape[0])
    reg = LinearRegression().fit(X, y, sample_weight=w)
    ref = sm.WLS(y, sm.add_constant(X, prepend=False), weights=w).fit()
    np.testing.assert_allclose(reg.stderr_, ref.bse[:3], rtol=1e-10)
    assert reg.intercept_stderr_ == pytest.approx(ref.bse[3], rel=1e-10)
    np.testing.assert_allclose(reg.confint()["coef"], ref.conf_int()[:3], rtol=1e-10)
    # precision weights: rescaling all of them changes nothing
    np.testing.assert_allclose(LinearRegression().fit(X, y, sample_weight=10 * w).stderr_,
                               reg.stderr_, rtol=1e-10)
    # zero weights: the same as dropping those rows
    w0 = w.copy()
    w0[:7] = 0
    a = LinearRegression().fit(X, y, sample_weight=w0)
    b = LinearRegression().fit(X[7:], y[7:], sample_weight=w0[7:])
    np.testing.assert_allclose(a.stderr_, b.stderr_, rtol=1e-10)
    assert a.df_resid_ == b.df_resid_ == X.shape[0] - 7 - 4


def test_ols_stderr_extreme_scale():
    X, y = _ols_data()
    ref = LinearRegression().fit(X, y)
    big = LinearRegression().fit(np.ldexp(X, -500), np.ldexp(y, 450))
    np.testing.assert_allclose(big.stderr_, np.ldexp(ref.stderr_, 950), rtol=1e-9)
    assert big.intercept_stderr_ == pytest.approx(np.ldexp(ref.intercept_stderr_, 450), rel=1e-9)


def test_ols_stderr_out_of_core(tmp_path):
    X, y = _ols_data(n=3000, D=4, seed=2)
    ref = LinearRegression().fit(X, y)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    a = LinearRegression().fit(mm, y)
    np.testing.assert_allclose(a.stderr_, ref.stderr_, rtol=1e-10)
    da = pytest.importorskip("dask.array")
    b = LinearRegression().fit(da.from_array(X, chunks=(500, 4)), da.from_array(y, chunks=500))
    np.testing.assert_allclose(b.stderr_, ref.stderr_, rtol=1e-10)
    assert b.intercept_stderr_ == pytest.approx(ref.intercept_stderr_, rel=1e-10)


def test_ols_stderr_not_identified_is_nan_with_warning():
    X, y = _ols_data()
    Xc = np.column_stack([X, X[:, 0] + X[:, 1]])  # rank-deficient
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg = LinearRegression().fit(Xc, y)  # fit itself is silent (scikit-learn's behaviour)
    with pytest.warns(UserWarning, match="rank"):
        assert np.all(np.isnan(reg.stderr_))
    with pytest.warns(UserWarning, match="rank"):
        assert np.isnan(reg.intercept_stderr_)
    with pytest.warns(UserWarning, match="rank"):
        assert np.all(np.isnan(reg.confint()["coef"]))
    small = LinearRegression().fit(X[:4], y[:4])  # n = 4 = p
    with pytest.warns(UserWarning, match="degrees of freedom"):
        assert np.all(np.isnan(small.stderr_))
    assert small.df_resid_ == 0
    with pytest.raises(maxlik.exceptions.NotFittedError):
        LinearRegression().stderr_  # noqa: B018
    assert not hasattr(LinearRegression(), "stderr_")


# ---- LogisticRegression --------------------------------------------------------------------

def _logit_data(n=400, D=3, K=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, D))
    W = rng.normal(size=(K, D))
    logits = X @ W.T + rng.normal(size=K) * 0.5
    y = np.array([rng.choice(K, p=np.exp(z - logsumexp(z))) for z in logits])
    return X, y


def _nll(theta, X, y, K, C, fit_intercept, w=None):
    """Σ w CE + ||W||² / (2C) in the estimator's parametrisation (independent of maxlik)."""
    n, D = X.shape
    P = D + int(fit_intercept)
    n_out = 1 if K == 2 else K
    Th = theta.reshape(n_out, P)
    Wt = Th[:, :D]
    z = X @ Wt.T + (Th[:, D] if fit_intercept else 0.0)
    if n_out == 1:
        z = np.column_stack([np.zeros(n), z[:, 0]])
    ll = z[np.arange(n), y] - logsumexp(z, axis=1)
    w = np.ones(n) if w is None else w
    pen = 0.0 if np.isinf(C) else 0.5 * np.sum(Wt**2) / C
    return -float(w @ ll) + pen


def test_logit_stderr_matches_statsmodels():
    X, y = _logit_data()
    clf = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, y)
    ref = sm.Logit(y, sm.add_constant(X, prepend=False)).fit(disp=0, tol=1e-12)
    np.testing.assert_allclose(clf.coef_[0], ref.params[:3], rtol=1e-6)
    np.testing.assert_allclose(clf.stderr_[0], ref.bse[:3], rtol=1e-6)
    assert clf.intercept_stderr_[0] == pytest.approx(ref.bse[3], rel=1e-6)
    assert clf.stderr_.shape == clf.coef_.shape and clf.intercept_stderr_.shape == (1,)
    ci = clf.confint()
    np.testing.assert_allclose(ci["coef"][0], ref.conf_int()[:3], rtol=1e-6)
    np.testing.assert_allclose(ci["intercept"][0], ref.conf_int()[3], rtol=1e-6)


def test_logit_stderr_l2_is_inverse_penalised_hessian():
    X, y = _logit_data(seed=1)
    C = 0.05
    clf = LogisticRegression(C=C, tol=1e-10, max_iter=1000).fit(X, y)
    theta = np.concatenate([clf.coef_[0], clf.intercept_])
    H = fd_hessian(lambda t: _nll(t, X, y, 2, C, True), theta)
    se = np.sqrt(np.diag(np.linalg.inv(H)))
    np.testing.assert_allclose(clf.stderr_[0], se[:3], rtol=1e-4)
    assert clf.intercept_stderr_[0] == pytest.approx(se[3], rel=1e-4)
    # the penalty makes the posterior narrower than the ML standard errors
    ml = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, y)
    assert np.all(clf.stderr_ < ml.stderr_)


def test_logit_stderr_weights():
    X, y = _logit_data(n=150, seed=2)
    w = np.random.default_rng(2).integers(1, 4, size=150)
    a = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, y, sample_weight=w)
    b = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(np.repeat(X, w, axis=0),
                                                                      np.repeat(y, w))
    np.testing.assert_allclose(a.stderr_, b.stderr_, rtol=1e-6)
    # class_weight multiplies the row weights
    cw = {0: 2.0, 1: 0.5}
    c = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000, class_weight=cw).fit(X, y)
    d = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(
        X, y, sample_weight=np.where(y == 0, 2.0, 0.5))
    np.testing.assert_allclose(c.stderr_, d.stderr_, rtol=1e-6)


def _constrained_cov(H, K, P):
    q, _ = np.linalg.qr(np.concatenate([np.ones((K, 1)), np.eye(K)[:, :K - 1]], axis=1))
    Q = np.kron(q[:, 1:], np.eye(P))
    return Q @ np.linalg.inv(Q.T @ H @ Q) @ Q.T


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("C", [np.inf, 0.5])
def test_multinomial_stderr_finite_differences(C, fit_intercept):
    K, D = 3, 2
    X, y = _logit_data(n=300, D=D, K=K, seed=3)
    clf = LogisticRegression(C=C, tol=1e-10, max_iter=2000, fit_intercept=fit_intercept).fit(X, y)
    np.testing.assert_allclose(clf.coef_.sum(axis=0), 0, atol=1e-8)  # the sum-to-zero fit
    np.testing.assert_allclose(clf.intercept_.sum(), 0, atol=1e-8)
    P = D + int(fit_intercept)
    theta = (np.column_stack([clf.coef_, clf.intercept_]) if fit_intercept else clf.coef_).ravel()
    H = fd_hessian(lambda t: _nll(t, X, y, K, C, fit_intercept), theta)
    se = np.sqrt(np.diag(_constrained_cov(H, K, P))).reshape(K, P)
    np.testing.assert_allclose(clf.stderr_, se[:, :D], rtol=1e-4)
    if fit_intercept:
        np.testing.assert_allclose(clf.intercept_stderr_, se[:, D], rtol=1e-4)
    else:
        np.testing.assert_array_equal(clf.intercept_stderr_, np.zeros(K))
    assert clf.stderr_.shape == clf.coef_.shape


def test_logit_stderr_without_intercept_matches_statsmodels():
    X, y = _logit_data(seed=12)
    clf = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000, fit_intercept=False).fit(X, y)
    ref = sm.Logit(y, X).fit(disp=0, tol=1e-12)
    np.testing.assert_allclose(clf.stderr_[0], ref.bse, rtol=1e-6)


def test_multinomial_contrasts_match_statsmodels_mnlogit():
    K, D = 3, 2
    X, y = _logit_data(n=500, D=D, K=K, seed=4)
    clf = LogisticRegression(C=np.inf, tol=1e-10, max_iter=2000).fit(X, y)
    ref = sm.MNLogit(y, sm.add_constant(X, prepend=False)).fit(disp=0, method="newton", tol=1e-12)
    P = D + 1
    V = clf._covariance
    for k in range(1, K):
        Lk = np.zeros((P, K * P))
        Lk[:, k * P:(k + 1) * P] = np.eye(P)
        Lk[:, :P] -= np.eye(P)
        se = np.sqrt(np.diag(Lk @ V @ Lk.T))
        np.testing.assert_allclose(se, np.asarray(ref.bse)[:, k - 1], rtol=1e-5)


def test_logistic_stderr_dask_blockwise_equals_in_memory(tmp_path):
    X, y = _logit_data(n=1000, D=3, K=3, seed=5)
    ref = LogisticRegression(C=2.0, tol=1e-8, max_iter=500).fit(X, y)
    da = pytest.importorskip("dask.array")
    a = LogisticRegression(C=2.0, tol=1e-8, max_iter=500).fit(da.from_array(X, chunks=(128, 3)),
                                                             da.from_array(y, chunks=128))
    np.testing.assert_allclose(a.stderr_, ref.stderr_, rtol=1e-6)
    np.testing.assert_allclose(a.intercept_stderr_, ref.intercept_stderr_, rtol=1e-6)
    path = tmp_path / "X.npy"
    np.save(path, X)
    b = LogisticRegression(C=2.0, tol=1e-8, max_iter=500).fit(np.load(path, mmap_mode="r"), y)
    np.testing.assert_allclose(b.stderr_, ref.stderr_, rtol=1e-6)


def test_logistic_stderr_hessian_chunks_merge(monkeypatch):
    """Rows taken in small chunks inside a block give the same Hessian."""
    from maxlik import _inference

    X, y = _logit_data(n=300, D=3, K=3, seed=6)
    ref = LogisticRegression(tol=1e-8).fit(X, y)
    monkeypatch.setattr(_inference, "_HESSIAN_CHUNK_VALUES", 40)
    a = LogisticRegression(tol=1e-8).fit(X, y)
    np.testing.assert_allclose(a.stderr_, ref.stderr_, rtol=1e-10)


def test_logistic_stderr_too_large_and_singular():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 1100))
    y = rng.integers(0, 2, 50)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        big = LogisticRegression(max_iter=3).fit(X, y)
    with pytest.raises(AttributeError, match="compute_stderr"):
        big.stderr_  # noqa: B018
    assert not hasattr(big, "intercept_stderr_")
    X4 = np.repeat(X, 4, axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        huge = LogisticRegression(max_iter=3).fit(X4, y)
    with pytest.raises(ValueError, match="at most 4096"):
        huge.compute_stderr(X4, y)
    # a duplicated column without a penalty: singular information
    Xs, ys = _logit_data(n=100, seed=8)
    Xs = np.column_stack([Xs, Xs[:, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sing = LogisticRegression(C=np.inf, max_iter=200).fit(Xs, ys)
    with pytest.warns(UserWarning, match="singular"):
        assert np.all(np.isnan(sing.stderr_))
    assert not hasattr(LogisticRegression(), "stderr_")


# ---- GaussianMixture -----------------------------------------------------------------------

def _faithful():
    return np.loadtxt(str(_bundled_faithful()), delimiter=",", skiprows=1)


def _unpack_mixture(theta, ct, K, D):
    w = np.empty(K)
    w[:K - 1] = theta[:K - 1]
    w[K - 1] = 1 - w[:K - 1].sum()
    i = K - 1
    mu = theta[i:i + K * D].reshape(K, D)
    i += K * D
    a, b = np.triu_indices(D)
    m = a.size

    def sym(v):
        S = np.zeros((D, D))
        S[a, b] = v
        S[b, a] = v
        return S
    if ct == "tied":
        return w, mu, [sym(theta[i:i + m])] * K
    covs = []
    for _ in range(K):
        if ct == "full":
            covs.append(sym(theta[i:i + m]))
            i += m
        elif ct == "diag":
            covs.append(np.diag(theta[i:i + D]))
            i += D
        else:
            covs.append(theta[i] * np.eye(D))
            i += 1
    return w, mu, covs


def _mixture_loglik(theta, X, ct, K, sw=None):
    D = X.shape[1]
    w, mu, covs = _unpack_mixture(theta, ct, K, D)
    lp = np.stack([np.log(w[k]) + np.atleast_1d(stats.multivariate_normal(mu[k], covs[k]).logpdf(X))
                   for k in range(K)], axis=1)
    ll = logsumexp(lp, axis=1)
    return float(ll.sum() if sw is None else sw @ ll)


def _pack_mixture(gm):
    ct = gm.covariance_type
    K, D = gm.means_.shape
    a, b = np.triu_indices(D)
    c = gm.covariances_
    parts = [gm.weights_[:K - 1], gm.means_.ravel()]
    if ct == "full":
        parts += [ck[a, b] for ck in c]
    elif ct == "tied":
        parts.append(c[a, b])
    else:
        parts.append(np.ravel(c))
    return np.concatenate(parts)


def _fd_mixture_se(gm, X, sw=None):
    K, D = gm.means_.shape
    ct = gm.covariance_type
    H = fd_hessian(lambda t: _mixture_loglik(t, X, ct, K, sw), _pack_mixture(gm))
    V = np.linalg.inv(-H)
    se = np.sqrt(np.diag(V))
    se_w = np.append(se[:K - 1], np.sqrt(V[:K - 1, :K - 1].sum()))
    return se_w, se[K - 1:K - 1 + K * D].reshape(K, D), se[K - 1 + K * D:]


@pytest.mark.parametrize("columns", [[0], [0, 1]], ids=["eruptions", "both"])
@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_mixture_stderr_matches_finite_difference_hessian(ct, columns):
    X = _faithful()[:, columns]
    gm = GaussianMixture(2, covariance_type=ct, random_state=0, tol=1e-8).fit(X)
    se = gm.stderr(X)
    assert set(se) == {"weights", "means", "covariances"}
    assert se["weights"].shape == gm.weights_.shape
    assert se["means"].shape == gm.means_.shape
    assert se["covariances"].shape == np.shape(gm.covariances_)
    w, m, c = _fd_mixture_se(gm, X)
    np.testing.assert_allclose(se["weights"], w, rtol=1e-3)
    np.testing.assert_allclose(se["means"], m, rtol=1e-3)
    D = X.shape[1]
    if ct in ("full", "tied"):
        a, b = np.triu_indices(D)
        cov = se["covariances"].reshape(-1, D, D)
        got = np.concatenate([ck[a, b] for ck in cov])
        np.testing.assert_allclose(cov, np.swapaxes(cov, 1, 2))
    else:
        got = np.ravel(se["covariances"])
    np.testing.assert_allclose(got, c, rtol=1e-3)
    # the two weights are one parameter: equal standard errors
    assert se["weights"][0] == pytest.approx(se["weights"][1], rel=1e-10)


def test_mixture_stderr_is_not_the_outer_product_form():
    """The exact Hessian differs from the empirical (OPG) information at the fit."""
    X = _faithful()[:, :1]
    gm = GaussianMixture(2, random_state=0, tol=1e-8).fit(X)
    from maxlik import _sources
    from maxlik._mixture_stderr import observed_information

    info, _ = observed_information(_sources.make_source(X, dtype=np.float64), gm.parameters())
    H = fd_hessian(lambda t: _mixture_loglik(t, X, "full", 2), _pack_mixture(gm))
    np.testing.assert_allclose(info, -H, rtol=1e-4, atol=1e-4 * np.abs(H).max())


def test_mixture_stderr_weights_three_components_and_sources(tmp_path):
    rng = np.random.default_rng(9)
    X = np.concatenate([rng.normal(m, 1.0, size=(120, 2)) for m in (-4, 0, 4)])
    sw = rng.integers(1, 3, size=X.shape[0]).astype(float)
    gm = GaussianMixture(3, covariance_type="full", random_state=0, tol=1e-8).fit(
        X, sample_weight=sw)
    se = gm.stderr(X, sample_weight=sw)
    w, m, c = _fd_mixture_se(gm, X, sw)
    np.testing.assert_allclose(se["weights"], w, rtol=1e-3)
    np.testing.assert_allclose(se["means"], m, rtol=1e-3)
    # frequency weights = repeated rows
    rep = gm.stderr(np.repeat(X, sw.astype(int), axis=0))
    np.testing.assert_allclose(rep["covariances"], se["covariances"], rtol=1e-10)
    path = tmp_path / "X.npy"
    np.save(path, X)
    mm = gm.stderr(np.load(path, mmap_mode="r"), sample_weight=sw)
    np.testing.assert_allclose(mm["means"], se["means"], rtol=1e-10)
    da = pytest.importorskip("dask.array")
    dk = gm.stderr(da.from_array(X, chunks=(64, 2)), sample_weight=da.from_array(sw, chunks=64))
    for k in se:
        np.testing.assert_allclose(dk[k], se[k], rtol=1e-9)


def test_mixture_stderr_one_component_is_fit_gaussian():
    rng = np.random.default_rng(10)
    X = rng.normal(size=(200, 2)) @ np.array([[1.0, 0.3], [0.0, 0.8]])
    for ct in ("full", "diag", "spherical"):
        gm = GaussianMixture(1, covariance_type=ct, reg_covar=0.0).fit(X)
        se = gm.stderr(X)
        fit = fit_gaussian(X, covariance_type=ct)
        np.testing.assert_allclose(se["weights"], [0.0])
        np.testing.assert_allclose(se["means"][0], fit.stderr_mean, rtol=1e-8)
        np.testing.assert_allclose(np.reshape(se["covariances"], np.shape(fit.stderr_covariance)),
                                   fit.stderr_covariance, rtol=1e-8)


def test_mixture_stderr_bad_input():
    X = _faithful()
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        gm.stderr(X[:, :1])
    with pytest.raises(maxlik.exceptions.NotFittedError):
        GaussianMixture(2).stderr(X)
    # far from a maximum for these rows: the information is not positive definite
    with pytest.warns(UserWarning, match="positive definite"):
        se = gm.stderr(X[:3] * [1.0, 0.0] + [0.0, 70.0])
    assert np.all(np.isnan(se["means"]))


def test_logit_stderr_features_of_extreme_magnitude():
    """Columns ~1e300 (squares overflow): the Hessian is formed in rescaled columns."""
    X, y = _logit_data(n=300, seed=11)
    s = np.array([1e300, 1.0, 1e-3])
    a = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no overflow warnings either
        b = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X * s, y)
        se = b.stderr_
    np.testing.assert_allclose(se, a.stderr_ / s, rtol=1e-6)
    np.testing.assert_allclose(b.intercept_stderr_, a.intercept_stderr_, rtol=1e-6)


@pytest.mark.parametrize("Est", [LinearRegression, LogisticRegression])
def test_stderr_sparse_equals_dense(Est):
    sp = pytest.importorskip("scipy.sparse")
    rng = np.random.default_rng(13)
    X = sp.random(300, 5, density=0.5, format="csr", random_state=13)
    y = rng.integers(0, 3, 300)
    if Est is LinearRegression:
        y = y.astype(float)
    try:
        a = Est().fit(X, y)
    except TypeError:
        pytest.skip(f"{Est.__name__} does not take sparse X in this build")
    b = Est().fit(X.toarray(), y)
    np.testing.assert_allclose(a.stderr_, b.stderr_, rtol=1e-6)
    np.testing.assert_allclose(a.intercept_stderr_, b.intercept_stderr_, rtol=1e-6)


def test_logistic_compute_stderr_is_the_eager_pass(monkeypatch):
    """Past the eager limit, compute_stderr(X, y) gives what fit computes below it."""
    from maxlik import _inference

    X, y = _logit_data(n=400, D=4, K=3, seed=11)
    w = np.random.default_rng(3).uniform(0.5, 2.0, len(y))
    eager = LogisticRegression(tol=1e-10).fit(X, y, sample_weight=w)
    monkeypatch.setattr(_inference, "LOGISTIC_EAGER_PARAMS", 2)
    lazy = LogisticRegression(tol=1e-10).fit(X, y, sample_weight=w)
    with pytest.raises(AttributeError, match="compute_stderr"):
        lazy.stderr_  # noqa: B018
    assert lazy.compute_stderr(X, y, sample_weight=w) is lazy
    np.testing.assert_array_equal(lazy.stderr_, eager.stderr_)
    np.testing.assert_array_equal(lazy.intercept_stderr_, eager.intercept_stderr_)
    with pytest.raises(ValueError, match="not fitted on"):
        lazy.compute_stderr(X, np.where(y == y[0], "zzz", y) if y.dtype.kind == "U" else y + 100)
    with pytest.raises(ValueError, match="features"):
        lazy.compute_stderr(X[:, :2], y)
    with pytest.raises(maxlik.exceptions.NotFittedError):
        LogisticRegression().compute_stderr(X, y)
