"""maxlik.GaussianMixture and the block statistics API, against scikit-learn and EM identities."""
import pickle
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import (GaussianMixture, MixtureParameters, MixtureStatistics, mixture_statistics,
                    mixture_update)
from maxlik.exceptions import ConvergenceWarning

skm = pytest.importorskip("sklearn.mixture")
datasets = pytest.importorskip("sklearn.datasets")

TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def blobs():
    X, _ = datasets.make_blobs(1500, 4, centers=3, cluster_std=[1.0, 2.0, 0.5], random_state=1)
    return X


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*a, **k)


def _sk_start(X, ctype, K=3):
    """Initial weights/means/precisions taken from a 1-iteration scikit-learn fit."""
    sk = _quiet(skm.GaussianMixture(K, covariance_type=ctype, max_iter=1, random_state=0).fit, X)
    return dict(weights_init=sk.weights_, means_init=sk.means_, precisions_init=sk.precisions_)


@pytest.mark.parametrize("ctype", TYPES)
def test_lower_bounds_match_sklearn(blobs, ctype):
    init = _sk_start(blobs, ctype)
    kw = dict(n_components=3, covariance_type=ctype, max_iter=25, tol=0.0, **init)
    sk = _quiet(skm.GaussianMixture(**kw).fit, blobs)
    ml = _quiet(GaussianMixture(**kw).fit, blobs)
    assert len(ml.lower_bounds_) == len(sk.lower_bounds_) == 25
    np.testing.assert_allclose(ml.lower_bounds_, sk.lower_bounds_, rtol=1e-9, atol=0)
    assert ml.lower_bound_ == pytest.approx(sk.lower_bound_, rel=1e-9)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(ml, name), getattr(sk, name), rtol=1e-7, atol=1e-9,
                                   err_msg=name)
    assert ml.n_iter_ == sk.n_iter_ and ml.converged_ == sk.converged_


@pytest.mark.parametrize("init_params", ["random", "random_from_data"])
def test_random_inits_match_sklearn(blobs, init_params):
    # Same random stream as scikit-learn for these two initialisations.
    kw = dict(n_components=3, covariance_type="full", init_params=init_params, random_state=7,
              max_iter=10, tol=0.0, n_init=2)
    sk = _quiet(skm.GaussianMixture(**kw).fit, blobs)
    ml = _quiet(GaussianMixture(**kw).fit, blobs)
    np.testing.assert_allclose(ml.lower_bounds_, sk.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(ml.means_, sk.means_, rtol=1e-7)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
@pytest.mark.parametrize("ctype", TYPES)
def test_every_init_fits_as_well_as_sklearn(blobs, ctype, init_params):
    kw = dict(n_components=3, covariance_type=ctype, init_params=init_params, random_state=0,
              n_init=2, max_iter=200)
    ml = GaussianMixture(**kw).fit(blobs)
    sk = skm.GaussianMixture(**kw).fit(blobs)
    assert ml.converged_
    # Different k-means / k-means++ implementations may reach another local optimum;
    # on these well-separated blobs both must find the same one.
    assert ml.score(blobs) == pytest.approx(sk.score(blobs), abs=1e-3)


def test_predict_score_sample_match_sklearn(blobs):
    init = _sk_start(blobs, "full")
    kw = dict(n_components=3, max_iter=5, tol=0.0, random_state=3, **init)
    sk = _quiet(skm.GaussianMixture(**kw).fit, blobs)
    ml = _quiet(GaussianMixture(**kw).fit, blobs)
    Z = blobs[::7] + 0.3
    np.testing.assert_allclose(ml.score_samples(Z), sk.score_samples(Z), rtol=1e-9)
    np.testing.assert_allclose(ml.predict_proba(Z), sk.predict_proba(Z), rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(ml.predict(Z), sk.predict(Z))
    assert ml.score(Z) == pytest.approx(sk.score(Z), rel=1e-10)
    assert ml.bic(Z) == pytest.approx(sk.bic(Z), rel=1e-10)
    assert ml.aic(Z) == pytest.approx(sk.aic(Z), rel=1e-10)
    Xs, ys = ml.sample(40)
    Xk, yk = sk.sample(40)
    np.testing.assert_allclose(Xs, Xk, rtol=1e-6)
    np.testing.assert_array_equal(ys, yk)
    np.testing.assert_array_equal(_quiet(GaussianMixture(**kw).fit_predict, blobs),
                                  sk.predict(blobs))


@pytest.mark.parametrize("ctype", TYPES)
def test_integer_weights_equal_repeated_rows(blobs, ctype):
    X = blobs[:400]
    w = np.random.default_rng(0).integers(1, 4, size=X.shape[0])
    init = _sk_start(X, ctype)
    kw = dict(n_components=3, covariance_type=ctype, max_iter=8, tol=0.0, **init)
    a = _quiet(GaussianMixture(**kw).fit, X, sample_weight=w)
    b = _quiet(GaussianMixture(**kw).fit, np.repeat(X, w, axis=0))
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-11)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)


