"""maxlik.gaussian_logpdf against scipy.stats, plus bad input and thread determinism."""
import numpy as np
import pytest

import maxlik
from maxlik import gaussian_logpdf, precision_cholesky

stats = pytest.importorskip("scipy.stats")

TYPES = ["full", "tied", "diag", "spherical"]


def _params(rng, K, D, ctype):
    means = rng.normal(size=(K, D)) * 3 + 5
    A = rng.normal(size=(K, D, D))
    full = A @ np.swapaxes(A, 1, 2) + D * np.eye(D)
    if ctype == "full":
        return means, full, full
    if ctype == "tied":
        return means, full[0], np.repeat(full[:1], K, axis=0)
    if ctype == "diag":
        var = rng.uniform(0.5, 3.0, size=(K, D))
        return means, var, np.stack([np.diag(v) for v in var])
    var = rng.uniform(0.5, 3.0, size=K)
    return means, var, np.stack([v * np.eye(D) for v in var])


def _scipy(X, means, dense):
    return np.stack([stats.multivariate_normal(m, c).logpdf(X) for m, c in zip(means, dense)],
                    axis=1).reshape(X.shape[0], -1)


@pytest.mark.parametrize("ctype", TYPES)
@pytest.mark.parametrize("D", [1, 2, 3, 7, 16])
def test_matches_scipy_float64(rng, ctype, D):
    K = 3
    means, cov, dense = _params(rng, K, D, ctype)
    X = rng.normal(size=(1100, D)) * 2 + 5  # > 2 row blocks, ragged last block
    got = gaussian_logpdf(X, means, cov, ctype)
    want = _scipy(X, means, dense)
    assert got.shape == (1100, K) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


@pytest.mark.parametrize("ctype", TYPES)
def test_precomputed_precision_cholesky_gives_same(rng, ctype):
    means, cov, _ = _params(rng, 4, 5, ctype)
    X = rng.normal(size=(300, 5))
    U = precision_cholesky(cov, ctype)
    a = gaussian_logpdf(X, means, cov, ctype)
    b = gaussian_logpdf(X, means, covariance_type=ctype, precisions_cholesky=U)
    np.testing.assert_array_equal(a, b)


def test_precision_cholesky_is_sklearn_convention(rng):
    _, cov, _ = _params(rng, 3, 4, "full")
    U = precision_cholesky(cov, "full")
    assert np.all(np.tril(U, -1) == 0)
    for k in range(3):
        np.testing.assert_allclose(U[k] @ U[k].T, np.linalg.inv(cov[k]), rtol=1e-10, atol=1e-12)


def test_single_gaussian_shapes_and_d1_matches_norm(rng):
    x = rng.normal(size=257) * 4 - 1
    got = gaussian_logpdf(x, 0.5, 2.25, "spherical")  # scalar mean/variance, 1-D X
    np.testing.assert_allclose(got, stats.norm.logpdf(x, 0.5, 1.5), rtol=1e-10)
    assert got.shape == (257,)
    got = gaussian_logpdf(x[:, None], np.array([0.5]), np.array([[2.25]]))
    np.testing.assert_allclose(got, stats.norm.logpdf(x, 0.5, 1.5), rtol=1e-10)
    X = rng.normal(size=(50, 3))
    cov = np.diag([1.0, 2.0, 3.0])
    got = gaussian_logpdf(X, np.zeros(3), cov)
    assert got.shape == (50,)
    np.testing.assert_allclose(got, stats.multivariate_normal(np.zeros(3), cov).logpdf(X),
                               rtol=1e-10)
    np.testing.assert_allclose(gaussian_logpdf(X, np.zeros(3), np.diag(cov), "diag"), got,
                               rtol=1e-12)


