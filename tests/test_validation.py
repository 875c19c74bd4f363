"""The one validation layer (maxlik._validation) and its use across the public API.

Part 1 tests the helpers themselves (dtype policy, ndim, finiteness naming the
first bad row, contiguity). Part 2 is a table of (callable, bad input, expected
exception, message regex) over every public function and estimator: each
message must name the argument, say what was expected and what came.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import maxlik
from maxlik import _validation as V

# ----------------------------------------------------------------------------
# Part 1: the helpers
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype, expected",
    [
        (np.bool_, np.float64),
        (np.int8, np.float64),
        (np.uint16, np.float64),
        (np.int64, np.float64),
        (np.uint64, np.float64),
        (np.float16, np.float32),
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.longdouble, np.float64),
    ],
)
def test_dtype_policy(dtype, expected):
    a = np.ones((3, 2), dtype=dtype)
    out = V.as_float_array(a, "X")
    assert out.dtype == expected
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, np.ones((3, 2)))


@pytest.mark.parametrize(
    "value, what",
    [
        (np.ones(3, dtype=complex), "complex"),
        (np.array([1, "a"], dtype=object), "object"),
        (np.array([1.0, 2.0], dtype=object), "object"),  # object is refused even if numeric
        (np.array(["1", "2"]), "string"),
        (np.array([b"1"]), "bytes"),
        (np.array(["2020-01-01"], dtype="datetime64[D]"), "datetime"),
        (np.zeros(2, dtype=[("a", "f8")]), "structured"),
    ],
)
def test_bad_dtypes_raise_typeerror_naming_argument(value, what):
    with pytest.raises(TypeError, match=rf"^myarg must have a real numeric dtype.*got {what}"):
        V.as_float_array(value, "myarg")


def test_strings_and_ragged_name_the_argument():
    with pytest.raises(TypeError, match=r"^myarg must be a numeric array, got str 'x'"):
        V.as_float_array("x", "myarg")
    with pytest.raises(TypeError, match=r"^myarg must be a numeric array, got list"):
        V.as_float_array([[1.0, 2.0], [3.0]], "myarg")


def test_ndim_and_min_rows_messages():
    with pytest.raises(ValueError, match=r"^X must be 2-D; got a 1-D array of shape \(3,\)"):
        V.as_float_array(np.ones(3), "X", ndim=2)
    with pytest.raises(ValueError, match=r"^X must be 1-D or 2-D; got a 3-D array"):
        V.as_float_array(np.ones((1, 1, 1)), "X", ndim=(1, 2))
    with pytest.raises(ValueError, match=r"^X needs at least 2 row\(s\); got 1"):
        V.as_float_array(np.ones((1, 3)), "X", min_rows=2)


@pytest.mark.parametrize("bad, word", [(np.nan, "NaN"), (np.inf, "infinity"), (-np.inf, "infinity")])
@pytest.mark.parametrize("row", [0, 5, 1536])  # first row, middle, past a 512-row block
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_check_finite_names_first_bad_row(bad, word, row, dtype):
    X = np.zeros((2000, 3), dtype=dtype)
    X[row, 2] = bad
    X[row + 7, 0] = np.nan  # a later bad row must not be reported
    with pytest.raises(ValueError, match=rf"^Input X contains {word} \(first at row {row}\)"):
        V.as_float_array(X, "X", finite=True)


def test_check_finite_overflowing_sum_is_not_an_error():
    # the fast path sums the array; an overflowing sum of finite values must pass
    X = np.full((4, 2), np.finfo(np.float64).max)
    V.check_finite(X, "X")
    X32 = np.full((4, 2), np.finfo(np.float32).max, dtype=np.float32)
    V.check_finite(X32, "X")


def test_check_finite_scalar_and_empty():
    V.check_finite(np.zeros((0, 3)), "X")
    with pytest.raises(ValueError, match=r"^x must be finite; got nan"):
        V.check_finite(np.array(np.nan), "x")


@pytest.mark.parametrize(
    "make",
    [
        lambda a: a[::2],  # row slice
        lambda a: a[:, ::-1],  # reversed columns
        lambda a: a[::-3, 1:],  # reversed rows, column offset
        lambda a: np.asfortranarray(a),
        lambda a: a.T.copy().T,  # Fortran via transpose
        lambda a: np.broadcast_to(a[:1], a.shape),  # zero stride
    ],
    ids=["slice", "reversed", "reversed-offset", "fortran", "transpose", "broadcast"],
)
def test_non_contiguous_input_is_copied_exactly(make):
    a = np.arange(60, dtype=np.float64).reshape(12, 5)
    v = make(a)
    out = V.as_float_array(v, "X")
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, np.asarray(v))
    # the copy is not a view of the caller's memory
    assert not np.shares_memory(out, a) or v.flags.c_contiguous


def test_copy_flag_and_layout_keeping():
    a = np.ones((3, 2))
    assert V.as_float_array(a, "X") is a  # no needless copy
    assert V.as_float_array(a, "X", copy=True) is not a
    f = np.asfortranarray(np.ones((3, 2)))
    assert V.as_float_array(f, "X", order=None).flags.f_contiguous


def test_scalar_checks():
    assert V.check_int(np.int32(3), "n", min=1) == 3
    with pytest.raises(TypeError, match=r"^n must be an integer; got bool True"):
        V.check_int(True, "n")
    with pytest.raises(TypeError, match=r"^n must be an integer; got float 2.0"):
        V.check_int(2.0, "n")
    with pytest.raises(ValueError, match=r"^n must be >= 1; got 0"):
        V.check_int(0, "n", min=1)
    with pytest.raises(ValueError, match=r"^tol must be finite; got nan"):
        V.check_float(float("nan"), "tol")
    with pytest.raises(ValueError, match=r"^tol must be > 0.0; got 0.0"):
        V.check_float(0.0, "tol", min=0.0, min_inclusive=False)
    with pytest.raises(ValueError, match=r"^kind must be one of 'a', 'b'; got 'c'"):
        V.check_option("c", "kind", ("a", "b"))
    with pytest.raises(TypeError, match=r"^flag must be True or False; got int 1"):
        V.check_bool(1, "flag")


def test_axis_checks():
    assert V.check_axis(None, 3) == (0, 1, 2)
    assert V.check_axis((-1, 0), 3) == (0, 2)
    with pytest.raises(ValueError, match=r"axis=3 is out of range for an array with 3"):
        V.check_axis(3, 3)
    with pytest.raises(ValueError, match=r"axis contains a repeated axis"):
        V.check_axis((0, -3), 3)
    with pytest.raises(TypeError, match=r"axis must be None, an int or a tuple of ints; got a list"):
        V.check_axis([0], 3)
    with pytest.raises(TypeError, match=r"axis must be None, an int or a tuple of ints"):
        V.check_axis(1.0, 3)


def test_sample_weight_checks():
    np.testing.assert_array_equal(V.check_sample_weight(None, 3), np.ones(3))
    np.testing.assert_array_equal(V.check_sample_weight(2, 3), np.full(3, 2.0))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(3,\) to match X; got shape \(2,\)"):
        V.check_sample_weight([1, 2], 3)
    with pytest.raises(ValueError, match=r"sample_weight must be non-negative; got -1.0 at index 1"):
        V.check_sample_weight([1, -1, 2], 3)
    with pytest.raises(ValueError, match=r"sample_weight contains NaN \(first at row 1\)"):
        V.check_sample_weight([1, np.nan, 2], 3)
    with pytest.raises(ValueError, match=r"sample_weight must have at least one positive weight"):
        V.check_sample_weight([0, 0, 0], 3)


def test_random_state():
    a = V.check_random_state(3).randint(1 << 30)
    b = V.check_random_state(3).randint(1 << 30)
    assert a == b
    rs = np.random.RandomState(0)
    assert V.check_random_state(rs) is rs
    with pytest.raises(TypeError, match=r"^random_state must be None, an int"):
        V.check_random_state("seed")


def test_check_dense_rejects_sparse():
    sp = pytest.importorskip("scipy.sparse")
    with pytest.raises(TypeError, match=r"^X is a scipy sparse .*toarray"):
        V.check_dense(sp.csr_matrix(np.eye(3)), "X")


@pytest.mark.parametrize(
    "n, itemsize, ok",
    [(10, 8, True), (0, 8, True), (10**13, 8, False), (2**62, 8, False), (2**70, 1, False)],
)
def test_check_output_size(n, itemsize, ok):
    if ok:
        V.check_output_size(n, itemsize, "out")
    else:
        with pytest.raises(MemoryError, match=r"^out .*would need \d+ bytes, more than the"):
            V.check_output_size(n, itemsize, "out")


def test_check_output_size_shape_form():
    with pytest.raises(MemoryError, match=r"log-densities of shape \(10000000, 1000000\)"):
        V.check_output_size((10**7, 10**6), 8, "log-densities")
    V.check_output_size((3, 4), 8, "out")


# ----------------------------------------------------------------------------
# Part 2: the table over the public API
# ----------------------------------------------------------------------------

_rng = np.random.default_rng(0)
X = _rng.normal(size=(10, 2))
Xnan = X.copy()
Xnan[3, 1] = np.nan
Xinf = X.copy()
Xinf[4, 0] = -np.inf
OBJ = np.array([[1.0, "a"]] * 10, dtype=object)
CPLX = X.astype(complex)
P_DIAG = maxlik.MixtureParameters("diag", np.array([0.5, 0.5]), np.zeros((2, 2)), np.ones((2, 2)))


def _fitted():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "gm": maxlik.GaussianMixture(2, random_state=0).fit(X),
            "km": maxlik.KMeans(2, random_state=0, n_init=1).fit(X),
            "lr": maxlik.LinearRegression().fit(X, X[:, 0]),
            "lg": maxlik.LogisticRegression().fit(X, X[:, 0] > 0),
        }


FITTED = _fitted()

# (id, f(bad) -> call, argument name)
ARRAY_ARGS = [
    ("logsumexp.a", lambda a: maxlik.logsumexp(a), "a"),
    ("logsumexp.b", lambda a: maxlik.logsumexp(X, b=a), "b"),
    ("softmax.x", lambda a: maxlik.softmax(a), "x"),
    ("log_softmax.x", lambda a: maxlik.log_softmax(a), "x"),
    ("gaussian_logpdf.X", lambda a: maxlik.gaussian_logpdf(a, np.zeros(2), np.eye(2)), "X"),
    ("gaussian_logpdf.means", lambda a: maxlik.gaussian_logpdf(X, a, np.eye(2)), "means"),
    ("gaussian_logpdf.covariances", lambda a: maxlik.gaussian_logpdf(X, np.zeros(2), a), "covariances"),
    ("gaussian_logpdf.precisions_cholesky",
     lambda a: maxlik.gaussian_logpdf(X, np.zeros(2), precisions_cholesky=a), "precisions_cholesky"),
    ("precision_cholesky.covariances", lambda a: maxlik.precision_cholesky(a), "covariances"),
    ("fit_gaussian.X", lambda a: maxlik.fit_gaussian(a), "X"),
    ("fit_gaussian.sample_weight", lambda a: maxlik.fit_gaussian(X, sample_weight=a), "sample_weight"),
    ("fit_categorical.counts", lambda a: maxlik.fit_categorical(counts=a), "counts"),
    ("fit_bernoulli.x", lambda a: maxlik.fit_bernoulli(a), "x"),
    ("entropy.p", lambda a: maxlik.entropy(a), "p"),
    ("cross_entropy.p", lambda a: maxlik.cross_entropy(a, np.full((10, 2), 0.5)), "p"),
    ("cross_entropy.q", lambda a: maxlik.cross_entropy(np.full((10, 2), 0.5), a), "q"),
    ("kl_divergence.q", lambda a: maxlik.kl_divergence(np.full((10, 2), 0.5), a), "q"),
    ("gaussian_kl.mean_p", lambda a: maxlik.gaussian_kl(a, np.eye(2), np.zeros(2), np.eye(2)), "mean_p"),
    ("gaussian_kl.cov_q", lambda a: maxlik.gaussian_kl(np.zeros(2), np.eye(2), np.zeros(2), a), "cov_q"),
    ("kl_to_standard_normal.mu", lambda a: maxlik.kl_to_standard_normal(a, np.zeros((10, 2))), "mu"),
    ("kl_to_standard_normal.logvar",
     lambda a: maxlik.kl_to_standard_normal(np.zeros((10, 2)), a), "logvar"),
    ("softmax_cross_entropy.logits",
     lambda a: maxlik.softmax_cross_entropy(a, np.zeros(10, dtype=np.int64)), "logits"),
    ("softmax_cross_entropy.weight",
     lambda a: maxlik.softmax_cross_entropy(X, np.zeros(10, dtype=np.int64), weight=a), "weight"),
    ("bce.logits", lambda a: maxlik.binary_cross_entropy_with_logits(a, np.zeros((10, 2))), "logits"),
    ("bce.target", lambda a: maxlik.binary_cross_entropy_with_logits(X, a), "target"),
    ("gaussian_nll.mean", lambda a: maxlik.gaussian_nll(a, X, np.ones((10, 2))), "mean"),
    ("gaussian_nll.var", lambda a: maxlik.gaussian_nll(X, X, a), "var"),
    ("mse.input", lambda a: maxlik.mse(a, X), "input"),
    ("vae_loss.x", lambda a: maxlik.vae_loss(a, X, np.zeros((10, 3)), np.zeros((10, 3))), "x"),
    ("vae_loss.mu", lambda a: maxlik.vae_loss(X, X, a, np.zeros((10, 2))), "mu"),
    ("mse.target", lambda a: maxlik.mse(X, a), "target"),
    ("mixture_statistics.X", lambda a: maxlik.mixture_statistics(a, P_DIAG), "X"),
    ("mixture_statistics.sample_weight",
     lambda a: maxlik.mixture_statistics(X, P_DIAG, sample_weight=a), "sample_weight"),
    ("kmeans_plusplus.X", lambda a: maxlik.kmeans_plusplus(a, 2), "X"),
    ("KMeans.fit.X", lambda a: maxlik.KMeans(2, n_init=1).fit(a), "X"),
    ("KMeans.predict.X", lambda a: FITTED["km"].predict(a), "X"),
    ("KMeans.transform.X", lambda a: FITTED["km"].transform(a), "X"),
    ("GaussianMixture.fit.X", lambda a: maxlik.GaussianMixture(2).fit(a), "X"),
    ("GaussianMixture.predict.X", lambda a: FITTED["gm"].predict(a), "X"),
    ("GaussianMixture.score_samples.X", lambda a: FITTED["gm"].score_samples(a), "X"),
    ("LinearRegression.fit.X", lambda a: maxlik.LinearRegression().fit(a, X[:, 0]), "X"),
    ("LinearRegression.predict.X", lambda a: FITTED["lr"].predict(a), "X"),
    ("LogisticRegression.fit.X", lambda a: maxlik.LogisticRegression().fit(a, X[:, 0] > 0), "X"),
    ("LogisticRegression.predict.X", lambda a: FITTED["lg"].predict(a), "X"),
]

# scikit-learn's check_estimator requires ValueError("Complex data not
# supported") from fit/predict and accepts numeric object arrays: estimators
# follow that convention; functions follow the TypeError policy.
_SKLEARN_STYLE = ("GaussianMixture.", "LinearRegression.", "LogisticRegression.", "KMeans.")

# Arguments that take complex values (scipy.special.logsumexp's complex semantics).
_COMPLEX_OK = {"logsumexp.a", "logsumexp.b"}

# Arguments whose NaN / inf are data (scipy / torch semantics: they propagate).
_NAN_IS_DATA = {
    "logsumexp.a", "logsumexp.b", "softmax.x", "log_softmax.x",
    "kl_to_standard_normal.mu", "kl_to_standard_normal.logvar",
    "softmax_cross_entropy.logits", "bce.logits", "bce.target",
    "gaussian_nll.mean", "mse.input", "mse.target",
    "vae_loss.x", "vae_loss.mu",
    "gaussian_nll.var",  # torch checks var >= 0 only: NaN / inf variances propagate
}
# Arguments that must be finite but whose check is about a property other
# than finiteness, with its own wording (probabilities, weights, variances).
_NAN_OTHER_WORDING = {
    "entropy.p": r"p must hold probabilities \(non-negative, not NaN\)",
    "cross_entropy.p": r"p must hold probabilities \(non-negative, not NaN\)",
    "cross_entropy.q": r"q must hold probabilities \(non-negative, not NaN\)",
    "kl_divergence.q": r"q must hold probabilities \(non-negative, not NaN\)",
    "fit_categorical.counts": r"counts must be non-negative and finite; got (nan|inf) at index 3",
    "fit_bernoulli.x": r"x must hold only 0 and 1",
}


def _table():
    rows = []
    for cid, f, arg in ARRAY_ARGS:
        sk = cid.startswith(_SKLEARN_STYLE)
        # complex
        if cid in _COMPLEX_OK:
            pass
        elif sk:
            rows.append((cid, f, "complex", CPLX, ValueError, r"[Cc]omplex data not supported"))
        else:
            rows.append((cid, f, "complex", CPLX, TypeError,
                         rf"{arg} must have a real numeric dtype .*got complex dtype complex128"))
        # object holding a string
        if sk:
            rows.append((cid, f, "object", OBJ, (TypeError, ValueError),
                         rf"^{arg} must be a numeric array.*could not convert string to float"))
            rows.append((cid, f, "ragged", [[1.0, 2.0], [3.0]], (TypeError, ValueError),
                         rf"^{arg} must be a numeric array"))
        else:
            rows.append((cid, f, "object", OBJ, TypeError,
                         rf"{arg} must have a real numeric dtype .*got object dtype object"))
        # a string
        rows.append((cid, f, "str", "abc", (TypeError, ValueError), rf"\b{arg}\b.*str|string"))
        # NaN / inf
        if cid in _NAN_IS_DATA:
            continue
        if cid in _NAN_OTHER_WORDING:
            rows.append((cid, f, "nan", _bad_like(cid, np.nan), ValueError, _NAN_OTHER_WORDING[cid]))
            continue
        rows.append((cid, f, "nan", _bad_like(cid, np.nan), ValueError,
                     rf"{arg} contains NaN \(first at row \d+\)"))
        rows.append((cid, f, "inf", _bad_like(cid, np.inf), ValueError,
                     rf"{arg} contains infinity \(first at row \d+\)"))
    return rows


_SHAPE_OF = {
    "gaussian_logpdf.means": np.zeros((1, 2)),
    "gaussian_logpdf.covariances": np.eye(2)[None],
    "gaussian_logpdf.precisions_cholesky": np.eye(2)[None],
    "precision_cholesky.covariances": np.stack([np.eye(2)] * 3),
    "fit_gaussian.sample_weight": np.ones(10),
    "fit_categorical.counts": np.ones(4),
    "fit_bernoulli.x": np.ones((10, 2)),
    "gaussian_kl.mean_p": np.zeros(2),
    "gaussian_kl.cov_q": np.eye(2),
    "softmax_cross_entropy.weight": np.ones(2),
    "gaussian_nll.var": np.ones((10, 2)),
    "mixture_statistics.sample_weight": np.ones(10),
    "entropy.p": np.full((10, 2), 0.5),
    "cross_entropy.p": np.full((10, 2), 0.5),
    "cross_entropy.q": np.full((10, 2), 0.5),
    "kl_divergence.q": np.full((10, 2), 0.5),
}


def _bad_like(cid, value):
    base = _SHAPE_OF.get(cid, X).copy()
    flat = base.reshape(-1) if base.ndim else base.reshape(1)
    flat[min(3, flat.size - 1)] = value
    return base


@pytest.mark.parametrize("cid, f, kind, bad, exc, regex", _table(),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_public_api_messages(cid, f, kind, bad, exc, regex):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=regex):
            f(bad)


# Shape / ndim mistakes and mismatches: the message names the argument and both shapes.
SHAPE_CASES = [
    (lambda: maxlik.gaussian_logpdf(np.ones((5, 3)), np.zeros(2), np.eye(2)), ValueError,
     r"X has 3 features but means has 2"),
    (lambda: maxlik.gaussian_logpdf(np.ones((5, 2, 1)), np.zeros(2), np.eye(2)), ValueError,
     r"X must be 1-D or 2-D; got a 3-D array"),
    (lambda: maxlik.gaussian_logpdf(X, np.zeros((3, 2)), np.ones((2, 2)), "diag"), ValueError,
     r"covariances must have shape \(3, 2\) for covariance_type='diag'.*got \(2, 2\)"),
    (lambda: maxlik.gaussian_logpdf(X, np.zeros((0, 2)), np.ones(0), "spherical"), ValueError,
     r"means must hold at least one component"),
    (lambda: maxlik.gaussian_logpdf(X, np.zeros(2), np.array([[1.0, 2.0], [2.0, 1.0]])),
     ValueError, r"covariances.* not positive definite \(component 0\)"),
    (lambda: maxlik.gaussian_logpdf(X, np.zeros(2), np.eye(2), "bogus"), ValueError,
     r"covariance_type must be one of 'full', 'tied', 'diag', 'spherical'; got 'bogus'"),
    (lambda: maxlik.logsumexp(np.ones((2, 3)), b=np.ones(4)), ValueError,
     r"b must broadcast with a: shapes \(4,\) and \(2, 3\)"),
    (lambda: maxlik.logsumexp(np.ones((2, 3)), axis=2), ValueError, r"axis=2 is out of range"),
    (lambda: maxlik.softmax(np.ones((2, 3)), axis=(0, 0)), ValueError, r"repeated axis"),
    (lambda: maxlik.logsumexp(np.ones(3), keepdims=1), TypeError, r"keepdims must be True or False"),
    (lambda: maxlik.softmax_cross_entropy(np.ones((4, 3)), np.zeros(5, dtype=np.int64)),
     ValueError, r"target"),
    (lambda: maxlik.softmax_cross_entropy(np.ones((4, 3)), np.array([0, 1, 2, 3])),
     ValueError, r"target.*3"),
    (lambda: maxlik.softmax_cross_entropy(np.ones((4, 3)), np.array([0, 1, -2, 0])),
     ValueError, r"target"),
    (lambda: maxlik.mse(np.ones((2, 3)), np.ones((3, 2))), ValueError,
     r"target must have the shape of input \(2, 3\); got shape \(3, 2\)"),
    (lambda: maxlik.kl_to_standard_normal(np.ones((2, 3)), np.ones(3)), ValueError,
     r"logvar must have the same shape as mu \(2, 3\); got shape \(3,\)"),
    (lambda: maxlik.entropy(np.array([0.5, 0.6])), ValueError, r"p .*sum"),
    (lambda: maxlik.fit_gaussian(np.ones((3, 2)), sample_weight=np.ones(2)), ValueError,
     r"sample_weight must have shape \(3,\) to match X; got shape \(2,\)"),
    (lambda: maxlik.fit_categorical([0, 1], n_categories=1), ValueError, r"n_categories|labels"),
    (lambda: maxlik.mixture_statistics(np.ones((4, 3)), P_DIAG), ValueError,
     r"X has 3 features, but the mixture has 2"),
    (lambda: maxlik.mixture_statistics(X, "params"), TypeError,
     r"params must be a MixtureParameters; got str"),
    (lambda: maxlik.kmeans_plusplus(X, 11), ValueError, r"n_clusters must be <= 10; got 11"),
    (lambda: maxlik.kmeans_plusplus(np.ones((0, 2)), 1), ValueError, r"X needs at least 1 row"),
    (lambda: maxlik.KMeans(11).fit(X), ValueError, r"n_samples=10 should be >= n_clusters=11"),
    (lambda: maxlik.KMeans(0).fit(X), ValueError, r"n_clusters must be >= 1; got 0"),
    (lambda: maxlik.KMeans(2.5).fit(X), TypeError, r"n_clusters must be an integer; got float"),
    (lambda: maxlik.KMeans(2, n_init=1).fit(np.ones((0, 2))), ValueError, r"0 sample"),
    (lambda: FITTED["km"].predict(np.ones((3, 5))), ValueError, r"X has 5 features"),
    (lambda: maxlik.GaussianMixture(11).fit(X), ValueError, r"n_components = 11, n_samples = 10"),
    (lambda: maxlik.GaussianMixture(2, covariance_type="x").fit(X), ValueError,
     r"covariance_type must be one of"),
    (lambda: maxlik.GaussianMixture(2).fit(np.ones(10)), ValueError, r"X must be 2-D \(n_samples, n_features\); got a 1-D"),
    (lambda: FITTED["gm"].predict(np.ones((3, 5))), ValueError, r"X has 5 features"),
    (lambda: maxlik.GaussianMixture(2).fit(X, sample_weight=-np.ones(10)), ValueError,
     r"sample_weight must be non-negative"),
    (lambda: maxlik.LinearRegression().fit(X, np.ones(9)), ValueError,
     r"X has 10, y has 9"),
    (lambda: maxlik.LogisticRegression().fit(X, np.zeros(10)), ValueError, r"at least 2 classes"),
    (lambda: maxlik.LogisticRegression(C=-1).fit(X, X[:, 0] > 0), ValueError, r"C must be > 0"),
    (lambda: FITTED["lr"].predict(np.ones((3, 5))), ValueError, r"X has 5 features"),
    (lambda: maxlik.set_num_threads(0), ValueError, r"n must be >= 1, got 0"),
    (lambda: maxlik.set_num_threads(1.5), TypeError, r"n must be an integer"),
]


@pytest.mark.parametrize("call, exc, regex", SHAPE_CASES, ids=range(len(SHAPE_CASES)))
def test_shape_messages(call, exc, regex):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(exc, match=regex):
            call()


# dtype policy end to end: bool/int inputs compute in float64, float16 in float32.
DTYPE_CALLS = [
    ("logsumexp", lambda a: maxlik.logsumexp(a, axis=1)),
    ("softmax", lambda a: maxlik.softmax(a, axis=1)),
    ("log_softmax", lambda a: maxlik.log_softmax(a, axis=1)),
    ("gaussian_logpdf", lambda a: maxlik.gaussian_logpdf(a, np.zeros(3), np.eye(3))),
    ("mse", lambda a: maxlik.mse(a, a, reduction="none")),
    ("kl_to_standard_normal", lambda a: maxlik.kl_to_standard_normal(a, a)),
    ("bce", lambda a: maxlik.binary_cross_entropy_with_logits(a, np.ones_like(a, dtype=np.float64) * 0,
                                                                reduction="none")),
]


@pytest.mark.parametrize("name, f", DTYPE_CALLS, ids=[c[0] for c in DTYPE_CALLS])
@pytest.mark.parametrize("dtype, expected", [(np.bool_, np.float64), (np.int32, np.float64),
                                             (np.uint8, np.float64), (np.float16, np.float32),
                                             (np.float32, np.float32), (np.float64, np.float64)])
def test_dtype_policy_end_to_end(name, f, dtype, expected):
    a = (np.arange(12).reshape(4, 3) % 2).astype(dtype)
    out = f(a)
    assert np.asarray(out).dtype == expected, (name, dtype, np.asarray(out).dtype)
    # same numbers as the float64 computation (to the output precision)
    ref = np.asarray(f(a.astype(np.float64)))
    tol = 1e-6 if expected == np.float32 else 1e-15
    np.testing.assert_allclose(np.asarray(out, dtype=np.float64), ref, rtol=tol, atol=tol)


# Strided inputs give the same results as contiguous copies (never read out of bounds).
STRIDE_CALLS = [
    ("logsumexp", lambda a: maxlik.logsumexp(a, axis=1)),
    ("logsumexp0", lambda a: maxlik.logsumexp(a, axis=0)),
    ("softmax", lambda a: maxlik.softmax(a, axis=1)),
    ("log_softmax0", lambda a: maxlik.log_softmax(a, axis=0)),
    ("gaussian_logpdf", lambda a: maxlik.gaussian_logpdf(a, np.zeros(3), np.eye(3))),
    ("fit_gaussian", lambda a: maxlik.fit_gaussian(a).covariance),
    ("mse", lambda a: maxlik.mse(a, a[::-1], reduction="none")),
    ("sce", lambda a: maxlik.softmax_cross_entropy(a, np.arange(a.shape[0]) % 3, reduction="none")),
    ("kl_std", lambda a: maxlik.kl_to_standard_normal(a, a * 0.1)),
    ("gnll", lambda a: maxlik.gaussian_nll(a, a[::-1], np.ones_like(a), reduction="none")),
    ("kmeans", lambda a: maxlik.KMeans(2, n_init=1, random_state=0).fit(a).cluster_centers_),
    ("kmeans_plusplus", lambda a: maxlik.kmeans_plusplus(a, 2, random_state=0)[0]),
    ("gmm", lambda a: maxlik.GaussianMixture(2, random_state=0).fit(a).means_),
    ("linreg", lambda a: maxlik.LinearRegression().fit(a, a[:, 0] + 2 * a[:, 1]).coef_),
]


@pytest.mark.parametrize("name, f", STRIDE_CALLS, ids=[c[0] for c in STRIDE_CALLS])
@pytest.mark.parametrize("layout", ["slice", "reversed", "fortran", "offset"])
def test_strided_inputs_match_contiguous(name, f, layout):
    base = np.random.default_rng(1).normal(size=(80, 7))
    v = {"slice": base[::2, :3], "reversed": base[::-1, ::-2][:, :3][:40],
         "fortran": np.asfortranarray(base[:40, :3]), "offset": base[1:41, 2:5]}[layout]
    assert v.shape == (40, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = f(v)
        ref = f(np.ascontiguousarray(v))
    # Equal up to rounding: the kernels pick a row- or column-wise summation
    # order from the layout, so the last bit can differ (documented in the report).
    np.testing.assert_allclose(np.asarray(got), np.asarray(ref), rtol=1e-14, atol=1e-14)


# Fitting is all-or-nothing (BaseEstimator wraps fit / fit_predict / fit_transform /
# partial_fit): a failing call leaves the previous fit exactly in place.
@pytest.mark.parametrize("make, method", [
    (lambda: maxlik.GaussianMixture(2, random_state=0), "fit"),
    (lambda: maxlik.GaussianMixture(2, random_state=0), "fit_predict"),
    (lambda: maxlik.GaussianMixture(2, random_state=0), "partial_fit"),
    (lambda: maxlik.KMeans(2, n_init=1, random_state=0), "fit"),
    (lambda: maxlik.KMeans(2, n_init=1, random_state=0), "fit_transform"),
    (lambda: maxlik.KMeans(2, n_init=1, random_state=0), "partial_fit"),
    (lambda: maxlik.LinearRegression(), "fit"),
    (lambda: maxlik.LogisticRegression(), "fit"),
])
def test_failed_fit_leaves_previous_state(make, method):
    est = make()
    y = (X[:, 0] > 0).astype(int)
    needs_y = isinstance(est, (maxlik.LinearRegression, maxlik.LogisticRegression))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        getattr(est, method)(X, y) if needs_y else getattr(est, method)(X)
    before = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(est).items()}
    bad = np.ones((4, 5))  # a different number of features ...
    bad[2, 3] = np.nan  # ... and a NaN: rejected after n_features_in_ would have been reset
    with pytest.raises(ValueError):
        getattr(est, method)(bad, y[:4]) if needs_y else getattr(est, method)(bad)
    after = vars(est)
    assert sorted(after) == sorted(before)
    for k, v in before.items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(after[k], v)
        elif not callable(v) and not isinstance(v, tuple):
            assert after[k] == v or (v != v), k


# User-built MixtureParameters (the block API) are validated on construction.
@pytest.mark.parametrize("kwargs, exc, regex", [
    (dict(means=np.zeros(2)), ValueError, r"means must be 2-D; got a 1-D array"),
    (dict(covariance_type="bogus"), ValueError, r"covariance_type must be one of"),
    (dict(precisions_cholesky=np.ones((3, 3))), ValueError,
     r"precisions_cholesky must have shape \(1, 2\) for covariance_type='diag'.*got \(3, 3\)"),
    (dict(weights=np.ones(3)), ValueError, r"weights must have shape \(1,\) to match means"),
    (dict(means=np.full((1, 2), np.nan)), ValueError, r"means contains NaN \(first at row 0\)"),
    (dict(weights=-np.ones(1)), ValueError, r"weights must be non-negative with a positive sum"),
    (dict(weights=np.zeros(1)), ValueError, r"weights must be non-negative with a positive sum"),
    (dict(means=np.array([[0, "a"]], dtype=object)), TypeError, r"means must have a real numeric"),
    (dict(precisions_cholesky=np.array([[np.inf, 1.0]])), ValueError,
     r"precisions_cholesky contains infinity"),
])
def test_mixture_parameters_are_validated(kwargs, exc, regex):
    base = dict(covariance_type="diag", weights=np.ones(1), means=np.zeros((1, 2)),
                precisions_cholesky=np.ones((1, 2)))
    base.update(kwargs)
    with pytest.raises(exc, match=regex):
        maxlik.MixtureParameters(**base)


def test_mixture_parameters_accept_lists():
    p = maxlik.MixtureParameters("full", [1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]])
    s = maxlik.mixture_statistics(np.zeros((3, 2)), p)
    np.testing.assert_allclose(s.log_likelihood, 3 * -np.log(2 * np.pi))
