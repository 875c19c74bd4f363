"""Fitting data that does not sit in memory as one array: row-block streaming.

Every maxlik likelihood pass is a sum over rows, so an estimator only needs a
*source* of row blocks that can

* compute the mixture statistics of all its rows for given parameters,
* run one Lloyd (k-means) pass for given centres,
* give column moments, a bounded random subsample (for initialisation) and the
  rows farthest from their centres (for empty-cluster relocation).

This module holds the estimator-side drivers that work on any source (EM and
Lloyd loops with the estimators' own semantics), the out-of-core source for
``np.memmap`` / HDF5 / zarr arrays, and the incremental (``partial_fit``)
updates. :mod:`maxlik.dask` provides the Dask source; the drivers are shared,
so a memmap fit, a Dask fit and an in-memory fit from the same initialisation
give the same parameters up to the order of floating-point summation.

Memory. A streamed fit holds one block of rows (plus the kernels' per-block
temporaries) at a time; the parameters and statistics are O(K·D²). For
``np.memmap`` input, the pages of each block are released from the process
(``madvise(MADV_DONTNEED)``; they stay in the OS page cache) once the block is
done, so the resident set does not grow with N. Initialisation uses a bounded
random subsample of rows (:data:`INIT_SAMPLE` rows by default).

Every ``np.memmap`` takes this path, including the read-only memmaps joblib
makes of large arrays in parallel scikit-learn tools (``n_jobs > 1``). With
at most :data:`INIT_SAMPLE` rows the subsample is all rows, drawn without
touching the random state, so the fit equals the in-memory one; with more
rows a data-driven initialisation differs from the in-memory one (pass
``means_init``/``weights_init``/``precisions_init`` or an ``init`` array, or
``np.asarray`` the memmap, to get the in-memory fit).
"""
from __future__ import annotations

import mmap
import warnings

import numpy as np

from . import exceptions
from ._validation import (
    as_float_array,
    check_float,
    check_int,
    check_random_state,
    check_sample_weight,
    result_float_dtype,
)

#: Bytes of input rows per block when ``block_size`` is None (auto).
BLOCK_BYTES = 16 << 20
#: Rows of the random subsample used to initialise streamed fits.
INIT_SAMPLE = 100_000
#: Row-block granularity of the C++ kernels (``maxlik::kRowBlock``).
_ROW_ALIGN = 512