@pytest.mark.parametrize("ctype", TYPES)
def test_zero_weights_equal_dropped_rows(blobs, ctype):
    X = blobs[:500]
    keep = np.random.default_rng(1).random(X.shape[0]) < 0.6
    init = _sk_start(X, ctype)
    kw = dict(n_components=3, covariance_type=ctype, max_iter=8, tol=0.0, **init)
    a = _quiet(GaussianMixture(**kw).fit, X, sample_weight=keep.astype(float))
    b = _quiet(GaussianMixture(**kw).fit, X[keep])
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-11)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-10)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-9)


def test_weighted_kmeans_init_runs(blobs):
    w = np.random.default_rng(2).random(blobs.shape[0])
    gm = GaussianMixture(3, random_state=0).fit(blobs, sample_weight=w)
    assert gm.converged_ and np.isfinite(gm.lower_bound_)


@pytest.mark.parametrize("ctype", TYPES)
def test_block_statistics_merge_and_update(blobs, ctype):
    gm = _quiet(GaussianMixture(3, covariance_type=ctype, max_iter=3, tol=0, random_state=0).fit, blobs)
    p = gm.parameters()
    w = np.random.default_rng(3).random(blobs.shape[0])
    whole = mixture_statistics(blobs, p, sample_weight=w)
    parts = [mixture_statistics(blobs[i:i + 333], p, sample_weight=w[i:i + 333])
             for i in range(0, blobs.shape[0], 333)]
    merged = sum(parts)
    assert isinstance(merged, MixtureStatistics) and merged.n_samples == blobs.shape[0]
    for name in ("resp_sum", "sum_x", "sum_xx"):
        np.testing.assert_allclose(getattr(merged, name), getattr(whole, name), rtol=1e-12,
                                   atol=1e-9)
    assert merged.log_likelihood == pytest.approx(whole.log_likelihood, rel=1e-12)
    # pickles (for Dask) and still merges
    again = pickle.loads(pickle.dumps(parts[0])) + parts[1]
    np.testing.assert_allclose(again.sum_x, (parts[0] + parts[1]).sum_x)
    # mean log-likelihood is the score; one update equals one more EM iteration
    assert whole.mean_log_likelihood == pytest.approx(gm.score(blobs, sample_weight=w), rel=1e-12)
    new = mixture_update(mixture_statistics(blobs, p), reg_covar=gm.reg_covar)
    gm2 = _quiet(GaussianMixture(3, covariance_type=ctype, max_iter=4, tol=0, random_state=0).fit, blobs)
    np.testing.assert_allclose(new.means, gm2.means_, rtol=1e-12)
    np.testing.assert_allclose(new.precisions_cholesky, gm2.precisions_cholesky_, rtol=1e-10)


def test_statistics_refuse_mixed_parameters(blobs):
    a = _quiet(GaussianMixture(2, max_iter=1, tol=0, random_state=0).fit, blobs).parameters()
    b = _quiet(GaussianMixture(2, max_iter=3, tol=0, random_state=0).fit, blobs).parameters()
    with pytest.raises(ValueError, match="different parameters"):
        mixture_statistics(blobs[:10], a) + mixture_statistics(blobs[10:20], b)
    with pytest.raises(ValueError, match="features"):
        mixture_statistics(blobs[:, :2], a)
    with pytest.raises(TypeError, match="MixtureParameters"):
        mixture_statistics(blobs, {"means": 0})


def test_thread_count_does_not_change_fit(threads):
    X, _ = datasets.make_blobs(9000, 5, centers=4, random_state=2)
    res = []
    for n in (1, 2):
        threads(n)
        gm = _quiet(GaussianMixture(4, max_iter=10, tol=0, random_state=0).fit, X)
        res.append((gm.means_.copy(), gm.covariances_.copy(), list(gm.lower_bounds_)))
    np.testing.assert_array_equal(res[0][0], res[1][0])
    np.testing.assert_array_equal(res[0][1], res[1][1])
    assert res[0][2] == res[1][2]


