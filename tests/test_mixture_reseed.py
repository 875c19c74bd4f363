"""GaussianMixture(on_collapse="reseed"), freeze=..., from_parameters and float32 variances.

References: numpy re-implementations of the restricted M-step written here,
the fitted model itself (from_parameters must score exactly like it), and
scikit-learn's #30382 reproducer."""
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import GaussianMixture
from maxlik.exceptions import ConvergenceWarning

CTYPES = ("full", "tied", "diag", "spherical")


def _quiet(fn, *a, **k):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*a, **k)


def duplicate_rows(loc=3.0):
    """The issue's reproduction: 500 normal rows plus 50 identical rows."""
    rng = np.random.default_rng(0)
    return np.vstack([rng.normal(size=(500, 2)), np.full((50, 2), loc)])


def _monotone_between_reseeds(gm):
    lb = np.asarray(gm.lower_bounds_)
    edges = [0] + list(gm.reseed_iterations_) + [len(lb)]
    for a, b in zip(edges, edges[1:]):
        seg = lb[a:b]
        if seg.size > 1:
            # EM is monotone; allow rounding of the mean log-likelihood only
            assert np.all(np.diff(seg) >= -1e-10 * np.abs(seg[1:])), (a, b, np.diff(seg).min())


def _positive_definite(gm):
    cov = np.asarray(gm.covariances_)
    assert np.all(np.isfinite(cov)) and np.all(np.isfinite(gm.precisions_cholesky_))
    if gm.covariance_type == "full":
        assert np.all(np.linalg.eigvalsh(cov) > 0)
    elif gm.covariance_type == "tied":
        assert np.all(np.linalg.eigvalsh(cov) > 0)
    else:
        assert np.all(cov > 0)


# ---- on_collapse -------------------------------------------------------------------------

@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_duplicate_rows_raise_by_default(ctype):
    X = duplicate_rows()
    with pytest.raises(ValueError, match="ill-defined empirical covariance"):
        _quiet(GaussianMixture(4, covariance_type=ctype, reg_covar=0.0, random_state=0).fit, X)


@pytest.mark.parametrize("ctype", ["full", "diag", "spherical"])
def test_reseed_on_duplicate_rows(ctype):
    X = duplicate_rows()
    seen = []
    gm = _quiet(GaussianMixture(4, covariance_type=ctype, reg_covar=0.0, random_state=0,
                                on_collapse="reseed", callback=lambda i, lb: seen.append(lb)).fit, X)
    _positive_definite(gm)
    assert np.all(np.isfinite(gm.weights_)) and np.all(np.isfinite(gm.means_))
    assert abs(gm.weights_.sum() - 1) < 1e-12
    _monotone_between_reseeds(gm)
    assert len(gm.reseed_iterations_) >= 1 and gm.n_reseeds_ >= len(gm.reseed_iterations_)
    assert np.isfinite(gm.score(X)) and seen == gm.lower_bounds_
    # a tied covariance has no donor: it still raises
    with pytest.raises(ValueError, match="ill-defined"):
        _quiet(GaussianMixture(2, covariance_type="tied", reg_covar=0.0,
                               on_collapse="reseed").fit, np.ones((10, 2)))


def test_reseed_moves_component_to_worst_explained_row():
    # independent check of the rule: after the first re-seed, the re-seeded
    # component's mean is the row of lowest log-density under the model of the
    # E-step before the collapse (that model is the fit stopped one iteration earlier)
    X = duplicate_rows()
    gm = _quiet(GaussianMixture(4, reg_covar=0.0, random_state=0, on_collapse="reseed").fit, X)
    t = gm.reseed_iterations_[0]
    assert t >= 1
    before = _quiet(GaussianMixture(4, reg_covar=0.0, random_state=0, max_iter=t - 1).fit, X)
    after = _quiet(GaussianMixture(4, reg_covar=0.0, random_state=0, max_iter=t,
                                   on_collapse="reseed").fit, X)
    assert after.n_reseeds_ == 1
    worst = X[np.argmin(before.score_samples(X))]
    moved = [k for k in range(4) if np.array_equal(after.means_[k], worst)]
    assert len(moved) == 1


