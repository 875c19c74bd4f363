"""Dask support: maxlik's row-block kernels on Dask workers.

Install with ``pip install "maxlik[dask]"``. Passing a ``dask.array.Array``
to :meth:`GaussianMixture.fit`, :meth:`KMeans.fit`,
:meth:`LogisticRegression.fit` or :meth:`LinearRegression.fit` runs the fit
on a :class:`DaskSource`, with the same engine (:mod:`maxlik._engine`) as an
in-memory or out-of-core fit:

* every pass (an EM step, a Lloyd step, one loss-and-gradient evaluation of
  L-BFGS, an initialisation pass) is ONE graph: the maxlik kernel on each block
  of rows (the current parameters are one small key shared by all blocks),
  then a tree of merges (fan-in :data:`SPLIT_EVERY`) down to one statistics
  object, which is all that reaches the client;
* the parameter update (O(K·D²) for mixtures, the L-BFGS step) runs on the
  client, then the next graph is built with the new parameters.

Blocks are the array's row chunks (columns are merged into one chunk). The
input graph is re-executed every pass unless it is in memory: call
``X = X.persist()`` (or ``client.persist``) first when computing X is
expensive. The initialisation reads all rows in block order with the same
random draws as an in-memory fit, so the same rows and ``random_state`` give
the same fit, whatever the chunking, up to floating-point summation order
(about 1e-13 relative in float64); the tree order is fixed by the chunks, so
a fit is reproducible run to run. (``init_params="random"`` of
GaussianMixture makes the N x K random responsibilities on the client, as
the in-memory fit does, and ships them with the blocks.)

Faults: Dask recomputes the blocks a dead worker held from their graph, so a
fit survives a lost worker with the same result; if a task keeps killing
workers, Dask raises ``KilledWorker`` and the fit stops with that error.

``predict``, ``predict_proba``, ``score_samples`` (and ``transform`` /
``decision_function`` where the estimator has them) return lazy dask arrays.
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
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ._kernels import add
from ._validation import (
    all_zero_weights_error,
    check_finite,
    check_weight_block,
    check_X_layout,
    result_float_dtype,
)

__all__ = ["DaskSource", "map_rows", "tree_sum", "SPLIT_EVERY"]

#: Fan-in of the reduction tree.
SPLIT_EVERY = 8


def _merge_list(parts, merge=add):
    out = parts[0]
    for p in parts[1:]:
        out = merge(out, p)
    return out


def tree_sum(parts: Iterable[Any], split_every: int = SPLIT_EVERY,
             merge: Callable[[Any, Any], Any] = add) -> Any:
    """Delayed merge of delayed `parts` by a tree of fan-in `split_every` (fixed order)."""
    parts = list(parts)
    while len(parts) > 1:
        parts = [delayed(_merge_list, pure=True)(parts[i:i + split_every], merge)
                 for i in range(0, len(parts), split_every)]
    return parts[0]


def _as_rows(X, name="X", dtype=None):
    if not isinstance(X, da.Array):
        raise TypeError(f"{name} must be a dask.array.Array; got {type(X).__name__}")
    if any(math.isnan(c) for c in X.shape):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() "
                         "first")
    check_X_layout(X.shape, X.dtype, name)
    target = np.dtype(dtype) if dtype is not None else result_float_dtype(X.dtype)
    if X.dtype != target:
        X = X.astype(target)
    if X.numblocks[1] > 1:
        X = X.rechunk({1: -1})
    return X


def _aligned_vector(v, X, name, dtype=None):
    """A 1-D dask array with X's row chunks (from numpy or dask), or None."""
    if v is None:
        return None
    if np.isscalar(v):
        v = np.full(X.shape[0], float(v))
    if not isinstance(v, da.Array):
        v = np.asarray(v)
        if v.ndim == 2 and name == "y" and v.shape[1] == 1:
            v = v.ravel()
        if v.ndim != 1 or v.shape[0] != X.shape[0]:
            raise ValueError(f"{name} must have shape ({X.shape[0]},) to match X; got "
                             f"shape {v.shape}")
        if dtype is not None:
            v = v.astype(dtype)
        # persisted once (on the workers when a distributed client is active), so
        # that the per-pass graphs do not ship the vector again every time
        return da.from_array(v, chunks=(X.chunks[0],)).persist()
    if v.ndim == 2 and name == "y" and v.shape[1] == 1:
        v = v[:, 0]
    if v.ndim != 1 or v.shape[0] != X.shape[0]:
        raise ValueError(f"{name} must have shape ({X.shape[0]},) to match X; got shape "
                         f"{v.shape}")
    if dtype is not None and v.dtype != dtype:
        v = v.astype(dtype)
    return v.rechunk((X.chunks[0],)) if v.chunks[0] != X.chunks[0] else v


