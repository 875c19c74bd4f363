"""Child process of tests/test_fuzz.py (not collected by pytest).

Protocol on stdin/stdout: the parent writes length-prefixed pickles, each a
list of cases; for each case the child writes ("start", i) before running it
(so that a crash can be attributed to its case) and finally ("done", verdicts).
A verdict is ("ok", detail), ("raised", exception type name, message) or
("bad", reason). A crash (segfault, abort, sanitizer report) ends the process,
and the parent sees it.

A case is (function name, spec dict). Arrays are described, not pickled, so
that their memory layout (slices, reversed, Fortran) survives to the child.
"""
from __future__ import annotations

import os
import pickle
import struct
import sys
import traceback
import warnings

import numpy as np

import maxlik

SPECIALS = {
    "nan": np.nan, "inf": np.inf, "-inf": -np.inf, "huge": 1e300, "-huge": -1e300,
    "max": np.finfo(np.float64).max, "subnormal": 5e-324, "-0": -0.0, "zero": 0.0,
}
ALLOWED = (TypeError, ValueError, MemoryError)


# ----------------------------------------------------------------------------- inputs
def make_array(spec, rng):
    """An array of spec["shape"], dtype, layout and special values, from rng."""
    shape = tuple(spec["shape"])
    kind = spec.get("values", "normal")
    if kind == "normal":
        data = rng.normal(size=shape) * spec.get("scale", 1.0)
    elif kind == "prob":  # rows on the simplex (last axis)
        data = rng.random(size=shape) + 1e-3
        if data.ndim and data.shape[-1]:
            data /= data.sum(axis=-1, keepdims=True)
    elif kind == "labels":
        data = rng.integers(0, max(1, spec.get("n_classes", 2)), size=shape).astype(np.float64)
    elif kind == "binary":
        data = rng.integers(0, 2, size=shape).astype(np.float64)
    elif kind == "positive":
        data = rng.random(size=shape) + 0.5
    else:
        raise ValueError(kind)
    flat = data.reshape(-1)
    for name, count in spec.get("specials", ()):
        if flat.size:
            idx = rng.integers(0, flat.size, size=count)
            flat[idx] = SPECIALS[name]
    dtype = spec.get("dtype", "float64")
    with np.errstate(all="ignore"):
        if dtype in ("int64", "int32", "uint8"):
            a = np.nan_to_num(data, nan=0, posinf=1, neginf=-1).clip(-100, 100).astype(dtype)
        elif dtype == "bool":
            a = data > 0
        elif dtype == "object":
            a = data.astype(object)
        elif dtype == "complex":
            a = data.astype(np.complex128)
        else:
            a = data.astype(dtype)
    return with_layout(np.asarray(a), spec.get("layout", "C"))


def with_layout(a, layout):
    """A view with the values of `a` and the requested memory layout."""
    if a.ndim == 0 or layout == "C":
        return a
    if layout == "F":
        return np.asfortranarray(a)
    if layout == "reversed":  # negative strides on every axis
        b = a[(slice(None, None, -1),) * a.ndim].copy()
        return b[(slice(None, None, -1),) * a.ndim]
    if layout == "slice":  # every other row of a bigger buffer
        b = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype=a.dtype)
        b[::2] = a
        return b[::2]
    if layout == "colslice" and a.ndim >= 2:
        b = np.zeros(a.shape[:-1] + (2 * a.shape[-1] + 1,), dtype=a.dtype)
        b[..., 1::2] = a
        return b[..., 1::2]
    if layout == "readonly":
        a = a.copy()
        a.flags.writeable = False
        return a
    return a


def build(value, rng):
    if isinstance(value, dict) and "shape" in value:
        return make_array(value, rng)
    if isinstance(value, dict) and "params" in value:
        p = value["params"]
        return maxlik.MixtureParameters(
            p["type"], build(p["weights"], rng), build(p["means"], rng), build(p["prec"], rng))
    if isinstance(value, tuple) and value and value[0] == "spd":
        # (spd, K, D, kind): symmetric positive-definite covariances
        _, K, D, shape_kind = value
        A = rng.normal(size=(K, D, D))
        C = A @ np.swapaxes(A, 1, 2) + D * np.eye(D)
        return {"full": C, "tied": C[0], "one": C[0]}[shape_kind]
    if isinstance(value, (list, tuple)):
        return type(value)(build(v, rng) for v in value)
    if isinstance(value, dict):
        return {k: build(v, rng) for k, v in value.items()}
    return value


