"""Hardening (issue 11 item 6): memory guards, data near the float64 limits,
all-or-nothing ``grad_out``, and the limits of the losses at infinite logits.

1. Requests whose output or scratch cannot fit raise MemoryError, naming the size,
   before anything is allocated. The machine's memory limit is patched down to a
   few MB, so that each case is one a missing guard would *not* refuse (it would
   allocate a few tens of MB and return).
2. Finite data near DBL_MAX give correct finite results (exact power-of-two
   rescaling) or a ValueError that names the argument and says to rescale, never
   inf / NaN.
3. A loss call interrupted by Ctrl-C (polled by the kernels between row blocks)
   or failing part-way leaves the caller's ``grad_out`` bit-identical to before.
4. ``binary_cross_entropy_with_logits`` and ``softmax_cross_entropy`` at +-inf
   logits give the limits (loss +inf or finite, finite gradients), checked
   against limits derived independently here and against large finite logits.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import maxlik
import maxlik._validation as V
from maxlik import binary_cross_entropy_with_logits as bce
from maxlik import softmax_cross_entropy as ce

INF = np.inf
bc = np.broadcast_to

# ================================================================ 1. memory guards

_NEED = r"would need \d+ bytes, more than the \d+ bytes of memory"


def test_brief_example_raises_memoryerror_at_once():
    X = np.zeros((10**6, 2))
    means = np.zeros((2 * 10**7, 2))
    cov = np.ones((2 * 10**7, 2))
    t0 = time.perf_counter()
    with pytest.raises(MemoryError, match=r"gaussian_logpdf output \(N, K\) of shape "
                                          r"\(1000000, 20000000\).*" + _NEED):
        maxlik.gaussian_logpdf(X, means, cov, covariance_type="diag")
    # before any O(K) work on the 2e7 covariances (numpy's own refusal came after ~5 s)
    assert time.perf_counter() - t0 < 2.0


@pytest.fixture
def small_memory(monkeypatch):
    """Pretend the process can use 8 MB: the guards must refuse what exceeds it."""
    limit = 8 << 20
    monkeypatch.setattr(V, "_memory_limit_bytes", lambda: limit)
    return limit


def _fitted_kmeans(K=1000):
    X = np.random.default_rng(0).normal(size=(K, 2))
    return maxlik.KMeans(K, init=X, n_init=1, max_iter=1).fit(X)


def _fitted_gmm():
    X = np.random.default_rng(0).normal(size=(200, 1))
    return maxlik.GaussianMixture(2, random_state=0).fit(X)


def _fitted_logreg():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 1))
    return maxlik.LogisticRegression().fit(X, np.digitize(X[:, 0], [-0.5, 0.5]))


def _spherical_params(K):
    return maxlik.MixtureParameters("spherical", np.full(K, 1.0 / K), np.zeros((K, 1)),
                                    np.ones(K))


# name -> (setup run before the limit is lowered, call under the limit, message pattern).
# Every call's inputs are far below the limit; its output / scratch is above it.
_GUARDED = {
    "gaussian_logpdf N x K": (
        lambda: None,
        lambda _: maxlik.gaussian_logpdf(np.zeros((2000, 2)), np.zeros((1000, 2)), np.ones(1000),
                                         "spherical"),
        r"gaussian_logpdf output \(N, K\) of shape \(2000, 1000\)"),
    "KMeans.transform": (
        _fitted_kmeans,
        lambda km: km.transform(np.zeros((2000, 2))),
        r"KMeans.transform output \(n_samples, n_clusters\) of shape \(2000, 1000\)"),
    "KMeans.fit_transform": (
        lambda: None,
        lambda _: maxlik.KMeans(400, init=np.arange(800.0).reshape(400, 2), n_init=1,
                                max_iter=1).fit_transform(np.arange(8000.0).reshape(4000, 2)),
        r"KMeans.transform output"),
    "mixture scratch for large K": (
        lambda: _spherical_params(3000),
        lambda p: maxlik.mixture_statistics(np.zeros((10, 1)), p),
        r"E-step statistics and scratch for n_components=3000"),
    "GaussianMixture.predict_proba": (
        _fitted_gmm,
        lambda gm: gm.predict_proba(np.zeros((600_000, 1))),
        r"result \(N, K\) of shape \(600000, 2\)"),
    "GaussianMixture.sample": (
        _fitted_gmm,
        lambda gm: gm.sample(2_000_000),
        r"samples \(n_samples, D\)"),
    "LogisticRegression.predict_proba": (
        _fitted_logreg,
        lambda clf: clf.predict_proba(np.zeros((400_000, 1))),
        r"class scores \(n_samples, n_classes\) of shape \(400000, 3\)"),
    "bce reduction=none": (
        lambda: np.zeros(600_000),
        lambda z: bce(z, z, reduction="none", return_grad=True),
        r"binary_cross_entropy_with_logits outputs"),
    "bce broadcast logits": (
        lambda: None,
        lambda _: bce(bc(np.zeros((1, 1)), (2000, 1000)), bc(np.zeros((1, 1)), (2000, 1000)),
                      reduction="none"),
        r"C-contiguous copy of logits of shape \(2000, 1000\)"),
    "bce broadcast weight": (
        lambda: np.zeros(3_000_000, np.float32),
        lambda z: bce(z, z, weight=np.float32(2.0), reduction="none"),
        r"weight broadcast to the logits' shape"),
    "mse reduction=none": (
        lambda: np.zeros(600_000),
        lambda z: maxlik.mse(z, z, reduction="none", return_grad=True),
        r"mse outputs"),
    "gaussian_nll broadcast var": (
        lambda: np.zeros(600_000),
        lambda z: maxlik.gaussian_nll(z, z, 1.0, reduction="none"),
        r"gaussian_nll outputs"),
    "softmax_cross_entropy grad": (
        lambda: (np.zeros((1000, 1200)), np.zeros(1000, dtype=np.int64)),
        lambda a: ce(a[0], a[1], reduction="none", return_grad=True),
        r"softmax_cross_entropy outputs"),
    "softmax of a broadcast": (
        lambda: None,
        lambda _: maxlik.softmax(bc(np.zeros(1), (2_000_000,))),
        r"softmax output of shape \(2000000,\)"),
    "log_softmax of a broadcast": (
        lambda: None,
        lambda _: maxlik.log_softmax(bc(np.zeros((1, 1)), (2000, 1000)), axis=1),
        r"log_softmax output of shape \(2000, 1000\)"),
    "entropy of a broadcast": (
        lambda: None,
        lambda _: maxlik.entropy(bc(np.full((1, 1), 1.0), (2000, 1000)), normalize=True),
        r"contiguous copy of the distributions of shape \(2000, 1000\)"),
    "kl_to_standard_normal of a broadcast": (
        lambda: None,
        lambda _: maxlik.kl_to_standard_normal(bc(np.zeros((1, 1)), (2000, 1000)),
                                               bc(np.zeros((1, 1)), (2000, 1000))),
        r"copies of mu / logvar"),
    "gaussian_kl broadcast batch": (
        lambda: None,
        lambda _: maxlik.gaussian_kl(np.zeros((1000, 1, 2)), np.ones((1000, 1, 2)),
                                     np.zeros((1, 1000, 2)), np.ones((1, 1000, 2)),
                                     covariance_type="diag"),
        r"gaussian_kl temporaries of the broadcast batch"),
    "gaussian_kl full broadcast batch": (
        lambda: None,
        lambda _: maxlik.gaussian_kl(np.zeros((300, 1, 2)), np.eye(2), np.zeros((1, 300, 2)),
                                     np.eye(2)),
        r"gaussian_kl \(batch, D, D\) temporaries"),
    "fit_categorical n_categories": (
        lambda: None,
        lambda _: maxlik.fit_categorical([0, 1], n_categories=10**6),
        r"per-category arrays for 1000000 categories"),
}


@pytest.mark.parametrize("name", sorted(_GUARDED))
def test_guard_refuses_what_cannot_fit(name, monkeypatch):
    setup, call, pattern = _GUARDED[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        obj = setup()
    monkeypatch.setattr(V, "_memory_limit_bytes", lambda: 8 << 20)
    with pytest.raises(MemoryError, match=pattern + ".*" + _NEED):
        call(obj)


def test_guards_let_small_requests_through(small_memory):
    # the same functions well below the (patched) limit still work
    assert maxlik.gaussian_logpdf(np.zeros((20, 2)), np.zeros((10, 2)), np.ones(10),
                                  "spherical").shape == (20, 10)
    z = np.zeros(1000)
    loss, g = bce(z, z, reduction="none", return_grad=True)
    assert loss.shape == g.shape == (1000,)
    assert maxlik.softmax(bc(np.zeros(1), (1000,))).shape == (1000,)
    s = maxlik.mixture_statistics(np.zeros((10, 1)), _spherical_params(3))
    assert s.resp_sum.shape == (3,)


def test_score_samples_of_many_components_is_chunked(monkeypatch):
    # score_samples returns N values: with K large it works in row chunks of at most
    # ~4M values instead of the fixed 65536 rows (65536 x K values at once)
    K = 2000
    gm = maxlik.GaussianMixture(K, covariance_type="spherical")
    rng = np.random.default_rng(1)
    gm.weights_ = np.full(K, 1.0 / K)
    gm.means_ = rng.normal(size=(K, 1))
    gm.covariances_ = np.ones(K)
    gm.precisions_cholesky_ = np.ones(K)
    gm.precisions_ = np.ones(K)
    gm.n_features_in_ = 1
    X = rng.normal(size=(5000, 1))
    ref = gm.score_samples(X)
    monkeypatch.setattr(V, "_memory_limit_bytes", lambda: 48 << 20)  # < 65536 x 2000 x 8
    np.testing.assert_array_equal(gm.score_samples(X), ref)


def test_em_scratch_estimate_grows_with_k_and_full_statistics():
    code = maxlik.stats._TYPE_CODE
    small = maxlik._core._em_pass_bytes(8, code["spherical"], 10_000, 5, 10)
    big_k = maxlik._core._em_pass_bytes(8, code["spherical"], 10_000, 5, 10**6)
    full = maxlik._core._em_pass_bytes(8, code["full"], 10_000, 50, 100)
    assert big_k > 1000 * small
    # full covariance: K x D^2 doubles per task slot, with several task slots
    assert full > 100 * 50 * 50 * 8 * 2


# ================================================================ 2. near DBL_MAX

DBL_MAX = np.finfo(np.float64).max


def _data(n=200, d=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = X @ np.arange(1.0, d + 1) + 5 + 0.1 * rng.normal(size=n)
    return X, y


@pytest.mark.parametrize("scale_x", [DBL_MAX / 8, 1e300, 2.0**-1000])
def test_linear_regression_coefficients_near_the_limits(scale_x):
    X, y = _data()
    X[:, 0] += 10  # a positive column: its sum over the rows overflows near DBL_MAX
    ref = maxlik.LinearRegression().fit(X, y)
    Xs = X / np.abs(X).max() * scale_x  # largest entry = scale_x
    f = np.abs(X).max() / scale_x
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warnings either
        reg = maxlik.LinearRegression().fit(Xs, y)
    assert np.all(np.isfinite(reg.coef_)) and np.isfinite(reg.intercept_)
    np.testing.assert_allclose(reg.coef_ / f, ref.coef_, rtol=1e-9)
    np.testing.assert_allclose(reg.intercept_, ref.intercept_, rtol=1e-9)
    np.testing.assert_allclose(reg.noise_variance_, ref.noise_variance_, rtol=1e-9)
    np.testing.assert_allclose(reg.log_likelihood_, ref.log_likelihood_, rtol=1e-9)
    np.testing.assert_allclose(reg.predict(Xs), ref.predict(X), rtol=1e-9)
    assert abs(reg.score(Xs, y) - ref.score(X, y)) < 1e-12


def test_linear_regression_power_of_two_scaling_is_exact():
    X, y = _data()
    X += 3  # positive columns: sums over the 200 rows of X 2**1018 overflow
    ref = maxlik.LinearRegression().fit(X, y)
    reg = maxlik.LinearRegression().fit(np.ldexp(X, 1018), np.ldexp(y, 150))
    np.testing.assert_allclose(reg.coef_, np.ldexp(ref.coef_, -868), rtol=1e-13)
    np.testing.assert_allclose(reg.intercept_, np.ldexp(ref.intercept_, 150), rtol=1e-13)
    np.testing.assert_allclose(reg.noise_variance_, np.ldexp(ref.noise_variance_, 300),
                               rtol=1e-13)
    np.testing.assert_allclose(reg.singular_values_, np.ldexp(ref.singular_values_, 1018),
                               rtol=1e-13)
    np.testing.assert_allclose(reg.log_likelihood_, ref.log_likelihood_ - 200 * 150 * math.log(2),
                               rtol=1e-13)


def test_linear_regression_unrepresentable_noise_variance_is_a_valueerror():
    # y ~ 1e300: residuals of at least one ulp (~1e284) give a variance ~1e568
    X, y = _data()
    with pytest.raises(ValueError, match=r"noise_variance_ exceeds the float64 range.*rescale y"):
        maxlik.LinearRegression().fit(X, y * 1e300)
    with pytest.raises(ValueError, match=r"noise_variance_ falls below the float64 range.*"
                                         r"rescale y"):
        maxlik.LinearRegression().fit(X, y * 1e-300)


def test_linear_regression_score_of_huge_targets():
    X, y = _data()
    reg = maxlik.LinearRegression().fit(X, y)
    r2 = reg.score(X, y)
    reg.coef_ = reg.coef_ * 1e200
    reg.intercept_ = reg.intercept_ * 1e200
    assert abs(reg.score(X, y * 1e200) - r2) < 1e-12  # R^2 is scale invariant (was NaN)


def _two_groups(seed=0):
    """Groups of 50 rows at -1e160 and +1e160 with spreads 1e150 (resolvable: 1e-10
    relative): cross-group squared distances (~4e320) and x.c products overflow, the
    inertia (~1e302) does not. (Beyond ~1e170 no nonzero spread is both resolvable
    and of representable square: there the inertia must be an error, see below.)"""
    rng = np.random.default_rng(seed)
    A = -1e160 + rng.normal(size=(50, 2)) * 1e150
    B = 1e160 + rng.normal(size=(50, 2)) * 1e150
    return np.vstack([A, B]), A, B


@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
def test_kmeans_near_dbl_max_gives_the_exact_clustering(init):
    X, A, B = _two_groups()
    init_arg = X[[0, 99]] if init == "array" else init
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        km = maxlik.KMeans(2, init=init_arg, n_init=1, random_state=0).fit(X)
    assert len(set(km.labels_[:50])) == 1 and len(set(km.labels_[50:])) == 1
    assert km.labels_[0] != km.labels_[50]
    # independent float64 reference: deviations from each group's mean are representable
    ref_inertia = float(np.sum((A - A.mean(axis=0)) ** 2) + np.sum((B - B.mean(axis=0)) ** 2))
    assert math.isfinite(km.inertia_)
    np.testing.assert_allclose(km.inertia_, ref_inertia, rtol=1e-6)
    centres = km.cluster_centers_[[km.labels_[0], km.labels_[50]]]
    np.testing.assert_allclose(centres, [A.mean(axis=0), B.mean(axis=0)], rtol=1e-14)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_allclose(-km.score(X), ref_inertia, rtol=1e-6)
    d = km.transform(X)
    assert np.all(np.isfinite(d))
    ref_d = np.sqrt(np.sum((X[:, None, :] / 1e160 - km.cluster_centers_[None] / 1e160) ** 2,
                           axis=2)) * 1e160
    # within a group the distance (~1e150) is resolved to ulp(1e160) / 1e150 ~ 1e-6
    np.testing.assert_allclose(d, ref_d, rtol=1e-5)


def test_kmeans_power_of_two_scaling_is_exact():
    rng = np.random.default_rng(3)
    X = np.vstack([rng.normal(size=(100, 3)), rng.normal(size=(100, 3)) + 6])
    ref = maxlik.KMeans(3, random_state=0, n_init=2).fit(X)
    for e in (500, -500):  # squared distances ~2**(+-1000): beyond the unscaled kernels
        km = maxlik.KMeans(3, random_state=0, n_init=2).fit(np.ldexp(X, e))
        np.testing.assert_array_equal(km.labels_, ref.labels_)
        np.testing.assert_allclose(km.cluster_centers_, np.ldexp(ref.cluster_centers_, e),
                                   rtol=1e-12)
        np.testing.assert_allclose(km.inertia_, math.ldexp(ref.inertia_, 2 * e), rtol=1e-12)
        assert km.n_iter_ == ref.n_iter_


def test_kmeans_float32_beyond_the_float32_square_range():
    # float32 squares overflow beyond ~1.8e19; the inertia (float64) does not
    rng = np.random.default_rng(4)
    X = np.vstack([rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 8])
    ref = maxlik.KMeans(2, random_state=0).fit(X.astype(np.float32))
    km = maxlik.KMeans(2, random_state=0).fit((X * 1e30).astype(np.float32))
    np.testing.assert_array_equal(km.labels_, ref.labels_)
    assert math.isfinite(km.inertia_)
    np.testing.assert_allclose(km.inertia_, ref.inertia_ * 1e60, rtol=1e-5)


def test_kmeans_unrepresentable_inertia_is_a_valueerror():
    X, _ = _data()
    with pytest.raises(ValueError, match=r"X: the inertia .*exceeds the float64 range.*"
                                         r"rescale the data"):
        maxlik.KMeans(2, random_state=0).fit(X * 1e200)


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
def test_fit_gaussian_squares_beyond_dbl_max(ct):
    # 1000 rows of N(0, 2^1020): the scatter (a sum of 1000 squares ~2^1020) overflows,
    # the covariance itself (~2^1020) does not
    X0, _ = _data(n=1000)
    ref = maxlik.fit_gaussian(X0, covariance_type=ct)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = maxlik.fit_gaussian(np.ldexp(X0, 510), covariance_type=ct)
    np.testing.assert_allclose(fit.mean, np.ldexp(ref.mean, 510), rtol=1e-14)
    np.testing.assert_allclose(fit.covariance, np.ldexp(np.asarray(ref.covariance), 1020),
                               rtol=1e-13)
    assert np.all(np.isfinite(fit.covariance))
    np.testing.assert_allclose(fit.log_likelihood,
                               ref.log_likelihood - 1000 * 3 * 510 * math.log(2), rtol=1e-13)
    np.testing.assert_allclose(fit.stderr_mean, np.ldexp(ref.stderr_mean, 510), rtol=1e-13)


def test_fit_gaussian_near_dbl_max_with_weights_and_float32_is_ordinary():
    X0, _ = _data(n=50)
    w = np.random.default_rng(0).uniform(0.5, 2, 50)
    ref = maxlik.fit_gaussian(X0, sample_weight=w)
    fit = maxlik.fit_gaussian(X0 / np.abs(X0).max() * (DBL_MAX / 4) * 1e-150 * 1e-10,
                              sample_weight=w)
    assert np.all(np.isfinite(fit.covariance))
    f32 = maxlik.fit_gaussian((X0 * 1e37).astype(np.float32))  # squares in float64: fine
    assert np.all(np.isfinite(f32.covariance)) and math.isfinite(f32.log_likelihood)
    assert ref.n_samples == fit.n_samples


def test_fit_gaussian_unrepresentable_covariance_is_a_valueerror():
    X0, _ = _data()
    with pytest.raises(ValueError, match=r"X: the covariance of the data exceeds the float64 "
                                         r"range.*rescale the data"):
        maxlik.fit_gaussian(X0 * 1e300)
    with pytest.raises(ValueError, match=r"X: the variance .*falls below.*rescale the data"):
        maxlik.fit_gaussian(X0 * 1e-300, covariance_type="diag")


@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("ct", ["full", "tied", "diag", "spherical"])
def test_gaussian_mixture_near_dbl_max_is_a_valueerror(init, ct):
    X, _ = _data()
    X[:100] += 6
    with pytest.raises(ValueError, match=r"too large in magnitude.*rescale X"):
        maxlik.GaussianMixture(2, covariance_type=ct, init_params=init,
                               random_state=0).fit(X * 1e200)


@pytest.mark.parametrize("scale", [1e100, 1e150, 1e160])
def test_gaussian_mixture_never_returns_non_finite_parameters(scale):
    X, _ = _data()
    X[:100] += 6
    for init in ("kmeans", "k-means++", "random"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm = maxlik.GaussianMixture(2, init_params=init, random_state=0).fit(X * scale)
        except ValueError as exc:  # an overflow or a collapsed component: both say why
            assert "rescale" in str(exc) or "scale" in str(exc)
            continue
        for a in (gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_):
            assert np.all(np.isfinite(a))
        assert math.isfinite(gm.lower_bound_)


@pytest.mark.parametrize("scale", [1e10, 1e100, 1e200, "max"])
def test_logistic_regression_large_features(scale):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    y = (X[:, 0] + 0.5 * rng.normal(size=200) > 0).astype(int)
    ref = maxlik.LogisticRegression(C=np.inf).fit(X, y)
    f = DBL_MAX / np.abs(X).max() / 2 if scale == "max" else scale
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # converges, and nothing overflows
        clf = maxlik.LogisticRegression(C=np.inf).fit(X * f, y)
    # the same minimiser up to the tolerance: was all-zero coefficients from 1e10 on
    np.testing.assert_allclose(clf.coef_ * f, ref.coef_, rtol=0.05)
    np.testing.assert_allclose(clf.predict_proba(X * f), ref.predict_proba(X), atol=0.02)
    np.testing.assert_array_equal(clf.predict(X * f), ref.predict(X))


def test_logistic_regression_ordinary_columns_are_unchanged():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 3))
    y = rng.integers(0, 3, 150)
    a = maxlik.LogisticRegression().fit(X, y)
    # a large extra column is reparametrised; the ordinary fit is bit-for-bit the old path
    b = maxlik.LogisticRegression().fit(X.copy(), y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    Xb = np.column_stack([X, rng.normal(size=150) * 1e250])
    c = maxlik.LogisticRegression().fit(Xb, y)
    assert np.all(np.isfinite(c.coef_)) and np.all(np.isfinite(c.predict_proba(Xb)))


# ================================================================ 3. grad_out all-or-nothing

def test_failed_call_leaves_grad_out_untouched():
    # probability targets are validated in the same pass as the gradient: a bad
    # row in the last block used to leave every earlier block's gradient written
    rng = np.random.default_rng(0)
    N, C = 5000, 7
    z = rng.normal(size=(N, C))
    t = rng.dirichlet(np.ones(C), size=N)
    for bad_row in (0, N // 2, N - 1):
        tb = t.copy()
        tb[bad_row] *= 2.0
        g = np.full((N, C), 7.0)
        with pytest.raises(ValueError, match=f"row {bad_row} sums to"):
            ce(z, tb, grad_out=g)
        assert np.all(g == 7.0)
    # and a successful call writes everything
    g = np.full((N, C), 7.0)
    _, g2 = ce(z, t, grad_out=g)
    assert g2 is g
    np.testing.assert_array_equal(g, ce(z, t, return_grad=True)[1])


_INTERRUPT_CHILD = textwrap.dedent(r"""
    import _thread, json, math, sys, threading, time
    import numpy as np
    import maxlik

    kind = sys.argv[1]
    rng = np.random.default_rng(0)
    N, C = 6000, 4000
    z = rng.normal(size=(N, C))
    if kind == "ce_index":
        y = rng.integers(0, C, N)
        call = lambda g: maxlik.softmax_cross_entropy(z, y, label_smoothing=0.1, grad_out=g)
    elif kind == "ce_prob":
        t = np.full((N, C), 1.0 / C)
        call = lambda g: maxlik.softmax_cross_entropy(z, t, grad_out=g)
    elif kind == "bce":
        t = rng.uniform(size=(N, C))
        call = lambda g: maxlik.binary_cross_entropy_with_logits(z, t, grad_out=g)
    elif kind == "mse":
        t = rng.normal(size=(N, C))
        call = lambda g: maxlik.mse(z, t, grad_out=g)
    full = np.empty_like(z)
    call(full)                                  # the uninterrupted gradient
    g = np.empty_like(z)
    dt = math.inf
    for _ in range(2):                          # duration of a call into a touched buffer
        t0 = time.perf_counter(); call(g); dt = min(dt, time.perf_counter() - t0)
    states = []
    for frac in (0.15, 0.3, 0.45, 0.6):
        g[...] = 7.0
        timer = threading.Timer(dt * frac, _thread.interrupt_main)
        returned = False
        try:
            timer.start()
            call(g)
            returned = True
            time.sleep(dt + 0.2)                # a late interrupt lands here, not outside
            outcome = "finished"
        except KeyboardInterrupt:
            outcome = "late" if returned else "interrupted"
        timer.join()
        if np.all(g == 7.0):
            state = "before"
        elif np.array_equal(g, full):
            state = "complete"
        else:
            state = "partial"
        states.append([outcome, state])
    print(json.dumps({"dt": dt, "states": states}), flush=True)