def test_reseed_verbose_reports(capsys):
    X = duplicate_rows()
    gm = _quiet(GaussianMixture(4, reg_covar=0.0, random_state=0, on_collapse="reseed",
                                verbose=1, max_iter=30).fit, X)
    out = capsys.readouterr().out
    assert out.count("re-seeded collapsed component") == len(gm.reseed_iterations_) >= 1


def test_reseed_same_on_memmap_and_dask(tmp_path):
    # the same rows give the same re-seed wherever they live (compared up to a few
    # iterations after it: when the next collapse happens depends on rounding)
    X = duplicate_rows()
    t = _quiet(GaussianMixture(4, reg_covar=0.0, random_state=0, on_collapse="reseed").fit,
               X).reseed_iterations_[0]
    kw = dict(n_components=4, reg_covar=0.0, random_state=0, on_collapse="reseed",
              max_iter=t + 3)
    a = _quiet(GaussianMixture(**kw).fit, X)
    path = tmp_path / "x.npy"
    np.save(path, X)
    mm = np.load(path, mmap_mode="r")
    b = _quiet(GaussianMixture(block_size=128, **kw).fit, mm)
    assert a.reseed_iterations_ == b.reseed_iterations_
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-7, atol=1e-9)
    da = pytest.importorskip("dask.array")
    c = _quiet(GaussianMixture(**kw).fit, da.from_array(X, chunks=(100, 2)))
    assert a.reseed_iterations_ == c.reseed_iterations_
    np.testing.assert_allclose(a.means_, c.means_, rtol=1e-7, atol=1e-9)


def test_reseed_gives_up_with_a_clear_message():
    # every component is a single point: nothing can donate a covariance
    X = np.array([[0.0], [1.0]])
    with pytest.raises(ValueError, match="ill-defined"):
        GaussianMixture(2, reg_covar=0.0, on_collapse="reseed").fit(X)
    # a point mass that keeps attracting components: capped, then a clear error
    X = duplicate_rows()
    with pytest.raises(ValueError, match=r"on_collapse='reseed' gave up after 20 re-seeds.*reg_covar"):
        _quiet(GaussianMixture(4, reg_covar=0.0, random_state=0, on_collapse="reseed",
                               max_iter=2000, tol=0.0).fit, X)


def test_on_collapse_validated():
    X = duplicate_rows()
    with pytest.raises(ValueError, match="on_collapse"):
        GaussianMixture(2, on_collapse="ignore").fit(X)


def test_reseed_is_a_no_op_without_collapse():
    X = duplicate_rows()
    a = GaussianMixture(3, random_state=0).fit(X)
    b = GaussianMixture(3, random_state=0, on_collapse="reseed").fit(X)
    assert b.n_reseeds_ == 0 and b.reseed_iterations_ == []
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("ctype", CTYPES)
def test_float32_never_negative_variance(ctype):
    # scikit-learn #30382: float32 [[9999], [0]], 2 components, reg_covar=0.1 gave
    # variances of about -1 there; each component sits on one point, so the
    # variance is exactly reg_covar
    X = np.array([[9999.0], [0.0]], dtype=np.float32)
    gm = GaussianMixture(2, covariance_type=ctype, reg_covar=0.1).fit(X)
    cov = np.asarray(gm.covariances_, dtype=np.float64)
    assert gm.covariances_.dtype == np.float32
    np.testing.assert_allclose(cov.ravel(), 0.1, rtol=1e-6)
    # larger data far from the origin, tiny spread, many steps, several seeds
    rng = np.random.default_rng(30382)
    X = (1e4 + rng.normal(size=(4000, 2)) * 1e-3).astype(np.float32)
    X[:2000] += 0.01
    for seed in range(3):
        gm = _quiet(GaussianMixture(3, covariance_type=ctype, reg_covar=0.0, random_state=seed,
                                    max_iter=50).fit, X)
        cov = np.asarray(gm.covariances_, dtype=np.float64)
        diag = cov if ctype in ("diag", "spherical") else np.diagonal(cov, axis1=-2, axis2=-1)
        assert np.all(diag > 0)
        if ctype in ("full", "tied"):
            assert np.all(np.linalg.eigvalsh(cov.reshape(-1, 2, 2)) > 0)


# ---- freeze ---------------------------------------------------------------------------

