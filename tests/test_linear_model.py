"""LinearRegression and LogisticRegression: agreement with numpy / scikit-learn, the
likelihood bookkeeping, the estimator contract, and the private L-BFGS."""
import math
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import LinearRegression, LogisticRegression
from maxlik.exceptions import ConvergenceWarning, NotFittedError
from maxlik._optimize import minimize_lbfgs


def _regression(rng, n=200, d=5, t=None):
    X = rng.normal(size=(n, d))
    beta = rng.normal(size=(d,) if t is None else (d, t))
    y = X @ beta + 0.7 + 0.3 * rng.normal(size=(n,) if t is None else (n, t))
    return X, y


# ---------------------------------------------------------------- LinearRegression
@pytest.mark.parametrize("weighted", [False, True])
def test_linear_regression_matches_lstsq(rng, weighted):
    X, y = _regression(rng)
    w = rng.uniform(0.2, 3.0, X.shape[0]) if weighted else np.ones(X.shape[0])
    reg = LinearRegression().fit(X, y, sample_weight=w if weighted else None)
    A = np.column_stack([X, np.ones(len(X))]) * np.sqrt(w)[:, None]
    sol = np.linalg.lstsq(A, y * np.sqrt(w), rcond=None)[0]
    np.testing.assert_allclose(reg.coef_, sol[:-1], rtol=1e-10, atol=1e-12)
    assert reg.intercept_ == pytest.approx(sol[-1], rel=1e-10)
    resid = y - X @ sol[:-1] - sol[-1]
    assert reg.noise_variance_ == pytest.approx(np.sum(w * resid**2) / w.sum(), rel=1e-10)
    np.testing.assert_allclose(reg.predict(X), y - resid, rtol=1e-10, atol=1e-12)


def test_linear_regression_no_intercept_and_multioutput(rng):
    X, Y = _regression(rng, t=3)
    reg = LinearRegression(fit_intercept=False).fit(X, Y)
    sol = np.linalg.lstsq(X, Y, rcond=None)[0]
    np.testing.assert_allclose(reg.coef_, sol.T, rtol=1e-10)
    np.testing.assert_array_equal(reg.intercept_, np.zeros(3))
    assert reg.noise_variance_.shape == (3,)
    assert reg.predict(X).shape == Y.shape


def test_linear_regression_likelihood_aic_bic(rng):
    scipy_stats = pytest.importorskip("scipy.stats")
    X, y = _regression(rng, n=120, d=3)
    n, d = X.shape
    reg = LinearRegression().fit(X, y)
    sigma2 = reg.noise_variance_
    ll = scipy_stats.norm.logpdf(y, reg.predict(X), np.sqrt(sigma2)).sum()
    assert reg.log_likelihood_ == pytest.approx(ll, rel=1e-12)
    k = d + 2  # coefficients, intercept, noise variance
    assert reg.aic() == pytest.approx(2 * k - 2 * ll, rel=1e-12)
    assert reg.bic() == pytest.approx(k * math.log(n) - 2 * ll, rel=1e-12)
    # MLE variance maximises the likelihood: any other variance does worse
    for s2 in (0.9 * sigma2, 1.1 * sigma2):
        assert scipy_stats.norm.logpdf(y, reg.predict(X), np.sqrt(s2)).sum() < ll
    unbiased = LinearRegression(ddof=d + 1).fit(X, y)
    assert unbiased.noise_variance_ == pytest.approx(sigma2 * n / (n - d - 1), rel=1e-12)


def test_linear_regression_integer_weights_equal_repeated_rows(rng):
    X, y = _regression(rng, n=40, d=2)
    reps = rng.integers(1, 4, 40)
    a = LinearRegression().fit(X, y, sample_weight=reps)
    b = LinearRegression().fit(np.repeat(X, reps, axis=0), np.repeat(y, reps))
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-10)
    assert a.noise_variance_ == pytest.approx(b.noise_variance_, rel=1e-10)
    assert a.log_likelihood_ == pytest.approx(b.log_likelihood_, rel=1e-10)


def test_linear_regression_matches_sklearn(rng):
    sk = pytest.importorskip("sklearn.linear_model")
    X, y = _regression(rng)
    w = rng.uniform(0.5, 2, len(y))
    a = LinearRegression().fit(X, y, sample_weight=w)
    b = sk.LinearRegression().fit(X, y, sample_weight=w)
    np.testing.assert_allclose(a.coef_, b.coef_, rtol=1e-9)
    assert a.intercept_ == pytest.approx(b.intercept_, rel=1e-9)
    assert a.score(X, y, w) == pytest.approx(b.score(X, y, w), rel=1e-12)