# ----------------------------------------------------------------------------- checks
def _finite(x):
    return np.all(np.isfinite(np.asarray(x, dtype=np.float64)))


def _has_nonfinite(*arrays):
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
            return True
    return False


def _float_of(a):
    a = np.asarray(a)
    if a.dtype.kind in "biu":
        return np.float64
    if a.dtype == np.float16 or a.dtype == np.float32:
        return np.float32
    return np.float64


def _tol(dt):
    return (2e-5, 1e-5) if dt == np.float32 else (1e-10, 1e-12)


def check_logsumexp(res, a, kw):
    from scipy.special import logsumexp as ref
    b = kw.get("b")
    if np.asarray(a).dtype.kind == "c" or (b is not None and np.asarray(b).dtype.kind == "c"):
        return _check_logsumexp_complex(res, a, kw, ref)
    dt = _float_of(a) if b is None else np.result_type(_float_of(a), _float_of(b))
    a64 = np.asarray(a).astype(dt).astype(np.float64)
    out = res[0] if kw.get("return_sign") else res
    kw2 = dict(kw)
    if b is not None:
        kw2["b"] = np.asarray(b).astype(dt).astype(np.float64)
        if _has_nonfinite(a64, kw2["b"]) or np.any(kw2["b"] == 0):
            return "b with non-finite values or zeros: shape only (documented departures)"
    try:
        with np.errstate(all="ignore"):
            if b is not None and not kw.get("return_sign"):
                # a negative sum is NaN in maxlik (documented); scipy's value for it
                # varies by version (NaN or -inf): compare through the signed form.
                kw2["return_sign"] = True
                e, sgn = ref(a64, **kw2)
                e = np.where(np.asarray(sgn) < 0, np.nan, e)
                e = e[()] if np.ndim(e) == 0 else e
            else:
                expect = ref(a64, **kw2)
                e = expect[0] if kw.get("return_sign") else expect
    except Exception:  # scipy's own corner cases (e.g. tuple axis on empty input)
        return "scipy raised: result not compared"
    if np.shape(out) != np.shape(e):
        return f"BAD shape {np.shape(out)} != scipy {np.shape(e)}"
    rtol, atol = _tol(dt)
    if np.asarray(a).size and not _close(out, e, rtol, atol, ulps_of=a64):
        return f"BAD value differs from scipy: {np.ravel(out)[:4]} vs {np.ravel(e)[:4]}"
    return "matches scipy"


def _check_logsumexp_complex(res, a, kw, ref):
    """Complex input: scipy's result (phase wrapped to (-pi, pi]) where all is finite."""
    b = kw.get("b")
    if _has_nonfinite(np.asarray(a).real, np.asarray(a).imag) or (b is not None and (
            _has_nonfinite(np.asarray(b).real, np.asarray(b).imag) or np.any(np.asarray(b) == 0))):
        return "complex with non-finite values or zero weights: not compared"
    with np.errstate(all="ignore"):
        try:
            expect = ref(np.asarray(a, dtype=np.complex128), **dict(
                kw, b=None if b is None else np.asarray(b, dtype=np.complex128)))
        except Exception:
            return "scipy raised: result not compared"
    got = res
    if kw.get("return_sign"):
        got, expect = res[1], expect[1]  # the phase carries everything but |sum|
        if not _close(res[0], ref(np.asarray(a, dtype=np.complex128), **dict(
                kw, b=None if b is None else np.asarray(b, dtype=np.complex128)))[0], 2e-5, 1e-5):
            return "BAD log|sum| differs from scipy"
    if np.shape(got) != np.shape(expect):
        return f"BAD shape {np.shape(got)} != scipy {np.shape(expect)}"
    got, expect = np.asarray(got, np.complex128), np.asarray(expect, np.complex128)
    # near the branch cut (phase ~ +-pi) the two sides are the same number
    d_im = np.abs(np.angle(np.exp(1j * (got.imag - expect.imag))))
    with np.errstate(all="ignore"):
        scale = 1 + np.abs(expect.real)
    bad = ~((np.abs(got.real - expect.real) <= 2e-5 * scale) & (d_im <= 2e-5 * scale))
    bad &= np.isfinite(expect.real) & np.isfinite(expect.imag)
    if np.any(bad):
        return f"BAD complex value differs from scipy: {got.ravel()[:3]} vs {expect.ravel()[:3]}"
    return "matches scipy (complex)"


