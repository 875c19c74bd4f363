"""Dask support: maxlik's row-block kernels on Dask workers.

Install with ``pip install "maxlik[dask]"``. Passing a ``dask.array.Array``
to :meth:`GaussianMixture.fit`, :meth:`KMeans.fit` or
:meth:`LogisticRegression.fit` runs the fit here:

* every iteration (an EM step, a Lloyd step, or one loss-and-gradient
  evaluation of L-BFGS) is ONE graph: the maxlik kernel on each block of rows
  (the current parameters are one small key shared by all blocks), then a
  tree of additions (fan-in :data:`SPLIT_EVERY`) down to one statistics
  object, which is all that reaches the client;
* the parameter update (O(K·D²) for mixtures, the L-BFGS step) runs on the
  client, then the next graph is built with the new parameters.

Blocks are the array's row chunks (columns are merged into one chunk). The
input graph is re-executed every iteration unless it is in memory: call
``X = X.persist()`` (or ``client.persist``) first when computing X is
expensive. Results equal the in-memory fit from the same initialisation up
to floating-point summation order (about 1e-13 relative in float64), and the
tree order is fixed by the chunks, so a fit is reproducible run to run.
For LogisticRegression this holds when L-BFGS stops on the gradient test
(``tol``); a stop on the relative-reduction test can end a few iterations
apart, at points about 1e-8 apart (both within the optimiser's tolerance).

Faults: Dask recomputes the blocks a dead worker held from their graph, so a
fit survives a lost worker with the same result; if a task keeps killing
workers, Dask raises ``KilledWorker`` and the fit stops with that error.

``predict``, ``predict_proba``, ``score_samples`` (and ``transform`` /
``decision_function`` where the estimator has them) return lazy dask arrays.

Initialisation of GaussianMixture and KMeans (unless given as arrays) uses a
random subsample of at most ``maxlik._streaming.INIT_SAMPLE`` rows brought
to the client.
"""
from __future__ import annotations

try:
    import dask
    import dask.array as da
    from dask import delayed
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        'maxlik.dask needs dask; install it with: pip install "maxlik[dask]"'
    ) from exc

import math

import numpy as np

from . import exceptions
from ._validation import result_float_dtype
from ._streaming import _farthest_block, _merge_farthest

__all__ = ["DaskSource", "map_rows", "fit_logistic_regression", "tree_sum", "SPLIT_EVERY"]

#: Fan-in of the reduction tree.
SPLIT_EVERY = 8


def _add(a, b):
    if isinstance(a, tuple):
        return tuple(_add(x, y) for x, y in zip(a, b))
    if a is None:
        return None
    return a + b


def _sum_list(parts):
    out = parts[0]
    for p in parts[1:]:
        out = _add(out, p)
    return out


def tree_sum(parts, split_every=SPLIT_EVERY):
    """Delayed sum of delayed `parts` by a tree of fan-in `split_every` (fixed order)."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [delayed(_sum_list, pure=True)(parts[i:i + split_every])
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _as_rows(X, name="X", dtype=None):
    if not isinstance(X, da.Array):
        raise TypeError(f"{name} must be a dask.array.Array; got {type(X).__name__}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D; got a {X.ndim}-D dask array of shape {X.shape}")
    if any(math.isnan(c) for c in X.shape):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() "
                         "first")
    kind = np.dtype(X.dtype).kind
    if kind not in "biuf":
        raise TypeError(f"{name} must have a real numeric dtype; got {X.dtype}")
    target = np.dtype(dtype) if dtype is not None else result_float_dtype(X.dtype)
    if X.dtype != target:
        X = X.astype(target)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X


def _aligned_vector(v, X, name):
    """A 1-D dask array with X's row chunks (from numpy or dask)."""
    if v is None:
        return None
    if np.isscalar(v):
        v = np.full(X.shape[0], float(v))
    if not isinstance(v, da.Array):
        v = np.asarray(v)
        if v.ndim != 1 or v.shape[0] != X.shape[0]:
            raise ValueError(f"{name} must have shape ({X.shape[0]},) to match X; got "
                             f"shape {v.shape}")
        # persisted once (on the workers when a distributed client is active), so
        # that the per-iteration graphs do not ship the vector again every time
        return da.from_array(v, chunks=(X.chunks[0],)).persist()
    if v.ndim != 1 or v.shape[0] != X.shape[0]:
        raise ValueError(f"{name} must have shape ({X.shape[0]},) to match X; got shape "
                         f"{v.shape}")
    return v.rechunk((X.chunks[0],)) if v.chunks[0] != X.chunks[0] else v


# ---- block functions (run on the workers) ------------------------------------------

def _check_weights(wb):
    if wb is not None and (not np.all(np.isfinite(wb)) or np.any(wb < 0)):
        raise ValueError("sample_weight must be finite and non-negative")
    return wb


def _mixture_block(xb, wb, params):
    from .mixture import mixture_statistics

    return mixture_statistics(xb, params, _check_weights(wb))


