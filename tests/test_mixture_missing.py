"""GaussianMixture(missing="marginalize"): EM with NaN entries missing at random.

The reference is a plain per-row EM written here (for every row and component:
slice Σ_oo, solve, conditional mean and covariance of the missing block), run
from the same initial parameters as the C++ fit; densities are checked against
scipy.stats.multivariate_normal on the observed coordinates.
"""
import warnings

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import maxlik
from maxlik import GaussianMixture
from maxlik.exceptions import ConvergenceWarning

CTYPES = ["full", "tied", "diag", "spherical"]


# ---- data -------------------------------------------------------------------------

def correlated_mixture(n=600, D=4, seed=0):
    """Two well-separated components with strongly correlated features."""
    rng = np.random.default_rng(seed)
    out, lab = [], []
    for k, (shift, n_k) in enumerate([(0.0, n // 3), (5.0, n - n // 3)]):
        A = rng.normal(size=(D, D)) * 0.6 + np.eye(D)
        cov = A @ A.T + 0.1 * np.eye(D)
        out.append(rng.multivariate_normal(np.full(D, shift) + rng.normal(size=D), cov, n_k))
        lab.append(np.full(n_k, k))
    X = np.concatenate(out)
    perm = rng.permutation(X.shape[0])
    return X[perm], np.concatenate(lab)[perm]


def knock_out(X, frac, seed=1):
    rng = np.random.default_rng(seed)
    Xm = X.copy()
    Xm[rng.random(X.shape) < frac] = np.nan
    return Xm


def initial_parameters(X, ctype, K=2, seed=3):
    """Reasonable, fixed initial parameters (in scikit-learn's *_init shapes)."""
    rng = np.random.default_rng(seed)
    D = X.shape[1]
    mu = np.nanmean(X, axis=0)
    sd = np.nanstd(X, axis=0)
    means = mu + rng.normal(size=(K, D)) * sd
    weights = np.full(K, 1.0 / K)
    var = sd**2
    prec = {
        "full": np.stack([np.diag(1 / var) for _ in range(K)]),
        "tied": np.diag(1 / var),
        "diag": np.tile(1 / var, (K, 1)),
        "spherical": np.full(K, 1 / var.mean()),
    }[ctype]
    return weights, means, prec


# ---- the reference: per-row EM with missing values ---------------------------------

def full_covariances(ctype, cov, K, D):
    if ctype == "full":
        return np.asarray(cov, float)
    if ctype == "tied":
        return np.broadcast_to(cov, (K, D, D)).copy()
    if ctype == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(D) for c in cov])


def reference_loglik(X, weights, means, covs):
    """(N, K) log π_k + log N(x_o | μ_o, Σ_oo) per row (0 + log π_k for no observed entry)."""
    N = X.shape[0]
    K = len(weights)
    out = np.empty((N, K))
    for n in range(N):
        o = ~np.isnan(X[n])
        for k in range(K):
            lp = 0.0
            if o.any():
                lp = multivariate_normal(means[k][o], covs[k][np.ix_(o, o)]).logpdf(X[n][o])
            out[n, k] = np.log(weights[k]) + lp
    return out


def reference_em(X, ctype, weights, means, covs, n_iter, reg_covar, sw=None):
    """Plain EM for incomplete data; returns (lower bounds, weights, means, covs (K, D, D))."""
    N, D = X.shape
    K = len(weights)
    sw = np.ones(N) if sw is None else np.asarray(sw, float)
    keep = ~np.isnan(X).all(axis=1)  # rows with no observed entry carry no information
    covs = np.array(covs, float)
    weights, means = np.array(weights, float), np.array(means, float)
    bounds = []
    for _ in range(n_iter):
        lp = reference_loglik(X, weights, means, covs)
        ll = logsumexp(lp, axis=1)
        bounds.append(float(np.sum((sw * ll)[keep]) / np.sum(sw[keep])))
        gam = np.exp(lp - ll[:, None]) * (sw * keep)[:, None]
        nk = gam.sum(axis=0)
        xhat = np.empty((K, N, D))
        ccov = np.zeros((K, N, D, D))
        for n in range(N):
            o = ~np.isnan(X[n])
            m = ~o
            for k in range(K):
                x = X[n].copy()
                if m.any() and o.any():
                    S = covs[k]
                    Soo = S[np.ix_(o, o)]
                    Smo = S[np.ix_(m, o)]
                    x[m] = means[k][m] + Smo @ np.linalg.solve(Soo, X[n][o] - means[k][o])
                    ccov[k, n][np.ix_(m, m)] = S[np.ix_(m, m)] - Smo @ np.linalg.solve(Soo, Smo.T)
                elif m.any():
                    x[:] = means[k]
                    ccov[k, n] = covs[k]
                xhat[k, n] = x
        new_means = np.einsum("nk,knd->kd", gam, xhat) / nk[:, None]
        scat = np.empty((K, D, D))
        for k in range(K):
            d = xhat[k] - new_means[k]
            scat[k] = (gam[:, k, None] * d).T @ d + np.einsum("n,nij->ij", gam[:, k], ccov[k])
        if ctype == "full":
            covs = scat / nk[:, None, None] + reg_covar * np.eye(D)
        elif ctype == "tied":
            covs = np.broadcast_to(scat.sum(axis=0) / nk.sum() + reg_covar * np.eye(D),
                                   (K, D, D)).copy()
        elif ctype == "diag":
            v = np.einsum("kii->ki", scat) / nk[:, None] + reg_covar
            covs = np.stack([np.diag(x) for x in v])
        else:
            v = np.einsum("kii->k", scat) / (D * nk) + reg_covar
            covs = np.stack([x * np.eye(D) for x in v])
        weights = nk / nk.sum()
        means = new_means
    return bounds, weights, means, covs


def fitted_full_covariances(gm):
    K, D = gm.means_.shape
    return full_covariances(gm.covariance_type, gm.covariances_, K, D)


def fit_quiet(gm, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return gm.fit(X, **kw)


# ---- tests -----------------------------------------------------------------------

@pytest.mark.parametrize("ctype", CTYPES)
def test_matches_reference_em(ctype):
    X, _ = correlated_mixture(n=240, D=4)
    Xm = knock_out(X, 0.25)
    Xm[7] = np.nan  # a row with nothing observed
    w0, m0, p0 = initial_parameters(Xm, ctype)
    n_iter = 12
    gm = GaussianMixture(2, covariance_type=ctype, missing="marginalize", weights_init=w0,
                         means_init=m0, precisions_init=p0, max_iter=n_iter, tol=0.0,
                         reg_covar=1e-6)
    fit_quiet(gm, Xm)
    K, D = m0.shape
    cov0 = np.linalg.inv(p0) if ctype in ("full", "tied") else 1.0 / p0
    bounds, w, m, covs = reference_em(Xm, ctype, w0, m0, full_covariances(ctype, cov0, K, D),
                                      n_iter, 1e-6)
    assert len(gm.lower_bounds_) == n_iter
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-8)
    np.testing.assert_allclose(gm.weights_, w, rtol=1e-7)
    np.testing.assert_allclose(gm.means_, m, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fitted_full_covariances(gm), covs, rtol=1e-7, atol=1e-9)


def test_matches_reference_with_sample_weight():
    X, _ = correlated_mixture(n=200, D=3, seed=4)
    Xm = knock_out(X, 0.3, seed=5)
    sw = np.random.default_rng(6).uniform(0.2, 2.0, size=X.shape[0])
    w0, m0, p0 = initial_parameters(Xm, "full")
    gm = GaussianMixture(2, missing="marginalize", weights_init=w0, means_init=m0,
                         precisions_init=p0, max_iter=6, tol=0.0)
    fit_quiet(gm, Xm, sample_weight=sw)
    bounds, w, m, covs = reference_em(Xm, "full", w0, m0, np.linalg.inv(p0), 6, 1e-6, sw)
    np.testing.assert_allclose(gm.lower_bounds_, bounds, rtol=1e-8)
    np.testing.assert_allclose(gm.covariances_, covs, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("ctype", CTYPES)
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_without_nan_identical_to_ordinary_fit(ctype, init_params):
    X, _ = correlated_mixture(n=300, D=3, seed=2)
    kw = dict(n_components=2, covariance_type=ctype, init_params=init_params, random_state=0,
              max_iter=20)
    a = fit_quiet(GaussianMixture(**kw), X)
    b = fit_quiet(GaussianMixture(missing="marginalize", **kw), X)
    assert a.lower_bounds_ == b.lower_bounds_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("ctype", CTYPES)
def test_monotone_lower_bound_every_init(init_params, ctype):
    X, _ = correlated_mixture(n=400, D=4, seed=7)
    Xm = knock_out(X, 0.2, seed=8)
    gm = fit_quiet(GaussianMixture(2, covariance_type=ctype, init_params=init_params,
                                   missing="marginalize", random_state=1, max_iter=60,
                                   tol=1e-10), Xm)
    lb = np.asarray(gm.lower_bounds_)
    assert np.all(np.isfinite(lb))
    assert np.all(np.diff(lb) >= -1e-12 * np.abs(lb[1:])), np.diff(lb).min()
    assert np.isclose(gm.lower_bound_, lb[-1])


def test_imputation_beats_column_means():
    X, _ = correlated_mixture(n=1500, D=5, seed=11)
    Xm = knock_out(X, 0.2, seed=12)
    miss = np.isnan(Xm)
    gm = fit_quiet(GaussianMixture(2, missing="marginalize", random_state=0, max_iter=200), Xm)
    Xi = gm.impute(Xm)
    assert not np.isnan(Xi).any()
    # observed entries unchanged, bit for bit
    assert np.array_equal(Xi[~miss], Xm[~miss])
    rmse = np.sqrt(np.mean((Xi[miss] - X[miss]) ** 2))
    col = np.where(miss, np.nanmean(Xm, axis=0), Xm)
    rmse_col = np.sqrt(np.mean((col[miss] - X[miss]) ** 2))
    assert rmse < 0.5 * rmse_col, (rmse, rmse_col)


def test_impute_is_the_posterior_mix_of_conditional_means():
    X, _ = correlated_mixture(n=300, D=4, seed=13)
    Xm = knock_out(X, 0.3, seed=14)
    Xm[3] = np.nan
    gm = fit_quiet(GaussianMixture(2, missing="marginalize", random_state=0), Xm)
    covs = gm.covariances_
    lp = reference_loglik(Xm, gm.weights_, gm.means_, covs)
    post = np.exp(lp - logsumexp(lp, axis=1)[:, None])
    ref = Xm.copy()
    for n in range(Xm.shape[0]):
        o = ~np.isnan(Xm[n])
        m = ~o
        if not m.any():
            continue
        val = np.zeros(m.sum())
        for k in range(2):
            S = covs[k]
            if o.any():
                cm = gm.means_[k][m] + S[np.ix_(m, o)] @ np.linalg.solve(
                    S[np.ix_(o, o)], Xm[n][o] - gm.means_[k][o])
            else:
                cm = gm.means_[k]
            val += post[n, k] * cm
        ref[n, m] = val
    np.testing.assert_allclose(gm.impute(Xm), ref, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(gm.impute(Xm)[3], gm.weights_ @ gm.means_, rtol=1e-12)


@pytest.mark.parametrize("ctype", CTYPES)
def test_score_samples_is_the_marginal_density(ctype):
    X, _ = correlated_mixture(n=200, D=4, seed=15)
    Xm = knock_out(X, 0.3, seed=16)
    Xm[0] = np.nan
    gm = fit_quiet(GaussianMixture(2, covariance_type=ctype, missing="marginalize",
                                   random_state=0), Xm)
    K, D = gm.means_.shape
    lp = reference_loglik(Xm, gm.weights_, gm.means_, fitted_full_covariances(gm))
    np.testing.assert_allclose(gm.score_samples(Xm), logsumexp(lp, axis=1), rtol=1e-10,
                               atol=1e-12)
    assert gm.score_samples(Xm)[0] == pytest.approx(0.0, abs=1e-12)
    post = np.exp(lp - logsumexp(lp, axis=1)[:, None])
    np.testing.assert_allclose(gm.predict_proba(Xm), post, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gm.predict_proba(Xm)[0], gm.weights_, rtol=1e-12)
    np.testing.assert_array_equal(gm.predict(Xm)[1:], post[1:].argmax(axis=1))
    assert gm.score(Xm) == pytest.approx(np.mean(logsumexp(lp, axis=1)), rel=1e-10)
    # rows without NaN: the ordinary densities
    full = ~np.isnan(Xm).any(axis=1)
    ordinary = GaussianMixture(2, covariance_type=ctype)
    ordinary.__dict__.update({k: v for k, v in gm.__dict__.items() if k.endswith("_")})
    np.testing.assert_allclose(gm.score_samples(Xm[full]), ordinary.score_samples(Xm[full]),
                               rtol=1e-12)


@pytest.mark.parametrize("ctype", ["full", "diag"])
def test_bic_aic_use_the_observed_data_likelihood(ctype):
    X, _ = correlated_mixture(n=200, D=3, seed=25)
    Xm = knock_out(X, 0.25, seed=26)
    Xm[:3] = np.nan  # no observation: not counted in n
    gm = fit_quiet(GaussianMixture(2, covariance_type=ctype, missing="marginalize",
                                   random_state=0), Xm)
    ll = logsumexp(reference_loglik(Xm, gm.weights_, gm.means_, fitted_full_covariances(gm)),
                   axis=1).sum()
    K, D = gm.means_.shape
    p = (K - 1) + K * D + (K * D * (D + 1) // 2 if ctype == "full" else K * D)
    n = int((~np.isnan(Xm)).any(axis=1).sum())
    assert n <= Xm.shape[0] - 3
    assert gm.bic(Xm) == pytest.approx(-2 * ll + p * np.log(n), rel=1e-10)
    assert gm.aic(Xm) == pytest.approx(-2 * ll + 2 * p, rel=1e-10)
    # without NaN: sklearn's formula on the same rows
    full = ~np.isnan(Xm).any(axis=1)
    ll_full = logsumexp(reference_loglik(Xm[full], gm.weights_, gm.means_,
                                         fitted_full_covariances(gm)), axis=1).sum()
    assert gm.bic(Xm[full]) == pytest.approx(-2 * ll_full + p * np.log(full.sum()), rel=1e-10)
    with pytest.raises(ValueError, match="NaN"):  # the default still refuses NaN
        GaussianMixture(2, covariance_type=ctype).fit(X).bic(Xm)


def test_rows_with_nothing_observed_are_ignored_by_the_fit():
    X, _ = correlated_mixture(n=300, D=3, seed=17)
    Xm = knock_out(X, 0.2, seed=18)
    Xm[(Xm.shape[0] // 2):(Xm.shape[0] // 2 + 5)] = np.nan
    keep = ~np.isnan(Xm).all(axis=1)
    w0, m0, p0 = initial_parameters(Xm, "full")
    kw = dict(missing="marginalize", weights_init=w0, means_init=m0, precisions_init=p0,
              max_iter=10, tol=0.0)
    a = fit_quiet(GaussianMixture(2, **kw), Xm)
    b = fit_quiet(GaussianMixture(2, **kw), Xm[keep])
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-11)


def test_memmap_and_dask_equal_in_memory(tmp_path):
    X, _ = correlated_mixture(n=3000, D=4, seed=19)
    Xm = knock_out(X, 0.2, seed=20)
    Xm[:1100] = X[:1100]  # the first blocks have no NaN: both kernels in one fit
    Xm[2000] = np.nan
    kw = dict(n_components=3, missing="marginalize", random_state=0, max_iter=15, tol=0.0)
    ref = fit_quiet(GaussianMixture(**kw), Xm)
    path = tmp_path / "x.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=Xm.dtype, shape=Xm.shape)
    mm[:] = Xm
    mm.flush()
    mm = np.load(path, mmap_mode="r")
    got = fit_quiet(GaussianMixture(block_size=512, **kw), mm)
    np.testing.assert_allclose(got.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.score_samples(mm), ref.score_samples(Xm), rtol=1e-12,
                               atol=1e-12)
    np.testing.assert_array_equal(got.impute(mm)[~np.isnan(Xm)], Xm[~np.isnan(Xm)])
    da = pytest.importorskip("dask.array")
    dx = da.from_array(Xm, chunks=(700, 4))
    got = fit_quiet(GaussianMixture(**kw), dx)
    np.testing.assert_allclose(got.lower_bounds_, ref.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.covariances_, ref.covariances_, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(np.asarray(got.predict_proba(dx)), ref.predict_proba(Xm),
                               rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(np.asarray(got.impute(dx)), ref.impute(Xm), rtol=1e-9)


def test_thread_count_does_not_change_the_fit():
    X, _ = correlated_mixture(n=5000, D=5, seed=21)
    Xm = knock_out(X, 0.2, seed=22)
    kw = dict(n_components=3, missing="marginalize", random_state=0, max_iter=8, tol=0.0)
    old = maxlik.get_num_threads()
    try:
        maxlik.set_num_threads(1)
        a = fit_quiet(GaussianMixture(**kw), Xm)
        maxlik.set_num_threads(2)
        b = fit_quiet(GaussianMixture(**kw), Xm)
    finally:
        maxlik.set_num_threads(old)
    assert a.lower_bounds_ == b.lower_bounds_
    np.testing.assert_array_equal(a.covariances_, b.covariances_)


def test_float32():
    X, _ = correlated_mixture(n=400, D=3, seed=23)
    Xm = knock_out(X, 0.2, seed=24)
    a = fit_quiet(GaussianMixture(2, missing="marginalize", random_state=0), Xm)
    b = fit_quiet(GaussianMixture(2, missing="marginalize", random_state=0),
                  Xm.astype(np.float32))
    assert b.means_.dtype == np.float32
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-3, atol=1e-3)
    Xi = b.impute(Xm.astype(np.float32))
    assert Xi.dtype == np.float32 and not np.isnan(Xi).any()
    assert b.score_samples(Xm.astype(np.float32)).dtype == np.float32


def test_bad_input():
    X, _ = correlated_mixture(n=100, D=3, seed=25)
    Xm = knock_out(X, 0.2, seed=26)
    for bad in ("drop", "", None, 1):
        with pytest.raises(ValueError, match="missing"):
            GaussianMixture(2, missing=bad).fit(X)
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GaussianMixture(2).fit(Xm)
    gm = fit_quiet(GaussianMixture(2, missing="marginalize", random_state=0), Xm)
    Xinf = Xm.copy()
    Xinf[4, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        GaussianMixture(2, missing="marginalize").fit(Xinf)
    for method in ("score_samples", "predict", "predict_proba", "impute"):
        with pytest.raises(ValueError, match="infinity"):
            getattr(gm, method)(Xinf)
    plain = fit_quiet(GaussianMixture(2, random_state=0), X)
    with pytest.raises(ValueError, match="NaN"):
        plain.score_samples(Xm)
    Xc = Xm.copy()
    Xc[:, 2] = np.nan
    with pytest.raises(ValueError, match="column 2"):
        GaussianMixture(2, missing="marginalize").fit(Xc)


def test_reseed_with_missing_values():
    # identical complete rows collapse a component (reg_covar=0); the re-seed picks
    # the worst-explained row from the NaN-filled rows, and the fit goes on
    rng = np.random.default_rng(27)
    X = np.concatenate([rng.normal(size=(300, 3)), np.tile([[5.0, 5.0, 5.0]], (40, 1))])
    Xm = X.copy()
    Xm[:300][rng.random((300, 3)) < 0.15] = np.nan
    kw = dict(n_components=3, reg_covar=0.0, missing="marginalize", random_state=0,
              max_iter=50)
    with pytest.raises(ValueError, match="reg_covar"):
        fit_quiet(GaussianMixture(**kw), Xm)
    gm = fit_quiet(GaussianMixture(on_collapse="reseed", **kw), Xm)
    assert gm.n_reseeds_ > 0
    assert np.all(np.isfinite(gm.means_)) and np.all(np.isfinite(gm.covariances_))
    assert np.all(np.isfinite(gm.lower_bounds_))