def _close(x, y, rtol, atol, ulps_of=None):
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    same_nan = np.isnan(x) == np.isnan(y)
    if not np.all(same_nan):
        return False
    ok = np.isnan(x) | (x == y)
    with np.errstate(all="ignore"):
        scale = 1.0
        if ulps_of is not None and np.size(ulps_of):
            fin = np.abs(ulps_of[np.isfinite(ulps_of)]) if np.ndim(ulps_of) else np.abs(ulps_of)
            scale = max(1.0, float(np.max(fin))) if np.size(fin) else 1.0
        ok |= np.abs(x - y) <= atol * scale + rtol * np.abs(y)
    return bool(np.all(ok))


def check_softmax(res, x, kw, log):
    from scipy.special import log_softmax as rl, softmax as rs
    dt = _float_of(x)
    x64 = np.asarray(x).astype(dt).astype(np.float64)
    if x64.size == 0:
        return "empty" if np.shape(res) == x64.shape else f"BAD shape {np.shape(res)}"
    try:
        with np.errstate(all="ignore"):
            e = (rl if log else rs)(x64, **kw)
    except Exception:
        return "scipy raised: result not compared"
    if np.shape(res) != np.shape(e):
        return f"BAD shape {np.shape(res)} != scipy {np.shape(e)}"
    if np.asarray(res).dtype != dt:
        return f"BAD dtype {np.asarray(res).dtype} for input {np.asarray(x).dtype}"
    rtol, atol = _tol(dt)
    if not _close(res, e, rtol, atol, ulps_of=x64 if log else None):
        return f"BAD value differs from scipy: {np.ravel(res)[:4]} vs {np.ravel(e)[:4]}"
    return "matches scipy"


def check_logpdf(res, X, means, cov, ctype):
    X = np.asarray(X, dtype=np.float64)
    M = np.atleast_2d(np.asarray(means, dtype=np.float64))
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    N, K = X.shape[0], M.shape[0]
    single = np.ndim(means) <= 1
    expect_shape = (N,) if single else (N, K)
    if np.shape(res) != expect_shape:
        return f"BAD shape {np.shape(res)} != {expect_shape}"
    if N == 0:
        return "empty"
    D = X.shape[1]
    res2 = np.asarray(res, dtype=np.float64).reshape(N, -1)
    for k in range(min(K, 3)):
        C = {"full": lambda: np.asarray(cov).reshape(-1, D, D)[k],
             "tied": lambda: np.asarray(cov),
             "diag": lambda: np.diag(np.asarray(cov).reshape(-1, D)[k]),
             "spherical": lambda: np.eye(D) * np.asarray(cov).reshape(-1)[k]}[ctype]()
        with np.errstate(all="ignore"):
            try:
                L = np.linalg.cholesky(C)
            except np.linalg.LinAlgError:
                return "reference Cholesky failed (e.g. subnormal variances): not compared"
            z = np.linalg.solve(L, (X - M[k]).T)
            ref = (-0.5 * (D * np.log(2 * np.pi) + np.sum(z * z, axis=0))
                   - np.sum(np.log(np.diag(L))))
        keep = ~np.isnan(ref)  # NaN: the reference's inf - inf; maxlik gives -inf there
        if np.any(np.isnan(res2[:, k]) & ~np.isnan(ref)):
            return f"BAD NaN log-density for component {k}"
        with np.errstate(all="ignore"):  # a float32 result rounds (and overflows) in float32
            ref = ref[keep].astype(np.asarray(res).dtype).astype(np.float64)
        got = res2[keep, k]
        fin = np.abs(ref[np.isfinite(ref)])
        scale = 1 + (np.max(fin) if fin.size else 0.0)
        if not _close(got, ref, 1e-5 if np.asarray(X).dtype == np.float32 else 1e-9,
                      1e-6 * scale):
            return f"BAD log-density of component {k}: {res2[:3, k]} vs {ref[:3]}"
    return "matches cholesky reference"


