"""Tests for maxlik.divergences: discrete entropies / KL and Gaussian KLs."""
import math

import numpy as np
import pytest

import maxlik


def _kl_std_ref(mu, logvar):
    return 0.5 * np.sum(mu**2 + np.exp(logvar) - 1.0 - logvar, axis=-1)


# --------------------------------------------------------------------------- #
# kl_to_standard_normal
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("D", [1, 2, 3, 7, 16, 33])
def test_kl_std_normal_matches_formula(rng, D):
    mu = rng.normal(size=(1100, D))
    lv = rng.normal(scale=2.0, size=(1100, D))
    kl, g_mu, g_lv = maxlik.kl_to_standard_normal(mu, lv, return_grad=True)
    assert kl.shape == (1100,) and g_mu.shape == g_lv.shape == (1100, D)
    np.testing.assert_allclose(kl, _kl_std_ref(mu, lv), rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(g_mu, mu)
    np.testing.assert_allclose(g_lv, 0.5 * np.expm1(lv), rtol=1e-14, atol=1e-300)
    # without gradients: bit-identical values
    np.testing.assert_array_equal(maxlik.kl_to_standard_normal(mu, lv), kl)


def test_kl_std_normal_accurate_near_prior():
    # e^x - 1 - x at tiny x: the naive formula returns 0 or garbage; compare to mpmath.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    xs = [1e-9, -1e-9, 3e-5, -2e-4, 0.3, -0.7, 0.999, -1.001, 1.5, -4.0, 30.0]
    lv = np.array([xs])
    mu = np.zeros_like(lv)
    kl = maxlik.kl_to_standard_normal(mu, lv)[0]
    ref = float(sum(mpmath.mpf(0.5) * (mpmath.exp(mpmath.mpf(x)) - 1 - mpmath.mpf(x)) for x in xs))
    assert abs(kl - ref) <= 4e-16 * abs(ref)
    for x in xs:
        k = maxlik.kl_to_standard_normal([[0.0]], [[x]])[0]
        r = float(mpmath.mpf(0.5) * (mpmath.exp(mpmath.mpf(x)) - 1 - mpmath.mpf(x)))
        assert abs(k - r) <= 8e-16 * abs(r), x
        k32 = maxlik.kl_to_standard_normal(np.float32([[0.0]]), np.float32([[x]]))[0]
        r32 = float(mpmath.mpf(0.5) * (mpmath.exp(mpmath.mpf(float(np.float32(x))))
                                       - 1 - mpmath.mpf(float(np.float32(x)))))
        assert abs(float(k32) - r32) <= 2e-6 * abs(r32), x


def test_kl_std_normal_finite_differences(rng):
    mu = rng.normal(size=(5, 4))
    lv = rng.normal(size=(5, 4))
    kl, g_mu, g_lv = maxlik.kl_to_standard_normal(mu, lv, return_grad=True)
    h = 1e-6
    for i in range(5):
        for j in range(4):
            for arr, g in ((mu, g_mu), (lv, g_lv)):
                a_p, a_m = arr.copy(), arr.copy()
                a_p[i, j] += h
                a_m[i, j] -= h
                if arr is mu:
                    fp = maxlik.kl_to_standard_normal(a_p, lv)[i]
                    fm = maxlik.kl_to_standard_normal(a_m, lv)[i]
                else:
                    fp = maxlik.kl_to_standard_normal(mu, a_p)[i]
                    fm = maxlik.kl_to_standard_normal(mu, a_m)[i]
                assert (fp - fm) / (2 * h) == pytest.approx(g[i, j], rel=1e-7, abs=1e-8)


def test_kl_std_normal_monte_carlo():
    # KL(q || p) = E_q[log q(z) - log p(z)]; a loose statistical check, fixed seed.
    stats = pytest.importorskip("scipy.stats")
    r = np.random.default_rng(7)
    mu = np.array([0.5, -1.0, 0.0])
    lv = np.array([0.2, -0.5, 1.0])
    sd = np.exp(0.5 * lv)
    z = mu + sd * r.standard_normal((200_000, 3))
    log_ratio = (stats.norm.logpdf(z, mu, sd) - stats.norm.logpdf(z)).sum(axis=1)
    est, se = log_ratio.mean(), log_ratio.std() / math.sqrt(len(log_ratio))
    kl = maxlik.kl_to_standard_normal(mu, lv)
    assert abs(est - kl) < 5 * se


def test_kl_std_normal_against_torch(rng):
    torch = pytest.importorskip("torch")
    td = torch.distributions
    mu = rng.normal(size=(64, 8))
    lv = rng.normal(size=(64, 8))
    q = td.Normal(torch.from_numpy(mu), torch.from_numpy(np.exp(0.5 * lv)))
    p = td.Normal(torch.zeros(64, 8, dtype=torch.float64), torch.ones(64, 8, dtype=torch.float64))
    ref = td.kl_divergence(q, p).sum(-1).numpy()
    np.testing.assert_allclose(maxlik.kl_to_standard_normal(mu, lv), ref, rtol=1e-12)


def test_kl_std_normal_float32_and_shapes(rng):
    mu = rng.normal(size=(3, 5, 16)).astype(np.float32)
    lv = rng.normal(size=(3, 5, 16)).astype(np.float32)
    kl, g_mu, g_lv = maxlik.kl_to_standard_normal(mu, lv, return_grad=True)
    assert kl.dtype == np.float32 and kl.shape == (3, 5)
    assert g_mu.dtype == g_lv.dtype == np.float32 and g_lv.shape == (3, 5, 16)
    ref = _kl_std_ref(mu.astype(np.float64), lv.astype(np.float64))
    np.testing.assert_allclose(kl, ref, rtol=2e-6)
    # 1-D input: one distribution -> 0-d result
    k1 = maxlik.kl_to_standard_normal(mu[0, 0], lv[0, 0])
    assert k1.shape == () and k1 == pytest.approx(float(kl[0, 0]), rel=1e-6)
    # non-contiguous input
    mu64 = rng.normal(size=(40, 10))
    lv64 = rng.normal(size=(40, 10))
    np.testing.assert_allclose(maxlik.kl_to_standard_normal(mu64[::2, ::3], lv64[::2, ::3]),
                               _kl_std_ref(mu64[::2, ::3], lv64[::2, ::3]), rtol=1e-13)
    # empty
    assert maxlik.kl_to_standard_normal(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0,)


def test_kl_std_normal_special_values():
    kl = maxlik.kl_to_standard_normal([[0.0], [0.0], [0.0], [np.nan]],
                                      [[np.inf], [-np.inf], [np.nan], [0.0]])
    assert kl[0] == np.inf and kl[1] == np.inf and np.isnan(kl[2]) and np.isnan(kl[3])


def test_kl_std_normal_threads_bit_identical(rng, threads):
    mu = rng.normal(size=(5000, 9))
    lv = rng.normal(size=(5000, 9))
    threads(1)
    a = maxlik.kl_to_standard_normal(mu, lv, return_grad=True)
    threads(2)
    b = maxlik.kl_to_standard_normal(mu, lv, return_grad=True)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_kl_std_normal_bad_input():
    with pytest.raises(ValueError, match="logvar"):
        maxlik.kl_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(TypeError, match="mu"):
        maxlik.kl_to_standard_normal(np.zeros((2, 3), complex), np.zeros((2, 3)))
    with pytest.raises(TypeError, match="return_grad"):
        maxlik.kl_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 3)), return_grad=1)
    with pytest.raises(ValueError, match="mu"):
        maxlik.kl_to_standard_normal(1.0, 1.0)


def test_kl_std_normal_infinite_logvar_gradients():
    kl, g_mu, g_lv = maxlik.kl_to_standard_normal([[0.0, 0.0]], [[np.inf, -np.inf]],
                                                  return_grad=True)
    assert kl[0] == np.inf
    assert g_lv[0, 0] == np.inf and g_lv[0, 1] == -0.5