def test_linear_regression_bad_input(rng):
    X, y = _regression(rng, n=10, d=2)
    with pytest.raises(ValueError, match="inconsistent"):
        LinearRegression().fit(X, y[:5])
    with pytest.raises(ValueError, match="X contains NaN"):
        LinearRegression().fit(np.where(X > 1, np.nan, X), y)
    with pytest.raises(ValueError, match="sample_weight"):
        LinearRegression().fit(X, y, sample_weight=-np.ones(10))
    with pytest.raises(NotFittedError):
        LinearRegression().predict(X)
    reg = LinearRegression().fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        reg.predict(np.zeros((2, 3)))


# ---------------------------------------------------------------- LogisticRegression
def _classification(n_classes, n=600, d=6, seed=0):
    sk_data = pytest.importorskip("sklearn.datasets")
    X, y = sk_data.make_classification(n, d, n_informative=4, n_redundant=0,
                                       n_classes=n_classes, n_clusters_per_class=1,
                                       random_state=seed)
    return X, y


def _sk_objective(clf, X, y, sw, C):
    """scikit-learn's lbfgs objective (1/S) sum s_i CE_i + ||W||^2 / (2 C S)."""
    S = sw.sum()
    logp = clf.predict_log_proba(X)
    codes = np.searchsorted(clf.classes_, y)
    ce = -logp[np.arange(len(y)), codes]
    return (sw @ ce) / S + np.sum(clf.coef_**2) / (2 * C * S)


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_matches_sklearn_lbfgs(rng, n_classes, weighted):
    sk = pytest.importorskip("sklearn.linear_model")
    X, y = _classification(n_classes)
    sw = rng.uniform(0.3, 2.0, len(y)) if weighted else None
    ours = LogisticRegression(C=0.1, tol=1e-10, max_iter=500).fit(X, y, sample_weight=sw)
    ref = sk.LogisticRegression(C=0.1, tol=1e-10, max_iter=500).fit(X, y, sample_weight=sw)
    assert ours.coef_.shape == ref.coef_.shape
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    np.testing.assert_allclose(ours.decision_function(X), ref.decision_function(X), atol=1e-5)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    w = np.ones(len(y)) if sw is None else sw
    obj = _sk_objective(ours, X, y, w, 0.1)
    assert ours.objective_ == pytest.approx(obj, rel=1e-12)
    assert obj <= _sk_objective(ref, X, y, w, 0.1) * (1 + 1e-10)


def test_logistic_gradient_is_zero_at_the_solution():
    # stationarity of the penalised likelihood: X^T (P - Y) / S + W / (C S) = 0
    X, y = _classification(4, n=300)
    C = 2.0
    clf = LogisticRegression(C=C, tol=1e-12, max_iter=1000).fit(X, y)
    P = clf.predict_proba(X)
    Y = np.eye(4)[y]
    S = len(y)
    grad_W = (P - Y).T @ X / S + clf.coef_ / (C * S)
    grad_b = (P - Y).sum(0) / S
    assert np.max(np.abs(grad_W)) < 1e-7 and np.max(np.abs(grad_b)) < 1e-7


def test_logistic_string_labels_and_proba(rng):
    X, y = _classification(3, n=300)
    labels = np.array(["cat", "dog", "emu"])[y]
    clf = LogisticRegression().fit(X, labels)
    np.testing.assert_array_equal(clf.classes_, ["cat", "dog", "emu"])
    P = clf.predict_proba(X)
    np.testing.assert_allclose(P.sum(1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.log(P), clf.predict_log_proba(X), rtol=1e-10)
    assert set(clf.predict(X)) <= set(labels)
    assert clf.score(X, labels) > 0.8
    clf2 = LogisticRegression().fit(X[y < 2], np.array([-1, 7])[y[y < 2]])  # binary, odd labels
    np.testing.assert_array_equal(clf2.classes_, [-1, 7])
    assert clf2.coef_.shape == (1, X.shape[1]) and clf2.decision_function(X).shape == (len(X),)


def test_logistic_integer_weights_equal_repeated_rows(rng):
    X, y = _classification(3, n=200)
    reps = rng.integers(1, 4, 200)
    a = LogisticRegression(tol=1e-10, max_iter=500).fit(X, y, sample_weight=reps)
    b = LogisticRegression(tol=1e-10, max_iter=500).fit(np.repeat(X, reps, 0), np.repeat(y, reps))
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)


