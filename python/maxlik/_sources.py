"""Data sources: the rows of a fit, read as a fixed sequence of row blocks.

The engine (:mod:`maxlik._engine`) writes every fit once, against this small
interface; a source owns only *how* blocks are read:

``n_samples``, ``n_features``, ``dtype``, ``weighted``, ``block_bounds``
    The size, the compute dtype (float32 / float64), whether row weights were
    given, and the (r0, r1) row range of every block, in block order.
``map_blocks(fn, *args, per_block=None, with_y=False)``
    ``fn(xb, wb, *extra, *args)`` (``fn(xb, yb, wb, ...)`` with `with_y`) on every
    block, results in block order. `per_block(i, r0, r1)` returns the
    block's `extra` arguments (made in block order, on the client).
``map_reduce(fn, *args, per_block=None, with_y=False, merge=add)``
    The same, merged in block order (:func:`maxlik._kernels.add` by default).
``read_rows(r0, r1)``, ``take(idx)``, ``read_weights(r0, r1)``
    Rows (and weights) brought into memory, for the few rows an initialisation needs.
``row_output(fn, *args, dtype)``
    A per-row result (labels): an ndarray, or a lazy dask array.
``labels_buffer()``
    An (N,) int32 array the kernels can write labels into, or None (dask).
``positive_weights()``, ``weight_sum()``, ``y_unique()``, ``derive(y=..., w=...)``

Four implementations:

* :class:`ArraySource` -- an in-memory ndarray: ONE block of all rows, so every
  pass is one kernel call (the kernels split the rows over the threads
  themselves) and there is no per-block Python work;
* :class:`SparseSource` -- an in-memory scipy.sparse matrix (CSR; CSC is
  converted): one block of all rows, a :class:`maxlik._kernels.CSRRows`;
* :class:`BlockSource` -- out of core (``np.memmap``, h5py, zarr): blocks of
  about :data:`BLOCK_BYTES`, a multiple of the kernels' row block, read one at a
  time; the pages of a memmap block are released after use, so memory does not
  grow with N;
* :class:`maxlik.dask.DaskSource` -- a Dask array: each block is a task on the
  workers, merged by a fixed tree (one graph per pass).

Blocks handed to ``fn`` are validated: C-contiguous arrays of ``dtype``, finite
(out-of-core and Dask blocks are checked on the first complete pass), weights
finite and non-negative, of ``dtype`` (None when no weights were given).
"""
from __future__ import annotations

import mmap

import numpy as np

from . import _core
from ._kernels import CSRRows, add
from ._validation import (
    all_zero_weights_error,
    as_float_array,
    check_finite,
    check_int,
    check_output_size,
    check_sample_weight,
    check_weight_block,
    check_X_layout,
    result_float_dtype,
)

#: Bytes of input rows per block of an out-of-core source when ``block_size`` is None.
BLOCK_BYTES = 16 << 20
#: Row-block granularity of the C++ kernels (``maxlik::kRowBlock``): blocks are multiples.
ROW_ALIGN = int(_core.row_block)


# ---- what is streamed ----------------------------------------------------------------

def is_dask(X) -> bool:
    """True for a dask collection (checked without importing dask)."""
    mod = type(X).__module__ or ""
    return mod.startswith("dask.") and hasattr(X, "__dask_graph__")


def _memmap_of(X):
    """The np.memmap that owns X's memory (X itself or a base), or None."""
    a = X
    while a is not None:
        if isinstance(a, np.memmap):
            return a
        a = getattr(a, "base", None)
        if not isinstance(a, np.ndarray):
            return None
    return None


def is_out_of_core(X) -> bool:
    """True for np.memmap arrays and for HDF5 / zarr datasets.

    Only the np.memmap subclass counts (``np.load(..., mmap_mode="r")`` gives
    one): ``np.asarray(mm)`` is an explicit request to work in memory.
    """
    if isinstance(X, np.ndarray):
        return isinstance(X, np.memmap)
    mod = (type(X).__module__ or "").split(".")[0]
    return mod in ("h5py", "zarr") and hasattr(X, "shape") and hasattr(X, "dtype")


