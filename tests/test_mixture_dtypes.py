"""GaussianMixture: float32 fitted attributes (as scikit-learn) and reg_covar=0
with a one-point component (scikit-learn issue #18216)."""
import warnings

import numpy as np
import pytest

from maxlik import GaussianMixture, mixture_update
from maxlik.mixture import MixtureStatistics

CTYPES = ["full", "tied", "diag", "spherical"]
ATTRS = ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]


def _X(n=200, d=3):
    rng = np.random.default_rng(0)
    return np.concatenate([rng.normal(size=(n // 2, d)), rng.normal(4.0, 1.0, size=(n // 2, d))])


@pytest.mark.parametrize("ctype", CTYPES)
@pytest.mark.parametrize("fit_dtype", [np.float32, np.float64])
@pytest.mark.parametrize("pred_dtype", [np.float32, np.float64])
def test_dtypes_match_sklearn(ctype, fit_dtype, pred_dtype):
    sk = pytest.importorskip("sklearn.mixture")
    X = _X()
    got, want = [], []
    for cls, out in ((GaussianMixture, got), (sk.GaussianMixture, want)):
        g = cls(2, covariance_type=ctype, random_state=0).fit(X.astype(fit_dtype))
        Xp = X.astype(pred_dtype)
        out += [getattr(g, a).dtype for a in ATTRS]
        out += [g.score_samples(Xp).dtype, g.predict_proba(Xp).dtype]
    assert got == want
    assert got[0] == fit_dtype


@pytest.mark.parametrize("ctype", CTYPES)
def test_float32_attributes_are_the_rounded_float64_fit(ctype):
    X = _X().astype(np.float32)
    g32 = GaussianMixture(2, covariance_type=ctype, random_state=0).fit(X)
    p = g32.parameters()  # block API stays float64
    assert p.means.dtype == np.float64
    np.testing.assert_array_equal(p.means.astype(np.float32), g32.means_)
    assert g32.predict(X).shape == (X.shape[0],)
    np.testing.assert_allclose(g32.predict_proba(X).sum(axis=1), 1.0, rtol=1e-5)
    # partial_fit keeps float32 too
    g = GaussianMixture(2, covariance_type=ctype, random_state=0)
    g.partial_fit(X[:100]).partial_fit(X[100:])
    assert all(getattr(g, a).dtype == np.float32 for a in ATTRS)


@pytest.mark.parametrize("ctype", CTYPES)
def test_float64_unchanged_bit_for_bit(ctype):
    # the float64 attributes are the M-step's own arrays (no cast, no copy)
    X = _X()
    g = GaussianMixture(2, covariance_type=ctype, random_state=0).fit(X)
    p = g.parameters()
    for a in ATTRS:
        assert getattr(g, a).dtype == np.float64
    assert np.array_equal(p.means, g.means_)
    g2 = GaussianMixture(2, covariance_type=ctype, random_state=0).fit(X)
    for a in ATTRS:
        assert np.array_equal(getattr(g, a), getattr(g2, a))
    # mixture_update on the fit's statistics with the default reg_covar
    # does not go through the rounding clamp: same bits as a re-derivation
    from maxlik import mixture_statistics
    s = mixture_statistics(X, p)
    new = mixture_update(s, reg_covar=g.reg_covar)
    assert new.precisions_cholesky.dtype == np.float64


def _issue_18216():
    rnd = np.random.RandomState(0)
    X = rnd.uniform(size=(30, 3))
    means_init = np.array([
        [0.670637869618158, 0.21038256107384043, 0.12892629765485303],
        [0.09394051075844147, 0.5759464955561779, 0.929296197576212],
        [0.5033230372781258, 0.9569852381759425, 0.08654043447295741],
        [0.18578301420435747, 0.5531158970919143, 0.19388943970532435],
        [0.4548589928173794, 0.35182513658825276, 0.568146063202464],
        [0.609279894978321, 0.7929063819678847, 0.9620097270828052]])
    precisions_init = np.array([999999.999604483, 999999.9990869573, 553.7603944542167,
                                204.78596008931834, 15.867423501783637, 85.4595728389735])
    weights_init = [0.03333333333333341, 0.03333333333333341, 0.06666666666666674,
                    0.06666666666666674, 0.7000000000000001, 0.10000000000000007]
    gm = GaussianMixture(covariance_type="spherical", reg_covar=0, means_init=means_init,
                         weights_init=weights_init, random_state=rnd, n_components=6,
                         precisions_init=precisions_init, max_iter=1)
    return gm, X


def test_reg_covar_zero_one_point_component_issue_18216():
    gm, X = _issue_18216()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm.fit(X)  # no error (it raised "component 0 ... singular" before)
    assert not gm.converged_
    assert gm.n_iter_ == 1 and np.isfinite(gm.lower_bound_)
    for a in ATTRS:
        assert np.all(np.isfinite(getattr(gm, a)))
    assert np.all(gm.covariances_ > 0)
    # the two one-point components have a variance at the rounding floor
    assert np.all(gm.covariances_[:2] < 1e-30)
    assert np.all(np.isfinite(gm.score_samples(X)))


def _stats(ctype, sum_xx, resp_sum, sum_x, shift):
    return MixtureStatistics(ctype, shift, resp_sum, sum_x, sum_xx, 0.0, float(resp_sum.sum()),
                             int(resp_sum.sum()))


@pytest.mark.parametrize("ctype", ["diag", "spherical"])
def test_rounding_negative_variance_is_zero_but_genuine_negative_raises(ctype):
    n = np.array([3.0])
    shift = np.zeros((1, 2))
    S = np.array([[3.0, 3.0]])  # mean 1; exact variance 0 needs Q = 3
    q = 3.0 * (1 - 4 * np.finfo(float).eps)  # a few ulp short: rounding
    p = mixture_update(_stats(ctype, np.array([[q, 3.0 + 3.0]]), n, S, shift), reg_covar=0.0)
    assert np.all(np.isfinite(p.precisions_cholesky)) and np.all(p.covariances > 0)
    # one ulp-level short with reg_covar > 0: the variance is exactly reg_covar
    p = mixture_update(_stats(ctype, np.array([[q, 6.0]]), n, S, shift), reg_covar=1e-3)
    if ctype == "diag":
        assert p.covariances[0, 0] == pytest.approx(1e-3, rel=1e-9)
    with pytest.raises(ValueError, match="(?s)increase reg_covar.*Component 0 collapsed"):
        # 1e-6 of the scale short: far beyond rounding, a genuinely negative variance
        mixture_update(_stats(ctype, np.array([[3.0 * (1 - 1e-6), 3.0 * (1 - 1e-6)]]), n, S,
                              shift), reg_covar=0.0)


@pytest.mark.parametrize("ctype", ["full", "tied"])
def test_full_rounding_negative_eigen_direction_and_singular_raises(ctype):
    rng = np.random.default_rng(1)
    # a constant column: the scatter has an exactly zero eigen-direction
    t = rng.normal(size=50)
    X = np.column_stack([t, np.full(50, 0.1)])
    g = GaussianMixture(1, covariance_type=ctype, reg_covar=0.0)
    with pytest.raises(ValueError, match="reg_covar"):
        g.fit(X)  # genuinely singular: still the clear error
    # the scatter's rounding-level negative direction is zero, then reg_covar
    # makes the covariance definite
    eps = np.finfo(float).eps
    Q = np.array([[1.0, 1.0], [1.0, 1.0 - 28 * eps]])  # eigenvalue ~ -14 eps
    shift = np.zeros((1, 2)) if ctype == "full" else np.zeros(2)
    sxx = Q[None] if ctype == "full" else Q
    s = MixtureStatistics(ctype, shift, np.array([1.0]), np.zeros((1, 2)), sxx, 0.0, 1.0, 1)
    from maxlik import _core
    cov = (Q + 8 * eps * np.eye(2))[None]
    assert _core.precision_cholesky(cov, 1e-8)[1][0] != 0  # unclamped: not definite
    p = mixture_update(s, reg_covar=8 * eps)
    assert np.all(np.isfinite(p.precisions_cholesky))
    # a clearly indefinite hand-made scatter still raises
    shift = np.zeros((1, 2)) if ctype == "full" else np.zeros(2)
    Q = np.array([[1.0, 2.0], [2.0, 1.0]])  # eigenvalues 3 and -1
    sxx = Q[None] if ctype == "full" else Q
    s = MixtureStatistics(ctype, shift, np.array([1.0]), np.zeros((1, 2)), sxx, 0.0, 1.0, 1)
    with pytest.raises(ValueError, match="reg_covar"):
        mixture_update(s, reg_covar=0.0)