def test_logistic_no_penalty_and_no_intercept():
    X, y = _classification(2, n=400)
    X = X + 0.3 * np.random.default_rng(1).normal(size=X.shape)  # not separable
    a = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(X, y)
    P = a.predict_proba(X)[:, 1]
    assert np.max(np.abs(X.T @ (P - y))) / len(y) < 1e-8  # plain MLE stationarity
    b = LogisticRegression(fit_intercept=False).fit(X, y)
    np.testing.assert_array_equal(b.intercept_, [0.0])


def test_logistic_convergence_warning():
    X, y = _classification(3)
    with pytest.warns(ConvergenceWarning, match="max_iter"):
        clf = LogisticRegression(max_iter=2).fit(X, y)
    assert clf.n_iter_[0] == 2


def test_logistic_bad_input():
    X, y = _classification(3, n=60)
    with pytest.raises(ValueError, match="class"):
        LogisticRegression().fit(X, np.zeros(60))
    with pytest.raises(ValueError, match="Unknown label type"):
        LogisticRegression().fit(X, np.linspace(0, 1, 60))
    with pytest.raises(ValueError, match="C must be > 0"):
        LogisticRegression(C=0.0).fit(X, y)
    with pytest.raises(ValueError, match="sample_weight"):
        LogisticRegression().fit(X, y, sample_weight=np.zeros(60))
    with pytest.raises(NotFittedError):
        LogisticRegression().predict_proba(X)
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="features"):
        clf.predict(X[:, :2])


def test_logistic_deterministic_across_threads(threads):
    X, y = _classification(4, n=2500)
    threads(1)
    a = LogisticRegression().fit(X, y)
    threads(2)
    b = LogisticRegression().fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)


# ---------------------------------------------------------------- scikit-learn contract
EXPECTED_FAILED: dict[str, str] = {}


@pytest.mark.filterwarnings("ignore:Estimator .* does not inherit:UserWarning")
@pytest.mark.filterwarnings("ignore:Skipping check:UserWarning")  # SkipTestWarning (no pandas)
# check_supervised_y_2d records the column-vector warning; it must not be turned into an error
@pytest.mark.filterwarnings("always::maxlik.exceptions.DataConversionWarning")
@pytest.mark.parametrize("Est", [LinearRegression, LogisticRegression])
def test_check_estimator(Est):
    estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
    estimator_checks.check_estimator(Est(), expected_failed_checks=EXPECTED_FAILED)


def test_clone_and_params():
    base = pytest.importorskip("sklearn.base")
    clf = LogisticRegression(C=3.0, max_iter=7)
    c2 = base.clone(clf)
    assert c2.get_params() == clf.get_params()
    assert repr(clf) == "LogisticRegression(C=3.0, max_iter=7)"


# ---------------------------------------------------------------- L-BFGS
def _rosen(x):
    f = np.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    g = np.zeros_like(x)
    g[:-1] = -400 * x[:-1] * (x[1:] - x[:-1] ** 2) - 2 * (1 - x[:-1])
    g[1:] += 200 * (x[1:] - x[:-1] ** 2)
    return f, g


def test_lbfgs_rosenbrock():
    res = minimize_lbfgs(_rosen, np.full(6, -1.2), max_iter=1000, gtol=1e-9, ftol=0.0)
    assert res.converged
    np.testing.assert_allclose(res.x, np.ones(6), atol=1e-7)


def _spd_quadratic(seed, d=20):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(d, d))
    H = A @ A.T + d * np.eye(d)
    return H, rng.normal(size=d)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("offset", [0.0, 1e3, 1e6])