# ---- what runs on the workers ---------------------------------------------------------

def _run_block(fn, check, r0, with_y, xb, yb, wb, *rest):
    """``fn`` on one block, after the first pass's finiteness / weight checks."""
    # a fresh view with the builtin dtype object: unpickled blocks (distributed)
    # carry an equal but distinct descriptor, which bindings that compare dtype
    # objects by identity reject
    xb = np.ascontiguousarray(xb)
    xb = xb.view(np.float64 if xb.dtype == np.float64 else np.float32)
    if wb is not None:
        wb = np.ascontiguousarray(wb)
        wb = wb.view(np.float64 if wb.dtype == np.float64 else np.float32)
    if check:
        check_finite(xb, "X", row_offset=r0, allow_nan=check == "inf")
        if wb is not None:
            check_weight_block(wb, where=f" of the block of rows starting at {r0}")
    if with_y:
        return fn(xb, yb, wb, *rest)
    return fn(xb, wb, *rest)


def _count_positive(wb):
    check_weight_block(wb)
    return int(np.count_nonzero(wb))


def _call_method(xb, est, method):
    return getattr(est, method)(xb)


def _row_fn(xb, fn, args):
    return fn(np.ascontiguousarray(xb), *args)


def _shared(a):
    """Arrays and parameter objects become one graph key shared by all blocks."""
    if isinstance(a, np.ndarray) or hasattr(a, "means"):
        return delayed(a, pure=True)
    return a


