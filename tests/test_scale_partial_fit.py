"""Incremental fitting: stepwise EM (GaussianMixture.partial_fit) and mini-batch k-means."""
import warnings

import numpy as np
import pytest

from maxlik import GaussianMixture, KMeans
from maxlik import _engine
from maxlik._engine import step_size
from maxlik._sources import ArraySource

CTYPES = ["full", "diag", "tied", "spherical"]

TRUE_W = np.array([0.5, 0.3, 0.2])
TRUE_MU = np.array([[0.0, 0.0], [6.0, 0.0], [0.0, 7.0]])
TRUE_COV = np.array([[[1.0, 0.5], [0.5, 1.0]], [[2.0, 0.0], [0.0, 0.5]],
                     [[0.7, -0.3], [-0.3, 1.2]]])


def _draw(rng, n):
    z = rng.choice(3, size=n, p=TRUE_W)
    L = np.linalg.cholesky(TRUE_COV)
    return TRUE_MU[z] + np.einsum("nij,nj->ni", L[z], rng.standard_normal((n, 2)))


def _order(means):
    # components identified by their mean: (0,0), (6,0), (0,7)
    return [int(np.argmin(((means - m) ** 2).sum(1))) for m in TRUE_MU]


def test_stepwise_em_recovers_a_known_mixture():
    rng = np.random.default_rng(12345)
    gm = GaussianMixture(3, random_state=0)
    for _ in range(300):
        gm.partial_fit(_draw(rng, 200))
    o = _order(gm.means_)
    assert sorted(o) == [0, 1, 2]
    np.testing.assert_allclose(gm.weights_[o], TRUE_W, atol=0.03)
    np.testing.assert_allclose(gm.means_[o], TRUE_MU, atol=0.1)
    np.testing.assert_allclose(gm.covariances_[o], TRUE_COV, atol=0.15)
    assert gm.n_iter_ == 300


def test_step_size_schedule():
    assert step_size(0, 0.7, 1.0) == 1.0
    assert step_size(9, 0.7, 1.0) == pytest.approx(10 ** -0.7)
    assert step_size(3, 1.0, 2.0) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="learning_decay"):
        GaussianMixture(2, learning_decay=0.5).partial_fit(_draw(np.random.default_rng(0), 50))