def test_lbfgs_quadratic_matches_solve(seed, offset):
    # f = offset + x'Hx/2 - b'x. Near the minimum the decrease a step can make,
    # |g|^2 / (2 lambda), is below the rounding of f (eps * |f|, and |f| >= offset)
    # long before |g| reaches gtol, while g = Hx - b stays accurate to
    # ~ eps * ||H|| ||x||, orders of magnitude below gtol = 1e-8. An optimiser
    # that steers by f alone stalls there (and used to call that convergence with
    # ftol=0); one that uses the gradient where f is noise reaches gtol.
    H, b = _spd_quadratic(seed)
    res = minimize_lbfgs(lambda x: (offset + 0.5 * x @ H @ x - b @ x, H @ x - b),
                         np.zeros(len(b)), max_iter=500, gtol=1e-8, ftol=0.0)
    assert res.converged, res.message
    assert res.message == "gradient below gtol"
    assert np.max(np.abs(res.grad)) <= 1e-8
    # Error bound from the math: x - x* = H^-1 g, so ||x - x*|| <= ||g|| / lambda_min.
    xs = np.linalg.solve(H, b)
    lam_min = np.linalg.eigvalsh(H)[0]
    bound = np.linalg.norm(res.grad) / lam_min + 1e3 * np.finfo(float).eps * np.linalg.norm(xs)
    assert np.linalg.norm(res.x - xs) <= bound


def test_lbfgs_ftol_zero_never_claims_convergence_it_did_not_reach():
    # gtol = 0 is unreachable in floating point and ftol = 0 disables the other
    # test: the run must end as not converged, with a message that says why.
    H, b = _spd_quadratic(0)
    res = minimize_lbfgs(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b),
                         np.zeros(len(b)), max_iter=300, gtol=0.0, ftol=0.0)
    assert not res.converged
    assert "not converged" in res.message or "max_iter" in res.message
    # ... and it got as far as rounding allows on the way.
    assert np.max(np.abs(res.grad)) <= 1e3 * np.finfo(float).eps * np.linalg.norm(H, 2) * np.linalg.norm(res.x)


def test_lbfgs_ftol_stops_with_a_reduction_below_ftol():
    H, b = _spd_quadratic(1)
    res = minimize_lbfgs(lambda x: (0.5 * x @ H @ x - b @ x, H @ x - b),
                         np.zeros(len(b)), max_iter=500, gtol=0.0, ftol=1e-3)
    assert res.converged and res.message == "relative reduction of the objective below ftol"
    assert res.n_iter < 30


def test_lbfgs_nonfinite_start_and_failed_search():
    res = minimize_lbfgs(lambda x: (np.inf, x), np.ones(3))
    assert not res.converged and "not finite" in res.message
    # an objective that is +inf everywhere except the start: no step is acceptable
    def spike(x):
        return (1.0 if np.all(x == 1) else np.inf), np.ones(3)

    res = minimize_lbfgs(spike, np.ones(3))
    assert not res.converged and "line search failed" in res.message


def test_models_exported():
    assert maxlik.LogisticRegression is LogisticRegression
    assert maxlik.LinearRegression is LinearRegression