class DaskSource:
    """A dask array (with optional targets and weights) seen as row blocks; one graph per pass."""

    def __init__(self, X: da.Array, y: ArrayLike | da.Array | None = None,
                 sample_weight: ArrayLike | da.Array | None = None, *,
                 dtype: DTypeLike | None = None, allow_nan: bool = False) -> None:
        self.allow_nan = allow_nan  # NaN entries are missing values (only inf is checked)
        X = _as_rows(X, dtype=dtype)
        self.X = X
        self.n_samples, self.n_features = (int(s) for s in X.shape)
        self.dtype = np.dtype(X.dtype)
        bounds, r0 = [], 0
        for c in X.chunks[0]:
            bounds.append((r0, r0 + int(c)))
            r0 += int(c)
        self.block_bounds = bounds
        self._xb = list(X.to_delayed().ravel())
        self.y = _aligned_vector(y, X, "y")
        self.weighted = sample_weight is not None
        self.w = _aligned_vector(sample_weight, X, "sample_weight", dtype=self.dtype)
        self._validated = False
        self._split()

    def _split(self):
        n = len(self._xb)
        self._yb = list(self.y.to_delayed().ravel()) if self.y is not None else [None] * n
        self._wb = list(self.w.to_delayed().ravel()) if self.w is not None else [None] * n

    def _parts(self, fn, args, per_block, with_y):
        check = (not self._validated) and ("inf" if self.allow_nan else True)
        args = [_shared(a) for a in args]
        parts = []
        for i, ((r0, r1), xb, yb, wb) in enumerate(zip(self.block_bounds, self._xb, self._yb,
                                                        self._wb)):
            extra = [_shared(e) for e in per_block(i, r0, r1)] if per_block is not None else []
            parts.append(delayed(_run_block, pure=True)(fn, check, r0, with_y, xb, yb, wb,
                                                        *extra, *args))
        return parts

    def map_blocks(self, fn: Callable[..., Any], *args: Any,
                   per_block: Callable[[int, int, int], Sequence[Any]] | None = None,
                   with_y: bool = False) -> list[Any]:
        out = list(dask.compute(*self._parts(fn, args, per_block, with_y)))
        self._validated = True
        return out

    def map_reduce(self, fn: Callable[..., Any], *args: Any,
                   per_block: Callable[[int, int, int], Sequence[Any]] | None = None,
                   with_y: bool = False, merge: Callable[[Any, Any], Any] = add) -> Any:
        out = tree_sum(self._parts(fn, args, per_block, with_y), merge=merge).compute()
        self._validated = True
        return out

    def read_rows(self, r0: int, r1: int) -> tuple[np.ndarray, np.ndarray | None]:
        xb, wb = dask.compute(self.X[r0:r1], None if self.w is None else self.w[r0:r1])
        xb = np.ascontiguousarray(xb)
        check_finite(xb, "X", row_offset=r0, allow_nan=self.allow_nan)
        return xb, wb

    def read_weights(self, r0: int, r1: int) -> np.ndarray:
        if self.w is None:
            return np.ones(r1 - r0)
        return np.asarray(self.w[r0:r1].compute(), dtype=np.float64)

    def take(self, idx: ArrayLike) -> tuple[np.ndarray, np.ndarray | None]:
        idx = np.asarray(idx)
        Xs, ws = dask.compute(self.X[idx], None if self.w is None else self.w[idx])
        return np.ascontiguousarray(Xs), ws

    def labels_buffer(self) -> None:
        return None  # the labels of a dask fit stay lazy (row_output)

    def row_output(self, fn: Callable[..., Any], *args: Any, dtype: DTypeLike,
                   n_out: int | None = None) -> da.Array:
        """Lazy per-row ``fn(xb, *args)``: (N,) or (N, n_out) dask array."""
        if n_out is None:
            # dask's annotations type Array.map_blocks (functools.wraps of the function
            # map_blocks) as if func were an Array: wrong stubs, hence the ignores
            return self.X.map_blocks(_row_fn, fn, args, dtype=dtype, drop_axis=1,  # type: ignore[arg-type]
                                     meta=np.empty((0,), dtype))
        return self.X.map_blocks(_row_fn, fn, args, dtype=dtype,  # type: ignore[arg-type]
                                 chunks=(self.X.chunks[0], (n_out,)),
                                 meta=np.empty((0, 0), dtype))

    def positive_weights(self) -> int:
        if self.w is None:
            return self.n_samples
        n = sum(dask.compute(*[delayed(_count_positive, pure=True)(wb) for wb in self._wb]))
        if n == 0:
            raise all_zero_weights_error()
        return n

    def weight_sum(self) -> float:
        if self.w is None:
            return float(self.n_samples)
        return float(self.w.sum(dtype=np.float64).compute())

    def y_unique(self) -> np.ndarray:
        return np.asarray(da.unique(self.y).compute())

    def derive(self, y: Callable[..., Any] | None = None, w: Callable[..., Any] | None = None,
               wy: Callable[..., Any] | None = None) -> DaskSource:
        """A source over the same X with targets / weights transformed (lazily, then persisted)."""
        out = DaskSource.__new__(DaskSource)
        out.__dict__.update(self.__dict__)
        if y is not None:
            out.y = self.y.map_blocks(y, dtype=np.int64).persist()
        if w is not None:
            base = self.w if self.w is not None else da.ones(self.n_samples,
                                                             chunks=(self.X.chunks[0],))
            out.w = base.map_blocks(w, dtype=np.float64).persist()
            out.weighted = True
        if wy is not None:
            base = out.w if out.w is not None else da.ones(self.n_samples,
                                                           chunks=(self.X.chunks[0],))
            out.w = da.map_blocks(wy, base, out.y, dtype=np.float64).persist()
            out.weighted = True
        out._split()
        return out


# ---- lazy prediction -----------------------------------------------------------------

def map_rows(est: Any, method: str, X: da.Array, n_out: int | None = None) -> da.Array:
    """Lazy ``est.method(X)`` block by block: (N,) if `n_out` is None, else (N, n_out)."""
    X = _as_rows(X)
    meta = getattr(est, method)(np.zeros((1, X.shape[1]), dtype=X.dtype))
    if n_out is None:
        # dask's annotations type Array.map_blocks as if func were an Array (wrong stubs)
        return X.map_blocks(_call_method, est, method, dtype=meta.dtype, drop_axis=1,  # type: ignore[arg-type]
                            meta=np.empty((0,), meta.dtype))
    return X.map_blocks(_call_method, est, method, dtype=meta.dtype,  # type: ignore[arg-type]
                        chunks=(X.chunks[0], (n_out,)), meta=np.empty((0, 0), meta.dtype))