def faithful():
    import os
    path = os.path.join(os.path.dirname(maxlik.__file__), "data", "faithful.csv")
    return np.loadtxt(path, delimiter=",", skiprows=1)


def _init_values(X, ctype):
    g = GaussianMixture(2, covariance_type=ctype, random_state=0).fit(X)
    return np.array([0.3, 0.7]), g.means_ + 0.25, g.precisions_


@pytest.mark.parametrize("ctype", CTYPES)
@pytest.mark.parametrize("freeze", [("means",), ("weights",), ("covariances",),
                                    ("weights", "means"), ("means", "covariances"),
                                    ("weights", "means", "covariances")])
def test_frozen_parameters_do_not_move(ctype, freeze):
    X = faithful()
    wi, mi, pi = _init_values(X, ctype)
    gm = _quiet(GaussianMixture(2, covariance_type=ctype, weights_init=wi, means_init=mi,
                                precisions_init=pi, freeze=freeze, tol=1e-9,
                                max_iter=300).fit, X)
    if "means" in freeze:
        np.testing.assert_array_equal(gm.means_, mi)  # bit-exact
    else:
        assert not np.allclose(gm.means_, mi)
    if "weights" in freeze:
        np.testing.assert_array_equal(gm.weights_, wi)
    if "covariances" in freeze:
        np.testing.assert_allclose(gm.precisions_, pi, rtol=1e-12, atol=0)
    lb = np.asarray(gm.lower_bounds_)
    assert np.all(np.diff(lb) >= -1e-10 * np.abs(lb[1:]))  # restricted M-step: monotone


@pytest.mark.parametrize("ctype", CTYPES)
def test_frozen_means_covariances_are_the_scatter_around_them(ctype):
    # the restricted M-step's fixed point: Σ_k = Σγ(x−μ_k)(x−μ_k)ᵀ / N_k around the
    # frozen μ_k, with γ of the final model (numpy reference here)
    X = faithful()
    wi, mi, pi = _init_values(X, ctype)
    gm = GaussianMixture(2, covariance_type=ctype, means_init=mi, freeze=["means"], tol=1e-13,
                         max_iter=2000, reg_covar=0.0).fit(X)
    g = gm.predict_proba(X)
    nk = g.sum(axis=0)
    S = np.stack([(g[:, k, None] * (X - mi[k])).T @ (X - mi[k]) for k in range(2)])
    ref = {"full": S / nk[:, None, None], "tied": S.sum(axis=0) / nk.sum(),
           "diag": np.stack([np.diag(s) for s in S]) / nk[:, None],
           "spherical": np.array([np.trace(s) for s in S]) / (2 * nk)}[ctype]
    np.testing.assert_allclose(gm.covariances_, ref, rtol=1e-6)
    np.testing.assert_allclose(gm.weights_, nk / nk.sum(), rtol=1e-6)


def test_freeze_needs_its_init():
    X = faithful()
    for name, init in (("weights", "weights_init"), ("means", "means_init"),
                       ("covariances", "precisions_init")):
        with pytest.raises(ValueError, match=rf"freeze contains '{name}' but {init} is None"):
            GaussianMixture(2, freeze=[name]).fit(X)
    with pytest.raises(ValueError, match="freeze must name parameters among"):
        GaussianMixture(2, freeze=["mean"]).fit(X)
    with pytest.raises(TypeError, match="freeze must be None or an iterable"):
        GaussianMixture(2, freeze=3).fit(X)
    # a single name as a string is accepted
    mi = np.array([[2.0, 55.0], [4.5, 80.0]])
    gm = GaussianMixture(2, means_init=mi, freeze="means").fit(X)
    np.testing.assert_array_equal(gm.means_, mi)
    assert not np.shares_memory(gm.means_, mi)  # no aliasing of the user's array


def test_partial_fit_honours_freeze():
    X = faithful()
    mi = np.array([[2.0, 55.0], [4.5, 80.0]])
    wi = np.array([0.4, 0.6])
    gm = GaussianMixture(2, means_init=mi, weights_init=wi, freeze=("means", "weights"),
                         random_state=0)
    for batch in np.array_split(X, 4):
        gm.partial_fit(batch)
        np.testing.assert_array_equal(gm.means_, mi)
        np.testing.assert_array_equal(gm.weights_, wi)
    with pytest.raises(ValueError, match="freeze contains 'covariances'"):
        GaussianMixture(2, freeze=["covariances"]).partial_fit(X)