@pytest.mark.parametrize("D", [1, 7, 13, 100])
@pytest.mark.parametrize("K", [1, 3, 6])
def test_fused_linear_ce_kernel_matches_numpy(rng, D, K):
    # the private kernel behind LogisticRegression: tails in rows, features and classes
    N = 601
    X = rng.normal(size=(N, D))
    W = rng.normal(size=(K, D))
    b = rng.normal(size=K)
    sw = rng.uniform(0.0, 2.0, N)
    y = rng.integers(0, 2 if K == 1 else K, N).astype(np.int64)
    loss, gW, gb = maxlik._core._linear_ce(X, W, b, y, sw)
    Z = X @ W.T + b
    if K == 1:
        z = Z[:, 0]
        ref = sw @ (np.logaddexp(0, z) - y * z)
        G = (sw * (1 / (1 + np.exp(-z)) - y))[:, None]
    else:
        lse = np.logaddexp.reduce(Z, axis=1)
        ref = sw @ (lse - Z[np.arange(N), y])
        G = sw[:, None] * (np.exp(Z - lse[:, None]) - np.eye(K)[y])
    assert loss == pytest.approx(ref, rel=1e-12)
    np.testing.assert_allclose(gW, G.T @ X, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, G.sum(0), rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------- scikit-learn's signature
def test_logistic_signature_is_sklearns():
    sk = pytest.importorskip("sklearn.linear_model")
    import inspect

    ours = inspect.signature(LogisticRegression).parameters
    theirs = inspect.signature(sk.LogisticRegression).parameters
    assert list(ours) == list(theirs)
    assert {k: v.default for k, v in ours.items()} == {k: v.default for k, v in theirs.items()}


@pytest.mark.parametrize("kw, match", [
    (dict(solver="liblinear"), r"solver='liblinear' is not supported; the supported solver is 'lbfgs'"),
    (dict(solver="saga"), r"supported solver is 'lbfgs'"),
    (dict(penalty="l1"), r"penalty='l1' is not supported.*'l2' or None"),
    (dict(penalty="elasticnet"), r"penalty='elasticnet' is not supported"),
    (dict(penalty="bogus"), r"penalty must be 'l2', None or 'deprecated'"),
    (dict(l1_ratio=0.5), r"l1_ratio=0.5 asks for an elasticnet penalty"),
    (dict(l1_ratio=1.0), r"l1_ratio=1.0 asks for an l1 penalty"),
    (dict(dual=True), r"dual=True is not supported"),
    (dict(class_weight="uniform"), r"class_weight must be a dict, 'balanced' or None"),
    (dict(class_weight={7: 2.0}), r"class_weight: the classes \[7\] are not in y's classes"),
    (dict(class_weight={0: -1.0}), r"class_weight\[0\] must be finite and >= 0"),
])
def test_logistic_unsupported_options_name_the_supported_ones(kw, match):
    X, y = _classification(3, n=60)
    with pytest.raises(ValueError, match=match):
        LogisticRegression(**kw).fit(X, y)


@pytest.mark.filterwarnings("ignore:'penalty' was deprecated:FutureWarning")
def test_logistic_penalty_none_is_c_inf_and_l2_is_default():
    X, y = _classification(2, n=200)
    a = LogisticRegression(penalty=None, tol=1e-10, max_iter=500).fit(X, y)
    b = LogisticRegression(C=np.inf, tol=1e-10, max_iter=500).fit(X, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    c = LogisticRegression(penalty="l2", C=0.3).fit(X, y)
    d = LogisticRegression(C=0.3).fit(X, y)
    np.testing.assert_array_equal(c.coef_, d.coef_)
    # accepted, no effect on lbfgs (as in scikit-learn)
    with pytest.warns(FutureWarning, match="'n_jobs' has no effect"):  # as scikit-learn 1.9
        e = LogisticRegression(C=0.3, intercept_scaling=5.0, random_state=3, n_jobs=2).fit(X, y)
    np.testing.assert_array_equal(e.coef_, d.coef_)


@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 2: 0.5}])
@pytest.mark.parametrize("weighted", [False, True])
def test_logistic_class_weight_matches_sklearn(rng, class_weight, weighted):
    sk = pytest.importorskip("sklearn.linear_model")
    X, y = _classification(3, n=400)
    keep = (y != 1) | (rng.uniform(size=y.shape[0]) < 0.3)  # unbalanced classes
    X, y = X[keep], y[keep]
    sw = rng.uniform(0.3, 2.0, len(y)) if weighted else None
    ours = LogisticRegression(C=0.5, tol=1e-10, max_iter=500, class_weight=class_weight).fit(
        X, y, sample_weight=sw)
    ref = sk.LogisticRegression(C=0.5, tol=1e-10, max_iter=500, class_weight=class_weight).fit(
        X, y, sample_weight=sw)
    np.testing.assert_allclose(ours.coef_, ref.coef_, atol=1e-6, rtol=0)
    np.testing.assert_allclose(ours.intercept_, ref.intercept_, atol=1e-6, rtol=0)
    # identity: class weights are row weights
    cw = ({c: w for c, w in zip(*np.unique(y, return_counts=True))} if class_weight == "balanced"
          else class_weight)
    if class_weight == "balanced":
        base = np.ones(len(y)) if sw is None else sw
        tot = {c: base[y == c].sum() for c in np.unique(y)}
        cw = {c: base.sum() / (len(tot) * t) for c, t in tot.items()}
    rows = np.array([cw.get(c, 1.0) for c in y]) * (1.0 if sw is None else sw)
    same = LogisticRegression(C=0.5, tol=1e-10, max_iter=500).fit(X, y, sample_weight=rows)
    np.testing.assert_allclose(ours.coef_, same.coef_, atol=1e-7, rtol=0)