def _lloyd_block(xb, wb, shift, centers, update):
    from . import _core

    xb = np.ascontiguousarray(xb, dtype=centers.dtype)
    wb = None if wb is None else np.ascontiguousarray(_check_weights(wb), dtype=centers.dtype)
    labels = np.empty(xb.shape[0], dtype=np.int32)
    S, W, J = _core.kmeans_lloyd_step(xb, shift, centers, wb, labels, update)
    return (S, W, float(J))


def _moments_block(xb):
    """(n, column sums, column sums of squares about the block mean) in float64."""
    n = xb.shape[0]
    if not np.all(np.isfinite(xb)):
        raise ValueError("Input X contains NaN or infinity")
    mean = xb.mean(axis=0, dtype=np.float64) if n else np.zeros(xb.shape[1])
    return n, mean, ((xb - mean) ** 2).sum(axis=0, dtype=np.float64)


def _merge_moments(parts):
    n, mean, m2 = 0, None, None
    for nb, mb, m2b in parts:
        if nb == 0:
            continue
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        tot = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + delta**2 * (n * nb / tot)
        n = tot
    return n, mean, m2


def _count_positive(wb):
    _check_weights(wb)
    return int(np.count_nonzero(wb))


class DaskSource:
    """A dask array (and optional weights) seen as row blocks; one graph per pass."""

    def __init__(self, X, sample_weight=None):
        X = _as_rows(X)
        self.X = X
        self.n_samples, self.n_features = (int(s) for s in X.shape)
        self.dtype = np.dtype(X.dtype)
        self._xb = list(X.to_delayed().ravel())
        self.weighted = sample_weight is not None
        w = _aligned_vector(sample_weight, X, "sample_weight")
        self.sample_weight = w
        self._wb = list(w.to_delayed().ravel()) if w is not None else [None] * len(self._xb)

    def _reduce(self, fn, *args):
        args = [delayed(a, pure=True) if isinstance(a, np.ndarray) or hasattr(a, "means")
                else a for a in args]
        parts = [delayed(fn, pure=True)(xb, wb, *args) for xb, wb in zip(self._xb, self._wb)]
        return tree_sum(parts).compute()

    def positive_weights(self):
        if self.sample_weight is None:
            return self.n_samples
        n = sum(dask.compute(*[delayed(_count_positive, pure=True)(wb) for wb in self._wb]))
        if n == 0:
            raise ValueError("sample_weight: all weights are zero; at least one row needs a "
                             "positive weight")
        return n

    def mixture_statistics(self, params):
        return self._reduce(_mixture_block, params)

    def lloyd(self, shift, centers, update=True):
        return self._reduce(_lloyd_block, shift, centers, update)

    def farthest(self, shift, centers, m):
        s, c = delayed(shift, pure=True), delayed(centers, pure=True)
        parts = [delayed(_farthest_block, pure=True)(xb, wb, s, c, m)
                 for xb, wb in zip(self._xb, self._wb)]
        return _merge_farthest(dask.compute(*parts), m)

    def moments(self):
        parts = [delayed(_moments_block, pure=True)(xb) for xb in self._xb]
        n, mean, m2 = delayed(_merge_moments, pure=True)(parts).compute()
        return mean, m2 / max(n, 1)

    def subsample(self, m, rs):
        N = self.n_samples
        idx = np.arange(N) if m >= N else np.sort(rs.choice(N, size=m, replace=False))
        Xs = self.X[idx]
        ws = self.sample_weight[idx] if self.sample_weight is not None else None
        Xs, ws = dask.compute(Xs, ws)
        return np.ascontiguousarray(Xs), ws

    def labels_inertia(self, shift, centers):
        """Lazy labels (a dask array) and the inertia (one graph) of `centers`."""
        return self._labels(shift, centers), self.lloyd(shift, centers, False)[2]

    def _labels(self, shift, centers):
        def lab(xb):
            from . import _core

            xb = np.ascontiguousarray(xb, dtype=centers.dtype)
            out = np.empty(xb.shape[0], dtype=np.int32)
            _core.kmeans_lloyd_step(xb, shift, centers, None, out, False)
            return out

        return self.X.map_blocks(lab, dtype=np.int32, drop_axis=1)


# ---- lazy prediction -----------------------------------------------------------------

def _call_method(xb, est, method):
    return getattr(est, method)(xb)


def map_rows(est, method, X, n_out=None):
    """Lazy ``est.method(X)`` block by block: (N,) if `n_out` is None, else (N, n_out)."""
    X = _as_rows(X)
    meta = getattr(est, method)(np.zeros((1, X.shape[1]), dtype=X.dtype))
    if n_out is None:
        return X.map_blocks(_call_method, est, method, dtype=meta.dtype, drop_axis=1,
                            meta=np.empty((0,), meta.dtype))
    return X.map_blocks(_call_method, est, method, dtype=meta.dtype,
                        chunks=(X.chunks[0], (n_out,)), meta=np.empty((0, 0), meta.dtype))


