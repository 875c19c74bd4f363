"""Divergence benchmarks: maxlik against numpy / scipy / torch on the same data.

Run (not part of the default test run):

    python -m pytest benchmarks/bench_divergences.py --benchmark-only \
        --benchmark-columns=median,iqr,rounds --benchmark-sort=name

Each group holds maxlik and its peers on identical (1_000_000, 16) arrays;
compare the medians within a group. The peers compute the same numbers
without maxlik's input validation (which maxlik does in the same pass).
"""
import numpy as np
import pytest

import maxlik

N, D = 1_000_000, 16


@pytest.fixture(scope="module")
def gauss64():
    r = np.random.default_rng(0)
    return r.normal(size=(N, D)), r.normal(size=(N, D))


@pytest.fixture(scope="module")
def gauss32(gauss64):
    mu, lv = gauss64
    return mu.astype(np.float32), lv.astype(np.float32)


@pytest.fixture(scope="module")
def probs():
    r = np.random.default_rng(1)
    p = r.dirichlet(np.full(D, 0.5), size=N)
    q = r.dirichlet(np.full(D, 0.5), size=N)
    return p, q


def _np_kl_std(mu, lv):
    return 0.5 * np.sum(mu * mu + np.exp(lv) - 1.0 - lv, axis=1)


def _np_kl_std_grad(mu, lv):
    e = np.exp(lv)
    return 0.5 * np.sum(mu * mu + e - 1.0 - lv, axis=1), mu.copy(), 0.5 * (e - 1.0)


# ---- kl_to_standard_normal ------------------------------------------------------
@pytest.mark.benchmark(group="kl_std_normal f64 (1e6,16)")
def test_kl_std_maxlik_f64(benchmark, gauss64):
    benchmark(maxlik.kl_to_standard_normal, *gauss64)


@pytest.mark.benchmark(group="kl_std_normal f64 (1e6,16)")
def test_kl_std_numpy_f64(benchmark, gauss64):
    benchmark(_np_kl_std, *gauss64)


@pytest.mark.benchmark(group="kl_std_normal f64 (1e6,16)")
def test_kl_std_torch_f64(benchmark, gauss64):
    torch = pytest.importorskip("torch")
    mu, lv = (torch.from_numpy(a) for a in gauss64)
    benchmark(lambda: 0.5 * (mu * mu + lv.exp() - 1.0 - lv).sum(-1))


@pytest.mark.benchmark(group="kl_std_normal+grad f64 (1e6,16)")
def test_kl_std_grad_maxlik_f64(benchmark, gauss64):
    benchmark(maxlik.kl_to_standard_normal, *gauss64, return_grad=True)


@pytest.mark.benchmark(group="kl_std_normal+grad f64 (1e6,16)")
def test_kl_std_grad_numpy_f64(benchmark, gauss64):
    benchmark(_np_kl_std_grad, *gauss64)


@pytest.mark.benchmark(group="kl_std_normal f32 (1e6,16)")
def test_kl_std_maxlik_f32(benchmark, gauss32):
    benchmark(maxlik.kl_to_standard_normal, *gauss32)


@pytest.mark.benchmark(group="kl_std_normal f32 (1e6,16)")
def test_kl_std_numpy_f32(benchmark, gauss32):
    benchmark(_np_kl_std, *gauss32)


@pytest.mark.benchmark(group="kl_std_normal f32 (1e6,16)")
def test_kl_std_torch_f32(benchmark, gauss32):
    torch = pytest.importorskip("torch")
    mu, lv = (torch.from_numpy(a) for a in gauss32)
    benchmark(lambda: 0.5 * (mu * mu + lv.exp() - 1.0 - lv).sum(-1))


# ---- discrete -------------------------------------------------------------------
@pytest.mark.benchmark(group="entropy f64 (1e6,16)")
def test_entropy_maxlik(benchmark, probs):
    benchmark(maxlik.entropy, probs[0])


@pytest.mark.benchmark(group="entropy f64 (1e6,16)")
def test_entropy_scipy_stats(benchmark, probs):
    stats = pytest.importorskip("scipy.stats")
    benchmark(stats.entropy, probs[0], axis=1)


@pytest.mark.benchmark(group="entropy f64 (1e6,16)")
def test_entropy_scipy_entr(benchmark, probs):
    special = pytest.importorskip("scipy.special")
    benchmark(lambda p: special.entr(p).sum(axis=1), probs[0])


@pytest.mark.benchmark(group="kl_divergence f64 (1e6,16)")
def test_kl_maxlik(benchmark, probs):
    benchmark(maxlik.kl_divergence, *probs)


@pytest.mark.benchmark(group="kl_divergence f64 (1e6,16)")
def test_kl_scipy_stats(benchmark, probs):
    stats = pytest.importorskip("scipy.stats")
    benchmark(stats.entropy, *probs, axis=1)


@pytest.mark.benchmark(group="kl_divergence f64 (1e6,16)")
def test_kl_scipy_rel_entr(benchmark, probs):
    special = pytest.importorskip("scipy.special")
    benchmark(lambda p, q: special.rel_entr(p, q).sum(axis=1), *probs)


@pytest.mark.benchmark(group="cross_entropy f64 (1e6,16)")
def test_ce_maxlik(benchmark, probs):
    benchmark(maxlik.cross_entropy, *probs)


@pytest.mark.benchmark(group="cross_entropy f64 (1e6,16)")
def test_ce_scipy_xlogy(benchmark, probs):
    special = pytest.importorskip("scipy.special")
    benchmark(lambda p, q: -special.xlogy(p, q).sum(axis=1), *probs)


@pytest.mark.benchmark(group="cross_entropy f64 (1e6,16)")
def test_ce_torch(benchmark, probs):
    torch = pytest.importorskip("torch")
    p, q = (torch.from_numpy(a) for a in probs)
    benchmark(lambda: -torch.xlogy(p, q).sum(-1))


# ---- closed-form fit --------------------------------------------------------------
@pytest.mark.benchmark(group="fit_gaussian full f64 (1e6,16)")
def test_fit_gaussian_maxlik(benchmark, gauss64):
    benchmark(maxlik.fit_gaussian, gauss64[0])


@pytest.mark.benchmark(group="fit_gaussian full f64 (1e6,16)")
def test_fit_gaussian_numpy(benchmark, gauss64):
    X = gauss64[0]
    benchmark(lambda: (X.mean(axis=0), np.cov(X, rowvar=False, ddof=0)))