def is_streamed(X) -> bool:
    """True if X is read block by block (out of core or Dask) rather than as one array."""
    return is_dask(X) or is_out_of_core(X)


def auto_block_size(n_features: int, itemsize: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Rows per block: about `block_bytes` of input, a multiple of the kernels' row block."""
    rows = block_bytes // max(1, n_features * itemsize)
    return max(ROW_ALIGN, rows // ROW_ALIGN * ROW_ALIGN)


def is_sparse(X) -> bool:
    """True for a scipy.sparse matrix or array (checked without importing scipy)."""
    mod = type(X).__module__ or ""
    return mod.startswith("scipy.sparse") and hasattr(X, "tocsr") and hasattr(X, "nnz")


def check_csr(X, name: str = "X", *, dtype=None, min_samples: int = 1):
    """A scipy.sparse X as validated CSR rows: (scipy CSR matrix/array, :class:`CSRRows`).

    CSC (and COO, LIL, ...) is converted to CSR, a copy, as scikit-learn
    does: the kernels read rows. Integer / bool values become float64
    (float32 stays float32, or `dtype` is forced); duplicate entries are
    summed (on a copy); complex values are a ValueError, NaN / inf a
    ValueError naming the first bad row, as for dense X.
    """
    from ._validation import check_X_layout, complex_error, result_float_dtype

    check_X_layout(X.shape, X.dtype, name, min_samples=min_samples)
    if np.dtype(X.dtype).kind == "c":
        raise complex_error(X.dtype, name)
    target = np.dtype(dtype) if dtype is not None else result_float_dtype(X.dtype)
    csr = X.tocsr()  # a view-free copy for CSC; CSR stays itself
    if csr.dtype != target:
        csr = csr.astype(target)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    if csr.indices.dtype != csr.indptr.dtype:  # scipy keeps them equal; be safe
        csr.indices = csr.indices.astype(csr.indptr.dtype)
    rows = CSRRows(np.ascontiguousarray(csr.data), np.ascontiguousarray(csr.indices),
                   np.ascontiguousarray(csr.indptr), csr.shape[1])
    vals = rows.values()
    if vals.size and not np.isfinite(vals.sum(dtype=np.float64)) and not np.all(np.isfinite(vals)):
        p = int(np.argmax(~np.isfinite(vals)))
        row = int(np.searchsorted(rows.indptr, p + int(rows.indptr[0]), side="right")) - 1
        what = "NaN" if np.isnan(vals[p]) else "infinity"
        raise ValueError(f"Input {name} contains {what} (first at row {row}); remove or impute "
                         "such rows first")
    return csr, rows


def make_source(X, y=None, sample_weight=None, *, block_size=None, dtype=None,
                accept_sparse=False, allow_nan=False):
    """The source for X: Dask, out-of-core, sparse or in-memory (validated with ``check_X``).

    scipy.sparse X gives a :class:`SparseSource` only with `accept_sparse` (a fit
    whose block kernels all have a CSR path); otherwise check_X's TypeError.
    `allow_nan`: NaN entries (missing values) pass the checks; infinities do not."""
    if accept_sparse and is_sparse(X):
        return SparseSource(X, y, sample_weight, dtype=dtype)
    if is_dask(X):
        from .dask import DaskSource

        return DaskSource(X, y, sample_weight, dtype=dtype, allow_nan=allow_nan)
    if is_out_of_core(X):
        return BlockSource(X, y, sample_weight, block_size=block_size, dtype=dtype,
                           allow_nan=allow_nan)
    from ._validation import check_X

    arr = check_X(X, dtype=dtype, finite=not allow_nan)
    if allow_nan:
        check_finite(arr, "X", allow_nan=True)
    return ArraySource(arr, y, sample_weight)


def _positive_count(n, w):
    if n == 0:
        raise all_zero_weights_error()
    return n


class _LocalSource:
    """What the in-process sources share: blocks are visited here, in order."""

    weighted = False
    y = None

    def _one_block(self, shape, dtype, y, sample_weight):
        """The attributes of a source of one block of all `shape[0]` rows."""
        self.n_samples, self.n_features = shape
        self.dtype = dtype
        self.block_bounds = [(0, self.n_samples)]
        self.y = y
        self.weighted = sample_weight is not None
        self.w = None
        if sample_weight is not None:
            self.w = check_sample_weight(sample_weight, self.n_samples, dtype=self.dtype)

    def map_reduce(self, fn, *args, per_block=None, with_y=False, merge=add):
        parts = self.map_blocks(fn, *args, per_block=per_block, with_y=with_y)
        out = parts[0]
        for p in parts[1:]:
            out = merge(out, p)
        return out

    def labels_buffer(self):
        return np.empty(self.n_samples, dtype=np.int32)

    def row_output(self, fn, *args, dtype, n_out=None):
        """Concatenated ``fn(xb, *args)`` of every block (lives in memory)."""
        shape = (self.n_samples,) if n_out is None else (self.n_samples, n_out)
        check_output_size(shape, np.dtype(dtype).itemsize, "result for every row")
        out = np.empty(shape, dtype=dtype)

        def put(xb, wb, o):
            o[...] = fn(xb, *args)

        self.map_blocks(put, per_block=lambda i, r0, r1: (out[r0:r1],))
        return out

    def y_unique(self):
        return np.unique(self.y)


class ArraySource(_LocalSource):
    """An in-memory (N, D) ndarray: one block of all rows, one kernel call per pass."""

    # dense rows held in memory: fits may keep per-row state across passes
    # (k-means bounds); out-of-core, sparse and Dask sources do not offer it
    in_memory = True

    def __init__(self, X, y=None, sample_weight=None):
        self.X = X
        self._one_block(X.shape, X.dtype, y, sample_weight)

    def map_blocks(self, fn, *args, per_block=None, with_y=False):
        extra = per_block(0, 0, self.n_samples) if per_block is not None else ()
        head = (self.X, self.y, self.w) if with_y else (self.X, self.w)
        return [fn(*head, *extra, *args)]

    def read_rows(self, r0, r1):
        return self.X[r0:r1], (None if self.w is None else self.w[r0:r1])

    def read_weights(self, r0, r1):
        return np.ones(r1 - r0) if self.w is None else self.w[r0:r1].astype(np.float64)

    def take(self, idx):
        return self.X[idx], (None if self.w is None else self.w[idx])

    def take_block(self, idx):
        """Rows `idx` (repeats allowed) as a block of the kind map_blocks hands out."""
        return self.take(idx)

    def weight_sum(self):
        return float(self.n_samples) if self.w is None else float(np.sum(self.w, dtype=np.float64))

    def positive_weights(self):
        return self.n_samples if self.w is None else _positive_count(
            int(np.count_nonzero(self.w)), self.w)

    def derive(self, y=None, w=None, wy=None):
        """A source over the same X with targets and / or weights transformed once.

        `w` maps the weights (None for unweighted); `wy` maps (weights, targets)
        after `y` was applied, for weights that depend on the target (class weights)."""
        out = ArraySource.__new__(ArraySource)
        out.__dict__.update(self.__dict__)
        if y is not None:
            out.y = y(self.y)
        if w is not None:
            out.w = w(self.w)
            out.weighted = True
        if wy is not None:
            out.w = wy(out.w, out.y)
            out.weighted = True
        return out


class SparseSource(ArraySource):
    """An in-memory scipy.sparse X (CSR; CSC is converted): one block of all rows.

    The block handed to the kernels is a :class:`maxlik._kernels.CSRRows`
    (data, indices, indptr), which every block kernel with a sparse path
    dispatches on, so the engine's fits (k-means, and any fit whose block
    kernels accept CSR rows) run unchanged. ``X`` is the validated scipy CSR
    matrix (what a callable ``init`` receives); ``read_rows`` gives CSR row
    views, ``take`` dense rows (the few an initialisation needs) and
    ``take_block`` CSR rows (mini-batches).
    """

    in_memory = False  # the CSR kernels keep no per-row state

    sparse = True

    def __init__(self, X, y=None, sample_weight=None, *, dtype=None):
        self.X, self.rows = check_csr(X, dtype=dtype)
        self._one_block(self.rows.shape, self.rows.dtype, y, sample_weight)

    @classmethod
    def from_rows(cls, rows, sample_weight=None, like=None):
        """A source over validated :class:`CSRRows` (e.g. a mini-batch); ``X`` is a scipy CSR
        object of the class of `like` (csr_matrix by default) holding the same rows."""
        if like is None:
            from scipy.sparse import csr_matrix as like_type  # only reached with sparse input
        else:
            like_type = type(like)
        out = cls.__new__(cls)
        lo, hi = int(rows.indptr[0]), int(rows.indptr[-1])
        out.X = like_type((rows.data[lo:hi], rows.indices[lo:hi], rows.indptr - rows.indptr[0]),
                          shape=rows.shape)
        out.rows = rows
        out._one_block(rows.shape, rows.dtype, None, sample_weight)
        return out

    def map_blocks(self, fn, *args, per_block=None, with_y=False):
        extra = per_block(0, 0, self.n_samples) if per_block is not None else ()
        head = (self.rows, self.y, self.w) if with_y else (self.rows, self.w)
        return [fn(*head, *extra, *args)]

    def read_rows(self, r0, r1):
        return self.rows.rows(r0, r1), (None if self.w is None else self.w[r0:r1])

    def take(self, idx):
        return self.rows.take(idx), (None if self.w is None else self.w[idx])

    def take_block(self, idx):
        """Rows `idx` (repeats allowed) as a block of the kind map_blocks hands out."""
        return self.rows.take_rows(idx), (None if self.w is None else self.w[idx])

    def derive(self, y=None, w=None, wy=None):
        out = ArraySource.derive(self, y=y, w=w, wy=wy)
        out.__class__ = SparseSource
        return out


class BlockSource(_LocalSource):
    """Row blocks of an out-of-core 2-D array (np.memmap, h5py, zarr), read one at a time.

    X is checked for NaN / inf during the first complete pass (block by block,
    the message giving the global row). For an np.memmap with a shared
    mapping the pages of each block are released from the process
    (``madvise(MADV_DONTNEED)``; they stay in the OS page cache) once the
    block is done, so the resident set does not grow with N.
    """

    def __init__(self, X, y=None, sample_weight=None, *, block_size=None, dtype=None,
                 allow_nan=False):
        self.allow_nan = allow_nan
        shape = tuple(X.shape)
        check_X_layout(shape, X.dtype, "X")
        self.X = X
        self.n_samples, self.n_features = shape
        self.dtype = np.dtype(dtype) if dtype is not None else result_float_dtype(X.dtype)
        if block_size is None:
            self.block_size = auto_block_size(self.n_features, self.dtype.itemsize)
        else:
            self.block_size = check_int(block_size, "block_size", min=1)
        self.block_bounds = [(r0, min(self.n_samples, r0 + self.block_size))
                             for r0 in range(0, self.n_samples, self.block_size)]
        mm = _memmap_of(X) if isinstance(X, np.ndarray) else None
        # MADV_DONTNEED on a private (copy-on-write) mapping would drop the
        # user's in-memory modifications; only shared mappings are released.
        self._mmap = None
        if mm is not None and mm.mode != "c" and hasattr(mmap, "MADV_DONTNEED"):
            self._mmap = getattr(mm, "_mmap", None)
        self._validated = False
        self.y = y
        self.weighted = sample_weight is not None
        self.w = None
        if sample_weight is not None:
            if np.isscalar(sample_weight):
                sample_weight = np.full(self.n_samples, float(sample_weight))
            if tuple(np.shape(sample_weight)) != (self.n_samples,):
                raise ValueError(f"sample_weight must have shape ({self.n_samples},) to match "
                                 f"X; got shape {np.shape(sample_weight)}")
            self.w = sample_weight

    def _release(self):
        if self._mmap is not None:
            try:
                self._mmap.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed or unsupported: only a memory hint
                self._mmap = None

    def _weights(self, r0, r1, check):
        if self.w is None:
            return None
        wb = np.ascontiguousarray(self.w[r0:r1], dtype=self.dtype)
        if check:
            check_weight_block(wb, where=f" of the block of rows {r0}:{r1}")
        return wb

    def _rows(self, r0, r1, check):
        xb = as_float_array(self.X[r0:r1], "X", dtype=self.dtype)
        if check:
            check_finite(xb, "X", row_offset=r0, allow_nan=self.allow_nan)
        return xb

    def map_blocks(self, fn, *args, per_block=None, with_y=False):
        check = not self._validated
        out = []
        try:
            for i, (r0, r1) in enumerate(self.block_bounds):
                xb = self._rows(r0, r1, check)
                wb = self._weights(r0, r1, check)
                extra = per_block(i, r0, r1) if per_block is not None else ()
                if with_y:
                    out.append(fn(xb, np.asarray(self.y[r0:r1]), wb, *extra, *args))
                else:
                    out.append(fn(xb, wb, *extra, *args))
                del xb
                self._release()
            self._validated = True
        finally:
            self._release()
        return out

    def read_rows(self, r0, r1):
        return self._rows(r0, r1, True), self._weights(r0, r1, True)

    def read_weights(self, r0, r1):
        return np.ones(r1 - r0) if self.w is None else np.asarray(self.w[r0:r1], np.float64)

    def take(self, idx):
        idx = np.asarray(idx)
        rows, ws = [], []
        for r0, r1 in self.block_bounds:
            sel = idx[(idx >= r0) & (idx < r1)]
            if sel.size:
                rows.append(self._rows(sel[0], sel[-1] + 1, True)[sel - sel[0]])
                if self.w is not None:
                    ws.append(np.asarray(self.w[sel], dtype=self.dtype))
        self._release()
        X = np.concatenate(rows) if rows else np.empty((0, self.n_features), self.dtype)
        return X, (np.concatenate(ws) if ws else None)

    def weight_sum(self):
        if self.w is None:
            return float(self.n_samples)
        return float(sum(np.sum(self.read_weights(r0, r1)) for r0, r1 in self.block_bounds))

    def positive_weights(self):
        if self.w is None:
            return self.n_samples
        n = 0
        for r0, r1 in self.block_bounds:
            wb = np.asarray(self.w[r0:r1], dtype=np.float64)
            check_weight_block(wb, where=f" of the block of rows {r0}:{r1}")
            n += int(np.count_nonzero(wb))
        return _positive_count(n, self.w)

    def derive(self, y=None, w=None, wy=None):
        out = BlockSource.__new__(BlockSource)
        out.__dict__.update(self.__dict__)
        if y is not None:
            out.y = y(np.asarray(self.y))
        if w is not None:
            out.w = w(None if self.w is None else np.asarray(self.w, np.float64))
            out.weighted = True
        if wy is not None:
            out.w = wy(None if out.w is None else np.asarray(out.w, np.float64), np.asarray(out.y))
            out.weighted = True
        return out


__all__ = ["ArraySource", "SparseSource", "BlockSource", "make_source", "is_sparse", "check_csr", "is_dask", "is_out_of_core",
           "is_streamed", "auto_block_size", "BLOCK_BYTES", "ROW_ALIGN", "apply_blockwise"]


def apply_blockwise(est, method, X, *, n_out=None, block_size=None, allow_nan=False):
    """``est.method`` on a streamed X: lazy for dask, block by block for out-of-core.

    `n_out` is the number of output columns (None for a 1-D result per row).
    The estimator's method runs on in-memory blocks, so it is called by name.
    """
    if is_dask(X):
        from .dask import map_rows

        return map_rows(est, method, X, n_out)
    src = BlockSource(X, block_size=block_size if block_size is not None
                      else getattr(est, "block_size", None), allow_nan=allow_nan)
    # the concatenated result lives in memory (blocks plus the final copy)
    check_output_size((src.n_samples, n_out or 1), 8, f"{method} result for every row",
                      extra_bytes=src.n_samples * (n_out or 1) * 8)
    fn = getattr(est, method)
    return np.concatenate(src.map_blocks(lambda xb, wb: fn(xb)))
