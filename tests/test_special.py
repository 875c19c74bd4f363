"""logsumexp / softmax / log_softmax: scipy equivalence, accuracy, layouts, threads, errors."""
import warnings

import numpy as np
import pytest
from hypothesis import given, settings, HealthCheck, strategies as st
from hypothesis.extra import numpy as hnp

import maxlik

scipy_special = pytest.importorskip("scipy.special")
mpmath = pytest.importorskip("mpmath")

SPECIALS = [np.inf, -np.inf, np.nan, 0.0, 1e300, -1e300, 709.0, 710.0, -745.0]


def _scipy_lse(a, axis=None, b=None, keepdims=False, return_sign=False):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return scipy_special.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)


def _masked_like_maxlik(a, b):
    """maxlik masks zero-weight elements completely; give scipy finite values there."""
    if b is None:
        return a
    a = np.array(a, dtype=np.result_type(a, np.float32), copy=True)
    a_b, b_b = np.broadcast_arrays(a, b)
    if np.any(b_b == 0):
        a_b = np.array(a_b, copy=True)
        a_b[b_b == 0] = 0.0
        return a_b
    return a


def _close(got, exp, dtype):
    rtol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(got, exp, rtol=rtol, atol=rtol, equal_nan=True)


@st.composite
def lse_case(draw):
    ndim = draw(st.integers(1, 3))
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.int64, np.bool_]))
    if dtype in (np.float64, np.float32):
        elems = st.one_of(
            st.floats(-50, 50, width=32),
            st.sampled_from(SPECIALS if dtype == np.float64 else [np.inf, -np.inf, np.nan, 0.0, 80.0]),
        )
    elif dtype == np.int64:
        elems = st.integers(-30, 30)
    else:
        elems = st.booleans()
    a = draw(hnp.arrays(dtype, shape, elements=elems))
    axis_kind = draw(st.sampled_from(["none", "int", "neg", "tuple"]))
    if axis_kind == "none":
        axis = None
    elif axis_kind == "int":
        axis = draw(st.integers(0, ndim - 1))
    elif axis_kind == "neg":
        axis = draw(st.integers(-ndim, -1))
    else:
        axis = tuple(sorted(draw(st.sets(st.integers(0, ndim - 1), min_size=1))))
    b = None
    b_kind = draw(st.sampled_from(["none", "full", "broadcast", "scalar"]))
    wdtype = np.float64 if dtype != np.float32 else np.float32
    welem = st.one_of(st.sampled_from([0.0, 1.0, -1.0, 2.0]), st.floats(-3, 3, width=32))
    if b_kind == "full":
        b = draw(hnp.arrays(wdtype, shape, elements=welem))
    elif b_kind == "broadcast" and ndim >= 1:
        b = draw(hnp.arrays(wdtype, shape[-1:], elements=welem))
    elif b_kind == "scalar":
        b = draw(st.sampled_from([2.0, 0.5, -1.0]))
    layout = draw(st.sampled_from(["C", "F", "reversed"]))
    if layout == "F":
        a = np.asfortranarray(a)
    elif layout == "reversed":
        a = a[::-1]
        if b is not None and np.ndim(b) == ndim:
            b = b[::-1]
    return a, axis, b, draw(st.booleans()), draw(st.booleans())


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lse_case())
def test_logsumexp_matches_scipy(case):
    a, axis, b, keepdims, return_sign = case
    if b is not None and np.any(np.asarray(b) < 0) and a.dtype.kind == "f":
        # scipy falls back to log(sum(b*exp(a))) for negative or cancelling
        # sums, where exp underflow turns -e^-1000 into -0.0 (answer -inf) and
        # overflow turns e^1e300 - e^1e300 into nan; maxlik returns the exact
        # answers there. Keep a inside exp's range when weights can be negative.
        a = np.where(np.isfinite(a), np.clip(a, -700, 700), a).astype(a.dtype)
    got = maxlik.logsumexp(a, axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    if a.size == 0 and (axis is None or isinstance(axis, tuple)) and a.ndim > 1:
        # scipy raises IndexError for empty input with several reduced axes
        # (a scipy bug); the answer is -inf over the kept shape
        res = got[0] if return_sign else got
        axes = range(a.ndim) if axis is None else axis
        kept = tuple(1 if d in axes else n for d, n in enumerate(a.shape)) if keepdims else \
            tuple(n for d, n in enumerate(a.shape) if d not in axes)
        assert np.shape(res) == kept
        assert np.all(res == -np.inf)
        return
    exp = _scipy_lse(_masked_like_maxlik(a, b), axis=axis, b=b, keepdims=keepdims, return_sign=return_sign)
    dtype = np.asarray(exp[0] if return_sign else exp).dtype
    if b is not None:
        # Exact cancellation (weights at the max summing to 0): maxlik returns
        # -inf with sign 0; scipy's direct fallback returns rounding noise
        # (e.g. log(4e-16)) or nan there. Accept exactly that difference.
        g0 = np.asarray(got[0] if return_sign else got, dtype=np.float64)
        e0 = np.array(exp[0] if return_sign else exp, dtype=np.float64)
        fin = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        top = float(np.max(np.abs(fin))) if np.size(fin) else 0.0
        # the direct sum's rounding error: <= n * eps * max|b| * e^top (log of it)
        bmax = float(np.max(np.abs(b))) if np.size(b) else 1.0
        noise_top = top + np.log(64 * np.finfo(dtype).eps * max(a.size, 1) * max(bmax, 1.0))
        noise = (g0 == -np.inf) & (e0 != -np.inf) & (np.isnan(e0) | (e0 < noise_top))
        if np.any(noise):
            e0[noise] = -np.inf
            if return_sign:
                s0 = np.array(exp[1], dtype=np.float64)
                s0[noise] = 0.0
                exp = (e0.astype(dtype), s0.astype(dtype))
            else:
                exp = e0.astype(dtype)
    tol_dtype = dtype
    if a.dtype.kind in "biu":
        dtype = np.dtype(np.float64)  # maxlik: bool/int always compute in float64
    g_val, e_val = (got[0], exp[0]) if return_sign else (got, exp)
    assert np.shape(g_val) == np.shape(e_val)
    assert np.asarray(g_val).dtype == dtype
    if b is not None and np.any(np.asarray(b) < 0):
        # When weights at the max cancel, scipy falls back to log(sum(b*exp(a)))
        # whose rounding error is ~eps * e^(max a) relative to the sum; allow
        # that (it vanishes when there is no cancellation).
        fin = a[np.isfinite(a)] if a.dtype.kind == "f" else a
        amax = float(np.max(fin)) if np.size(fin) else 0.0
        eps = np.finfo(tol_dtype).eps
        g64 = np.asarray(g_val, dtype=np.float64)
        e64 = np.asarray(e_val, dtype=np.float64)
        with np.errstate(all="ignore"):
            slack = 64 * eps * np.exp(np.clip(amax - e64, 0, 700))
            # scipy's fallback can also round a tiny (even negative) sum to 0 -> -inf
            cancelled = (e64 == -np.inf) & (np.isnan(g64) | (g64 < amax - 25))
            ok = cancelled | (g64 == e64) | (np.isnan(g64) & np.isnan(e64)) | \
                (np.abs(g64 - e64) <= (1e-12 if tol_dtype == np.float64 else 2e-5) * (1 + np.abs(e64)) + slack)
        assert np.all(ok), (a, b, g_val, e_val)
    else:
        _close(g_val, e_val, tol_dtype)
    if return_sign:
        s_got = np.asarray(got[1], dtype=np.float64)
        s_exp = np.asarray(exp[1], dtype=np.float64)
        if b is not None and np.any(np.asarray(b) < 0):
            same = (s_got == s_exp) | (np.isnan(s_got) & np.isnan(s_exp)) | cancelled
            assert np.all(same), (a, b, got, exp)
        else:
            np.testing.assert_array_equal(s_got, s_exp)


@settings(max_examples=200, deadline=None)
@given(
    hnp.arrays(
        st.sampled_from([np.float64, np.float32]),
        hnp.array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
        elements=st.floats(-30, 30, width=32),
    ),
    st.data(),
)
def test_softmax_and_log_softmax_match_scipy(x, data):
    axis = data.draw(st.one_of(st.none(), st.integers(-x.ndim, x.ndim - 1)))
    for ours, theirs in [(maxlik.softmax, scipy_special.softmax), (maxlik.log_softmax, scipy_special.log_softmax)]:
        got = ours(x, axis=axis)
        exp = theirs(x, axis=axis)
        assert got.shape == exp.shape and got.dtype == exp.dtype
        _close(got, exp, x.dtype)


@pytest.mark.parametrize("row", [[-np.inf, -np.inf], [np.inf, 1.0], [np.nan, 1.0], [1.0, np.inf, np.inf]])
def test_softmax_special_rows_match_scipy(row):
    x = np.array([row, [0.0] * len(row)])
    for axis in (1, None):
        with np.errstate(all="ignore"):
            np.testing.assert_array_equal(maxlik.softmax(x, axis=axis), scipy_special.softmax(x, axis=axis))
            np.testing.assert_array_equal(maxlik.log_softmax(x, axis=axis), scipy_special.log_softmax(x, axis=axis))
    xt = np.ascontiguousarray(x.T)  # column layout
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(maxlik.softmax(xt, axis=0), scipy_special.softmax(xt, axis=0))
        np.testing.assert_array_equal(maxlik.log_softmax(xt, axis=0), scipy_special.log_softmax(xt, axis=0))


# ---- accuracy against an extended-precision reference ---------------------------------

def _ref_lse(values) -> "mpmath.mpf":
    with mpmath.workdps(60):
        terms = [mpmath.exp(mpmath.mpf(float(v))) for v in values if v != -np.inf]
        return mpmath.log(mpmath.fsum(terms)) if terms else mpmath.mpf("-inf")


def _ulp_error(got, ref, dtype) -> float:
    ref_f = float(ref)
    if not np.isfinite(ref_f):
        return 0.0 if got == ref_f else np.inf
    r = dtype(ref_f)
    ulp = np.spacing(np.abs(r)).astype(np.float64)
    if ulp == 0:
        ulp = np.finfo(dtype).smallest_subnormal
    with mpmath.workdps(60):
        return float(abs(mpmath.mpf(float(got)) - ref) / mpmath.mpf(float(ulp)))


def _adversarial(rng, dtype):
    big = 1e300 if dtype == np.float64 else 1e30
    near = 709.0 if dtype == np.float64 else 88.0
    yield rng.uniform(0, 5, size=64)                              # random, no cancellation
    yield rng.normal(3, 2, size=1000)
    yield np.array([big, -big, 0.0, 1.0])                         # spread of 1e300
    yield rng.uniform(-big, big, size=50)
    yield near + rng.uniform(-1, 1.5, size=40)                    # around exp overflow
    yield np.array([near + 1, near + 1, near])
    yield np.concatenate([[-np.inf] * 10, rng.uniform(1, 3, 5)])  # -inf mixtures
    yield np.array([0.0, -40.0])                                  # one dominant term
    yield np.array([5.0] + [-30.0] * 100)
    yield np.array([1.0, 1.0 - 1e-9, 1.0 - 2e-9])
    yield np.array([-1e-3] * 3)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_logsumexp_within_4_ulp_of_mpmath(dtype, rng):
    for i, x in enumerate(_adversarial(rng, dtype)):
        x = x.astype(dtype)
        got = maxlik.logsumexp(x)
        ref = _ref_lse(x)
        err = _ulp_error(got, ref, dtype)
        assert err <= 4.0, (i, x[:5], got, float(ref), err)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_cols", [8, 16, 17, 32])
def test_logsumexp_rows_within_4_ulp(dtype, n_cols, rng):
    # Row and column kernels on many short rows, each checked against mpmath.
    # Whole-vector widths (8, 16, 32) take the fixed-length row kernel, whose
    # groups of rows with a -inf, a far-below-max term or a NaN fall back to
    # the general one.
    x = rng.normal(2, 3, size=(60, n_cols)).astype(dtype)
    x[::7, 3] = -np.inf
    x[::5, 0] = 40.0
    x[::11, 1] = -800.0 if dtype == np.float64 else -120.0
    for axis, data in [(1, x), (0, np.ascontiguousarray(x.T))]:
        got = maxlik.logsumexp(data, axis=axis)
        for i in range(x.shape[0]):
            assert _ulp_error(got[i], _ref_lse(x[i]), dtype) <= 4.0
    y = x.copy()
    y[13, 2] = np.nan
    y[17, :] = -np.inf
    y[21, 4] = np.inf
    got_y = maxlik.logsumexp(y, axis=1)
    special = [13, 17, 21]
    np.testing.assert_array_equal(got_y[special], np.array([np.nan, -np.inf, np.inf], dtype))
    # the other rows of those groups went through the general kernel
    for i in np.setdiff1d(np.arange(x.shape[0]), special):
        assert _ulp_error(got_y[i], _ref_lse(y[i]), dtype) <= 4.0


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vectorised_exp_within_1_ulp_of_mpmath(dtype, rng):
    # softmax of a row [0, d] with e^d below a quarter ulp of 1 is [1, e^d]
    # exactly: the sum is 1, so the second entry is the kernel's own exp(d).
    # d spans many binades (every reduction k and all of r), down to results
    # in the subnormal range. Bound: 1 ulp with FMA; without it (x86-64-v2)
    # every multiply-add of the polynomial rounds twice, documented as 1.5 ulp.
    lo, hi = (-745.0, -40.0) if dtype == np.float64 else (-103.0, -18.0)
    d = np.concatenate([rng.uniform(lo, hi, size=3000), np.linspace(lo, hi, 997)]).astype(dtype)
    for n_cols in (2, 9):  # the vector body and the partial tail
        x = np.zeros((d.size, n_cols), dtype)
        x[:, 1] = d
        x[:, 2:] = -np.inf
        got = maxlik.softmax(x, axis=1)
        assert np.all(got[:, 0] == 1) and np.all(got[:, 2:] == 0)
        tiny = np.finfo(dtype).smallest_subnormal
        with mpmath.workdps(40):
            for di, yi in zip(d, got[:, 1]):
                ref = mpmath.exp(mpmath.mpf(float(di)))
                r = dtype(float(ref))
                ulp = float(np.spacing(r)) if r >= np.finfo(dtype).tiny else float(tiny)
                err = float(abs(mpmath.mpf(float(yi)) - ref) / ulp)
                assert err <= 1.5, (float(di), float(yi), float(ref), err)


def test_cancellation_is_bounded_by_the_condition_number():
    # log(2) - 0.7: the result is tiny relative to its parts, so only an error of
    # a few ulp of the parts is attainable in double (as in scipy).
    x = np.array([-0.7, -0.7])
    got = maxlik.logsumexp(x)
    ref = float(_ref_lse(x))
    assert abs(got - ref) <= 4 * np.spacing(0.7)


# ---- layouts, dtypes, shapes ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layouts_agree(dtype, rng):
    base = rng.normal(size=(37, 41, 3)).astype(dtype) * 5
    views = {
        "C": base,
        "F": np.asfortranarray(base),
        "slice": base[::2, 1::3, :],
        "reversed": base[::-1, :, ::-1],
        "transposed": base.transpose(2, 0, 1),
    }
    for name, v in views.items():
        c = np.ascontiguousarray(v)
        for axis in [None, 0, 1, 2, -1, (0, 1), (0, 2), (1, 2)]:
            got = maxlik.logsumexp(v, axis=axis)
            exp = _scipy_lse(c, axis=axis)
            _close(got, exp, dtype)
            if axis is not None:
                _close(maxlik.softmax(v, axis=axis), scipy_special.softmax(c, axis=axis), dtype)
                _close(maxlik.log_softmax(v, axis=axis), scipy_special.log_softmax(c, axis=axis), dtype)


def test_dtypes():
    assert maxlik.logsumexp(np.arange(4, dtype=np.int32)).dtype == np.float64
    assert maxlik.logsumexp(np.array([True, False])).dtype == np.float64
    assert maxlik.logsumexp(np.zeros(3, np.float32)).dtype == np.float32
    assert maxlik.logsumexp(np.zeros(3, np.float16)).dtype == np.float32  # documented departure
    assert maxlik.logsumexp(np.zeros(3, np.float32), b=np.ones(3)).dtype == np.float64
    assert maxlik.logsumexp(np.zeros(3, np.float32), b=2.0).dtype == np.float32
    assert maxlik.softmax(np.arange(3)).dtype == np.float64


def test_empty_and_scalar_inputs():
    assert maxlik.logsumexp([]) == -np.inf
    assert maxlik.logsumexp([], return_sign=True) == _scipy_lse([], return_sign=True)
    np.testing.assert_array_equal(maxlik.logsumexp(np.zeros((0, 3)), axis=0), np.full(3, -np.inf))
    assert maxlik.logsumexp(np.zeros((0, 3)), axis=1).shape == (0,)
    assert maxlik.logsumexp(np.zeros((2, 0)), axis=1, keepdims=True).shape == (2, 1)
    assert maxlik.logsumexp(3.0) == 3.0
    assert maxlik.softmax(np.zeros((0, 2)), axis=1).shape == (0, 2)
    assert maxlik.log_softmax(2.0) == 0.0


def test_zero_weight_masks_infinite_and_nan_elements():
    assert maxlik.logsumexp([np.inf, 1.0], b=[0, 1]) == 1.0
    assert maxlik.logsumexp([np.nan, 1.0], b=[0, 1]) == 1.0
    assert maxlik.logsumexp([np.inf, np.inf], b=[0, 1]) == np.inf  # scipy: nan (documented)
    assert maxlik.logsumexp([5.0], b=[0]) == -np.inf


def test_negative_weights_and_sign():
    out, sgn = maxlik.logsumexp([1.0, 2.0], b=[1, -1], return_sign=True)
    assert sgn == -1 and np.isclose(out, np.log(np.e**2 - np.e))
    with np.errstate(invalid="ignore"):
        assert np.isnan(maxlik.logsumexp([1.0, 2.0], b=[1, -1]))
    out, sgn = maxlik.logsumexp([1.0, 1.0], b=[1, -1], return_sign=True)
    assert out == -np.inf and sgn == 0


def test_long_rows_use_several_chunks_and_ranges(rng):
    x = rng.normal(size=(2, 300_000)) * 3
    _close(maxlik.logsumexp(x, axis=1), _scipy_lse(x, axis=1), np.float64)
    _close(maxlik.logsumexp(x.T, axis=0), _scipy_lse(x, axis=1), np.float64)
    _close(maxlik.logsumexp(x), _scipy_lse(x), np.float64)
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(maxlik.logsumexp(x32), _scipy_lse(x.astype(np.float64)), rtol=3e-7)


# ---- threads ---------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_does_not_change_results(dtype, rng, threads):
    x = (rng.normal(size=(20_000, 37)) * 4).astype(dtype)
    b = rng.uniform(-1, 2, size=37).astype(dtype)
    cases = [
        lambda: maxlik.logsumexp(x, axis=1),
        lambda: maxlik.logsumexp(x, axis=0),
        lambda: maxlik.logsumexp(x),
        lambda: maxlik.logsumexp(x, axis=0, b=b, return_sign=True)[0],
        lambda: maxlik.softmax(x, axis=0),
        lambda: maxlik.log_softmax(x, axis=1),
    ]
    threads(1)
    one = [f() for f in cases]
    threads(2)
    two = [f() for f in cases]
    for r1, r2 in zip(one, two):
        np.testing.assert_array_equal(r1, r2)


# ---- bad input -------------------------------------------------------------------------------

def test_bad_input_messages():
    with pytest.raises(TypeError, match="a must have a real numeric dtype.*object"):
        maxlik.logsumexp(np.array([1, "x"], dtype=object))
    with pytest.raises(TypeError, match="x must have a real numeric dtype.*complex"):
        maxlik.softmax(np.array([1 + 1j]))  # softmax stays real-only, as in scipy
    with pytest.raises(TypeError, match="x must have a real numeric dtype.*complex"):
        maxlik.log_softmax(np.array([1 + 1j]))
    with pytest.raises(TypeError, match="x must have a real numeric dtype"):
        maxlik.softmax(np.array([object()]))
    with pytest.raises(ValueError, match="b must broadcast with a"):
        maxlik.logsumexp(np.zeros((3, 4)), b=np.ones(3))
    with pytest.raises(ValueError, match="axis=2 is out of range"):
        maxlik.logsumexp(np.zeros((3, 4)), axis=2)
    with pytest.raises(ValueError, match="axis=-3 is out of range"):
        maxlik.softmax(np.zeros((3, 4)), axis=-3)
    with pytest.raises(ValueError, match="repeated axis"):
        maxlik.logsumexp(np.zeros((3, 4)), axis=(1, -1))
    with pytest.raises(TypeError, match="axis must be None, an int or a tuple"):
        maxlik.logsumexp(np.zeros(3), axis=1.5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'axes'"):
        maxlik.logsumexp(np.zeros(3), axes=0)
    with pytest.raises(TypeError, match="keepdims must be True or False"):
        maxlik.logsumexp(np.zeros(3), keepdims="yes")


# ---- complex logsumexp (scipy's semantics: the imaginary part is a phase) -------------------

def _mp_lse(a, b=None):
    """log(sum(b exp(a))) in 50-digit complex arithmetic, principal branch."""
    mpmath = pytest.importorskip("mpmath")
    with mpmath.workdps(50):
        b = np.ones(len(a)) if b is None else b
        s = sum(mpmath.mpc(complex(bj)) * mpmath.exp(mpmath.mpc(complex(aj))) for aj, bj in zip(a, b))
        return complex(mpmath.log(s))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("weighted", [False, True])
def test_complex_logsumexp_matches_extended_precision(seed, weighted):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=9) * 4 + 1j * rng.normal(size=9) * 6
    b = rng.uniform(0.1, 2, 9) * np.exp(1j * rng.uniform(-3, 3, 9)) if weighted else None
    got = maxlik.logsumexp(a, b=b)
    ref = _mp_lse(a, b)
    assert abs(got.real - ref.real) <= 8 * np.finfo(float).eps * max(1.0, abs(ref.real))
    # the phase is defined modulo 2 pi; the result's lies in (-pi, pi]
    assert -np.pi < got.imag <= np.pi
    assert abs(np.angle(np.exp(1j * (got.imag - ref.imag)))) <= 1e-14
    # return_sign: log|sum| and the unit phase
    r, s = maxlik.logsumexp(a, b=b, return_sign=True)
    assert np.isrealobj(r) and abs(abs(s) - 1) < 1e-15
    np.testing.assert_allclose(s * np.exp(r), np.exp(ref), rtol=1e-13)


def test_complex_logsumexp_matches_scipy_axes_keepdims_dtypes():
    sp = pytest.importorskip("scipy.special")
    rng = np.random.default_rng(1)
    a = rng.normal(size=(4, 5, 6)) + 1j * rng.normal(size=(4, 5, 6)) * 3
    b = rng.normal(size=(1, 5, 6))
    for kw in [dict(), dict(axis=1), dict(axis=(0, 2)), dict(axis=-1, keepdims=True),
               dict(axis=0, b=b), dict(axis=(1, 2), b=b, return_sign=True)]:
        got, ref = maxlik.logsumexp(a, **kw), sp.logsumexp(a, **kw)
        for g, e in (zip(got, ref) if isinstance(ref, tuple) else [(got, ref)]):
            assert np.shape(g) == np.shape(e) and np.asarray(g).dtype == np.asarray(e).dtype
            np.testing.assert_allclose(g, e, rtol=1e-13, atol=1e-13)
    a32 = a.astype(np.complex64)
    got = maxlik.logsumexp(a32, axis=1)
    assert got.dtype == np.complex64
    np.testing.assert_allclose(got, sp.logsumexp(a.astype(np.complex128), axis=1), rtol=1e-5, atol=1e-5)
    r, s = maxlik.logsumexp(a32, axis=1, return_sign=True)
    assert r.dtype == np.float32 and s.dtype == np.complex64


def test_complex_logsumexp_keeps_tiny_imaginary_parts():
    # log(e^0 + e^{i t}) = log 2 + i t/2 (to O(t^2)): a naive log(1 + z) loses t
    t = 2.2204460492503132e-17
    got = maxlik.logsumexp(np.array([0.0, 1j * t]))
    assert got.real == pytest.approx(np.log(2), rel=1e-15)
    assert got.imag == pytest.approx(t / 2, rel=1e-14)
    assert maxlik.logsumexp(np.array([1e-300j])) == 1e-300j


def test_complex_logsumexp_phase_wraps_into_principal_interval():
    for phase in [np.pi, -np.pi, 3 * np.pi + 0.5, -7.0, 100.0]:
        z = maxlik.logsumexp(np.array([1.0 + 1j * phase]))
        assert -np.pi < z.imag <= np.pi
        assert np.exp(z) == pytest.approx(np.exp(1.0 + 1j * phase), rel=1e-12)


INF_CASES = [-np.inf, np.inf, complex(-np.inf, 0.0), complex(np.inf, -0.0), complex(np.inf, np.inf),
             complex(-np.inf, np.inf), complex(np.inf, 2.3562), complex(-np.inf, 5.4978), 1.0 + 2j]


@pytest.mark.parametrize("x", INF_CASES)
@pytest.mark.parametrize("y", INF_CASES)
def test_complex_logsumexp_infinities_follow_c99(x, y):
    # with infinite terms the result is log(sum(exp(a))) with C99 cexp/clog edge cases
    a = np.array([x, y], dtype=complex)
    with np.errstate(all="ignore"):
        ref = np.log(np.sum(np.exp(a)))
    got = maxlik.logsumexp(a)
    if np.isnan(ref.real) or np.isnan(ref.imag):
        assert np.isnan(got.real) or np.isnan(got.imag)
    elif np.isfinite(ref.real):  # all terms finite: the accurate formula, not the naive one
        assert got.real == pytest.approx(ref.real, rel=4 * np.finfo(float).eps)
        assert np.exp(1j * got.imag) == pytest.approx(np.exp(1j * ref.imag), abs=1e-15)
    else:
        assert got.real == ref.real
        assert np.exp(1j * got.imag) == pytest.approx(np.exp(1j * ref.imag), abs=1e-15)


def test_complex_logsumexp_zero_weight_masks_and_empty_input():
    a = np.array([complex(np.inf, 1.0), 1.0 + 0.5j])
    assert maxlik.logsumexp(a, b=[0, 1]) == pytest.approx(1.0 + 0.5j)
    out = maxlik.logsumexp(np.zeros((0,), complex))
    assert out == complex(-np.inf, 0.0) and np.iscomplexobj(out)
    r, s = maxlik.logsumexp(np.zeros((3, 0), complex), axis=1, return_sign=True)
    assert r.shape == (3,) and np.all(np.isneginf(r.real)) and np.all(np.isnan(s))
    with pytest.raises(ValueError, match="b must broadcast with a"):
        maxlik.logsumexp(np.ones((2, 3), complex), b=np.ones(4))
    # complex weights with real a also take the complex path
    z = maxlik.logsumexp([0.0, 0.0], b=[1j, 1j])
    assert z == pytest.approx(np.log(2) + 1j * np.pi / 2)