@pytest.mark.parametrize("ctype", ["diag", "spherical", "full", "tied"])
def test_float32_far_from_origin_keeps_positive_variances(ctype):
    # scikit-learn #30382-style data: large mean, small spread, float32.
    rng = np.random.default_rng(4)
    X = (1e4 + rng.normal(size=(3000, 3)) * 1e-2).astype(np.float32)
    X[1500:] += 0.1
    gm = _quiet(GaussianMixture(2, covariance_type=ctype, reg_covar=0.0, random_state=0,
                                max_iter=20).fit, X)
    cov = np.asarray(gm.covariances_)
    assert np.all(np.isfinite(cov))
    diag = cov if ctype in ("diag", "spherical") else np.diagonal(cov, axis1=-2, axis2=-1)
    assert np.all(diag > 0)
    assert np.all(diag > 5e-5) and np.all(diag < 2e-4)  # true variance 1e-4


def test_float32_close_to_float64(blobs):
    init = _sk_start(blobs, "full")
    kw = dict(n_components=3, max_iter=10, tol=0.0, **init)
    a = _quiet(GaussianMixture(**kw).fit, blobs.astype(np.float32))
    b = _quiet(GaussianMixture(**kw).fit, blobs)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=1e-5)
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-4, atol=1e-4)


def test_collapse_names_component_and_reg_covar():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(50, 2)), np.tile([[10.0, 10.0]], (20, 1))])
    for ctype in ("full", "diag", "spherical"):
        with pytest.raises(ValueError, match=r"(?s)ill-defined empirical covariance.*increase reg_covar.*Component \d+ collapsed"):
            GaussianMixture(2, covariance_type=ctype, reg_covar=0.0, random_state=0).fit(X)
    # the remedy works
    GaussianMixture(2, reg_covar=1e-3, random_state=0).fit(X)


def test_bad_arguments(blobs):
    with pytest.raises(ValueError, match="n_components = 5, n_samples = 4"):
        GaussianMixture(5).fit(blobs[:4])
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture(2, covariance_type="tri").fit(blobs)
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        GaussianMixture(0).fit(blobs)
    with pytest.raises(ValueError, match="weights_init must sum to 1"):
        GaussianMixture(2, weights_init=[0.2, 0.2]).fit(blobs)
    with pytest.raises(ValueError, match=r"The parameter 'means' should have the shape of \(2, 4\).*means_init must have shape \(2, 4\)"):
        GaussianMixture(2, means_init=np.zeros((2, 3))).fit(blobs)
    with pytest.raises(ValueError, match="symmetric, positive-definite: precisions_init"):
        GaussianMixture(2, precisions_init=-np.stack([np.eye(4)] * 2)).fit(blobs)
    with pytest.raises(ValueError, match="sample_weight"):
        GaussianMixture(2).fit(blobs, sample_weight=-np.ones(blobs.shape[0]))
    with pytest.raises(ValueError, match="zero"):
        GaussianMixture(2).fit(blobs, sample_weight=np.zeros(blobs.shape[0]))
    with pytest.raises(TypeError, match="callback"):
        GaussianMixture(2, callback=3).fit(blobs)
    gm = _quiet(GaussianMixture(2, max_iter=2).fit, blobs)
    with pytest.raises(ValueError, match="X has 3 features"):
        gm.predict(blobs[:, :3])
    with pytest.raises(maxlik.NotFittedError):
        GaussianMixture(2).predict(blobs)


def test_convergence_warning_callback_and_verbose(blobs, capsys):
    seen = []
    with pytest.warns(ConvergenceWarning, match="did not converge.*increase max_iter"):
        gm = GaussianMixture(3, max_iter=4, tol=0.0, random_state=0, verbose=2,
                             verbose_interval=2, callback=lambda i, lb: seen.append((i, lb))).fit(
            blobs)
    assert [i for i, _ in seen] == [1, 2, 3, 4]
    assert [lb for _, lb in seen] == gm.lower_bounds_
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Iteration 2" in out and "Iteration 4" in out
    assert "did not converge" in out


def test_warm_start_continues(blobs):
    init = _sk_start(blobs, "diag")
    kw = dict(n_components=3, covariance_type="diag", tol=0.0, **init)
    one = _quiet(GaussianMixture(max_iter=10, **kw).fit, blobs)
    two = GaussianMixture(max_iter=5, warm_start=True, **kw)
    _quiet(two.fit, blobs)
    _quiet(two.fit, blobs)
    np.testing.assert_allclose(two.means_, one.means_, rtol=1e-12)
    np.testing.assert_allclose(two.lower_bounds_, one.lower_bounds_[5:], rtol=1e-12)


def test_max_iter_zero_keeps_initialisation(blobs):
    init = _sk_start(blobs, "full")
    gm = GaussianMixture(3, max_iter=0, **init).fit(blobs)
    np.testing.assert_allclose(gm.means_, init["means_init"])
    np.testing.assert_allclose(gm.precisions_, init["precisions_init"], rtol=1e-10)
    assert gm.n_iter_ == 0 and gm.lower_bounds_ == []