def _overflows(*arrays):
    """Inputs whose squares overflow float64: IEEE inf/NaN results are then expected
    (as from numpy / scikit-learn); raising ValueError is better but not required."""
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f" and a.size:
            with np.errstate(all="ignore"):
                if np.nanmax(np.abs(a.astype(np.float64))) > 1e150:
                    return True
    return False


def check_estimator(est, args, kind):
    verdict = _check_estimator(est, args[0], kind)
    if verdict.startswith("BAD") and _overflows(*args):
        return "non-finite result for overflowing input (|x| > 1e150)"
    return verdict


def _check_estimator(est, X, kind):
    n = np.shape(X)[0]
    if kind == "kmeans":
        c = est.cluster_centers_
        if c.shape != (est.n_clusters, np.shape(X)[1]) or not _finite(c):
            return f"BAD cluster_centers_ {c.shape}"
        if est.labels_.shape != (n,) or est.labels_.min() < 0 or est.labels_.max() >= est.n_clusters:
            return "BAD labels_"
        if not np.isfinite(est.inertia_) or est.inertia_ < 0:
            return f"BAD inertia_ {est.inertia_}"
        p = est.predict(X)
        if p.shape != (n,):
            return "BAD predict shape"
    elif kind == "gmm":
        if not (_finite(est.means_) and _finite(est.weights_) and _finite(est.precisions_cholesky_)):
            return "BAD non-finite parameters"
        if abs(est.weights_.sum() - 1) > 1e-6:
            return f"BAD weights sum {est.weights_.sum()}"
        s = est.score_samples(X)
        if s.shape != (n,):
            return "BAD score_samples shape"
    elif kind in ("linreg", "logreg"):
        if not _finite(est.coef_) or not _finite(est.intercept_):
            return "BAD non-finite coefficients"
        if est.predict(X).shape != (n,):
            return "BAD predict shape"
    return "fitted"


def run_case(fname, spec):
    if fname == "__segfault__":  # self-test of the parent's crash handling
        import ctypes

        ctypes.string_at(0)
    rng = np.random.default_rng(spec.get("seed", 0))
    args = build(spec.get("args", ()), rng)
    kw = build(spec.get("kwargs", {}), rng)
    if fname.startswith("est:"):
        kind = fname[4:]
        cls = {"kmeans": maxlik.KMeans, "gmm": maxlik.GaussianMixture,
               "linreg": maxlik.LinearRegression, "logreg": maxlik.LogisticRegression}[kind]
        est = cls(**spec.get("params", {}))
        est.fit(*args, **kw)
        return check_estimator(est, args, kind)
    f = getattr(maxlik, fname)
    res = f(*args, **kw)
    if fname == "logsumexp":
        return check_logsumexp(res, args[0], kw)
    if fname in ("softmax", "log_softmax"):
        return check_softmax(res, args[0], kw, fname == "log_softmax")
    if fname == "gaussian_logpdf":
        return check_logpdf(res, args[0], args[1], args[2], args[3])
    # generic: a result of a sane type; the fused kernels' values are checked
    # against torch/scipy in their own test files.
    out = res[0] if isinstance(res, tuple) else res
    if isinstance(out, np.ndarray) and out.dtype.kind not in "fiub":
        return f"BAD output dtype {out.dtype}"
    return "returned"


def main():
    warnings.simplefilter("ignore")
    inp, out = sys.stdin.buffer, sys.stdout.buffer

    def send(obj):
        data = pickle.dumps(obj)
        out.write(struct.pack("<Q", len(data)) + data)
        out.flush()

    while True:
        head = inp.read(8)
        if len(head) < 8:
            return
        (n,) = struct.unpack("<Q", head)
        cases = pickle.loads(inp.read(n))
        verdicts = []
        for i, (fname, spec) in enumerate(cases):
            send(("start", i))
            try:
                detail = run_case(fname, spec)
                verdicts.append(("bad", detail) if detail.startswith("BAD") else ("ok", detail))
            except ALLOWED as e:
                verdicts.append(("raised", type(e).__name__, str(e)[:300]))
            except Exception as e:  # noqa: BLE001 - any other exception type is a finding
                verdicts.append(("bad", f"{type(e).__name__}: {e}\n{traceback.format_exc()[-1500:]}"))
        send(("done", verdicts))


if __name__ == "__main__":
    main()
