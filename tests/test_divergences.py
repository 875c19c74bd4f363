"""Tests for maxlik.divergences: discrete entropies / KL and Gaussian KLs.

Comparisons with torch.distributions use the ``torch_ref`` fixture (tests/_torch_ref.py):
live with torch installed, else torch's outputs recorded in tests/data/torch_refs.npz.
"""
import math

import numpy as np
import pytest

import maxlik
from _torch_ref import torch_ref  # noqa: F401  (fixture)


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


def test_kl_std_normal_against_torch(rng, torch_ref):
    mu = rng.normal(size=(64, 8))
    lv = rng.normal(size=(64, 8))

    def build(torch, mu, lv):
        td = torch.distributions
        q = td.Normal(torch.from_numpy(mu), torch.from_numpy(np.exp(0.5 * lv)))
        p = td.Normal(torch.zeros(mu.shape, dtype=torch.float64),
                      torch.ones(mu.shape, dtype=torch.float64))
        return {"kl": td.kl_divergence(q, p).sum(-1)}

    inp, ref = torch_ref.call("kl", build, mu=mu, lv=lv)
    np.testing.assert_allclose(maxlik.kl_to_standard_normal(inp.mu, inp.lv), ref.kl, rtol=1e-12)


def test_kl_std_normal_float32_and_shapes(rng):
    mu = rng.normal(size=(3, 5, 16)).astype(np.float32)
    lv = rng.normal(size=(3, 5, 16)).astype(np.float32)
    kl, g_mu, g_lv = maxlik.kl_to_standard_normal(mu, lv, return_grad=True)
    assert kl.dtype == np.float32 and kl.shape == (3, 5)
    assert g_mu.dtype == g_lv.dtype == np.float32 and g_lv.shape == (3, 5, 16)
    ref = _kl_std_ref(mu.astype(np.float64), lv.astype(np.float64))
    np.testing.assert_allclose(kl, ref, rtol=2e-6)
    # 2-D contiguous float32 (the fast path) gives the same numbers
    k2, gm2, gl2 = maxlik.kl_to_standard_normal(mu.reshape(15, 16), lv.reshape(15, 16), return_grad=True)
    assert k2.dtype == np.float32
    np.testing.assert_array_equal(k2, kl.reshape(15))
    np.testing.assert_array_equal(gl2, g_lv.reshape(15, 16))
    # mixed float32 / float64 computes in float64
    assert maxlik.kl_to_standard_normal(mu[0], lv[0].astype(np.float64)).dtype == np.float64
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


# --------------------------------------------------------------------------- #
# discrete: entropy, cross_entropy, kl_divergence
# --------------------------------------------------------------------------- #
from hypothesis import given, settings, strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402


def test_coin_kl_in_bits():
    fair, biased = [0.5, 0.5], [0.25, 0.75]
    assert maxlik.kl_divergence(fair, biased, base=2) == pytest.approx(0.2075187496394219, abs=1e-15)
    assert maxlik.kl_divergence(biased, fair, base=2) == pytest.approx(0.18872187554086717, abs=1e-15)
    assert round(float(maxlik.kl_divergence(fair, biased, base=2)), 4) == 0.2075
    assert round(float(maxlik.kl_divergence(biased, fair, base=2)), 4) == 0.1887
    assert maxlik.entropy(fair, base=2) == 1.0


def _dirichlet_rows(rng, n, d, zeros=False, dtype=np.float64):
    p = rng.dirichlet(np.full(d, 0.7), size=n)
    if zeros:
        p[rng.random((n, d)) < 0.2] = 0.0
        p[p.sum(1) == 0, 0] = 1.0
        p /= p.sum(1, keepdims=True)
    return p.astype(dtype)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 8, 17, 64])