# ---- logistic regression ----------------------------------------------------------------

def _logistic_block(xb, yb, wb, classes, S, fit_intercept, theta):
    """Block's share of the unpenalised objective and its gradient (the estimator's code)."""
    from .linear_model import LogisticRegression

    codes = np.searchsorted(classes, yb)
    if np.any(codes >= classes.shape[0]) or np.any(classes[np.minimum(
            codes, classes.shape[0] - 1)] != yb):
        raise ValueError("y holds a label that is not among the classes found")
    sw = (np.ones(xb.shape[0]) if wb is None else _check_weights(np.asarray(wb, np.float64))) / S
    sw = np.ascontiguousarray(sw)
    xb = np.ascontiguousarray(xb, dtype=np.float64)
    K = classes.shape[0]
    # the estimator's own objective with l2 = 0 (the penalty is added once, on the client)
    fun = LogisticRegression._objective(xb, np.ascontiguousarray(codes, dtype=np.int64), sw,
                                        0.0, fit_intercept, 1 if K == 2 else K)
    f, g = fun(theta)
    return (float(f), np.asarray(g, dtype=np.float64))


def _weight_sum(wb):
    return float(np.sum(_check_weights(np.asarray(wb, np.float64))))


def fit_logistic_regression(est, X, y, sample_weight=None):
    """``LogisticRegression.fit`` on dask arrays: one graph per loss+gradient evaluation.

    Each L-BFGS evaluation maps the fused C++ cross-entropy kernel over the
    row blocks (each returns its weighted loss and gradient), tree-sums them,
    and adds the L2 penalty on the client; the optimiser is the estimator's.
    """
    import warnings

    from ._optimize import minimize_lbfgs

    C, fit_intercept, max_iter, tol = est._check_params()
    X = _as_rows(X, dtype=np.float64)
    n, D = (int(s) for s in X.shape)
    if n < 1:
        raise ValueError(f"Found array with 0 sample(s) (shape={X.shape}) while a minimum of 1 "
                         "is required.")
    if not isinstance(y, da.Array):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = y.ravel()
    elif y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    y = _aligned_vector(y, X, "y")
    classes = np.asarray(da.unique(y).compute())
    if classes.dtype.kind == "f" and not np.all(np.isfinite(classes)):
        raise ValueError("y contains NaN or infinity; class labels must be finite")
    if classes.dtype.kind == "f" and np.any(classes != np.round(classes)):
        raise ValueError("Unknown label type: continuous. LogisticRegression needs class labels "
                         "(integers or strings); for a continuous target use LinearRegression.")
    if classes.shape[0] < 2:
        raise ValueError("LogisticRegression needs samples of at least 2 classes in y; got only "
                         f"one class: {classes[0]!r}")
    w = _aligned_vector(sample_weight, X, "sample_weight")
    xbs = list(X.to_delayed().ravel())
    ybs = list(y.to_delayed().ravel())
    wbs = list(w.to_delayed().ravel()) if w is not None else [None] * len(xbs)
    if w is None:
        S = float(n)
    else:
        S = float(tree_sum([delayed(_weight_sum, pure=True)(wb) for wb in wbs]).compute())
        if not S > 0:
            raise ValueError("sample_weight must have at least one positive weight")
    l2 = 0.0 if math.isinf(C) else 1.0 / (C * S)
    K = classes.shape[0]
    n_out = 1 if K == 2 else K
    P = D + int(fit_intercept)
    cls = delayed(classes, pure=True)

    def fun(theta):
        th = delayed(np.array(theta), pure=True)
        parts = [delayed(_logistic_block, pure=True)(xb, yb, wb, cls, S, fit_intercept, th)
                 for xb, yb, wb in zip(xbs, ybs, wbs)]
        f, g = tree_sum(parts).compute()
        Wm = theta.reshape(n_out, P)[:, :D]
        g = g.reshape(n_out, P).copy()
        g[:, :D] += l2 * Wm
        return f + 0.5 * l2 * float(np.sum(Wm * Wm)), g.ravel()

    res = minimize_lbfgs(fun, np.zeros(n_out * P), max_iter=max_iter, gtol=tol)
    if not res.converged:
        warnings.warn(
            f"LogisticRegression: L-BFGS stopped ({res.message}) after {res.n_iter} iterations "
            f"with max|gradient| = {np.max(np.abs(res.grad)):.3g} > tol = {tol}. Increase "
            "max_iter, scale the features (e.g. StandardScaler), or decrease C.",
            exceptions.ConvergenceWarning, stacklevel=3)
    theta = res.x.reshape(n_out, P)
    est.n_features_in_ = D
    est.classes_ = classes
    est.coef_ = np.ascontiguousarray(theta[:, :D])
    est.intercept_ = theta[:, D].copy() if fit_intercept else np.zeros(n_out)
    est.n_iter_ = np.array([res.n_iter], dtype=np.int32)
    est.objective_ = float(res.fun)
    return est