@pytest.mark.parametrize("ctype", TYPES)
def test_one_feature_matches_sklearn(ctype):
    # D = 1 takes the diagonal fast path in the kernels for every covariance type.
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal(0, 1, 300), rng.normal(6, 0.5, 200)])[:, None]
    init = _sk_start(X, ctype, K=2)
    kw = dict(n_components=2, covariance_type=ctype, max_iter=15, tol=0.0, **init)
    sk = _quiet(skm.GaussianMixture(**kw).fit, X)
    ml = _quiet(GaussianMixture(**kw).fit, X)
    np.testing.assert_allclose(ml.lower_bounds_, sk.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(ml.covariances_, sk.covariances_, rtol=1e-8)


def test_high_dimension_matches_sklearn():
    # D = 37: odd D exercises the edge tiles of the triangular and rank-update kernels.
    X, _ = datasets.make_blobs(1200, 37, centers=3, random_state=3)
    init = _sk_start(X, "full")
    kw = dict(n_components=3, max_iter=6, tol=0.0, **init)
    sk = _quiet(skm.GaussianMixture(**kw).fit, X)
    ml = _quiet(GaussianMixture(**kw).fit, X)
    np.testing.assert_allclose(ml.lower_bounds_, sk.lower_bounds_, rtol=1e-9)
    np.testing.assert_allclose(ml.covariances_, sk.covariances_, rtol=1e-7, atol=1e-10)


# scikit-learn's tests match these message texts; maxlik's messages start with them
# and then name the argument and the remedy.
def test_messages_carry_sklearns_wording():
    import re

    X = np.random.default_rng(0).normal(size=(60, 2))
    gm = maxlik.GaussianMixture(n_components=2, weights_init=np.full((2, 1), 0.5))
    with pytest.raises(ValueError, match=re.escape(
            "The parameter 'weights' should have the shape of (2,), but got (2, 1)") + ".*weights_init"):
        gm.fit(X)
    with pytest.raises(ValueError, match=r"The parameter 'weights' should be normalized, but got "
                                         r"sum\(weights\) = 0\.60000"):
        maxlik.GaussianMixture(2, weights_init=[0.3, 0.3]).fit(X)
    with pytest.raises(ValueError, match="The parameter 'means' should have the shape of"):
        maxlik.GaussianMixture(2, means_init=np.zeros((3, 2))).fit(X)
    bad_shape = {"full": np.ones((3, 2, 2)), "tied": np.ones((3, 3)), "diag": np.ones((3, 2)),
                 "spherical": np.ones(3)}
    not_pos = {"full": -np.stack([np.eye(2)] * 2), "tied": -np.eye(2), "diag": -np.ones((2, 2)),
               "spherical": -np.ones(2)}
    words = {"full": "symmetric, positive-definite", "tied": "symmetric, positive-definite",
             "diag": "positive", "spherical": "positive"}
    for ct in ("full", "tied", "diag", "spherical"):
        with pytest.raises(ValueError, match=f"The parameter '{ct} precision' should have the shape of"):
            maxlik.GaussianMixture(2, covariance_type=ct, precisions_init=bad_shape[ct]).fit(X)
        with pytest.raises(ValueError, match=f"'{ct} precision' should be {words[ct]}"):
            maxlik.GaussianMixture(2, covariance_type=ct, precisions_init=not_pos[ct]).fit(X)
    with pytest.warns(maxlik.ConvergenceWarning, match=re.escape(
            "Best performing initialization did not converge. Try different init parameters, "
            "or increase max_iter, tol, or check for degenerate data.")):
        maxlik.GaussianMixture(2, max_iter=1, random_state=0).fit(X)
    gm = maxlik.GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="Invalid value for 'n_samples'"):
        gm.sample(0)
    collapsed = np.vstack([np.zeros((10, 2)), np.random.default_rng(1).normal(size=(3, 2))])
    with pytest.raises(ValueError, match=re.escape(
            "Fitting the mixture model failed because some components have ill-defined empirical "
            "covariance (for instance caused by singleton or collapsed samples).")):
        maxlik.GaussianMixture(4, reg_covar=0, covariance_type="full", random_state=0,
                               means_init=[[0, 0], [0, 0.0], [5, 5], [-5, 5]]).fit(collapsed)
    with pytest.raises(ValueError, match="does not match the number of clusters 3"):
        maxlik.KMeans(3, init=np.zeros((2, 2)), n_init=1).fit(X)
    with pytest.raises(ValueError, match="does not match the number of features of the data 2"):
        maxlik.KMeans(3, init=np.zeros((3, 4)), n_init=1).fit(X)