def test_frozen_means_on_memmap(tmp_path):
    X = faithful()
    mi = np.array([[2.0, 55.0], [4.5, 80.0]])
    path = tmp_path / "f.npy"
    np.save(path, X)
    gm = GaussianMixture(2, means_init=mi, freeze=["means"], block_size=64).fit(
        np.load(path, mmap_mode="r"))
    np.testing.assert_array_equal(gm.means_, mi)


# ---- from_parameters -----------------------------------------------------------------

@pytest.mark.parametrize("ctype", CTYPES)
def test_from_parameters_scores_like_the_fitted_model(ctype):
    X = faithful()
    gm = GaussianMixture(3, covariance_type=ctype, random_state=0).fit(X)
    m = GaussianMixture.from_parameters(gm.weights_, gm.means_, gm.covariances_, ctype,
                                        random_state=1)
    np.testing.assert_allclose(m.score_samples(X), gm.score_samples(X), rtol=1e-13, atol=0)
    np.testing.assert_allclose(m.predict_proba(X), gm.predict_proba(X), rtol=1e-12, atol=1e-300)
    np.testing.assert_array_equal(m.predict(X), gm.predict(X))
    assert m.score(X) == pytest.approx(gm.score(X), rel=1e-14)
    assert m.bic(X) == pytest.approx(gm.bic(X), rel=1e-14)
    assert m.aic(X) == pytest.approx(gm.aic(X), rel=1e-14)
    Xs, ys = m.sample(50)
    assert Xs.shape == (50, 2) and ys.shape == (50,)
    # against scipy: an independent density
    from scipy.stats import multivariate_normal

    D = X.shape[1]
    if ctype == "full":
        cov = gm.covariances_
    elif ctype == "tied":
        cov = [gm.covariances_] * 3
    elif ctype == "diag":
        cov = [np.diag(c) for c in gm.covariances_]
    else:
        cov = [np.eye(D) * c for c in gm.covariances_]
    dens = sum(w * multivariate_normal(mu, c).pdf(X) for w, mu, c in zip(gm.weights_, gm.means_, cov))
    np.testing.assert_allclose(m.score_samples(X), np.log(dens), rtol=1e-10)


def test_from_parameters_validates_like_init():
    w, m, c = [0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], np.stack([np.eye(2)] * 2)
    with pytest.raises(ValueError, match="weights must sum to 1"):
        GaussianMixture.from_parameters([0.5, 0.6], m, c)
    with pytest.raises(ValueError, match=r"weights must hold one weight per component"):
        GaussianMixture.from_parameters([1.0], m, c)
    with pytest.raises(ValueError, match=r"covariances must have shape \(2, 2, 2\)"):
        GaussianMixture.from_parameters(w, m, np.eye(2))
    with pytest.raises(ValueError, match="not positive definite"):
        GaussianMixture.from_parameters(w, m, np.stack([np.eye(2), -np.eye(2)]))
    with pytest.raises(ValueError, match="not symmetric"):
        GaussianMixture.from_parameters(w, m, np.stack([np.eye(2), [[1.0, 0.5], [0.0, 1.0]]]))
    with pytest.raises(ValueError, match="covariances must be positive"):
        GaussianMixture.from_parameters(w, m, [1.0, 0.0], covariance_type="spherical")
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixture.from_parameters(w, m, c, covariance_type="banana")
    with pytest.raises(ValueError, match="means"):
        GaussianMixture.from_parameters(w, [0.0, 1.0], c)
    with pytest.raises(ValueError, match="weights"):
        GaussianMixture.from_parameters([np.nan, 1.0], m, c)


def test_from_parameters_then_warm_start_continues():
    X = faithful()
    gm = GaussianMixture(2, random_state=0, tol=1e-8).fit(X)
    m = GaussianMixture.from_parameters(gm.weights_, gm.means_, gm.covariances_,
                                        warm_start=True, tol=1e-8)
    m.fit(X)
    np.testing.assert_allclose(m.means_, gm.means_, rtol=1e-5)
