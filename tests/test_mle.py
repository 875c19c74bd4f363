"""Tests for maxlik.mle: closed-form Gaussian / categorical / Bernoulli fits."""
import dataclasses
import math
from fractions import Fraction

import numpy as np
import pytest

import maxlik

stats = pytest.importorskip("scipy.stats")


def _ll_full(X, mean, cov):
    return float(stats.multivariate_normal(mean, cov).logpdf(X).sum())


# --------------------------------------------------------------------------- #
# fit_gaussian against numpy / scipy
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("ddof", [0, 1, -1])
@pytest.mark.parametrize("D", [1, 2, 5])
def test_full_matches_np_cov_and_scipy_loglik(rng, ddof, D):
    A = rng.normal(size=(D, D))
    X = rng.normal(size=(300, D)) @ A + rng.normal(size=D) * 10
    fit = maxlik.fit_gaussian(X, ddof=ddof)
    np.testing.assert_allclose(fit.mean, X.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(fit.covariance, np.atleast_2d(np.cov(X, rowvar=False, ddof=ddof)),
                               rtol=1e-11, atol=1e-13)
    ll = _ll_full(X, fit.mean, fit.covariance)
    assert fit.log_likelihood == pytest.approx(ll, rel=1e-11)
    k = D + D * (D + 1) // 2
    assert fit.n_parameters == k
    assert fit.aic == pytest.approx(2 * k - 2 * ll, rel=1e-11)
    assert fit.bic == pytest.approx(k * math.log(300) - 2 * ll, rel=1e-11)
    assert fit.n_samples == 300 and fit.weight_sum == 300 and fit.n_features == D
    np.testing.assert_allclose(fit.stderr_mean, stats.sem(X, axis=0, ddof=ddof), rtol=1e-11)
    assert fit.cross_entropy == pytest.approx(-ll / 300, rel=1e-11)


@pytest.mark.parametrize("ddof", [0, 1, -1])
def test_diag_and_spherical(rng, ddof):
    X = rng.normal(size=(200, 4)) * [1.0, 2.0, 0.5, 3.0] + [1.0, -2.0, 100.0, 0.0]
    n = X.shape[0]
    var = X.var(axis=0, ddof=0) * n / (n - ddof)
    fit = maxlik.fit_gaussian(X, covariance_type="diag", ddof=ddof)
    np.testing.assert_allclose(fit.covariance, var, rtol=1e-12)
    ll = float(stats.norm.logpdf(X, fit.mean, np.sqrt(fit.covariance)).sum())
    assert fit.log_likelihood == pytest.approx(ll, rel=1e-11)
    assert fit.n_parameters == 8
    sph = maxlik.fit_gaussian(X, covariance_type="spherical", ddof=ddof)
    assert isinstance(sph.covariance, float)
    assert sph.covariance == pytest.approx(var.mean(), rel=1e-12)
    ll = float(stats.norm.logpdf(X, sph.mean, math.sqrt(sph.covariance)).sum())
    assert sph.log_likelihood == pytest.approx(ll, rel=1e-11)
    assert sph.n_parameters == 5
    np.testing.assert_allclose(sph.stderr_mean, np.sqrt(sph.covariance / n) * np.ones(4), rtol=1e-12)


def test_one_dimensional_data(rng):
    x = rng.normal(3.0, 2.0, size=50)
    for ddof in (0, 1, -1):
        fit = maxlik.fit_gaussian(x, ddof=ddof)
        assert isinstance(fit.mean, float) and isinstance(fit.covariance, float)
        assert fit.mean == pytest.approx(x.mean(), rel=1e-14)
        assert fit.covariance == pytest.approx(x.var(ddof=ddof), rel=1e-13)
        assert fit.stderr_mean == pytest.approx(stats.sem(x, ddof=ddof), rel=1e-12)
        ll = float(stats.norm.logpdf(x, fit.mean, math.sqrt(fit.covariance)).sum())
        assert fit.log_likelihood == pytest.approx(ll, rel=1e-12)
        for ct in ("diag", "spherical"):
            other = maxlik.fit_gaussian(x, covariance_type=ct, ddof=ddof)
            assert other.covariance == pytest.approx(fit.covariance, rel=1e-14)
            assert other.log_likelihood == pytest.approx(fit.log_likelihood, rel=1e-13)
    # divisors: n, n-1, n+1 exactly
    x = np.array([1.0, 2.0, 3.0, 4.0])  # scatter 5
    assert maxlik.fit_gaussian(x).covariance == 5 / 4
    assert maxlik.fit_gaussian(x, ddof=1).covariance == 5 / 3
    assert maxlik.fit_gaussian(x, ddof=-1).covariance == 5 / 5


def test_sample_weight_is_frequency_weight(rng):
    X = rng.normal(size=(40, 3))
    w = rng.integers(0, 4, size=40)
    w[0] = 2
    fit = maxlik.fit_gaussian(X, sample_weight=w, ddof=1)
    rep = maxlik.fit_gaussian(np.repeat(X, w, axis=0), ddof=1)
    np.testing.assert_allclose(fit.mean, rep.mean, rtol=1e-12)
    np.testing.assert_allclose(fit.covariance, rep.covariance, rtol=1e-11)
    np.testing.assert_allclose(fit.covariance, np.cov(X, rowvar=False, fweights=w), rtol=1e-11)
    assert fit.log_likelihood == pytest.approx(rep.log_likelihood, rel=1e-11)
    assert fit.bic == pytest.approx(rep.bic, rel=1e-11)
    assert fit.n_samples == 40 and fit.weight_sum == w.sum()


def test_many_blocks_match_numpy_and_are_thread_independent(rng, threads):
    # more rows than 64 row blocks: several rows per block slot
    X = (rng.normal(size=(70_001, 3)) * [1.0, 5.0, 0.1]).astype(np.float32) + np.float32(50.0)
    fit = maxlik.fit_gaussian(X)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(fit.mean, X64.mean(axis=0), rtol=1e-13)
    np.testing.assert_allclose(fit.covariance, np.cov(X64, rowvar=False, ddof=0), rtol=1e-10, atol=1e-12)
    w = rng.random(X.shape[0])
    threads(1)
    a = [maxlik.fit_gaussian(X, covariance_type=ct, sample_weight=w) for ct in ("full", "diag")]
    threads(2)
    b = [maxlik.fit_gaussian(X, covariance_type=ct, sample_weight=w) for ct in ("full", "diag")]
    for fa, fb in zip(a, b):
        np.testing.assert_array_equal(fa.mean, fb.mean)
        np.testing.assert_array_equal(fa.covariance, fb.covariance)
        assert fa.log_likelihood == fb.log_likelihood
    np.testing.assert_allclose(a[0].covariance, np.cov(X64, rowvar=False, aweights=w, ddof=0),
                               rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- #
# numerical stability: scikit-learn #30382
# --------------------------------------------------------------------------- #
def _exact_var(col) -> Fraction:
    vals = [Fraction(float(v)) for v in col]
    m = sum(vals) / len(vals)
    return sum((v - m) ** 2 for v in vals) / len(vals)


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
def test_sklearn_30382_reproducer(ct):
    # the reporter's data, in float32: E[x²] - E[x]² in float32 goes negative here
    X = np.array([[9999.0], [0.0]], dtype=np.float32)
    fit = maxlik.fit_gaussian(X, covariance_type=ct)
    var = np.ravel(fit.covariance)[0]
    assert var == 9999.0**2 / 4  # exact
    assert np.isfinite(fit.log_likelihood)


def test_float32_large_mean_small_spread():
    r = np.random.default_rng(30382)
    n = 1000
    X = np.empty((n, 4), dtype=np.float32)
    X[:, 0] = np.float32(1e6) + r.normal(scale=0.5, size=n).astype(np.float32)
    X[:, 1] = np.float32(1e6)  # exactly constant
    X[:, 2] = np.float32(1e6)
    X[::7, 2] = np.nextafter(np.float32(1e6), np.float32(2e6))  # one-ulp spread
    X[:, 3] = np.float32(-3e7) + r.integers(0, 3, size=n).astype(np.float32) * 2
    # the naive one-pass formula in float32 is badly wrong on this data
    naive = (X * X).mean(axis=0, dtype=np.float32) - X.mean(axis=0, dtype=np.float32) ** 2
    exact = np.array([float(_exact_var(X[:, j])) for j in range(4)])
    assert exact[0] > 0 and exact[1] == 0 and exact[2] > 0
    assert np.any(np.abs(naive - exact) > 0.5 * np.abs(exact) + 1e-3)
    for ct in ("full", "diag"):
        fit = maxlik.fit_gaussian(X, covariance_type=ct)
        v = np.diag(fit.covariance) if ct == "full" else fit.covariance
        assert v[1] == 0.0  # constant column: exactly zero, never negative
        np.testing.assert_allclose(v[[0, 2, 3]], exact[[0, 2, 3]], rtol=1e-12)
        assert np.all(v[[0, 2, 3]] > 0)
        # singular covariance: unbounded likelihood, reported as such
        assert fit.log_likelihood == np.inf and fit.aic == -np.inf
    fit = maxlik.fit_gaussian(X[:, [0, 2, 3]], covariance_type="full")
    assert np.all(np.linalg.eigvalsh(fit.covariance) > 0)
    assert np.isfinite(fit.log_likelihood)
    np.testing.assert_allclose(np.diag(fit.covariance), exact[[0, 2, 3]], rtol=1e-12)


# --------------------------------------------------------------------------- #
# the principle: the MLE minimises the empirical cross-entropy
# --------------------------------------------------------------------------- #
def _cross_entropy(X, mean, cov):
    """-mean log-likelihood, computed independently with scipy."""
    return -float(stats.multivariate_normal(mean, cov).logpdf(X).mean())


def test_perturbing_any_parameter_increases_cross_entropy():
    r = np.random.default_rng(2024)
    D = 3
    true_mean = np.array([1.0, -2.0, 0.5])
    A = r.normal(size=(D, D))
    true_cov = A @ A.T + np.eye(D)
    X = r.multivariate_normal(true_mean, true_cov, size=2000)
    fit = maxlik.fit_gaussian(X)
    ce0 = _cross_entropy(X, fit.mean, fit.covariance)
    assert fit.cross_entropy == pytest.approx(ce0, rel=1e-12)
    # ... and the MLE beats the true parameters on the sample
    assert ce0 < _cross_entropy(X, true_mean, true_cov)
    for h in (1e-3, 1e-1):
        for j in range(D):
            for sign in (1, -1):
                m = np.array(fit.mean)
                m[j] += sign * h
                assert _cross_entropy(X, m, fit.covariance) > ce0
        for i in range(D):
            for j in range(i, D):
                for sign in (1, -1):
                    C = np.array(fit.covariance)
                    C[i, j] += sign * h
                    if i != j:
                        C[j, i] += sign * h
                    assert np.all(np.linalg.eigvalsh(C) > 0)  # still a covariance
                    assert _cross_entropy(X, fit.mean, C) > ce0, (i, j, sign, h)
    # random joint directions
    for _ in range(20):
        dm = r.normal(size=D) * 0.01
        B = r.normal(size=(D, D)) * 0.01
        C = np.array(fit.covariance) + (B + B.T) / 2
        assert _cross_entropy(X, fit.mean + dm, C) > ce0
    # the other variance estimators are not the MLE: higher cross-entropy
    for ddof in (1, -1):
        other = maxlik.fit_gaussian(X, ddof=ddof)
        assert other.cross_entropy > fit.cross_entropy
        assert other.cross_entropy == pytest.approx(
            _cross_entropy(X, other.mean, other.covariance), rel=1e-12)


@pytest.mark.parametrize("ct", ["diag", "spherical"])
def test_constrained_mle_minimises_cross_entropy(rng, ct):
    X = rng.normal(size=(500, 3)) * [1.0, 2.0, 0.7]
    fit = maxlik.fit_gaussian(X, covariance_type=ct)
    var = np.broadcast_to(fit.covariance, (3,))
    ce0 = _cross_entropy(X, fit.mean, np.diag(var))
    assert fit.cross_entropy == pytest.approx(ce0, rel=1e-12)
    for scale in (0.99, 1.01):
        for j in range(3):
            v = np.array(var)
            if ct == "diag":
                v[j] *= scale
            else:
                v = v * scale
            assert _cross_entropy(X, fit.mean, np.diag(v)) > ce0


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
def test_fit_gaussian_bad_input():
    X = np.zeros((3, 2)) + np.arange(3)[:, None]
    with pytest.raises(ValueError, match="ddof"):
        maxlik.fit_gaussian(X, ddof=3)
    with pytest.raises(ValueError, match="ddof"):
        maxlik.fit_gaussian(X, ddof=5)
    with pytest.raises(ValueError, match="ddof"):
        maxlik.fit_gaussian([1.0], ddof=1)
    with pytest.raises(ValueError, match="ddof.*sample_weight"):
        maxlik.fit_gaussian(X, ddof=2, sample_weight=[1, 0.5, 0.5])
    with pytest.raises(TypeError, match="ddof"):
        maxlik.fit_gaussian(X, ddof="1")
    with pytest.raises(ValueError, match="X contains NaN"):
        maxlik.fit_gaussian(np.array([[1.0, np.nan], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="X must be 1-D or 2-D"):
        maxlik.fit_gaussian(np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="at least one row"):
        maxlik.fit_gaussian(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="covariance_type"):
        maxlik.fit_gaussian(X, covariance_type="tied")
    with pytest.raises(ValueError, match="sample_weight"):
        maxlik.fit_gaussian(X, sample_weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="sample_weight"):
        maxlik.fit_gaussian(X, sample_weight=[1.0, -2.0, 1.0])
    with pytest.raises(TypeError, match="X"):
        maxlik.fit_gaussian(np.array([["a", "b"]]))
    # n = 1 with ddof=0 is allowed: a point mass, unbounded likelihood
    fit = maxlik.fit_gaussian([[1.0, 2.0]])
    assert fit.log_likelihood == np.inf
    np.testing.assert_array_equal(fit.covariance, np.zeros((2, 2)))


def test_results_are_frozen_and_readable(rng):
    fit = maxlik.fit_gaussian(rng.normal(size=(20, 2)))
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.mean = np.zeros(2)
    with pytest.raises(ValueError):
        fit.mean[0] = 1.0  # read-only array
    text = repr(fit)
    for word in ("GaussianFit(", "mean=", "covariance=", "log_likelihood=", "aic=", "bic="):
        assert word in text
    assert "CategoricalFit(" in repr(maxlik.fit_categorical([0, 1]))
    assert "BernoulliFit(" in repr(maxlik.fit_bernoulli([0, 1]))


# --------------------------------------------------------------------------- #
# fit_categorical / fit_bernoulli
# --------------------------------------------------------------------------- #
def test_categorical_mle_and_empirical_cross_entropy(rng):
    K = 5
    labels = rng.integers(0, K - 1, size=3000)  # category K-1 never seen
    fit = maxlik.fit_categorical(labels, n_categories=K)
    p_hat = np.bincount(labels, minlength=K) / labels.size
    np.testing.assert_allclose(fit.probabilities, p_hat, rtol=1e-15)
    assert fit.probabilities[-1] == 0.0
    ll = float(np.sum(np.log(fit.probabilities[labels])))
    assert fit.log_likelihood == pytest.approx(ll, rel=1e-12)
    # CE(p̂, fitted) = -LL/n = H(p̂), the minimum over all models
    assert fit.cross_entropy == pytest.approx(float(maxlik.entropy(p_hat)), rel=1e-12)
    q = rng.dirichlet(np.ones(K))
    assert maxlik.cross_entropy(p_hat, q) == pytest.approx(-np.mean(np.log(q[labels])), rel=1e-12)
    assert maxlik.cross_entropy(p_hat, q) > fit.cross_entropy
    assert fit.n_parameters == K - 1
    assert fit.aic == pytest.approx(2 * (K - 1) - 2 * ll, rel=1e-12)
    assert fit.bic == pytest.approx((K - 1) * math.log(3000) - 2 * ll, rel=1e-12)
    # counts give the same fit
    by_counts = maxlik.fit_categorical(counts=np.bincount(labels, minlength=K))
    np.testing.assert_array_equal(by_counts.probabilities, fit.probabilities)
    assert by_counts.log_likelihood == fit.log_likelihood


def test_categorical_smoothing_is_dirichlet_map(rng):
    counts = np.array([5.0, 0.0, 2.0, 9.0])
    alpha = 0.7
    fit = maxlik.fit_categorical(counts=counts, alpha=alpha)
    np.testing.assert_allclose(fit.probabilities, (counts + alpha) / (counts.sum() + 4 * alpha))
    # MAP under symmetric Dirichlet(alpha + 1): log posterior Σ (n_k + alpha) log π_k + const
    def log_post(p):
        return float(np.sum((counts + alpha) * np.log(p)))
    best = log_post(fit.probabilities)
    for _ in range(200):
        p = fit.probabilities * np.exp(rng.normal(scale=0.05, size=4))
        p /= p.sum()
        assert log_post(p) < best
    # ... which equals the posterior mean under Dirichlet(alpha)
    post = counts + alpha
    np.testing.assert_allclose(fit.probabilities, post / post.sum())
    # Laplace's rule
    np.testing.assert_allclose(maxlik.fit_categorical(counts=[0, 1], alpha=1).probabilities, [1 / 3, 2 / 3])


def test_categorical_labels_kinds_and_weights():
    fit = maxlik.fit_categorical(np.array(["b", "a", "b", "c"]))
    np.testing.assert_array_equal(fit.categories, ["a", "b", "c"])
    np.testing.assert_allclose(fit.probabilities, [0.25, 0.5, 0.25])
    fit = maxlik.fit_categorical([0, 1, 1], sample_weight=[2.0, 1.0, 1.0])
    np.testing.assert_allclose(fit.probabilities, [0.5, 0.5])
    fit = maxlik.fit_categorical([True, False, True])
    np.testing.assert_allclose(fit.probabilities, [1 / 3, 2 / 3])


def test_categorical_bad_input():
    with pytest.raises(ValueError, match="exactly one of labels and counts"):
        maxlik.fit_categorical()
    with pytest.raises(ValueError, match="exactly one of labels and counts"):
        maxlik.fit_categorical([0], counts=[1])
    with pytest.raises(ValueError, match="labels must be >= 0"):
        maxlik.fit_categorical([0, -1])
    with pytest.raises(ValueError, match="n_categories=2"):
        maxlik.fit_categorical([0, 2], n_categories=2)
    with pytest.raises(ValueError, match="counts must be non-negative"):
        maxlik.fit_categorical(counts=[1.0, -1.0])
    with pytest.raises(ValueError, match="counts must be non-negative"):
        maxlik.fit_categorical(counts=[1.0, np.nan])
    with pytest.raises(ValueError, match="alpha"):
        maxlik.fit_categorical(counts=[1.0, 1.0], alpha=-0.5)
    with pytest.raises(ValueError, match="at least one observation"):
        maxlik.fit_categorical(counts=[0.0, 0.0])
    with pytest.raises(TypeError, match="labels"):
        maxlik.fit_categorical([0.5, 1.0])
    with pytest.raises(TypeError, match="n_categories"):
        maxlik.fit_categorical([0, 1], n_categories=2.0)


def test_bernoulli(rng):
    x = rng.random(400) < 0.3
    fit = maxlik.fit_bernoulli(x)
    p = x.mean()
    assert fit.probability == pytest.approx(p, rel=1e-15)
    ll = float(stats.bernoulli.logpmf(x, p).sum())
    assert fit.log_likelihood == pytest.approx(ll, rel=1e-12)
    assert fit.stderr == pytest.approx(math.sqrt(p * (1 - p) / 400), rel=1e-12)
    assert fit.bic == pytest.approx(math.log(400) - 2 * ll, rel=1e-12)
    # 2-D: one probability per column; smoothing = Beta(alpha+1, alpha+1) MAP
    X = (rng.random((50, 3)) < [0.1, 0.5, 0.9]).astype(np.int64)
    X[:, 0] = 0
    fit = maxlik.fit_bernoulli(X, alpha=1.0)
    np.testing.assert_allclose(fit.probability, (X.sum(0) + 1) / (50 + 2))
    assert fit.n_parameters == 3
    mle = maxlik.fit_bernoulli(X)
    assert mle.probability[0] == 0.0 and np.isfinite(mle.log_likelihood)
    ll = float(stats.bernoulli.logpmf(X, mle.probability).sum())
    assert mle.log_likelihood == pytest.approx(ll, rel=1e-12)
    # weights
    w = rng.integers(1, 4, size=50)
    np.testing.assert_allclose(maxlik.fit_bernoulli(X, sample_weight=w).probability,
                               maxlik.fit_bernoulli(np.repeat(X, w, axis=0)).probability)
    with pytest.raises(ValueError, match="only 0 and 1"):
        maxlik.fit_bernoulli([0, 1, 2])
    with pytest.raises(ValueError, match="x must have at least one"):
        maxlik.fit_bernoulli([])
    with pytest.raises(ValueError, match="alpha"):
        maxlik.fit_bernoulli([0, 1], alpha=np.nan)


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
@pytest.mark.parametrize("D", [1, 3])
def test_log_likelihood_matches_gaussian_logpdf(rng, ct, D):
    X = rng.normal(size=(120, D)) * 2.0 + 5.0
    for data in (X, X[:, 0]) if D == 1 else (X,):
        for ddof in (0, 1, -1):
            fit = maxlik.fit_gaussian(data, covariance_type=ct, ddof=ddof)
            lp = fit.logpdf(data)
            assert lp.shape == (120,)
            assert fit.log_likelihood == pytest.approx(float(lp.sum()), rel=1e-11)
            assert fit.log_likelihood == pytest.approx(
                float(maxlik.gaussian_logpdf(data, np.atleast_1d(fit.mean),
                                             np.atleast_2d(fit.covariance) if ct == "full"
                                             else fit.covariance, ct).sum()), rel=1e-11)


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=25, deadline=None)
@given(
    offset=st.sampled_from([0.0, 1e3, 1e6, -3e7, 1e9]),
    log_spread=st.floats(-2, 3),
    n=st.integers(2, 300),
    seed=st.integers(0, 2**31 - 1),
)
def test_variance_stable_for_float32_offsets(offset, log_spread, n, seed):
    r = np.random.default_rng(seed)
    x = (offset + r.normal(scale=10.0**log_spread, size=(n, 2))).astype(np.float32)
    ref = x.astype(np.longdouble)
    ref_var = ((ref - ref.mean(axis=0)) ** 2).mean(axis=0)  # two-pass in extended precision
    fit = maxlik.fit_gaussian(x, covariance_type="diag")
    distinct = np.array([np.unique(x[:, j]).size > 1 for j in range(2)])
    assert np.all(fit.covariance[distinct] > 0)
    assert np.all(fit.covariance >= 0)
    np.testing.assert_allclose(fit.covariance, ref_var.astype(np.float64), rtol=1e-9, atol=0)


def test_fit_does_not_freeze_user_arrays():
    counts = np.array([1.0, 2.0, 3.0])
    maxlik.fit_categorical(counts=counts)
    counts[0] = 5.0  # still writeable
    X = np.arange(6.0).reshape(3, 2)
    maxlik.fit_gaussian(X)
    X[0, 0] = 1.0