def test_logistic_warm_start_starts_from_the_previous_fit():
    X, y = _classification(3, n=500)
    cold = LogisticRegression(C=1.0, tol=1e-8, max_iter=500).fit(X, y)
    warm = LogisticRegression(C=1.0, tol=1e-8, max_iter=500, warm_start=True)
    warm.fit(X, y)
    first = int(warm.n_iter_[0])
    warm.fit(X, y)  # from the solution: (almost) nothing left to do
    assert int(warm.n_iter_[0]) < max(2, first // 4)
    np.testing.assert_allclose(warm.coef_, cold.coef_, atol=1e-6)
    # without warm_start the second fit starts from zero again
    again = LogisticRegression(C=1.0, tol=1e-8, max_iter=500).fit(X, y).fit(X, y)
    assert int(again.n_iter_[0]) == int(cold.n_iter_[0])


def test_logistic_convergence_warning_uses_sklearns_wording(capsys):
    X, y = _classification(3, n=300)
    with pytest.warns(maxlik.ConvergenceWarning, match=r"(?s)^lbfgs failed to converge after 2 "
                                                       r"iteration\(s\).*max_iter=2"):
        LogisticRegression(max_iter=2, verbose=1).fit(X, y)
    assert "LogisticRegression (lbfgs): 2 iterations" in capsys.readouterr().out


@pytest.mark.filterwarnings("ignore:'penalty' was deprecated:FutureWarning")
def test_logistic_penalty_none_with_c_warns_like_sklearn():
    X, y = _classification(2, n=100)
    with pytest.warns(UserWarning, match="Setting penalty=None will ignore the C and l1_ratio"):
        LogisticRegression(penalty=None, C=0.5).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression(C=np.inf).fit(X, y)  # no penalty by C alone: no warning


@pytest.mark.filterwarnings("ignore:'penalty' was deprecated:FutureWarning")
def test_logistic_deprecation_and_consistency_warnings_as_sklearn():
    X, y = _classification(2, n=100)
    with pytest.warns(FutureWarning, match="'penalty' was deprecated in version 1.8"):
        LogisticRegression(penalty=None).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        LogisticRegression().fit(X, y)  # the default penalty: no warning
    with pytest.warns(FutureWarning, match="'l1_ratio=None' was deprecated"):
        LogisticRegression(l1_ratio=None).fit(X, y)
    with pytest.warns(UserWarning, match="Inconsistent values: penalty=l2 with l1_ratio=1.0"):
        LogisticRegression(penalty="l2", l1_ratio=1.0).fit(X, y)
    with pytest.warns(UserWarning) as rec:  # both, as in scikit-learn
        LogisticRegression(penalty="l2", l1_ratio=0.5).fit(X, y)
    msgs = [str(r.message) for r in rec]
    assert any(m.startswith("l1_ratio parameter is only used when penalty is 'elasticnet'. Got "
                            "(penalty=l2)") for m in msgs)
    assert any(m.startswith("Inconsistent values: penalty=l2 with l1_ratio=0.5") for m in msgs)


@pytest.mark.parametrize("sparse", [False, True])
def test_logistic_float32_in_float32_coefficients(sparse):
    X, y = _classification(3, n=300)
    X32 = X.astype(np.float32)
    if sparse:
        X32 = pytest.importorskip("scipy.sparse").csr_matrix(X32)
    a = LogisticRegression(tol=1e-8).fit(X32, y)
    b = LogisticRegression(tol=1e-8).fit(X.astype(np.float32).astype(np.float64), y)
    assert a.coef_.dtype == np.float32 and a.intercept_.dtype == np.float32
    assert b.coef_.dtype == np.float64
    # the same float64 fit of the same (float32-representable) values, rounded
    np.testing.assert_array_equal(a.coef_, b.coef_.astype(np.float32))


def test_logistic_sparsify_densify_keep_predictions():
    sp = pytest.importorskip("scipy.sparse")
    X, y = _classification(3, n=300)
    clf = LogisticRegression().fit(X, y)
    ref = clf.decision_function(X)
    assert clf.sparsify() is clf and sp.issparse(clf.coef_)
    np.testing.assert_allclose(clf.decision_function(X), ref, rtol=1e-12)
    np.testing.assert_allclose(clf.decision_function(sp.coo_array(X)), ref, rtol=1e-12,
                               atol=1e-12)
    assert clf.densify() is clf and isinstance(clf.coef_, np.ndarray)
    np.testing.assert_allclose(clf.decision_function(sp.csr_matrix(X)), ref, rtol=1e-12,
                               atol=1e-12)