@pytest.mark.parametrize("ctype", TYPES)
def test_float32(rng, ctype):
    means, cov, dense = _params(rng, 3, 6, ctype)
    X = (rng.normal(size=(700, 6)) * 2 + 5).astype(np.float32)
    got = gaussian_logpdf(X, means, cov, ctype)
    assert got.dtype == np.float32
    want = _scipy(X.astype(np.float64), means, dense)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-4)


def test_far_from_origin_is_centred(rng):
    # Data with a large offset: an uncentred x@U - mu@U would cancel badly.
    D = 4
    mean = np.full(D, 1e6)
    cov = np.diag([1e-2, 1.0, 2.0, 0.5])
    X = mean + rng.normal(size=(200, D)) * np.sqrt(np.diag(cov))
    want = stats.multivariate_normal(mean, cov).logpdf(X)
    np.testing.assert_allclose(gaussian_logpdf(X, mean, cov), want, rtol=1e-10)


def test_layouts_and_empty(rng):
    means, cov, dense = _params(rng, 2, 3, "full")
    X = np.asfortranarray(rng.normal(size=(40, 3)))
    np.testing.assert_allclose(gaussian_logpdf(X, means, cov), _scipy(X, means, dense),
                               rtol=1e-10)
    assert gaussian_logpdf(X[::2], means, cov).shape == (20, 2)
    assert gaussian_logpdf(np.empty((0, 3)), means, cov).shape == (0, 2)
    Xi = rng.integers(0, 5, size=(10, 3))  # ints -> float64
    assert gaussian_logpdf(Xi, means, cov).dtype == np.float64


def test_thread_count_does_not_change_bits(rng, threads):
    means, cov, _ = _params(rng, 5, 9, "full")
    X = rng.normal(size=(5000, 9))
    threads(1)
    a = gaussian_logpdf(X, means, cov)
    threads(2)
    b = gaussian_logpdf(X, means, cov)
    np.testing.assert_array_equal(a, b)


def test_not_positive_definite_names_component(rng):
    means, cov, _ = _params(rng, 3, 3, "full")
    cov[1] = np.diag([1.0, -1.0, 1.0])
    with pytest.raises(ValueError, match=r"covariances\[1\].*not positive definite.*component 1"):
        gaussian_logpdf(rng.normal(size=(5, 3)), means, cov)
    with pytest.raises(ValueError, match="positive"):
        gaussian_logpdf(rng.normal(size=(5, 3)), means, np.array([1.0, 0.0, 2.0]), "spherical")
    with pytest.raises(ValueError, match="positive"):
        gaussian_logpdf(rng.normal(size=(5, 3)), means, -np.ones((3, 3)), "diag")


def test_not_symmetric(rng):
    means, cov, _ = _params(rng, 2, 3, "full")
    cov[0, 0, 1] += 0.5
    with pytest.raises(ValueError, match=r"covariances\[0\] is not symmetric"):
        gaussian_logpdf(rng.normal(size=(5, 3)), means, cov)


def test_bad_inputs(rng):
    means, cov, _ = _params(rng, 2, 3, "full")
    X = rng.normal(size=(5, 3))
    with pytest.raises(ValueError, match="X has 4 features but means has 3"):
        gaussian_logpdf(rng.normal(size=(5, 4)), means, cov)
    with pytest.raises(ValueError, match=r"covariances must have shape \(2, 3, 3\)"):
        gaussian_logpdf(X, means, cov[:, :2, :2])
    with pytest.raises(ValueError, match="covariance_type"):
        gaussian_logpdf(X, means, cov, "banana")
    with pytest.raises(ValueError, match="exactly one"):
        gaussian_logpdf(X, means)
    with pytest.raises(TypeError, match="X must have a real numeric dtype"):
        gaussian_logpdf(X.astype(complex), means, cov)
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match="X contains NaN"):
        gaussian_logpdf(Xn, means, cov)
    L = np.linalg.cholesky(cov)  # lower triangular: wrong convention
    with pytest.raises(ValueError, match="upper triangular"):
        gaussian_logpdf(X, means, precisions_cholesky=L)