# ---- what gets streamed -------------------------------------------------------------

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
    one): the blocks handed to the kernels are plain ndarray views of it.
    """
    if isinstance(X, np.ndarray):
        return isinstance(X, np.memmap)
    mod = (type(X).__module__ or "").split(".")[0]
    return mod in ("h5py", "zarr") and hasattr(X, "shape") and hasattr(X, "dtype")


def is_streamed(X) -> bool:
    """True if an estimator should fit `X` block by block instead of in one array."""
    return is_dask(X) or is_out_of_core(X)


def auto_block_size(n_features: int, itemsize: int, block_bytes: int = BLOCK_BYTES) -> int:
    """Rows per block: about `block_bytes` of input, a multiple of the kernels' 512-row block."""
    rows = block_bytes // max(1, n_features * itemsize)
    return max(_ROW_ALIGN, rows // _ROW_ALIGN * _ROW_ALIGN)


def _check_block_size(block_size, n_features, itemsize) -> int:
    if block_size is None:
        return auto_block_size(n_features, itemsize)
    return check_int(block_size, "block_size", min=1)


# ---- the out-of-core source -------------------------------------------------------

class BlockSource:
    """Row blocks of an out-of-core 2-D array (np.memmap, h5py, zarr) and its weights."""

    def __init__(self, X, sample_weight=None, block_size=None, name="X"):
        shape = tuple(X.shape)
        if len(shape) != 2:
            raise ValueError(f"{name} must be 2-D; got shape {shape}")
        if shape[1] == 0:
            raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum "
                             "of 1 is required.")
        kind = np.dtype(X.dtype).kind
        if kind not in "biuf":
            raise TypeError(f"{name} must have a real numeric dtype; got {X.dtype}")
        self.X = X
        self.n_samples, self.n_features = shape
        self.dtype = result_float_dtype(X.dtype)
        self.block_size = _check_block_size(block_size, self.n_features, self.dtype.itemsize)
        mm = _memmap_of(X) if isinstance(X, np.ndarray) else None
        # MADV_DONTNEED on a private (copy-on-write) mapping would drop the
        # user's in-memory modifications; only shared mappings are released.
        self._mmap = None
        if mm is not None and mm.mode != "c" and hasattr(mmap, "MADV_DONTNEED"):
            self._mmap = getattr(mm, "_mmap", None)
        # X is checked for NaN / inf during the first complete pass only
        self._validated = False
        self.weighted = sample_weight is not None
        self.sample_weight = None
        if sample_weight is not None:
            if np.isscalar(sample_weight):
                sample_weight = np.full(self.n_samples, float(sample_weight))
            if tuple(np.shape(sample_weight)) != (self.n_samples,):
                raise ValueError(f"sample_weight must have shape ({self.n_samples},) to match "
                                 f"X; got shape {np.shape(sample_weight)}")
            self.sample_weight = sample_weight

    def _release(self):
        if self._mmap is not None:
            try:
                self._mmap.madvise(mmap.MADV_DONTNEED)
            except (OSError, ValueError):  # closed or unsupported: only a memory hint
                self._mmap = None

    def blocks(self, weights=True):
        """Yield (r0, X_block, w_block) with validated float blocks; pages released after."""
        X, bs = self.X, self.block_size
        finite = not self._validated
        try:
            for r0 in range(0, self.n_samples, bs):
                r1 = min(self.n_samples, r0 + bs)
                try:
                    xb = as_float_array(X[r0:r1], "X", ndim=2, finite=finite)
                except ValueError as exc:
                    raise ValueError(f"{exc} (in the block of rows {r0}:{r1})") from None
                wb = None
                if weights and self.sample_weight is not None:
                    wb = np.asarray(self.sample_weight[r0:r1], dtype=xb.dtype)
                    if not np.all(np.isfinite(wb)) or np.any(wb < 0):
                        raise ValueError("sample_weight must be finite and non-negative "
                                         f"(in the block of rows {r0}:{r1})")
                yield r0, xb, wb
                del xb
                self._release()
            self._validated = True
        finally:
            self._release()

    # -- passes --------------------------------------------------------------------
    def positive_weights(self) -> int:
        if self.sample_weight is None:
            return self.n_samples
        n = 0
        for r0 in range(0, self.n_samples, self.block_size):
            w = np.asarray(self.sample_weight[r0:r0 + self.block_size], dtype=np.float64)
            if not np.all(np.isfinite(w)) or np.any(w < 0):
                raise ValueError("sample_weight must be finite and non-negative")
            n += int(np.count_nonzero(w))
        if n == 0:
            raise ValueError("sample_weight: all weights are zero; at least one row needs a "
                             "positive weight")
        return n

    def mixture_statistics(self, params):
        from .mixture import mixture_statistics

        total = None
        for _, xb, wb in self.blocks():
            s = mixture_statistics(xb, params, wb)
            total = s if total is None else total + s
        return total

    def lloyd(self, shift, centers, update=True, labels_out=None):
        """Summed (S, W, inertia) of one Lloyd pass (see ``_core.kmeans_lloyd_step``);
        the labels go to `labels_out` (N,) int32 when given."""
        from . import _core

        K, D = centers.shape
        S = np.zeros((K, D)) if update else None
        W = np.zeros(K) if update else None
        J = 0.0
        for r0, xb, wb in self.blocks():
            xb = np.ascontiguousarray(xb, dtype=centers.dtype)
            wb = None if wb is None else np.ascontiguousarray(wb, dtype=centers.dtype)
            if labels_out is not None:
                labels = labels_out[r0:r0 + xb.shape[0]]
            else:
                labels = np.empty(xb.shape[0], dtype=np.int32)
            s, w, j = _core.kmeans_lloyd_step(xb, shift, centers, wb, labels, update)
            if update:
                S += s
                W += w
            J += j
        return S, W, J

    def labels_inertia(self, shift, centers):
        """Nearest-centre labels of every row (int32, O(N): the estimator's ``labels_``)
        and the weighted inertia, in one pass."""
        from . import _core

        out = np.empty(self.n_samples, dtype=np.int32)
        J = 0.0
        for r0, xb, wb in self.blocks():
            xb = np.ascontiguousarray(xb, dtype=centers.dtype)
            wb = None if wb is None else np.ascontiguousarray(wb, dtype=centers.dtype)
            lab = out[r0:r0 + xb.shape[0]]
            J += _core.kmeans_lloyd_step(xb, shift, centers, wb, lab, False)[2]
        return out, J

    def farthest(self, shift, centers, m):
        """The `m` rows farthest from their nearest centre: (dist, rows - shift, labels, w)."""
        best = []
        for _, xb, wb in self.blocks():
            best.append(_farthest_block(xb, wb, shift, centers, m))
        return _merge_farthest(best, m)

    def moments(self):
        """Column mean and (population) variance in float64, Chan et al. pairwise merge."""
        n = 0
        mean = np.zeros(self.n_features)
        m2 = np.zeros(self.n_features)
        # sub-chunks keep the temporaries small enough to be reused from the heap
        # (16 MB temporaries would be fresh, page-faulted mappings every time)
        step = max(1, (1 << 20) // (8 * self.n_features))
        for _, xb, _ in self.blocks(weights=False):
            for c0 in range(0, xb.shape[0], step):
                xc = xb[c0:c0 + step]
                nb = xc.shape[0]
                mb = xc.mean(axis=0, dtype=np.float64)
                d = xc - mb
                m2b = np.einsum("ij,ij->j", d, d)
                delta = mb - mean
                tot = n + nb
                mean = mean + delta * (nb / tot)
                m2 = m2 + m2b + delta**2 * (n * nb / tot)
                n = tot
        return mean, m2 / max(n, 1)

    def subsample(self, m, rs):
        """`m` distinct random rows (sorted) and their weights, read block by block."""
        N = self.n_samples
        if m >= N:
            idx = np.arange(N)
        else:
            idx = np.sort(rs.choice(N, size=m, replace=False))
        rows, ws = [], []
        for r0, xb, wb in self.blocks():
            sel = idx[(idx >= r0) & (idx < r0 + xb.shape[0])] - r0
            rows.append(np.array(xb[sel]))
            if wb is not None:
                ws.append(np.array(wb[sel]))
        Xs = np.concatenate(rows) if rows else np.empty((0, self.n_features), self.dtype)
        return Xs, (np.concatenate(ws) if ws else None)


def _farthest_block(xb, wb, shift, centers, m):
    """Top-`m` (distance to nearest centre, shifted row, label, weight) in one block."""
    from . import _core

    xb = np.ascontiguousarray(xb, dtype=centers.dtype)
    labels = np.empty(xb.shape[0], dtype=np.int32)
    _core.kmeans_lloyd_step(xb, shift, centers, None, labels, False)
    diff = (xb - shift).astype(np.float64) - centers[labels]
    d = np.einsum("ij,ij->i", diff, diff)
    take = np.argsort(-d, kind="stable")[:m]
    w = np.ones(take.size) if wb is None else np.asarray(wb, dtype=np.float64)[take]
    return d[take], (xb[take] - shift).astype(np.float64), labels[take], w


def _merge_farthest(parts, m):
    d = np.concatenate([p[0] for p in parts])
    order = np.argsort(-d, kind="stable")[:m]
    rows = np.concatenate([p[1] for p in parts])[order]
    labels = np.concatenate([p[2] for p in parts])[order]
    w = np.concatenate([p[3] for p in parts])[order]
    return d[order], rows, labels, w


def make_source(X, sample_weight, block_size):
    if is_dask(X):
        from . import dask as _dask

        return _dask.DaskSource(X, sample_weight)
    return BlockSource(X, sample_weight, block_size)


# ---- Gaussian mixture: EM over a source -------------------------------------------

def _em(gm, source):
    from .mixture import mixture_update

    K, verbose = gm._check_hyper()
    N, D = source.n_samples, source.n_features
    if N < 2:
        raise ValueError(f"GaussianMixture needs at least 2 samples; got n_samples = {N}")
    n_pos = source.positive_weights()
    if n_pos < K:
        raise ValueError(f"Expected n_samples >= n_components but got n_components = {K}, "
                         f"n_samples = {n_pos}; reduce n_components")
    gm.n_features_in_ = D
    ctype = gm.covariance_type
    reg = float(gm.reg_covar)
    winit, minit, pinit = gm._check_initial(K, D, ctype, source.dtype)
    do_init = not (gm.warm_start and hasattr(gm, "converged_"))
    n_init = gm.n_init if do_init else 1
    rs = check_random_state(gm.random_state)
    all_given = winit is not None and minit is not None and pinit is not None
    sample = None
    if do_init and not all_given:
        Xs, ws = source.subsample(INIT_SAMPLE, rs)
        sample = (np.ascontiguousarray(Xs), ws)

    best, best_iter, best_bounds, max_lb = None, 0, [], -np.inf
    gm.converged_ = False
    for _ in range(n_init):
        if do_init:
            Xs, ws = sample if sample is not None else (np.empty((0, D), source.dtype), None)
            params = gm._initial_parameters(Xs, ws, K, rs, winit, minit, pinit)
            lb = -np.inf
        else:
            params = gm.parameters()
            lb = gm.lower_bound_
        bounds, converged, it = [], False, 0
        for it in range(1, gm.max_iter + 1):
            prev = lb
            stats = source.mixture_statistics(params)
            params = mixture_update(stats, reg)
            lb = stats.mean_log_likelihood
            bounds.append(lb)
            if gm.callback is not None:
                gm.callback(it, lb)
            if verbose and it % gm.verbose_interval == 0:
                print(f"  Iteration {it}\t lower bound {lb:.6f}")
            if abs(lb - prev) < gm.tol:
                converged = True
                break
        if best is None or lb > max_lb:
            max_lb, best, best_iter, best_bounds = lb, params, it, bounds
            gm.converged_ = converged
    if not gm.converged_ and gm.max_iter > 0:
        warnings.warn(
            "Best performing initialization did not converge (lower bound change still >= "
            f"tol={gm.tol:g} after max_iter={gm.max_iter} iterations). Try different init "
            "parameters, or increase max_iter, tol, or check for degenerate data.",
            exceptions.ConvergenceWarning, stacklevel=4)
    gm._set_parameters(best)
    gm.n_iter_ = best_iter
    gm.lower_bound_ = max_lb
    gm.lower_bounds_ = best_bounds
    return gm


def fit_gaussian_mixture(gm, X, sample_weight=None):
    """EM for ``GaussianMixture.fit`` on a memmap / HDF5 / zarr / dask array.

    Same loop, stopping rule, callback and attributes as the in-memory fit;
    each E-step is one pass over the source's row blocks whose statistics are
    summed (for dask: one graph per iteration, see :mod:`maxlik.dask`).
    Initialisation (unless weights_init, means_init and precisions_init are
    all given) runs the estimator's own initialiser on a random subsample of
    at most :data:`INIT_SAMPLE` rows.
    """
    source = make_source(X, sample_weight, getattr(gm, "block_size", None))
    return _em(gm, source)


# ---- k-means: Lloyd over a source ---------------------------------------------------

def fit_kmeans(km, X, sample_weight=None):
    """Lloyd's algorithm for ``KMeans.fit`` on a memmap / HDF5 / zarr / dask array.

    Same stopping rules as the in-memory fit (strict convergence when the
    centres stop changing, or centre shift within ``tol * mean(var(X))``) and
    the same empty-cluster relocation (the farthest rows). The initial
    centres (k-means++, "random" or a callable) come from a random subsample
    of at most :data:`INIT_SAMPLE` rows unless `init` is an array.
    ``labels_`` is an int32 array of N labels (for dask input: a lazy dask
    array); it is the only O(N) object a streamed fit allocates.
    """

    n_clusters, max_iter, tol, verbose, init, n_init = km._check_params()
    source = make_source(X, sample_weight, getattr(km, "block_size", None))
    n, d = source.n_samples, source.n_features
    if n < 1:
        raise ValueError(f"X has 0 sample(s) (shape={(n, d)}) while a minimum of 1 is required.")
    if n < n_clusters:
        raise ValueError(f"n_samples={n} should be >= n_clusters={n_clusters}.")
    source.positive_weights()
    km.n_features_in_ = d
    if hasattr(km, "feature_names_in_"):
        del km.feature_names_in_
    dtype = source.dtype
    if isinstance(init, np.ndarray):
        init = np.ascontiguousarray(init, dtype=dtype)
        km._check_center_shape(init, np.empty((0, d), dtype), n_clusters)
    rs = check_random_state(km.random_state)
    mean, var = source.moments()
    shift = np.ascontiguousarray(mean, dtype=dtype)
    tol_abs = float(np.mean(var)) * tol if tol > 0 else 0.0
    sample = None
    if not isinstance(init, np.ndarray):
        Xs, ws = source.subsample(INIT_SAMPLE, rs)
        sample = (np.ascontiguousarray(Xs, dtype=dtype),
                  np.ones(Xs.shape[0], dtype) if ws is None else ws.astype(dtype))

    best = None
    for _ in range(n_init):
        if sample is None:
            centers = np.ascontiguousarray(init - shift, dtype=dtype)
        else:
            centers = km._init_centroids(sample[0], shift, init, n_clusters, sample[1], rs)
        # out-of-core: the labels of every Lloyd pass go straight into labels_ (the
        # one O(N) array); on strict convergence they are final, with no extra pass
        labels_out = np.empty(n, np.int32) if n_init == 1 and not is_dask(X) else None
        centers, n_iter, last = _lloyd(source, shift, centers, max_iter, tol_abs, verbose,
                                       labels_out)
        if n_init == 1:
            best = (centers, last, n_iter)
            break
        _, _, inertia = source.lloyd(shift, centers, False)
        if best is None or inertia < best[1]:
            best = (centers, inertia, n_iter)
    centers, last, n_iter = best
    if n_init == 1 and last is not None and labels_out is not None:
        labels, inertia = labels_out, last
    else:
        # labels_ and the inertia of the final centres in one pass
        labels, inertia = source.labels_inertia(shift, centers)
    from .cluster import _scaled_inertia

    inertia = _scaled_inertia(inertia, 0)  # near the float64 limits: ValueError, not inf
    km.cluster_centers_ = (centers + shift).astype(dtype)
    km.labels_ = labels
    km.inertia_ = inertia
    km.n_iter_ = n_iter
    if not is_dask(labels):
        counts = np.zeros(n_clusters, dtype=np.int64)
        for r0 in range(0, n, 1 << 20):  # bincount casts to intp: keep that copy small
            counts += np.bincount(labels[r0:r0 + (1 << 20)], minlength=n_clusters)
        distinct = int(np.count_nonzero(counts))
        if distinct < n_clusters:
            warnings.warn(f"Number of distinct clusters ({distinct}) found smaller than "
                          f"n_clusters ({n_clusters}). Possibly due to duplicate points in X.",
                          exceptions.ConvergenceWarning, stacklevel=3)
    return km


def _lloyd(source, shift, centers, max_iter, tol, verbose, labels_out=None):
    """Returns (final centres in shifted coordinates, n_iter, inertia or None).

    The inertia is returned only on strict convergence (the last pass used
    the final centres, so its labels and inertia are final)."""
    i = 0
    for i in range(max_iter):
        kw = {} if labels_out is None else {"labels_out": labels_out}
        S, W, inertia = source.lloyd(shift, centers, True, **kw)
        empty = bool(np.any(W == 0))
        new = _relocate_and_divide(source, shift, centers, S, W)
        if verbose:
            print(f"Iteration {i}, inertia {inertia}.")
        shift_sq = float(np.sum((new.astype(np.float64) - centers) ** 2))
        centers = new
        if shift_sq == 0.0:
            # Same centres as the previous iteration <=> the same labels:
            # strict convergence (the in-memory fit tests the labels).
            return centers, i + 1, (None if empty else float(inertia))
        if shift_sq <= tol:
            break
    return centers, i + 1, None


def _relocate_and_divide(source, shift, centers_old, S, W):
    """The in-memory M-step: empty clusters take the farthest rows (scikit-learn)."""
    from .cluster import _centres, _move_rows
    empty = np.flatnonzero(W == 0)
    if empty.size:
        dist, rows, labels, w = source.farthest(shift, centers_old, empty.size)
        if dist.size and dist.max() > 0:
            _move_rows(S, W, empty, rows, labels, w)
    return np.ascontiguousarray(_centres(S, W).astype(centers_old.dtype))


# ---- block-wise prediction ---------------------------------------------------------

def apply_blockwise(est, method, X, *, n_out=None, block_size=None):
    """``est.method`` on a streamed X: lazy for dask, block by block for out-of-core.

    `n_out` is the number of output columns (None for a 1-D result per row).
    """
    if is_dask(X):
        from . import dask as _dask

        return _dask.map_rows(est, method, X, n_out)
    src = BlockSource(X, None, block_size if block_size is not None
                      else getattr(est, "block_size", None))
    from ._validation import check_output_size

    # the concatenated result lives in memory (blocks plus the final copy)
    check_output_size((src.n_samples, n_out or 1), 8, f"{method} result for every row",
                      extra_bytes=src.n_samples * (n_out or 1) * 8)
    fn = getattr(est, method)
    return np.concatenate([fn(xb) for _, xb, _ in src.blocks(weights=False)])


# ---- incremental fitting -------------------------------------------------------------

def step_size(t: int, decay: float, offset: float) -> float:
    """Stepwise-EM step ρ_t = (t + offset)^(−decay) of update t = 1, 2, ... (ρ_0 = 1)."""
    return float((t + offset) ** (-decay))


def _recentre(stats, ref):
    """The same statistics taken around `ref` (D,) instead of their own shift.

    Σγ(x−c) = Σγ(x−s) + N δ and Σγ(x−c)(x−c)ᵀ = Q + aδᵀ + δaᵀ + N δδᵀ with
    δ = s − c, a = Σγ(x−s).
    """
    from .mixture import MixtureStatistics

    ctype = stats.covariance_type
    n, a, Q = stats.resp_sum, stats.sum_x, stats.sum_xx
    if ctype == "tied":
        delta = stats.shift - ref                          # (D,)
        b = a.sum(axis=0)
        tot = n.sum()
        sum_x = a + n[:, None] * delta
        sum_xx = Q + np.outer(b, delta) + np.outer(delta, b) + tot * np.outer(delta, delta)
        shift = ref.copy()
    else:
        delta = stats.shift - ref[None, :]                 # (K, D)
        sum_x = a + n[:, None] * delta
        if ctype == "full":
            sum_xx = (Q + np.einsum("ki,kj->kij", a, delta) + np.einsum("ki,kj->kij", delta, a)
                      + n[:, None, None] * np.einsum("ki,kj->kij", delta, delta))
        else:
            sum_xx = Q + 2 * a * delta + n[:, None] * delta**2
        shift = np.ascontiguousarray(np.broadcast_to(ref, stats.shift.shape))
    return MixtureStatistics(ctype, shift, n, sum_x, sum_xx, stats.log_likelihood,
                             stats.sum_weight, stats.n_samples, stats.dtype)


def _scaled_blend(old, new, rho):
    """(1−ρ)·old + ρ·new of statistics normalised to unit total weight."""
    from .mixture import MixtureStatistics

    def norm(s):
        c = 1.0 / s.sum_weight
        return s.resp_sum * c, s.sum_x * c, s.sum_xx * c, s.log_likelihood * c

    nb = norm(new)
    if old is None:
        parts = nb
    else:
        no = (old.resp_sum, old.sum_x, old.sum_xx, old.log_likelihood)
        parts = tuple((1.0 - rho) * o + rho * b for o, b in zip(no, nb))
    n_seen = new.n_samples + (old.n_samples if old is not None else 0)
    return MixtureStatistics(new.covariance_type, new.shift, parts[0], parts[1], parts[2],
                             float(parts[3]), 1.0, n_seen, new.dtype)


def partial_fit_gaussian_mixture(gm, X, sample_weight=None):
    """One stepwise-EM update (Cappé & Moulines 2009; Liang & Klein 2009) from a batch.

    With s the running sufficient statistics normalised per unit weight and
    s_b those of the batch under the current parameters, call t = 1, 2, ...
    does

        s ← (1 − ρ_t) s + ρ_t s_b,   ρ_t = (t + learning_offset)^(−learning_decay)

    and then the M-step on s. Call t = 0 (the first, or the first after
    ``fit``) sets s = s_b (ρ_0 = 1); on an unfitted estimator it first
    initialises the parameters from its batch (``init_params`` / ``*_init``).
    The Robbins–Monro conditions (Σρ = ∞, Σρ² < ∞) need
    ``0.5 < learning_decay <= 1``; the defaults are 0.7 and 1.0. Sample
    weights weight rows within a batch; every batch counts once in the blend.
    """
    from .mixture import mixture_statistics, mixture_update

    K, _ = gm._check_hyper()
    decay = check_float(getattr(gm, "learning_decay", 0.7), "learning_decay", min=0.5)
    if not (0.5 < decay <= 1.0):
        raise ValueError(f"learning_decay must be in (0.5, 1]; got {decay}")
    offset = check_float(getattr(gm, "learning_offset", 1.0), "learning_offset", min=0.0)
    state = getattr(gm, "_stepwise_state", None)
    fitted = hasattr(gm, "means_")
    if state is not None and (not fitted or state[3] is not gm.means_):
        state = None  # fit() (or set_params/clone) ran since: the running statistics are stale
    first = state is None
    X = gm._check_X(X, reset=not fitted)
    N, D = X.shape
    w = None
    if sample_weight is not None:
        w = check_sample_weight(sample_weight, N, dtype=X.dtype)
    if first and fitted:
        # after fit(): continue from the fitted parameters, new running statistics
        params = gm.parameters()
        ref = np.average(X, axis=0, weights=w).astype(np.float64) if N else np.zeros(D)
        running, t = None, 0
    elif first:
        if N < K:
            raise ValueError(f"the first batch of partial_fit needs n_samples >= n_components; "
                             f"got n_samples = {N}, n_components = {K}")
        rs = check_random_state(gm.random_state)
        winit, minit, pinit = gm._check_initial(K, D, gm.covariance_type, X.dtype)
        params = gm._initial_parameters(X, w, K, rs, winit, minit, pinit)
        ref = np.average(X, axis=0, weights=w).astype(np.float64)
        running, t = None, 0
    else:
        running, t, ref, _ = state
        params = gm.parameters()
    if N == 0:
        return gm
    batch = mixture_statistics(X, params, w)
    if batch.sum_weight <= 0:
        return gm
    rho = 1.0 if running is None else step_size(t, decay, offset)
    running = _scaled_blend(running, _recentre(batch, ref), rho)
    params = mixture_update(running, float(gm.reg_covar))
    gm._set_parameters(params)
    gm._stepwise_state = (running, t + 1, ref, gm.means_)
    gm.n_iter_ = t + 1
    gm.lower_bound_ = batch.mean_log_likelihood
    gm.converged_ = False
    return gm


def partial_fit_kmeans(km, X, sample_weight=None):
    """One mini-batch k-means step (Sculley 2010; scikit-learn MiniBatchKMeans semantics).

    Every centre is the weighted mean of all rows ever assigned to it: with
    per-centre weight counts n_k and the batch's assigned sum S_k and weight
    W_k, c_k ← (n_k c_k + S_k) / (n_k + W_k) and n_k ← n_k + W_k. The first
    call initialises the centres from the batch with ``init``. Unlike
    scikit-learn, centres with small counts are not randomly reassigned.
    """
    from . import _core

    n_clusters, _, _, _, init, _ = km._check_params()
    fitted = hasattr(km, "cluster_centers_")
    state = getattr(km, "_minibatch_state", None)
    if state is not None and (not fitted or state[2] is not km.cluster_centers_):
        state = None  # fit() ran since: start again from its centres
    X = km._validate_X(X, reset=not fitted)
    n, d = X.shape
    w = check_sample_weight(sample_weight, n, dtype=X.dtype)
    if state is None and fitted:
        # after fit(): continue from the fitted centres with zero counts
        centers = np.asarray(km.cluster_centers_, dtype=np.float64)
        counts = np.zeros(n_clusters)
        km.n_steps_ = 0
    elif state is None:
        if n < n_clusters:
            raise ValueError(f"the first batch of partial_fit needs n_samples >= n_clusters; "
                             f"got n_samples = {n}, n_clusters = {n_clusters}")
        if isinstance(init, np.ndarray):
            init = np.ascontiguousarray(init, dtype=X.dtype)
            km._check_center_shape(init, X, n_clusters)
        rs = check_random_state(km.random_state)
        zero = np.zeros(d, dtype=X.dtype)
        centers = km._init_centroids(X, zero, init, n_clusters, w, rs).astype(np.float64)
        counts = np.zeros(n_clusters)
        km.n_steps_ = 0
    else:
        centers, counts, _ = state
    shift = np.ascontiguousarray(centers.mean(axis=0), dtype=X.dtype)
    c_shift = np.ascontiguousarray(centers - shift, dtype=X.dtype)
    labels = np.empty(n, dtype=np.int32)
    S, W, inertia = _core.kmeans_lloyd_step(X, shift, c_shift, None if sample_weight is None
                                            else w, labels, True)
    sums = S + W[:, None] * shift.astype(np.float64)   # Σ w x per centre
    hit = W > 0
    new = centers.copy()
    new[hit] = (centers[hit] * counts[hit, None] + sums[hit]) / (counts[hit] + W[hit])[:, None]
    counts = counts + W
    km.cluster_centers_ = new.astype(X.dtype)
    km._minibatch_state = (new, counts, km.cluster_centers_)
    # labels_ and inertia_ of the batch under the updated centres (as scikit-learn)
    shift = np.ascontiguousarray(new.mean(axis=0), dtype=X.dtype)
    _, _, inertia = _core.kmeans_lloyd_step(X, shift, np.ascontiguousarray(new - shift,
                                                                           dtype=X.dtype),
                                            None if sample_weight is None else w, labels, False)
    from .cluster import _scaled_inertia

    km.labels_ = labels
    km.inertia_ = _scaled_inertia(inertia, 0)  # near the float64 limits: ValueError, not inf
    km.n_steps_ += 1
    return km