def test_discrete_against_scipy(rng, d):
    stats = pytest.importorskip("scipy.stats")
    special = pytest.importorskip("scipy.special")
    p = _dirichlet_rows(rng, 1300, d, zeros=True)
    q = _dirichlet_rows(rng, 1300, d)
    np.testing.assert_allclose(maxlik.entropy(p), stats.entropy(p, axis=1), rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(maxlik.kl_divergence(p, q), special.rel_entr(p, q).sum(1),
                               rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(maxlik.kl_divergence(p, q, base=2), stats.entropy(p, q, base=2, axis=1),
                               rtol=1e-12, atol=1e-14)
    ce_ref = -np.sum(np.where(p > 0, p * np.log(q), 0.0), axis=1)
    np.testing.assert_allclose(maxlik.cross_entropy(p, q), ce_ref, rtol=1e-13, atol=1e-15)


def test_discrete_float32(rng):
    stats = pytest.importorskip("scipy.stats")
    p = _dirichlet_rows(rng, 700, 10, zeros=True, dtype=np.float32)
    q = _dirichlet_rows(rng, 700, 10, dtype=np.float32)
    h = maxlik.entropy(p)
    kl = maxlik.kl_divergence(p, q)
    assert h.dtype == np.float32 and kl.dtype == np.float32
    p64, q64 = p.astype(np.float64), q.astype(np.float64)
    np.testing.assert_allclose(h, stats.entropy(p64 / p64.sum(1, keepdims=True), axis=1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(kl, stats.entropy(p64, q64, axis=1), rtol=1e-4, atol=1e-5)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda d: st.tuples(
            hnp.arrays(np.float64, (3, d), elements=st.floats(0, 1e3)),
            hnp.arrays(np.float64, (3, d), elements=st.floats(1e-6, 1e3)),
        )
    )
)
def test_ce_equals_h_plus_kl(pq):
    p, q = pq
    p = p.copy()
    p[:, 0] += 1.0  # non-zero rows
    p /= p.sum(1, keepdims=True)
    q = q / q.sum(1, keepdims=True)
    h = maxlik.entropy(p, normalize=True)
    ce = maxlik.cross_entropy(p, q, normalize=True)
    kl = maxlik.kl_divergence(p, q, normalize=True)
    np.testing.assert_allclose(ce, h + kl, rtol=1e-12, atol=1e-12)
    assert np.all(kl >= -1e-12)
    # base scaling is consistent
    np.testing.assert_allclose(maxlik.cross_entropy(p, q, base=2, normalize=True),
                               ce / np.log(2), rtol=1e-14)


def test_empirical_cross_entropy_is_negative_mean_log_likelihood(rng):
    K = 6
    q = rng.dirichlet(np.ones(K))
    labels = rng.integers(0, K, size=5000)
    p_hat = np.bincount(labels, minlength=K) / labels.size
    nll = -np.mean(np.log(q[labels]))
    assert maxlik.cross_entropy(p_hat, q) == pytest.approx(nll, rel=1e-13)
    # ... and the MLE of q minimises it: CE(p̂, p̂) = H(p̂) <= CE(p̂, q)
    assert maxlik.cross_entropy(p_hat, p_hat) == pytest.approx(maxlik.entropy(p_hat), rel=1e-14)
    assert maxlik.entropy(p_hat) < maxlik.cross_entropy(p_hat, q)


def test_zero_conventions():
    assert maxlik.entropy([1.0, 0.0]) == 0.0
    assert not np.signbit(maxlik.entropy([1.0, 0.0]))
    assert maxlik.kl_divergence([0.0, 1.0], [0.0, 1.0]) == 0.0  # 0 log(0/0) = 0
    assert maxlik.kl_divergence([0.0, 1.0], [0.5, 0.5]) == pytest.approx(np.log(2))
    assert maxlik.kl_divergence([0.5, 0.5], [1.0, 0.0]) == np.inf  # q = 0 < p
    assert maxlik.cross_entropy([0.5, 0.5], [1.0, 0.0]) == np.inf
    assert maxlik.cross_entropy([1.0, 0.0], [1.0, 0.0]) == 0.0
    # subnormal q: p/q overflows but the KL is finite
    tiny = 5e-324
    kl = maxlik.kl_divergence([1.0, 0.0], [1.0 - tiny, tiny])
    assert kl == 0.0
    kl = maxlik.kl_divergence([1e-300, 1 - 1e-300], [tiny, 1.0 - tiny])
    assert np.isfinite(kl)
    assert kl == pytest.approx(1e-300 * (np.log(1e-300) - np.log(tiny)), rel=1e-12)


def test_axis_and_broadcasting(rng):
    stats = pytest.importorskip("scipy.stats")
    p = rng.dirichlet(np.ones(4), size=(3, 5)).transpose(0, 2, 1)  # distributions on axis 1
    q = rng.dirichlet(np.ones(4))
    out = maxlik.kl_divergence(p, q[:, None], axis=1)
    assert out.shape == (3, 5)
    np.testing.assert_allclose(out, stats.entropy(p, q[:, None] * np.ones_like(p), axis=1), rtol=1e-12)
    # one q row against many p rows: no copy path, same numbers
    P = rng.dirichlet(np.ones(7), size=2000)
    Q = rng.dirichlet(np.ones(7))
    np.testing.assert_allclose(maxlik.kl_divergence(P, Q), maxlik.kl_divergence(P, np.tile(Q, (2000, 1))),
                               rtol=0, atol=0)
    assert np.ndim(maxlik.entropy(Q)) == 0
    with pytest.raises(ValueError, match="broadcast"):
        maxlik.kl_divergence(np.full((3, 4), 0.25), np.full((2, 4), 0.25))
    with pytest.raises(ValueError, match="axis"):
        maxlik.entropy([0.5, 0.5], axis=1)
    with pytest.raises(TypeError, match="axis"):
        maxlik.entropy([0.5, 0.5], axis=None)


def test_no_silent_normalisation():
    with pytest.raises(ValueError, match=r"p must sum to 1.*normalize=True"):
        maxlik.entropy([1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"q must sum to 1"):
        maxlik.kl_divergence([0.5, 0.5], [0.5, 0.6])
    with pytest.raises(ValueError, match=r"distribution 1 sums to 0.9"):
        maxlik.entropy([[0.5, 0.5], [0.5, 0.4]])
    bad = np.full((2, 3, 4), 0.25)
    bad[1, 2, 0] = 0.3
    with pytest.raises(ValueError, match=r"distribution \(1, 2\) sums to 1.05"):
        maxlik.kl_divergence(bad, np.full(4, 0.25))
    # normalize=True divides by the sum, like scipy.stats.entropy
    stats = pytest.importorskip("scipy.stats")
    counts = np.array([[3.0, 1.0, 0.0, 6.0], [1e6, 1.0, 2.0, 3.0]])
    ref_q = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(maxlik.entropy(counts, normalize=True), stats.entropy(counts, axis=1), rtol=1e-13)
    np.testing.assert_allclose(maxlik.kl_divergence(counts, ref_q, normalize=True),
                               stats.entropy(counts, ref_q[None], axis=1), rtol=1e-12)
    # rounding-sized deviations are accepted and corrected exactly
    p = np.array([0.1, 0.2, 0.7 + 1e-9])
    assert maxlik.entropy(p, normalize=True) == pytest.approx(stats.entropy(p), rel=1e-14)
    with pytest.raises(ValueError, match="positive finite sum"):
        maxlik.entropy([[0.0, 0.0]], normalize=True)


def test_empty_inputs():
    assert maxlik.entropy(np.zeros((0, 3))).shape == (0,)
    assert maxlik.kl_divergence(np.zeros((2, 0, 3)), np.full(3, 1 / 3)).shape == (2, 0)
    with pytest.raises(ValueError, match="p must sum to 1"):
        maxlik.entropy(np.zeros((3, 0)))


def test_bad_probabilities():
    with pytest.raises(ValueError, match=r"p must hold probabilities.*-0.1"):
        maxlik.entropy([1.1, -0.1])
    with pytest.raises(ValueError, match=r"q must hold probabilities.*nan"):
        maxlik.kl_divergence([0.5, 0.5], [np.nan, 0.5])
    with pytest.raises(ValueError, match=r"p must hold probabilities"):
        maxlik.cross_entropy([np.nan, 1.0], [0.5, 0.5], normalize=True)
    with pytest.raises(ValueError, match="p must sum to 1"):
        maxlik.entropy([np.inf, 0.0])
    with pytest.raises(TypeError, match="p"):
        maxlik.entropy(["a", "b"])
    with pytest.raises(ValueError, match="base"):
        maxlik.entropy([0.5, 0.5], base=1)
    with pytest.raises(ValueError, match="p must have at least 1 dimension"):
        maxlik.entropy(1.0)


def test_discrete_threads_bit_identical(rng, threads):
    p = _dirichlet_rows(rng, 4000, 9, zeros=True)
    q = _dirichlet_rows(rng, 4000, 9)
    threads(1)
    a = (maxlik.entropy(p), maxlik.kl_divergence(p, q), maxlik.cross_entropy(p, q))
    threads(2)
    b = (maxlik.entropy(p), maxlik.kl_divergence(p, q), maxlik.cross_entropy(p, q))
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


# --------------------------------------------------------------------------- #
# gaussian_kl
# --------------------------------------------------------------------------- #
def _random_spd(rng, d, scale=1.0):
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.5 * np.eye(d))


def _kl_full_ref(m0, S0, m1, S1):
    d = len(m0)
    S1i = np.linalg.inv(S1)
    dm = m1 - m0
    return 0.5 * (np.trace(S1i @ S0) + dm @ S1i @ dm - d
                  + np.linalg.slogdet(S1)[1] - np.linalg.slogdet(S0)[1])


@pytest.mark.parametrize("d", [1, 2, 5, 16])
def test_gaussian_kl_full_matches_formula_and_torch(rng, torch_ref, d):
    m0, m1 = rng.normal(size=d), rng.normal(size=d)
    S0, S1 = _random_spd(rng, d), _random_spd(rng, d, 2.0)
    kl = maxlik.gaussian_kl(m0, S0, m1, S1)
    assert kl == pytest.approx(_kl_full_ref(m0, S0, m1, S1), rel=1e-10)
    assert maxlik.gaussian_kl(m0, S0, m0, S0) == pytest.approx(0.0, abs=1e-13)

    def build(torch, m0, S0, m1, S1):
        td = torch.distributions
        P = td.MultivariateNormal(torch.from_numpy(m0), covariance_matrix=torch.from_numpy(S0))
        Q = td.MultivariateNormal(torch.from_numpy(m1), covariance_matrix=torch.from_numpy(S1))
        return {"kl": td.kl_divergence(P, Q)}

    inp, ref = torch_ref.call("kl", build, m0=m0, S0=S0, m1=m1, S1=S1)
    kl = maxlik.gaussian_kl(inp.m0, inp.S0, inp.m1, inp.S1)
    assert kl == pytest.approx(float(ref.kl), rel=1e-10)


def test_gaussian_kl_diag_spherical_univariate_consistent(rng, torch_ref):
    d = 6
    m0, m1 = rng.normal(size=d), rng.normal(size=d)
    v0, v1 = rng.uniform(0.2, 3, size=d), rng.uniform(0.2, 3, size=d)
    full = maxlik.gaussian_kl(m0, np.diag(v0), m1, np.diag(v1))
    diag = maxlik.gaussian_kl(m0, v0, m1, v1, covariance_type="diag")
    uni = maxlik.gaussian_kl(m0, v0, m1, v1, covariance_type="univariate")
    assert uni.shape == (d,)
    assert diag == pytest.approx(full, rel=1e-12)
    assert uni.sum() == pytest.approx(diag, rel=1e-12)
    sph = maxlik.gaussian_kl(m0, 1.3, m1, 0.4, covariance_type="spherical")
    assert sph == pytest.approx(maxlik.gaussian_kl(m0, 1.3 * np.eye(d), m1, 0.4 * np.eye(d)), rel=1e-12)
    # against torch Normal
    def build(torch, m0, v0, m1, v1):
        td = torch.distributions
        return {"kl": td.kl_divergence(
            td.Normal(torch.from_numpy(m0), torch.from_numpy(np.sqrt(v0))),
            td.Normal(torch.from_numpy(m1), torch.from_numpy(np.sqrt(v1))))}

    inp, ref = torch_ref.call("kl", build, m0=m0, v0=v0, m1=m1, v1=v1)
    uni = maxlik.gaussian_kl(inp.m0, inp.v0, inp.m1, inp.v1, covariance_type="univariate")
    np.testing.assert_allclose(uni, ref.kl, rtol=1e-12)


def test_gaussian_kl_batched_and_to_standard_normal(rng):
    mu = rng.normal(size=(10, 4))
    lv = rng.normal(size=(10, 4))
    kl = maxlik.gaussian_kl(mu, np.exp(lv), 0.0 * mu[0], np.ones(4), covariance_type="diag")
    np.testing.assert_allclose(kl, maxlik.kl_to_standard_normal(mu, lv), rtol=1e-13)
    covs = np.stack([_random_spd(rng, 3) for _ in range(5)])
    means = rng.normal(size=(5, 3))
    kl = maxlik.gaussian_kl(means, covs, np.zeros(3), np.eye(3))
    assert kl.shape == (5,)
    for i in range(5):
        assert kl[i] == pytest.approx(_kl_full_ref(means[i], covs[i], np.zeros(3), np.eye(3)), rel=1e-11)


def test_gaussian_kl_close_distributions_keep_relative_accuracy():
    # KL between N(0, 1) and N(0, 1 + h) is h²/4 - h³/6 + ...: the naive formula loses it.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 40
    for h in [1e-4, 1e-7]:
        r = mpmath.mpf(1) / (1 + mpmath.mpf(h))
        ref = float((r - 1 - mpmath.log(r)) / 2)
        got = maxlik.gaussian_kl(0.0, 1.0, 0.0, 1.0 + h, covariance_type="univariate")
        assert got == pytest.approx(ref, rel=1e-8)
        got = maxlik.gaussian_kl([0.0], [[1.0]], [0.0], [[1.0 + h]])
        assert got == pytest.approx(ref, rel=1e-8)


def test_gaussian_kl_monte_carlo(rng):
    stats = pytest.importorskip("scipy.stats")
    r = np.random.default_rng(3)
    m0, m1 = np.array([0.0, 1.0, -1.0]), np.array([0.5, 0.0, -1.0])
    S0, S1 = _random_spd(r, 3), _random_spd(r, 3, 1.5)
    z = r.multivariate_normal(m0, S0, size=200_000)
    lr = stats.multivariate_normal(m0, S0).logpdf(z) - stats.multivariate_normal(m1, S1).logpdf(z)
    kl = maxlik.gaussian_kl(m0, S0, m1, S1)
    assert abs(lr.mean() - kl) < 5 * lr.std() / np.sqrt(lr.size)


def test_gaussian_kl_bad_input(rng):
    S = _random_spd(rng, 3)
    m = np.zeros(3)
    with pytest.raises(ValueError, match="cov_q must be symmetric"):
        bad = S.copy()
        bad[0, 1] += 0.5
        maxlik.gaussian_kl(m, S, m, bad)
    with pytest.raises(ValueError, match="cov_p must be positive definite"):
        maxlik.gaussian_kl(m, np.diag([1.0, -1.0, 1.0]), m, S)
    with pytest.raises(ValueError, match="mean_q has D=2"):
        maxlik.gaussian_kl(m, S, np.zeros(2), S)
    with pytest.raises(ValueError, match="cov_p is 2x2"):
        maxlik.gaussian_kl(m, np.eye(2), m, S)
    with pytest.raises(ValueError, match="cov_q must hold positive variances"):
        maxlik.gaussian_kl(m, np.ones(3), m, np.array([1.0, 0.0, 1.0]), covariance_type="diag")
    with pytest.raises(ValueError, match="cov_p must hold"):
        maxlik.gaussian_kl(m, np.ones(2), m, np.ones(3), covariance_type="diag")
    with pytest.raises(ValueError, match="mean_p"):
        maxlik.gaussian_kl([np.nan, 0, 0], S, m, S)
    with pytest.raises(ValueError, match="covariance_type"):
        maxlik.gaussian_kl(m, S, m, S, covariance_type="tied")