""")


@pytest.mark.skipif(sys.platform == "win32", reason="interrupt_main semantics")
@pytest.mark.parametrize("kind", ["ce_index", "ce_prob", "bce", "mse"])
def test_interrupted_call_leaves_grad_out_bit_identical(kind):
    env = dict(os.environ, MAXLIK_NUM_THREADS="2", PYTHONUNBUFFERED="1")
    res = subprocess.run([sys.executable, "-c", _INTERRUPT_CHILD, kind], capture_output=True,
                         text=True, timeout=300, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    rep = json.loads(res.stdout.strip().splitlines()[-1])
    states = [tuple(s) for s in rep["states"]]
    # never half-written; a call that returned wrote everything
    assert all(state != "partial" for _, state in states), rep
    assert all(state == "complete" for outcome, state in states if outcome != "interrupted"), rep
    # the interrupts did land inside the kernel (each call takes ~0.1-0.5 s, the
    # kernel polls every 20 ms) and left the buffer as it was (or, for an interrupt
    # taken after the kernel committed, complete)
    assert ("interrupted", "before") in states, rep


# ================================================================ 4. infinite logits

def _bce_limit(x, t, w=1.0, p=1.0):
    """Independent limit of w [ -p t log sigmoid(x) - (1 - t) log(1 - sigmoid(x)) ] and of
    its derivative w [ (p t + 1 - t) sigmoid(x) - p t ] at x = +-inf, any t in [0, 1]."""
    if x > 0:  # sigmoid -> 1: the (1 - t) term diverges like (1 - t) x
        loss = math.inf if w * (1 - t) > 0 else 0.0
        grad = w * (1 - t)
    else:      # sigmoid -> 0: the p t term diverges like p t |x|
        loss = math.inf if w * p * t > 0 else 0.0
        grad = -w * p * t
    return loss, grad


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bce_at_infinite_logits_is_the_limit(dtype):
    cases = [(x, t, w, p) for x in (INF, -INF) for t in (0.0, 0.3, 1.0)
             for w in (None, 0.5, 0.0) for p in (None, 2.0, 0.0)]
    for x, t, w, p in cases:
        kw = {}
        if w is not None:
            kw["weight"] = np.array([w], dtype)
        if p is not None:
            kw["pos_weight"] = np.array([p], dtype)
        loss, g = bce(np.array([x], dtype), np.array([t], dtype), reduction="none",
                      return_grad=True, **kw)
        ref_l, ref_g = _bce_limit(x, t, 1.0 if w is None else w, 1.0 if p is None else p)
        assert not np.isnan(loss[0]) and not np.isnan(g[0]), (x, t, w, p)
        assert loss[0] == ref_l, (x, t, w, p, loss[0], ref_l)
        np.testing.assert_allclose(g[0], ref_g, rtol=1e-6, atol=0, err_msg=str((x, t, w, p)))
        # the finite-logit path at +-1e30: the same gradient; the loss 0 or huge
        big = np.array([np.sign(x) * 1e30], dtype)
        loss_b, g_b = bce(big, np.array([t], dtype), reduction="none", return_grad=True, **kw)
        np.testing.assert_allclose(g_b[0], ref_g, rtol=1e-6, atol=0)
        assert (loss_b[0] >= 1e29) if ref_l == math.inf else (loss_b[0] == 0.0)


def test_bce_brief_cases_and_reductions():
    x = np.array([INF, -INF, INF])
    t = np.array([0.0, 1.0, 1.0])
    loss, g = bce(x, t, reduction="none", return_grad=True)
    assert loss.tolist() == [INF, INF, 0.0]
    assert g.tolist() == [1.0, -1.0, 0.0]
    assert bce(x, t, reduction="sum") == INF and bce(x[2:], t[2:]) == 0.0
    mean, gm = bce(x, t, return_grad=True)
    assert mean == INF and np.allclose(gm, g / 3)
    # NaN only from NaN input
    loss, g = bce(np.array([np.nan, INF]), np.array([1.0, np.nan]), reduction="none",
                  return_grad=True)
    assert np.all(np.isnan(loss)) and np.all(np.isnan(g))


def test_bce_never_nan_for_non_nan_input():
    xs = np.array([INF, -INF, 1e300, -1e300, 0.0, 3.0, -3.0, -0.0])
    ts = np.array([0.0, 0.25, 1.0])
    X, T = np.meshgrid(xs, ts)
    for w in (None, np.zeros_like(X), np.full_like(X, 0.7)):
        for p in (None, np.full_like(X, 3.0), np.zeros_like(X)):
            loss, g = bce(X, T, weight=w, pos_weight=p, reduction="none", return_grad=True)
            assert not np.any(np.isnan(loss)) and not np.any(np.isnan(g))
            assert np.all(np.isfinite(g)) and np.all(loss >= 0)


def test_bce_finite_logits_match_an_extended_precision_reference():
    # the rewritten, cancellation-free loss at large finite logits (mpmath at 50 digits)
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    xs = [-745.0, -40.0, -1.0, 0.0, 1e-8, 2.5, 40.0, 745.0, -1e4, 1e4]
    for t in (0.0, 0.3, 1.0):
        for p in (1.0, 2.5):
            loss = bce(np.array(xs), np.full(len(xs), t), pos_weight=np.array([p]),
                       reduction="none")
            for x, l in zip(xs, loss):
                X = mpmath.mpf(x)
                # -log sigmoid(x) = log(1 + e^-x), -log(1 - sigmoid(x)) = log(1 + e^x)
                ref = mpmath.mpf(0)
                if t:
                    ref += p * t * mpmath.log1p(mpmath.exp(-X))
                if 1 - t:
                    ref += (1 - t) * mpmath.log1p(mpmath.exp(X))
                assert abs(l - float(ref)) <= 4e-16 * max(1.0, abs(float(ref))), (x, t, p)


def _ce_limit(z, target, weight=None, eps=0.0, prob=False):
    """Independent limit of softmax cross-entropy (torch semantics) for one row z that may
    hold +-inf: softmax -> uniform over the +inf entries (or the usual softmax of the
    finite entries, -inf ones getting 0; all -inf: uniform). Returns (loss, grad) with
    loss = sum_c a_c (-log p_c), 0 * inf := 0, and grad = A p - a."""
    z = np.asarray(z, dtype=np.float64)
    C = z.size
    w = np.ones(C) if weight is None else np.asarray(weight, dtype=np.float64)
    if prob:
        a = w * ((1 - eps) * np.asarray(target, dtype=np.float64) + eps / C)
    else:
        a = eps / C * w
        a[target] += (1 - eps) * w[target]
    if np.any(z == INF):
        p = (z == INF) / np.count_nonzero(z == INF)
    elif np.all(z == -INF):
        p = np.full(C, 1.0 / C)
    else:
        e = np.exp(z - z[np.isfinite(z)].max())
        p = e / e.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        nlp = -np.log(p)
        loss = float(np.sum(np.where(a == 0, 0.0, a * nlp)))
    return loss, a.sum() * p - a


_CE_ROWS = [
    [INF, 0.0, 0.0],          # +inf at the target
    [0.0, INF, 0.0],          # +inf elsewhere
    [INF, INF, 0.0],          # two +inf: uniform over them
    [INF, INF, INF],          # all +inf
    [INF, -INF, 3.0],         # +inf and -inf
    [-INF, 1.0, 2.0],         # -inf at the target, finite max
    [-INF, -INF, -INF],       # all -inf: uniform
    [1.0, -2.0, 0.5],         # ordinary
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("eps", [0.0, 0.2])
@pytest.mark.parametrize("weighted", [False, True])
def test_ce_index_targets_at_infinite_logits(dtype, eps, weighted):
    w = np.array([0.5, 2.0, 1.0]) if weighted else None
    for row in _CE_ROWS:
        for y in range(3):
            z = np.array([row], dtype)
            loss, g = ce(z, np.array([y]), weight=None if w is None else w.astype(dtype),
                         label_smoothing=eps, reduction="sum", return_grad=True)
            ref_l, ref_g = _ce_limit(row, y, w, eps)
            assert not np.isnan(loss) and not np.any(np.isnan(g)), (row, y)
            assert np.all(np.isfinite(g))
            if math.isinf(ref_l):
                assert loss == INF, (row, y, loss)
            else:
                np.testing.assert_allclose(loss, ref_l, rtol=1e-6, atol=1e-6,
                                           err_msg=str((row, y)))
            np.testing.assert_allclose(g[0], ref_g, rtol=1e-6, atol=1e-7, err_msg=str((row, y)))


@pytest.mark.parametrize("eps", [0.0, 0.1])
def test_ce_probability_targets_at_infinite_logits(eps):
    targets = [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.3, 0.5]]
    for row in _CE_ROWS:
        for t in targets:
            loss, g = ce(np.array([row]), np.array([t]), label_smoothing=eps, reduction="sum",
                         return_grad=True)
            ref_l, ref_g = _ce_limit(row, t, None, eps, prob=True)
            assert not np.isnan(loss) and np.all(np.isfinite(g)), (row, t)
            if math.isinf(ref_l):
                assert loss == INF, (row, t, loss)
            else:
                np.testing.assert_allclose(loss, ref_l, rtol=1e-12, atol=1e-15)
            np.testing.assert_allclose(g[0], ref_g, rtol=1e-12, atol=1e-15)


def test_ce_brief_cases_and_the_softmax_minus_target_identity():
    z = np.array([[INF, 1.0, 2.0],     # +inf at the target: loss 0
                  [INF, INF, 0.0],     # two +inf in one row
                  [1.0, INF, -INF],    # +inf away from the target: loss +inf
                  [0.5, -1.0, 2.0]])
    y = np.array([0, 1, 0, 2])
    loss, g = ce(z, y, reduction="none", return_grad=True)
    assert loss[0] == 0.0 and loss[1] == pytest.approx(math.log(2)) and loss[2] == INF
    assert math.isfinite(loss[3])
    # gradient = softmax - onehot, with softmax's limit uniform over the +inf entries
    p = np.array([[1.0, 0, 0], [0.5, 0.5, 0], [0, 1.0, 0], np.exp(z[3]) / np.exp(z[3]).sum()])
    np.testing.assert_allclose(g, p - np.eye(3)[y], rtol=1e-12, atol=1e-15)
    # the same as logits that are large but finite (no limit taken): 1e300 for +inf
    zb = np.where(np.isposinf(z), 1e300, np.where(np.isneginf(z), -1e300, z))
    lb, gb = ce(zb, y, reduction="none", return_grad=True)
    np.testing.assert_allclose(gb, g, rtol=1e-12, atol=1e-15)
    assert lb[2] >= 1e299 and np.allclose(lb[[0, 1, 3]], loss[[0, 1, 3]])
    # reductions: an infinite row makes mean and sum +inf, an ignored one is skipped
    assert ce(z, y) == INF and ce(z, y, reduction="sum") == INF
    assert ce(z, np.array([0, 1, -100, 2])) == pytest.approx(loss[[0, 1, 3]].mean())


def test_ce_nan_only_from_nan():
    z = np.array([[INF, np.nan, 0.0], [INF, 0.0, 0.0]])
    loss, g = ce(z, np.array([0, 0]), reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.all(np.isnan(g[0]))
    assert loss[1] == 0.0 and np.all(g[1] == 0.0)


def test_ce_infinite_logits_in_many_blocks_and_nd_layout():
    rng = np.random.default_rng(5)
    N, C = 1500, 6  # three row blocks
    z = rng.normal(size=(N, C))
    y = rng.integers(0, C, N)
    z[::3, 0] = INF
    z[1::5, 1:3] = INF
    z[2::7, :] = -INF
    loss, g = ce(z, y, reduction="none", return_grad=True, label_smoothing=0.05)
    for i in range(0, N, 37):
        ref_l, ref_g = _ce_limit(z[i], y[i], None, 0.05)
        assert loss[i] == ref_l or math.isclose(loss[i], ref_l, rel_tol=1e-12)
        np.testing.assert_allclose(g[i], ref_g, rtol=1e-12, atol=1e-15)
    # (N, C, d) layout goes through the same kernel
    z3 = np.stack([z[:100], z[100:200]], axis=2)   # (100, C, 2)
    y3 = np.stack([y[:100], y[100:200]], axis=1)
    l3, g3 = ce(z3, y3, reduction="none", return_grad=True, label_smoothing=0.05)
    np.testing.assert_array_equal(l3[:, 0], loss[:100])
    np.testing.assert_array_equal(g3[:, :, 1], g[100:200])
