"""maxlik.mixture_kl against an independent large-sample reference (scipy densities,
numpy Generator draws), gaussian_kl for one component, and the separated-components
limit of the variational approximation."""
import math

import numpy as np
import pytest
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

import maxlik
from maxlik import GaussianMixture, gaussian_kl, mixture_kl


def _full_cov(gm):
    K, D = gm.means_.shape
    c = np.asarray(gm.covariances_, dtype=np.float64)
    if gm.covariance_type == "full":
        return c
    if gm.covariance_type == "tied":
        return np.stack([c] * K)
    if gm.covariance_type == "diag":
        return np.stack([np.diag(v) for v in c])
    return np.stack([np.eye(D) * v for v in c])


def _scipy_logpdf(gm, X):
    cov = _full_cov(gm)
    parts = [np.log(w) + multivariate_normal(m, c).logpdf(X)
             for w, m, c in zip(gm.weights_, gm.means_, cov)]
    return logsumexp(np.stack(parts, axis=1), axis=1)


def _reference_kl(p, q, n, seed):
    """Independent Monte Carlo: numpy Generator draws, scipy log-densities."""
    rng = np.random.default_rng(seed)
    comp = rng.choice(len(p.weights_), size=n, p=p.weights_)
    cov = _full_cov(p)
    X = np.empty((n, p.means_.shape[1]))
    for k in range(len(p.weights_)):
        sel = comp == k
        X[sel] = rng.multivariate_normal(p.means_[k], cov[k], size=int(sel.sum()))
    d = _scipy_logpdf(p, X) - _scipy_logpdf(q, X)
    return d.mean(), d.std(ddof=1) / math.sqrt(n)


def faithful():
    import os
    path = os.path.join(os.path.dirname(maxlik.__file__), "data", "faithful.csv")
    return np.loadtxt(path, delimiter=",", skiprows=1)


@pytest.fixture(scope="module")
def models():
    X = faithful()
    return {(k, ct): GaussianMixture(k, covariance_type=ct, random_state=0).fit(X)
            for k, ct in [(2, "full"), (3, "diag"), (2, "spherical"), (4, "tied")]}


@pytest.mark.parametrize("pair", [((2, "full"), (3, "diag")), ((3, "diag"), (2, "full")),
                                  ((2, "spherical"), (4, "tied")), ((4, "tied"), (2, "full"))])
def test_mc_agrees_with_large_sample_reference(models, pair):
    p, q = models[pair[0]], models[pair[1]]
    res = mixture_kl(p, q, n_samples=20_000, random_state=0)
    ref, ref_se = _reference_kl(p, q, 400_000, seed=1)
    assert res.method == "mc" and res.n_samples == 20_000
    assert res.value > 0 and res.stderr > 0
    assert abs(res.value - ref) <= 5 * math.hypot(res.stderr, ref_se), (res, ref, ref_se)


def test_kl_of_a_mixture_to_itself_is_exactly_zero(models):
    p = models[(2, "full")]
    assert mixture_kl(p, p, random_state=0).value == 0.0
    same = GaussianMixture.from_parameters(p.weights_, p.means_, p.covariances_)
    r = mixture_kl(p, same, random_state=3)
    assert r.value == 0.0 and r.stderr == 0.0
    assert mixture_kl(p, same, method="variational").value == 0.0
    assert mixture_kl(p, p, method="variational").value == 0.0


@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_one_component_equals_gaussian_kl(ctype):
    rng = np.random.default_rng(5)
    D = 3
    mp, mq = rng.normal(size=(1, D)), rng.normal(size=(1, D))
    if ctype == "full":
        A, B = rng.normal(size=(D, D)), rng.normal(size=(D, D))
        cp, cq = (A @ A.T + np.eye(D))[None], (B @ B.T + np.eye(D))[None]
        exact = gaussian_kl(mp[0], cp[0], mq[0], cq[0])
    elif ctype == "diag":
        cp, cq = rng.uniform(0.5, 2, size=(1, D)), rng.uniform(0.5, 2, size=(1, D))
        exact = gaussian_kl(mp[0], cp[0], mq[0], cq[0], covariance_type="diag")
    else:
        cp, cq = np.array([0.7]), np.array([1.9])
        exact = gaussian_kl(mp[0], cp[0], mq[0], cq[0], covariance_type="spherical")
    p = GaussianMixture.from_parameters([1.0], mp, cp, ctype)
    q = GaussianMixture.from_parameters([1.0], mq, cq, ctype)
    var = mixture_kl(p, q, method="variational")
    assert var.value == pytest.approx(float(exact), rel=1e-12) and var.stderr is None
    mc = mixture_kl(p, q, n_samples=50_000, random_state=0)
    assert abs(mc.value - exact) <= 5 * mc.stderr


def test_variational_matches_separated_limit():
    # components far apart and matched one to one: KL(p‖q) -> Σ π_a log(π_a/ω_a)
    # + Σ π_a KL(p_a‖q_a) (the variational approximation is exact in this limit)
    means = np.array([[0.0, 0.0], [60.0, 0.0], [0.0, 60.0]])
    cov_p = np.stack([np.eye(2), np.diag([2.0, 0.5]), [[1.0, 0.3], [0.3, 1.0]]])
    cov_q = np.stack([1.5 * np.eye(2), np.eye(2), [[1.2, -0.2], [-0.2, 0.9]]])
    wp, wq = np.array([0.2, 0.5, 0.3]), np.array([0.3, 0.3, 0.4])
    p = GaussianMixture.from_parameters(wp, means, cov_p)
    q = GaussianMixture.from_parameters(wq, means + 0.3, cov_q)
    limit = float(np.sum(wp * np.log(wp / wq))
                  + np.sum(wp * gaussian_kl(means, cov_p, means + 0.3, cov_q)))
    assert mixture_kl(p, q, method="variational").value == pytest.approx(limit, rel=1e-9)
    mc = mixture_kl(p, q, n_samples=40_000, random_state=2)
    assert abs(mc.value - limit) <= 5 * mc.stderr


def test_deterministic_given_random_state(models):
    p, q = models[(2, "full")], models[(3, "diag")]
    a = mixture_kl(p, q, random_state=7)
    b = mixture_kl(p, q, random_state=7)
    assert a.value == b.value and a.stderr == b.stderr
    assert float(a) == a.value


def test_bad_arguments(models):
    p = models[(2, "full")]
    with pytest.raises(TypeError, match="p must be a fitted maxlik.GaussianMixture"):
        mixture_kl("model", p)
    with pytest.raises(TypeError, match="q must be a fitted"):
        mixture_kl(p, object())
    with pytest.raises(ValueError, match="not fitted|fit"):
        mixture_kl(p, GaussianMixture(2))
    one = GaussianMixture.from_parameters([1.0], [[0.0]], [[[1.0]]])
    with pytest.raises(ValueError, match="same number of features; p has 2, q has 1"):
        mixture_kl(p, one)
    with pytest.raises(ValueError, match="method"):
        mixture_kl(p, p, method="exact")
    with pytest.raises(ValueError, match="n_samples"):
        mixture_kl(p, p, n_samples=1)