@pytest.mark.parametrize("ctype", CTYPES)
def test_first_partial_fit_is_one_em_step(ctype):
    """ρ_0 = 1: the first update is exactly one EM step from the initialisation."""
    X = _draw(np.random.default_rng(1), 500) + 10.0  # off-centre: exercises the re-centring
    init = dict(weights_init=TRUE_W, means_init=TRUE_MU + 10.0, random_state=0)
    a = GaussianMixture(3, covariance_type=ctype, **init).partial_fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = GaussianMixture(3, covariance_type=ctype, max_iter=1, **init).fit(X)
    np.testing.assert_allclose(a.means_, b.means_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ctype", ["full", "diag"])
def test_second_step_blends_statistics(ctype):
    """Independent check of s ← (1−ρ) s + ρ s_b with raw moments from predict_proba."""
    rng = np.random.default_rng(2)
    A, B = _draw(rng, 400), _draw(rng, 300) + 0.3
    gm = GaussianMixture(3, covariance_type=ctype, means_init=TRUE_MU, weights_init=TRUE_W,
                         learning_decay=0.8, learning_offset=2.0, reg_covar=1e-6, random_state=0)
    gm.partial_fit(A)
    # expected: raw moments of A under the initial parameters, then of B under P1
    P0 = GaussianMixture(3, covariance_type=ctype, means_init=TRUE_MU, weights_init=TRUE_W)
    P0._check_hyper()
    P0.n_features_in_ = 2
    p0 = _engine.initial_mixture_parameters(ArraySource(A), 3, ctype, 1e-6, "kmeans",
                                            np.random.RandomState(0), np.asarray(TRUE_W),
                                            np.asarray(TRUE_MU, dtype=float), None)
    P0._set_parameters(p0)

    def moments(est, X):
        R = est.predict_proba(X)
        n = len(X)
        m0 = R.sum(0) / n
        m1 = R.T @ X / n
        m2 = np.einsum("nk,ni,nj->kij", R, X, X) / n
        return m0, m1, m2

    s = moments(P0, A)
    t = moments(gm, B)
    rho = (1 + 2.0) ** -0.8
    m0, m1, m2 = ((1 - rho) * a + rho * b for a, b in zip(s, t))
    gm.partial_fit(B)
    mu = m1 / m0[:, None]
    cov = m2 / m0[:, None, None] - np.einsum("ki,kj->kij", mu, mu)
    cov[:, [0, 1], [0, 1]] += 1e-6
    np.testing.assert_allclose(gm.weights_, m0 / m0.sum(), atol=1e-10)
    np.testing.assert_allclose(gm.means_, mu, atol=1e-10)
    if ctype == "full":
        np.testing.assert_allclose(gm.covariances_, cov, atol=1e-9)
    else:
        np.testing.assert_allclose(gm.covariances_, cov[:, [0, 1], [0, 1]], atol=1e-9)


def test_gmm_partial_fit_checks_features():
    gm = GaussianMixture(2).partial_fit(np.random.default_rng(0).normal(size=(20, 3)))
    with pytest.raises(ValueError, match="3 features"):
        gm.partial_fit(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixture(5).partial_fit(np.zeros((3, 2)))


def test_minibatch_kmeans_recovers_centres():
    """Mini-batch k-means on a stream ends near Lloyd's solution on all the data."""
    rng = np.random.default_rng(7)
    batches = [_draw(rng, 256) for _ in range(100)]
    km = KMeans(3, random_state=0)
    for X in batches:
        km.partial_fit(X)
    full = KMeans(3, random_state=0).fit(np.concatenate(batches))
    o = _order(km.cluster_centers_)
    p = _order(full.cluster_centers_)
    assert sorted(o) == [0, 1, 2]
    np.testing.assert_allclose(km.cluster_centers_[o], full.cluster_centers_[p], atol=0.05)
    np.testing.assert_allclose(km.cluster_centers_[o], TRUE_MU, atol=0.15)
    assert km.n_steps_ == 100 and km.labels_.shape == (256,)


def test_minibatch_kmeans_matches_sklearn():
    sk = pytest.importorskip("sklearn.cluster")
    rng = np.random.default_rng(3)
    batches = [_draw(rng, 100) for _ in range(20)]
    w = [rng.uniform(0.2, 2, size=100) for _ in range(20)]
    init = TRUE_MU + 0.5
    ours = KMeans(3, init=init, n_init=1)
    ref = sk.MiniBatchKMeans(3, init=init, n_init=1, reassignment_ratio=0.0)
    for X, sw in zip(batches, w):
        ours.partial_fit(X, sample_weight=sw)
        ref.partial_fit(X, sample_weight=sw)
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.inertia_ == pytest.approx(ref.inertia_, rel=1e-10)


def test_partial_fit_after_fit_continues_from_the_fit():
    rng = np.random.default_rng(11)
    X = _draw(rng, 2000)
    gm = GaussianMixture(3, random_state=0).fit(X)
    means = gm.means_.copy()
    gm.partial_fit(_draw(rng, 500))
    assert gm.n_iter_ == 1  # a fresh stepwise run ...
    np.testing.assert_allclose(gm.means_, means, atol=0.2)  # ... from the fitted parameters
    gm.partial_fit(_draw(rng, 500))
    assert gm.n_iter_ == 2
    gm.fit(X)  # fit() makes the running statistics stale
    gm.partial_fit(_draw(rng, 500))
    assert gm.n_iter_ == 1

    km = KMeans(3, random_state=0).fit(X)
    centres = km.cluster_centers_.copy()
    km.partial_fit(_draw(rng, 500))
    assert km.n_steps_ == 1
    np.testing.assert_allclose(km.cluster_centers_, centres, atol=0.3)
    km.partial_fit(_draw(rng, 500))
    assert km.n_steps_ == 2
