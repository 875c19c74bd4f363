"""The fitting engine: every fit of maxlik, written once, against a data source.

An estimator validates its hyper-parameters, builds a source for its data
(:func:`maxlik._sources.make_source`: an in-memory array, an out-of-core
array or a Dask array), calls one function here and stores what it returns
as its fitted attributes. The engine owns the loops; the sources own how row
blocks are read; the block kernels (:mod:`maxlik._kernels`) own the numerics
of one block. So a fit is the same wherever its rows live:

* :func:`fit_kmeans` -- Lloyd's algorithm with k-means++ / random / callable /
  array initialisation, restarts (``n_init``) and empty-cluster relocation;
* :func:`kmeans_plusplus` -- greedy k-means++ over all rows, in block order;
* :func:`fit_mixture` -- EM for Gaussian mixtures, with the initialisations
  ("kmeans", "k-means++", "random", "random_from_data") over all rows;
* :func:`fit_logistic` -- the L-BFGS fit of the penalised cross-entropy;
* :func:`least_squares` -- weighted least squares by a blockwise (TSQR) QR.

Initialisation reads all rows, in block order, with the same random draws
for every source: the same rows and ``random_state`` give the same fit (up to
floating-point summation order) however the rows are stored or chunked.
There is no subsampling.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import _kernels as K
from ._kernels import (
    MixtureParameters,
    _covariances_from_cholesky,
    _collapse_error,
    _mixture_update,
    _overflow_error,
    check_em_memory,
)
from ._optimize import LbfgsResult, minimize_lbfgs
from ._validation import FloatRangeError, as_float_array, check_output_size, scale_exponent


# ---- column summaries -------------------------------------------------------------------

@dataclass(frozen=True)
class ColumnSummary:
    """Per-column max |x|, mean and (population, unweighted) variance of all rows.

    The variance is in units of 4**E (E = 0 unless X is near the float64 limits)."""

    max_abs: np.ndarray
    n: int
    mean: np.ndarray
    var: np.ndarray
    E: int


def column_summary(source) -> ColumnSummary:
    """One pass: the C++ moments of every block, merged in block order (also validates X)."""
    amax, n, mean, var, E = K.merge_column_summaries(source.map_blocks(K.column_summary_block))
    return ColumnSummary(amax, n, mean, var, E)


def scaled_inertia(inertia, e: int, name="X") -> float:
    """inertia * 4**e, or a ValueError naming `name` if that leaves the float64 range."""
    inertia = float(inertia)
    try:
        value = math.ldexp(inertia, 2 * e)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value):
        raise FloatRangeError(
            f"{name}: the inertia (sum of squared distances to the centres) exceeds the "
            "float64 range (about 1.8e308), so it cannot be returned; rescale the data "
            "(e.g. divide X by a power of ten)"
        )
    if value == 0.0 and inertia > 0.0:
        raise FloatRangeError(
            f"{name}: the inertia (sum of squared distances to the centres) is below the "
            "float64 range (about 4.9e-324), so it cannot be returned; rescale the data "
            "(e.g. multiply X by a power of ten)"
        )
    return value


# ---- weighted draws of rows (RandomState.choice with p, over blocks) -------------------

def _block_weight_totals(source, exclude):
    tots = []
    for r0, r1 in source.block_bounds:
        ex = exclude[(exclude >= r0) & (exclude < r1)]
        if not source.weighted:
            tots.append(float(r1 - r0 - ex.size))
        else:
            wb = source.read_weights(r0, r1).copy()
            wb[ex - r0] = 0.0
            tots.append(float(wb.sum()))
    return np.array(tots)


def _weight_search(source, u, exclude=()):
    """Rows drawn as ``RandomState.choice(N, p=w / w.sum())`` draws them from uniforms `u`.

    Row i is the first with cumsum(w)[i] > u * sum(w) (searchsorted side "right"
    on the CDF); rows in `exclude` have weight 0. Block totals first, then only
    the blocks the draws fall in are read.
    """
    exclude = np.asarray(exclude, dtype=np.int64)
    tots = _block_weight_totals(source, exclude)
    prefix = np.cumsum(tots)
    total = prefix[-1]
    out = np.empty(len(u), dtype=np.int64)
    for j, uj in enumerate(u):
        t = uj * total
        b = min(int(np.searchsorted(prefix, t, side="right")), len(tots) - 1)
        r0, r1 = source.block_bounds[b]
        wb = source.read_weights(r0, r1).copy()
        ex = exclude[(exclude >= r0) & (exclude < r1)]
        wb[ex - r0] = 0.0
        cum = np.cumsum(wb) + (prefix[b - 1] if b else 0.0)
        out[j] = r0 + min(int(np.searchsorted(cum, t, side="right")), r1 - r0 - 1)
    return out


def _choice_without_replacement(source, size, rs):
    """``rs.choice(N, size, replace=False, p=w / w.sum())`` with numpy's draws, over blocks."""
    n_pos = source.positive_weights()
    if n_pos < size:
        raise ValueError(f"init='random' needs at least n_clusters={size} rows with positive "
                         f"weight; got {n_pos}")
    found = np.empty(0, dtype=np.int64)
    while found.size < size:
        x = rs.random_sample(size - found.size)
        new = _weight_search(source, x, found)
        _, first = np.unique(new, return_index=True)
        found = np.concatenate([found, new[np.sort(first)]])
    return found


def _rows_at(source, idx):
    """Rows `idx` (any order, repeats allowed) of the source, as an array."""
    idx = np.asarray(idx, dtype=np.int64)
    uniq, inv = np.unique(idx, return_inverse=True)
    rows, _ = source.take(uniq)
    return np.asarray(rows)[inv.reshape(-1)]


# ---- k-means++ ---------------------------------------------------------------------------

def _sub_bounds(source):
    out = []
    for r0, r1 in source.block_bounds:
        out.extend((a, min(r1, a + K.SUB_ROWS)) for a in range(r0, r1, K.SUB_ROWS))
    return out


def _pp_table(source, shift, scale, chosen, cands):
    return np.concatenate(source.map_blocks(K.pp_block, shift, scale, chosen, cands))


def _pp_search(source, subs, col, targets, shift, scale, chosen):
    """Rows where the running sum of w · closest(x) first reaches each target (clipped)."""
    prefix = np.cumsum(col)
    N = source.n_samples
    out = np.empty(len(targets), dtype=np.int64)
    where = np.searchsorted(prefix, targets, side="left")
    for s in np.unique(where):
        sel = np.flatnonzero(where == s)
        if s >= len(subs):
            out[sel] = N - 1
            continue
        a, b = subs[s]
        xb, wb = source.read_rows(a, b)
        cum = K.pp_closest_cumsum(xb, wb, shift, scale, chosen)
        cum += prefix[s - 1] if s else 0.0
        loc = np.searchsorted(cum, targets[sel], side="left")
        out[sel] = a + np.minimum(loc, b - a - 1)
    return out


def kmeans_plusplus(source, shift, scale, n_clusters, rs, n_local_trials=None):
    """Greedy k-means++ (Arthur & Vassilvitskii 2007) over all rows of `source`.

    Works in the coordinates ``x * scale - shift``. The random draws are
    scikit-learn's (the first centre with probability ∝ w, then
    ``n_local_trials`` candidates per centre with probability ∝ w · D(x)²,
    keeping the one of least potential). Potentials are summed per sub-chunk
    of rows, so finding a candidate reads only the sub-chunk it falls in.

    Returns (centres in the shifted coordinates, row indices).
    """
    dtype = source.dtype
    D = source.n_features
    if n_local_trials is None:
        n_local_trials = 2 + int(np.log(n_clusters))
    first = int(_weight_search(source, [rs.random_sample()])[0])
    centers = np.empty((n_clusters, D), dtype=dtype)
    indices = np.full(n_clusters, -1, dtype=np.intp)
    centers[0] = (_rows_at(source, [first])[0] * scale - shift).astype(dtype)
    indices[0] = first
    subs = _sub_bounds(source)
    col = _pp_table(source, shift, scale, centers[:0], centers[:1])[:, 0]
    potential = np.cumsum(col)[-1]
    for c in range(1, n_clusters):
        chosen = centers[:c]
        targets = rs.uniform(size=n_local_trials) * potential
        cand = _pp_search(source, subs, col, targets, shift, scale, chosen)
        cand_centers = np.ascontiguousarray(_rows_at(source, cand) * scale - shift, dtype=dtype)
        table = _pp_table(source, shift, scale, chosen, cand_centers)
        potentials = np.cumsum(table, axis=0)[-1]  # block order, sub-chunk by sub-chunk
        best = int(np.argmin(potentials))
        potential = potentials[best]
        col = table[:, best]
        centers[c] = cand_centers[best]
        indices[c] = cand[best]
    return centers, indices


# ---- k-means: Lloyd, restarts, relocation ----------------------------------------------

def _move_rows(S, W, empty, rows, old_labels, weights):
    """Relocate empty clusters (scikit-learn): empty cluster empty[i] takes row
    rows[i] (shifted, float64) from its cluster old_labels[i], in place."""
    for new_id, row, old_id, weight in zip(empty, rows, old_labels, weights):
        weight = float(weight)
        S[old_id] -= row * weight
        S[new_id] = row * weight
        W[new_id] = weight
        W[old_id] -= weight


def _centres(S, W):
    """M-step centres S_k / W_k; clusters still empty (duplicate points) are
    parked on the heaviest cluster."""
    new = np.empty_like(S)
    nonzero = W > 0
    new[nonzero] = S[nonzero] / W[nonzero, None]
    if not nonzero.all():
        new[~nonzero] = new[int(np.argmax(W))]
    return new


def _farthest(source, shift, scale, centers, m):
    """The `m` rows farthest from their nearest centre, largest first, ties by row."""
    parts = source.map_blocks(K.farthest_block, shift, centers, m, scale)
    d = np.concatenate([p[0] for p in parts])
    pos = np.concatenate([p[4] + r0 for p, (r0, _) in zip(parts, source.block_bounds)])
    order = np.lexsort((pos, -d))[:m]
    pick = lambda i: np.concatenate([p[i] for p in parts])[order]  # noqa: E731
    return d[order], pick(1), pick(2), pick(3)


def _m_step(source, shift, scale, centers_old, S, W):
    """New centres; empty clusters take the farthest rows (scikit-learn's relocation)."""
    empty = np.flatnonzero(W == 0)
    relocated = False
    if empty.size:
        dist, rows, labels, w = _farthest(source, shift, scale, centers_old, empty.size)
        if dist.size and dist.max() > 0:
            relocated = True
            _move_rows(S, W, empty, rows, labels, w)
    return np.ascontiguousarray(_centres(S, W).astype(centers_old.dtype)), relocated


@dataclass
class LloydRun:
    centers: np.ndarray  # shifted coordinates
    inertia: float
    n_iter: int
    counts: np.ndarray
    labels: np.ndarray | None


def lloyd(source, shift, scale, centers, max_iter, tol, verbose=0, labels_out=None) -> LloydRun:
    """Lloyd iterations until the centres stop moving (strict convergence: the labels
    are then those of the previous pass), their squared shift is within `tol`, or
    `max_iter`. One pass over the source per iteration; labels into `labels_out`."""
    bounded = getattr(source, "in_memory", False)
    if bounded:
        # Hamerly bounds (kmeans.hpp): rows whose centre cannot have changed are not
        # scored; same labels as the plain pass, 20 bytes per row of state.
        n = source.n_samples
        check_output_size(2 * n, 8, "k-means bounds (2 float64 per sample)")
        if labels_out is None:
            labels_out = np.empty(n, dtype=np.int32)
        upper, lower = np.empty(n), np.empty(n)
    moved = None
    # Unweighted, quiet fits also update the sums incrementally: a pass then reads
    # only the rows the bounds do not settle, and adds the changes of the rows whose
    # label changed to the previous pass's sums (exact counts; the sums agree with a
    # full pass to rounding). Weighted sums could leave a cluster with a rounding
    # residue instead of weight 0, so they are summed in full.
    incremental = bounded and not source.weighted and not verbose
    S_prev = W_prev = None

    def step(update, want_inertia=True, delta=False):
        # with bounds, the iterations' inertia is measured only for `verbose`: the
        # rows the bounds settle are then just summed (or, with delta, not read)
        if bounded:
            return source.map_reduce(K.lloyd_block_bounded, shift, centers, update, scale, moved,
                                     want_inertia, delta,
                                     per_block=lambda i, r0, r1: (labels_out[r0:r1],
                                                                  upper[r0:r1], lower[r0:r1]))
        return source.map_reduce(K.lloyd_block, shift, centers, update, scale,
                                 per_block=lambda i, r0, r1: ((labels_out[r0:r1] if labels_out
                                                               is not None else None),))

    strict = relocated = False
    inertia, counts, i = None, None, 0
    for i in range(max_iter):
        delta = incremental and moved is not None and S_prev is not None
        S, W, inertia, counts = step(True, bool(verbose), delta)
        if delta:
            S, W = S_prev + S, W_prev + W
        if incremental:  # the sums of this pass's labels (_m_step may change S, W)
            S_prev, W_prev = S.copy(), W.copy()
        new, relocated = _m_step(source, shift, scale, centers, S, W)
        if verbose:
            print(f"Iteration {i}, inertia {inertia}.")
        diff = new.astype(np.float64) - centers
        shift_sq = float(np.sum(diff**2))
        moved = np.sqrt(np.einsum("kd,kd->k", diff, diff))
        centers = new
        if shift_sq == 0.0:
            # the centres did not move <=> the labels equal the previous pass's:
            # the labels and inertia just computed are final
            if verbose:
                print(f"Converged at iteration {i}: strict convergence.")
            strict = True
            break
        if shift_sq <= tol:
            if verbose:
                print(f"Converged at iteration {i}: center shift {shift_sq} within "
                      f"tolerance {tol}.")
            break
    if not strict or relocated or inertia is None or math.isnan(inertia):
        # an E-step with the final centres so that the labels and inertia match them
        # (after a strict convergence too when that pass did not measure the inertia)
        _, _, inertia, counts = step(False)
    assert inertia is not None and counts is not None  # max_iter >= 1
    return LloydRun(centers, float(inertia), i + 1, counts, labels_out)


def _same_clustering(source, shift, scale, a, b):
    """True if the nearest-centre labelings of centres `a` and `b` agree up to a permutation."""
    pairs = source.map_reduce(K.same_clustering_block, shift, scale, a, b,
                              merge=lambda p, q: p | q)
    firsts = {code // b.shape[0] for code in pairs}
    return len(firsts) == len(pairs)


def _init_centroids(source, shift, scale, init, n_clusters, rs):
    """Initial centres in the coordinates x * scale - shift."""
    dtype = source.dtype
    if isinstance(init, str) and init == "k-means++":
        centers, _ = kmeans_plusplus(source, shift, scale, n_clusters, rs)
    elif isinstance(init, str) and init == "random":
        seeds = _choice_without_replacement(source, n_clusters, rs)
        centers = _rows_at(source, seeds) * scale - shift
    elif callable(init):
        centers = as_float_array(init(source.X, n_clusters, random_state=rs), "init(X) result",
                                 ndim=2, dtype=dtype, finite=True)
        check_center_shape(centers, source.n_features, n_clusters)
        centers = centers * scale - shift
    else:
        centers = init * scale - shift
    return np.ascontiguousarray(centers, dtype=dtype)


def check_center_shape(centers, n_features, n_clusters):
    """init centres must be (n_clusters, n_features); the message says which count is off
    (in scikit-learn's words, which its tests match)."""
    if centers.ndim != 2 or centers.shape[0] != n_clusters:
        raise ValueError(
            f"The shape of the initial centers {centers.shape} does not match the number of "
            f"clusters {n_clusters}: init must have shape (n_clusters, n_features) = "
            f"({n_clusters}, {n_features})")
    if centers.shape[1] != n_features:
        raise ValueError(
            f"The shape of the initial centers {centers.shape} does not match the number of "
            f"features of the data {n_features}: init must have shape (n_clusters, n_features) "
            f"= ({n_clusters}, {n_features})")


@dataclass
class KMeansFit:
    """What :func:`fit_kmeans` found (centres in X's units and dtype)."""

    cluster_centers: np.ndarray
    labels: object  # ndarray (N,) int32, a lazy dask array, or None
    inertia: float
    n_iter: int
    n_distinct: int
    shift: np.ndarray = field(repr=False)
    scale: float = field(repr=False)
    centers_shifted: np.ndarray = field(repr=False)


def fit_kmeans(source, n_clusters, *, init, n_init, max_iter, tol, rs, verbose=0,
               want_labels=True) -> KMeansFit:
    """k-means on a source: restarts keep the lowest inertia (a different clustering only).

    Works in mean-centred coordinates (the kernels subtract on the fly; the
    dot-product distance form then loses far less to cancellation); data near
    the float limits are also scaled by a power of two (exact).
    """
    dtype = source.dtype
    summary = column_summary(source)
    e = scale_exponent(float(np.max(summary.max_abs)), dtype)
    scale = 2.0**-e
    shift = np.ascontiguousarray(np.ldexp(summary.mean, -e), dtype=dtype)
    if getattr(source, "sparse", False):
        shift = np.zeros_like(shift)  # centring would make sparse rows dense (sparse.hpp)
    var = np.ldexp(summary.var, 2 * (summary.E - e))
    tol_abs = float(np.mean(var)) * tol if tol > 0 else 0.0
    best = None
    spare = None
    for _ in range(n_init):
        centers = _init_centroids(source, shift, scale, init, n_clusters, rs)
        if verbose:
            print("Initialization complete")
        buf = None
        if want_labels:
            buf = spare if spare is not None else source.labels_buffer()
        run = lloyd(source, shift, scale, centers, max_iter, tol_abs, verbose, buf)
        if best is None or (run.inertia < best.inertia and not _same_clustering(
                source, shift, scale, run.centers, best.centers)):
            spare = best.labels if best is not None else None
            best = run
        else:
            spare = run.labels
    assert best is not None  # n_init >= 1
    labels = best.labels
    if want_labels and labels is None:  # dask: lazy labels of the final centres
        labels = source.row_output(K.lloyd_labels, shift, best.centers, scale, dtype=np.int32)
    inertia = scaled_inertia(best.inertia, e)  # near the float64 limits: ValueError, not inf
    centers = np.ldexp(best.centers + shift, e).astype(dtype)
    return KMeansFit(centers, labels, inertia, best.n_iter,
                     int(np.count_nonzero(best.counts)), shift, scale, best.centers)


# ---- Gaussian mixtures: initialisation and EM -------------------------------------------

def _labels_of_rows(idx, n_components_of_idx):
    """per_block(i, r0, r1) -> (None, int64 labels: -1 except the rows `idx`)."""
    idx = np.asarray(idx, dtype=np.int64)
    comp = np.asarray(n_components_of_idx, dtype=np.int64)

    def per_block(i, r0, r1):
        lab = np.full(r1 - r0, -1, dtype=np.int64)
        sel = (idx >= r0) & (idx < r1)
        lab[idx[sel] - r0] = comp[sel]
        return None, lab

    return per_block


def initial_mixture_parameters(source, K_, ctype, reg_covar, init_params, rs, winit=None,
                               minit=None, pinit=None, on_collapse="raise",
                               reseeds=None, missing="raise") -> MixtureParameters:
    """The initial parameters of EM from all rows of `source` (scikit-learn's initialisers).

    "kmeans": the labels of a k-means fit (k-means++, one run); "k-means++":
    the seeds as one-row clusters; "random": uniform random responsibilities
    (drawn block by block in row order, the same numbers as one (N, K) draw);
    "random_from_data": K distinct random rows. Then two passes over the
    rows: the means first, then the covariances around them (stable).

    A component whose initial covariance is singular raises, or with
    ``on_collapse="reseed"`` is re-seeded (:func:`reseed_components`, judged by
    the other components; the indices are appended to the list `reseeds`).

    ``missing="marginalize"``: the initialisers run on the rows with each NaN
    replaced by the mean of its column's observed entries (one extra pass; a
    block without NaN is read unchanged, so complete data initialise as before).
    """
    if winit is not None and minit is not None and pinit is not None:
        # Everything given: no data-driven initialisation needed.
        return MixtureParameters(ctype, winit, minit, pinit,
                                 _covariances_from_cholesky(pinit, ctype))
    if missing == "marginalize":
        source = _FilledSource(source, column_means_observed(source))
    N, D = source.n_samples, source.n_features
    dtype = source.dtype
    kmeans = None
    per_block = lambda i, r0, r1: (None, None)  # noqa: E731
    state = None
    if init_params == "kmeans":
        try:
            km = fit_kmeans(source, K_, init="k-means++", n_init=1, max_iter=300, tol=1e-4,
                            rs=rs, want_labels=False)
        except FloatRangeError:  # k-means' inertia overflowed: so would the covariances
            raise _overflow_error() from None
        kmeans = (km.shift, km.centers_shifted, km.scale)
    elif init_params == "random":
        biggest = max(r1 - r0 for r0, r1 in source.block_bounds)
        check_output_size((biggest, K_), 8,
                          "initial responsibilities (N, K) of init_params='random'")
        state = rs.get_state()

        def per_block(i, r0, r1):
            resp = rs.uniform(size=(r1 - r0, K_)).astype(dtype)
            resp /= resp.sum(axis=1)[:, None]
            return resp, None
    elif init_params == "random_from_data":
        idx = rs.choice(N, size=K_, replace=False)
        per_block = _labels_of_rows(idx, np.arange(K_))
    else:  # k-means++
        summary = column_summary(source)
        e = scale_exponent(float(np.max(summary.max_abs)), dtype)
        shift = np.ascontiguousarray(np.ldexp(summary.mean, -e), dtype=dtype)
        _, idx = kmeans_plusplus(source, shift, 2.0**-e, K_, rs)
        per_block = _labels_of_rows(idx, np.arange(K_))
    shift_ctype = "tied" if ctype == "tied" else "diag"
    zero = np.zeros(D if ctype == "tied" else (K_, D))
    s0 = source.map_reduce(K.resp_block, shift_ctype, K_, zero, kmeans, per_block=per_block)
    eps = 10 * np.finfo(dtype).eps
    nk0 = s0.resp_sum + eps
    means0 = s0.sum_x / nk0[:, None]
    shift = np.ascontiguousarray((nk0 / nk0.sum()) @ means0 if ctype == "tied" else means0)
    if state is not None:  # the same responsibilities again; rs ends as after one draw
        rs.set_state(state)
    stats = source.map_reduce(K.resp_block, ctype, K_, shift, kmeans, per_block=per_block)
    # given precisions replace the data's covariances, so a singular one does not matter
    params, collapsed = _mixture_update(stats, reg_covar, mark_collapsed=(
        pinit is not None or (on_collapse == "reseed" and ctype != "tied")))
    # scikit-learn normalises the initial weights by n_samples
    weights = (stats.resp_sum + eps) / stats.sum_weight
    if collapsed and pinit is None:
        params = reseed_components(
            source, MixtureParameters(ctype, weights, params.means, params.precisions_cholesky,
                                      params.covariances), collapsed, None, reg_covar,
            keep_weights=winit is not None, keep_means=minit is not None)
        weights = params.weights
        if reseeds is not None:
            reseeds.extend(collapsed)
    weights = winit if winit is not None else weights
    means = minit if minit is not None else params.means
    if pinit is not None:
        return MixtureParameters(ctype, weights, means, pinit,
                                 _covariances_from_cholesky(pinit, ctype))
    return MixtureParameters(ctype, weights, means, params.precisions_cholesky,
                             params.covariances)


class _FilledSource:
    """A source whose blocks have their NaN entries replaced by column means.

    The initialisation of a fit with missing values (``missing="marginalize"``)
    runs the ordinary initialisers on this view; blocks without NaN are passed
    through unchanged, so data without NaN initialise exactly as before."""

    def __init__(self, source, col_means):
        self._src = source
        self._means = np.ascontiguousarray(col_means, dtype=source.dtype)
        for name in ("n_samples", "n_features", "dtype", "weighted", "block_bounds"):
            setattr(self, name, getattr(source, name))

    def __getattr__(self, name):  # weights and sizes: the wrapped source's
        return getattr(self._src, name)

    def map_blocks(self, fn, *args, **kw):
        return self._src.map_blocks(_FilledPerBlock(fn, self._means), *args, **kw)

    def map_reduce(self, fn, *args, **kw):
        return self._src.map_reduce(_FilledPerBlock(fn, self._means), *args, **kw)

    def read_rows(self, r0, r1):
        xb, wb = self._src.read_rows(r0, r1)
        return K.fill_block(np.ascontiguousarray(xb), self._means), wb

    def take(self, idx):
        xb, wb = self._src.take(idx)
        return K.fill_block(np.ascontiguousarray(xb), self._means), wb


@dataclass(frozen=True)
class _FilledPerBlock:
    """``fn(filled xb, wb, *rest)``: picklable for Dask workers."""

    fn: object
    means: np.ndarray

    def __call__(self, xb, wb, *rest):
        return K.filled_call(self.fn, self.means, xb, wb, *rest)


def column_means_observed(source) -> np.ndarray:
    """Weighted mean of the observed (non-NaN) entries of every column (one pass)."""
    sums, counts = source.map_reduce(K.nan_column_sums_block)
    empty = np.flatnonzero(counts <= 0)
    if empty.size:
        raise ValueError(f"X: column {int(empty[0])} has no observed (non-NaN) entry with "
                         "positive weight; drop it before fitting")
    return sums / counts


@dataclass
class MixtureFit:
    """What :func:`fit_mixture` found: the best initialisation's parameters and trajectory."""

    params: MixtureParameters
    lower_bound: float
    lower_bounds: list
    n_iter: int
    converged: bool
    n_reseeds: int = 0
    #: EM iterations after whose M-step components were re-seeded (0: at initialisation);
    #: lower_bounds[it:] (0-based) is monotone up to the next one
    reseed_iterations: list = field(default_factory=list)


#: Re-seeds allowed per initialisation before on_collapse="reseed" gives up and raises
#: (a point mass with reg_covar=0 can attract component after component).
MAX_RESEEDS = 20


def _worst_rows(source, judge, m):
    """The `m` rows (float64) the mixture `judge` explains worst, over all blocks,
    the lowest log-density first and ties by row index (independent of blocking)."""
    parts = source.map_blocks(K.worst_rows_block, judge, m)
    lp = np.concatenate([p[0] for p in parts])
    rows = np.concatenate([p[1] for p in parts]).reshape(-1, source.n_features)
    pos = np.concatenate([p[2] + r0 for p, (r0, _) in zip(parts, source.block_bounds)])
    order = np.lexsort((pos, lp))[:m]
    return rows[order]


def reseed_components(source, params, collapsed, judge, reg_covar, keep_weights=False,
                      keep_means=False) -> MixtureParameters:
    """`params` with the collapsed components re-initialised (on_collapse="reseed").

    Each collapsed component k (in turn) takes half the weight of the heaviest
    component that did not collapse (the donor) and the donor's covariance,
    and its mean moves to the row the current model explains worst: the rows
    of lowest log p(x) under `judge` (the parameters of the E-step that
    preceded the collapse; None at initialisation: the mixture of the
    components that did not collapse), distinct rows for several components,
    found in one pass. Frozen weights / means (`keep_*`) stay. Raises the
    collapse error if every component collapsed.
    """
    ctype = params.covariance_type
    good = [k for k in range(params.n_components) if k not in collapsed]
    if not good:
        raise _collapse_error(int(collapsed[0]), reg_covar)
    w = params.weights.copy()
    means = params.means.copy()
    cov = np.array(params.covariances, dtype=np.float64, copy=True)
    U = params.precisions_cholesky.copy()
    if judge is None:
        judge = MixtureParameters(ctype, w[good] / w[good].sum(), means[good], U[good],
                                  cov[good])
    rows = _worst_rows(source, judge, len(collapsed)) if not keep_means else None
    for j, k in enumerate(collapsed):
        donor = max(good, key=lambda g: w[g])
        if not keep_weights:
            w[k] = 0.5 * w[donor]
            w[donor] -= w[k]
        if rows is not None and j < rows.shape[0]:
            means[k] = rows[j]
        cov[k] = cov[donor]
        U[k] = U[donor]
    if not keep_weights:
        w = w / w.sum()
    return MixtureParameters(ctype, w, means, U, cov)


def frozen_parameters(freeze, ctype, winit, minit, pinit) -> dict:
    """The `fixed` values of a restricted M-step (see :func:`maxlik._kernels._mixture_update`)."""
    fixed: dict = {}  # copies: the fitted attributes must not alias the user's *_init arrays
    if "weights" in freeze:
        fixed["weights"] = np.array(winit, dtype=np.float64, copy=True)
    if "means" in freeze:
        fixed["means"] = np.array(minit, dtype=np.float64, copy=True)
    if "covariances" in freeze:
        fixed["covariances"] = _covariances_from_cholesky(pinit, ctype)
        fixed["precisions_cholesky"] = np.array(pinit, dtype=np.float64, copy=True)
    return fixed


def fit_mixture(source, *, n_components, covariance_type, tol, reg_covar, max_iter, n_init,
                init_params, rs, winit=None, minit=None, pinit=None, warm=None, verbose=0,
                verbose_interval=10, callback=None, on_collapse="raise",
                freeze=(), missing="raise") -> MixtureFit:
    """EM on a source; each iteration is one pass (the fused C++ E-step + M-step statistics).

    `warm` = (parameters, lower bound) continues a previous fit (one run, no
    initialisation). Stops when the lower bound changes by less than `tol`.

    `freeze` (names among "weights", "means", "covariances", whose `winit` /
    `minit` / `pinit` are given) keeps those parameters at their initial
    values: a restricted M-step, so the lower bound stays monotone.
    ``on_collapse="reseed"``: a component whose covariance becomes singular
    is re-initialised (:func:`reseed_components`) and EM goes on; the lower
    bound is monotone from each re-seed on. More than :data:`MAX_RESEEDS` in
    one initialisation raise.
    ``missing="marginalize"``: NaN entries are missing at random; each pass is
    :func:`maxlik._kernels.em_missing_block` (observed-data likelihood, expected
    statistics), the M-step the same.
    """
    K_, ctype = n_components, covariance_type
    biggest = max(r1 - r0 for r0, r1 in source.block_bounds)
    check_em_memory(biggest, source.n_features, source.dtype, K_, ctype)  # every pass's size
    em_kernel = K.em_block
    if missing == "marginalize":
        em_kernel = K.em_missing_block
        K.check_em_missing_memory(source.n_features, K_)
    reseed = on_collapse == "reseed" and ctype != "tied"  # a tied collapse has no donor
    fixed = frozen_parameters(freeze, ctype, winit, minit, pinit)
    best = None
    max_lb = -np.inf
    for init in range(1 if warm is not None else n_init):
        t_init = time.time()
        if verbose:
            print(f"Initialization {init}")
        reseeded: list[int] = []
        reseed_its: list[int] = []
        if warm is None:
            params = initial_mixture_parameters(source, K_, ctype, reg_covar, init_params, rs,
                                                winit, minit, pinit, on_collapse, reseeded,
                                                missing=missing)
            lb = -np.inf
            if reseeded:
                reseed_its.append(0)
                if verbose:
                    print(f"  Re-seeded collapsed component(s) {reseeded} at initialization")
        else:
            params, lb = warm
        n_reseeds = len(reseeded)
        bounds: list[float] = []
        converged = False
        if max_iter == 0:
            best = MixtureFit(params, max_lb, [], 0, False, n_reseeds, reseed_its)
            continue
        t_iter = time.time()
        it = 0
        for it in range(1, max_iter + 1):
            prev = lb
            stats = source.map_reduce(em_kernel, params)
            new, collapsed = _mixture_update(stats, reg_covar, fixed, mark_collapsed=reseed)
            lb = stats.mean_log_likelihood
            bounds.append(lb)
            if collapsed:
                n_reseeds += len(collapsed)
                if n_reseeds > MAX_RESEEDS:
                    raise ValueError(
                        f"on_collapse='reseed' gave up after {n_reseeds - len(collapsed)} "
                        f"re-seeds: component {collapsed[0]} collapsed again at EM iteration "
                        f"{it}. The data probably hold a point mass (many identical rows), "
                        "which with reg_covar=0 has unbounded likelihood; increase reg_covar, "
                        "reduce n_components, or merge identical rows (counting them in "
                        f"sample_weight). (reg_covar is now {reg_covar:g}.)")
                donor_rows = source
                if missing == "marginalize":
                    # the worst-explained rows are judged with NaN filled by column means
                    donor_rows = _FilledSource(source, column_means_observed(source))
                new = reseed_components(donor_rows, new, collapsed, params, reg_covar,
                                        keep_weights="weights" in fixed,
                                        keep_means="means" in fixed)
                reseed_its.append(it)
                if verbose:
                    print(f"  Iteration {it}: re-seeded collapsed component(s) {collapsed} "
                          f"({n_reseeds} re-seeds so far)")
            params = new
            change = lb - prev
            if reseed_its and reseed_its[-1] == it - 1 and it > 1:
                change = np.inf  # the first bound of a re-seeded model: nothing to compare with
            if callback is not None:
                callback(it, lb)
            if verbose and it % verbose_interval == 0:
                if verbose == 1:
                    print(f"  Iteration {it}")
                else:
                    now = time.time()
                    print(f"  Iteration {it}\t time lapse {now - t_iter:.5f}s\t "
                          f"ll change {change:.5f}")
                    t_iter = now
            if abs(change) < tol and not collapsed:
                converged = True
                break
        if verbose:
            msg = "converged" if converged else "did not converge"
            if verbose == 1:
                print(f"Initialization {msg}.")
            else:
                print(f"Initialization {msg}. time lapse {time.time() - t_init:.5f}s\t "
                      f"lower bound {lb:.5f}.")
        if lb > max_lb or max_lb == -np.inf:
            max_lb = lb
            best = MixtureFit(params, lb, bounds, it, converged, n_reseeds, reseed_its)
    assert best is not None  # n_init >= 1
    return best


# ---- logistic regression -------------------------------------------------------------------

# Columns whose largest magnitude exceeds 2**16 are fitted in rescaled
# coordinates (such columns stall L-BFGS long before anything overflows:
# features ~1e10 gave all-zero coefficients). Only large columns: for tiny ones
# the reparametrisation would multiply the L2 penalty by 4**|e|.
_LOGISTIC_MAX_EXP = 16


def check_classes(classes):
    """The sorted class labels of y, or a ValueError saying what is wrong with them."""
    if classes.dtype.kind == "f":
        if not np.all(np.isfinite(classes)):
            raise ValueError("y contains NaN or infinity; class labels must be finite")
        if np.any(classes != np.round(classes)):
            raise ValueError(
                "Unknown label type: continuous. LogisticRegression needs class labels "
                "(integers or strings); for a continuous target use LinearRegression.")
    elif classes.dtype.kind not in "biuUSO":
        raise ValueError(f"Unknown label type: y has dtype {classes.dtype}")
    if classes.dtype.kind == "O":
        check_label_kinds(classes)
    if classes.shape[0] < 2:
        raise ValueError("LogisticRegression needs samples of at least 2 classes in y; got only "
                         f"one class: {classes[0]!r}")
    return classes


def _codes(classes):
    def encode(yb):
        return np.ascontiguousarray(np.searchsorted(classes, np.asarray(yb)), dtype=np.int64)
    return encode


def check_label_kinds(y):
    """Object-dtype labels must be all str or all int (np.unique cannot sort a mix)."""
    import numbers

    kinds = {type(v) for v in y}
    if any(not isinstance(v, (str, numbers.Integral)) for v in y) or len(kinds) > 1 and any(
            issubclass(k, str) for k in kinds):
        raise ValueError("Unknown label type: y must hold labels of one kind (str or int)")


@dataclass
class LogisticFit:
    classes: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    n_iter: int
    objective: float
    result: LbfgsResult  # the L-BFGS result (converged, message, grad)


def class_weights(class_weight, classes, source):
    """(weight per class code, weighted count per class code) from a dict {label: weight}
    or "balanced" (scikit-learn's ``n_eff / (n_classes * n_eff_c)``); None gives (None, None).

    The counts come from one pass over the targets and serve the caller's total too."""
    if class_weight is None:
        return None, None
    coded = source.derive(y=_codes(classes))
    counts = coded.map_reduce(K.class_weight_sums_block, classes.shape[0], with_y=True)
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(f"class_weight must be a dict, 'balanced' or None; got {class_weight!r}")
        if np.any(counts <= 0):
            missing = classes[counts <= 0].tolist()
            raise ValueError(f"class_weight='balanced': classes {missing} have zero total weight")
        return counts.sum() / (classes.shape[0] * counts), counts
    if not isinstance(class_weight, dict):
        raise TypeError(f"class_weight must be a dict, 'balanced' or None; got "
                        f"{type(class_weight).__name__}")
    cw = np.ones(classes.shape[0])
    known = {c.item() if hasattr(c, "item") else c for c in classes}
    unknown = [k for k in class_weight if k not in known]
    if unknown:
        raise ValueError(f"class_weight: the classes {unknown} are not in y's classes "
                         f"{classes.tolist()}")
    for k, v in class_weight.items():
        v = float(v)
        if not (np.isfinite(v) and v >= 0):
            raise ValueError(f"class_weight[{k!r}] must be finite and >= 0; got {v}")
        cw[int(np.searchsorted(classes, k))] = v
    return cw, counts


def fit_logistic(source, *, C, fit_intercept, max_iter, tol, class_weight=None,
                 x0=None) -> LogisticFit:
    """Penalised maximum likelihood by L-BFGS; each evaluation is one pass of the fused
    C++ cross-entropy over the blocks, the L2 penalty added once on the client.

    `class_weight` (dict / "balanced" / None) multiplies each row's weight by its
    class's; `x0` (n_out, D + fit_intercept) starts L-BFGS there (warm start)."""
    classes = check_classes(np.asarray(source.y_unique()))
    n, D = source.n_samples, source.n_features
    cw, counts = class_weights(class_weight, classes, source)
    S = source.weight_sum() if cw is None else float(np.dot(cw, counts))
    if not S > 0:
        raise ValueError("sample_weight must have at least one positive weight; all weights "
                         "are zero")
    if cw is None:
        src = source.derive(y=_codes(classes),
                            w=lambda w: np.ascontiguousarray(
                                (np.ones(n) if w is None else np.asarray(w, np.float64)) / S))
    else:
        def weigh(w, yb):
            yb = np.asarray(yb)
            base = np.ones(yb.shape[0]) if w is None else np.asarray(w, np.float64)
            return np.ascontiguousarray(base * cw[yb] / S)
        src = source.derive(y=_codes(classes), wy=weigh)
    l2 = 0.0 if math.isinf(C) else 1.0 / (C * S)
    n_out = 1 if classes.shape[0] == 2 else classes.shape[0]
    P = D + int(fit_intercept)

    def fun(theta):
        f, g = src.map_reduce(K.ce_block, theta, n_out, fit_intercept, with_y=True)
        if not l2:  # no penalty (C = inf): also no 0 * inf for huge trial W
            return f, g.ravel()
        W = theta.reshape(n_out, P)[:, :D]
        g[:, :D] += l2 * W
        with np.errstate(over="ignore"):  # a huge trial W: an infinite objective, rejected
            return f + 0.5 * l2 * float(np.sum(W * W)), g.ravel()

    # Columns of extreme magnitude: optimise over W'_j = W_j 2**e_j (exact).
    m = src.map_reduce(K.column_max_abs_block, merge=np.maximum)
    e = np.where(m > 2.0**_LOGISTIC_MAX_EXP,
                 np.minimum(np.frexp(m)[1].astype(np.int64) - 1, 1000), 0)
    pscale = None
    objective = fun
    if np.any(e):
        pscale = np.ones((n_out, P))
        pscale[:, :D] = np.ldexp(1.0, -e)
        pscale = pscale.ravel()

        def objective(theta):
            f, g = fun(theta * pscale)
            return f, g * pscale
    start = np.zeros(n_out * P)
    if x0 is not None and np.shape(x0) == (n_out, P):
        start = np.asarray(x0, np.float64).ravel()
        if pscale is not None:
            start = start / pscale
    res = minimize_lbfgs(objective, start, max_iter=max_iter, gtol=tol)
    theta = (res.x if pscale is None else res.x * pscale).reshape(n_out, P)
    intercept = theta[:, D].copy() if fit_intercept else np.zeros(n_out)
    return LogisticFit(classes, np.ascontiguousarray(theta[:, :D]), intercept, res.n_iter,
                       float(res.fun), res)


# ---- least squares --------------------------------------------------------------------------

@dataclass
class LeastSquaresFit:
    """Weighted least squares in the units X 2**-ex, y_t 2**-ey_t (ex = ey = 0 for ordinary data)."""

    beta: np.ndarray       # (D, T)
    intercept: np.ndarray  # (T,)
    rss: np.ndarray        # (T,)
    rank: int
    singular_values: np.ndarray
    n_eff: float
    ex: int
    ey: np.ndarray
    # R factor (D, D) of the weighted, centred X and the means it was centred by
    # (scaled units): R^T R = X_c^T W X_c, so the OLS standard errors need no extra pass
    r_factor: np.ndarray | None = None
    x_mean: np.ndarray | None = None


def least_squares(source, fit_intercept) -> LeastSquaresFit:
    """min Σ w (y − x β − b)²: means, then the R factor of the centred rows by TSQR
    (QR per block, R factors merged in block order), then a small lstsq on R.

    Same minimiser, rank and singular values as ``np.linalg.lstsq`` on all rows
    (the singular values of R are those of the weighted, centred X).
    """
    D = source.n_features
    xmax, ymax = source.map_reduce(K.xy_max_abs_block, with_y=True,
                                   merge=lambda a, b: (max(a[0], b[0]), np.maximum(a[1], b[1])))
    ex = scale_exponent(float(xmax))
    ey = np.asarray(scale_exponent(ymax), dtype=np.int64).reshape(-1)
    if getattr(source, "sparse", False):
        return _least_squares_normal(source, fit_intercept, ex, ey)
    wsum, sx, sy = source.map_reduce(K.weighted_sums_block, ex, ey, with_y=True)
    T = sy.shape[0]
    if fit_intercept:
        x_mean, y_mean = sx / wsum, sy / wsum
    else:
        x_mean, y_mean = np.zeros(D), np.zeros(T)
    R = source.map_reduce(K.qr_block, ex, ey, x_mean, y_mean, with_y=True, merge=K.merge_r)
    if R.shape[0] < D + T:
        R = np.concatenate([R, np.zeros((D + T - R.shape[0], D + T))])
    rcond = np.finfo(np.float64).eps * max(source.n_samples, D)
    beta, _, rank, sv = np.linalg.lstsq(R[:D, :D], R[:D, D:], rcond=rcond)
    intercept = y_mean - x_mean @ beta
    rss = source.map_reduce(K.residual_block, ex, ey, beta, intercept, with_y=True)
    return LeastSquaresFit(beta, intercept, rss, int(rank), sv, float(wsum), ex, ey,
                           R[:D, :D].copy(), np.asarray(x_mean, np.float64))


def _least_squares_normal(source, fit_intercept, ex, ey) -> LeastSquaresFit:
    """Least squares for sparse X by the normal equations, centred implicitly.

    One pass accumulates the raw moments XᵀWX, XᵀWy, Xᵀw (C++ CSR kernels,
    :func:`maxlik._kernels.gram_block`); the intercept's centring is
    ``XᵀWX − S x̄ x̄ᵀ`` and ``XᵀWy − S x̄ ȳᵀ``, so no centred (dense) row
    exists. The minimum-norm solution comes from the eigendecomposition of the
    centred Gram matrix: eigenvalues at or below ``max(N, D) · eps · λ_max``
    (the rounding level of a Gram matrix, i.e. singular values below about
    ``sqrt(max(N, D) · eps)`` of the largest) count as zero, which sets
    ``rank``; the singular values are the square roots of the eigenvalues.
    For full-rank X this is the dense fit's minimiser, to within the squared
    condition number times eps. The D x D Gram matrix lives in memory.
    """
    D = source.n_features
    check_output_size((D, D), 8, "the n_features x n_features Gram matrix of sparse X (least "
                      "squares by the normal equations)", extra_bytes=2 * D * D * 8)
    wsum, sx, sy, A, B = source.map_reduce(K.gram_block, ex, ey, with_y=True)
    T = sy.shape[0]
    if fit_intercept:
        x_mean, y_mean = sx / wsum, sy / wsum
        A = A - wsum * np.outer(x_mean, x_mean)
        B = B - wsum * np.outer(x_mean, y_mean)
    else:
        x_mean, y_mean = np.zeros(D), np.zeros(T)
    lam, V = np.linalg.eigh(0.5 * (A + A.T))
    lam_max = max(float(lam[-1]), 0.0)
    keep = lam > np.finfo(np.float64).eps * max(source.n_samples, D) * lam_max
    Vk = V[:, keep]
    beta = Vk @ ((Vk.T @ B) / lam[keep][:, None])
    intercept = y_mean - x_mean @ beta
    rss = source.map_reduce(K.residual_block, ex, ey, beta, intercept, with_y=True)
    root = np.sqrt(np.clip(lam, 0.0, None))
    # M = sqrt(Λ) Vᵀ has Mᵀ M = X_cᵀ W X_c: it serves the standard errors as the R factor does
    return LeastSquaresFit(beta, intercept, rss, int(keep.sum()), root[::-1].copy(), float(wsum),
                           ex, ey, r_factor=root[:, None] * V.T, x_mean=x_mean)


# ---- incremental fitting (partial_fit) -----------------------------------------------------

def step_size(t: int, decay: float, offset: float) -> float:
    """Stepwise-EM step ρ_t = (t + offset)^(−decay) of update t = 1, 2, ... (ρ_0 = 1)."""
    return float((t + offset) ** (-decay))


def recentre(stats, ref):
    """The same statistics taken around `ref` (D,) instead of their own shift.

    Σγ(x−c) = Σγ(x−s) + N δ and Σγ(x−c)(x−c)ᵀ = Q + aδᵀ + δaᵀ + N δδᵀ with
    δ = s − c, a = Σγ(x−s).
    """
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
    return K.MixtureStatistics(ctype, shift, n, sum_x, sum_xx, stats.log_likelihood,
                               stats.sum_weight, stats.n_samples, stats.dtype)


def blend_statistics(old, new, rho):
    """(1−ρ)·old + ρ·new of statistics normalised to unit total weight."""
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
    return K.MixtureStatistics(new.covariance_type, new.shift, parts[0], parts[1], parts[2],
                               float(parts[3]), 1.0, n_seen, new.dtype)


def _labels_inertia(X, w, centers, labels=None):
    """(int32 labels, inertia) of the block X (dense or CSR) under float64 `centers`."""
    shift = np.ascontiguousarray(centers.mean(axis=0), dtype=X.dtype)
    labels = labels if labels is not None else np.empty(X.shape[0], dtype=np.int32)
    _, _, inertia, _ = K.lloyd_block(X, w, labels, shift,
                                     np.ascontiguousarray(centers - shift, dtype=X.dtype), False)
    return labels, inertia


@dataclass
class MiniBatchStep:
    """What one :func:`minibatch_kmeans_step` did."""

    centers: np.ndarray       # (K, D) float64, after the update (and reassignment)
    counts: np.ndarray        # (K,) float64 weight seen per centre
    inertia: float            # of the batch under the centres *before* the update
    labels: np.ndarray | None  # of the batch under the new centres (if asked)
    inertia_after: float | None
    n_reassigned: int = 0


def minibatch_kmeans_step(X, w, centers, counts, *, rs=None, reassign=False,
                          reassignment_ratio=0.0, verbose=0, after=True) -> MiniBatchStep:
    """One mini-batch k-means step (Sculley 2010; scikit-learn MiniBatchKMeans semantics).

    Every centre is the weighted mean of all rows ever assigned to it: with
    per-centre weight counts n_k and the batch's assigned sum S_k and weight
    W_k, c_k ← (n_k c_k + S_k) / (n_k + W_k) and n_k ← n_k + W_k.
    `X` is a dense or CSR (:class:`maxlik._kernels.CSRRows`) block, `w` None
    (unit weights) or the batch's weights.

    With `reassign` and ``reassignment_ratio > 0``, centres whose count is
    below ``reassignment_ratio * max(counts)`` (at most half the batch size
    of them) move to rows of the batch drawn uniformly without replacement
    from `rs`, and their counts become the smallest count of the others
    (scikit-learn's rule, so that they are not reassigned again at once).
    With `after`, also the labels and inertia of the batch under the new centres.
    """
    n = X.shape[0]
    shift = np.ascontiguousarray(centers.mean(axis=0), dtype=X.dtype)
    c_shift = np.ascontiguousarray(centers - shift, dtype=X.dtype)
    labels = np.empty(n, dtype=np.int32)
    S, W, before, _ = K.lloyd_block(X, w, labels, shift, c_shift, True)
    sums = S + W[:, None] * shift.astype(np.float64)   # Σ w x per centre
    hit = W > 0
    new = centers.copy()
    new[hit] = (centers[hit] * counts[hit, None] + sums[hit]) / (counts[hit] + W[hit])[:, None]
    counts = counts + W
    n_re = 0
    if reassign and reassignment_ratio > 0:
        move = counts < reassignment_ratio * counts.max()
        if move.sum() > 0.5 * n:  # at most half the batch becomes new centres
            move[np.argsort(counts, kind="stable")[int(0.5 * n):]] = False
        n_re = int(move.sum())
        if n_re:
            rows = rs.choice(n, replace=False, size=n_re)
            if verbose:
                print(f"[MiniBatchKMeans] Reassigning {n_re} cluster centers.")
            picked = X.take(rows) if K.is_csr_block(X) else X[rows]
            new[move] = np.asarray(picked, dtype=np.float64)
            counts[move] = np.min(counts[~move])
    labels_after = inertia_after = None
    if after:
        labels_after, inertia_after = _labels_inertia(X, w, new, labels)
    return MiniBatchStep(new, counts, float(before), labels_after, inertia_after, n_re)


def _minibatch_initial_centers(source, init, n_clusters, init_size, rs):
    """Initial centres (float64, X units) from `init_size` rows drawn uniformly with
    replacement (all rows if init_size >= n), as scikit-learn's MiniBatchKMeans."""
    n = source.n_samples
    sub = source
    if init_size < n:
        idx = rs.randint(0, n, init_size)
        xb, wb = _take_block(source, idx)
        sub = make_block_source(source, xb, wb)
    return initial_centers(sub, init, n_clusters, rs)


def _take_block(source, idx):
    """Rows `idx` (any order, repeats allowed) and their weights, as one in-memory block
    (CSR rows for a sparse source)."""
    fn = getattr(source, "take_block", None)
    if fn is not None:
        return fn(idx)
    uniq, inv = np.unique(np.asarray(idx, dtype=np.int64), return_inverse=True)
    rows, w = source.take(uniq)
    inv = inv.reshape(-1)
    return (np.ascontiguousarray(np.asarray(rows)[inv], dtype=source.dtype),
            None if w is None else np.asarray(w)[inv])


def make_block_source(parent, xb, wb):
    """An in-memory source over one block (dense or CSR rows), e.g. rows taken from `parent`."""
    from ._sources import ArraySource, SparseSource

    if K.is_csr_block(xb):
        return SparseSource.from_rows(xb, wb, like=getattr(parent, "X", None))
    return ArraySource(np.ascontiguousarray(xb), None, wb)


def initial_centers(source, init, n_clusters, rs):
    """Initial k-means centres (float64, in X's units) over all rows of `source`, in the
    coordinates fit_kmeans uses (centred dense rows, uncentred sparse ones; scaled near
    the float limits)."""
    dtype = source.dtype
    summary = column_summary(source)
    e = scale_exponent(float(np.max(summary.max_abs)), dtype)
    shift = np.ascontiguousarray(np.ldexp(summary.mean, -e), dtype=dtype)
    if getattr(source, "sparse", False):
        shift = np.zeros_like(shift)
    centers = _init_centroids(source, shift, 2.0**-e, init, n_clusters, rs)
    return np.ldexp(centers.astype(np.float64) + shift, e)


@dataclass
class MiniBatchKMeansFit:
    cluster_centers: np.ndarray  # float64
    counts: np.ndarray
    labels: np.ndarray | None
    inertia: float
    n_steps: int
    n_iter: int
    n_since_last_reassign: int


def fit_minibatch_kmeans(source, n_clusters, *, init, n_init, max_iter, batch_size, tol,
                         max_no_improvement, init_size, reassignment_ratio, rs, verbose=0,
                         compute_labels=True) -> MiniBatchKMeansFit:
    """Mini-batch k-means (scikit-learn's MiniBatchKMeans.fit, same random draws).

    `n_init` initialisations on `init_size` random rows each, the one of least
    inertia on a validation sample of `init_size` rows kept; then
    ``max_iter * n // batch_size`` steps of :func:`minibatch_kmeans_step` on
    batches drawn with replacement with probability ∝ sample_weight (fed with
    unit weights), stopping early when the summed squared centre move is
    within `tol` (absolute) or the exponentially weighted average of the
    per-row batch inertia has not improved for `max_no_improvement` steps.
    """
    n = source.n_samples
    weights = source.read_weights(0, n)
    val_idx = rs.randint(0, n, init_size)
    xv, wv = _take_block(source, val_idx)
    wv = None if wv is None else np.ascontiguousarray(wv, dtype=source.dtype)
    best, best_inertia = None, None
    for k in range(n_init):
        if verbose:
            print(f"Init {k + 1}/{n_init} with method {init if isinstance(init, str) else 'array'}")
        centers = _minibatch_initial_centers(source, init, n_clusters, init_size, rs)
        _, inertia = _labels_inertia(xv, wv, centers)
        if verbose:
            print(f"Inertia for init {k + 1}/{n_init}: {inertia}")
        if best_inertia is None or inertia < best_inertia:
            best, best_inertia = centers, inertia
    assert best is not None  # n_init >= 1
    centers = best
    counts = np.zeros(n_clusters)
    ewa = ewa_min = None
    no_improvement = 0
    since = 0
    n_steps = (max_iter * n) // batch_size
    p = weights / weights.sum()
    i = -1
    for i in range(n_steps):
        idx = rs.choice(n, batch_size, p=p, replace=True)
        xb, _ = _take_block(source, idx)
        since += batch_size
        reassign = bool((counts == 0).any()) or since >= 10 * n_clusters
        if reassign:
            since = 0
        step = minibatch_kmeans_step(xb, None, centers, counts, rs=rs, reassign=reassign,
                                     reassignment_ratio=reassignment_ratio, verbose=verbose,
                                     after=False)
        moved = float(np.sum((step.centers - centers) ** 2)) if tol > 0 else 0.0
        centers, counts = step.centers, step.counts
        # early stopping (scikit-learn's rule): the first step's inertia is that of the init
        batch_inertia = step.inertia / batch_size
        if i == 0:
            if verbose:
                print(f"Minibatch step 1/{n_steps}: mean batch inertia: {batch_inertia}")
            continue
        if ewa is None:
            ewa = batch_inertia
        else:
            alpha = min(batch_size * 2.0 / (n + 1), 1.0)
            ewa = ewa * (1 - alpha) + batch_inertia * alpha
        if verbose:
            print(f"Minibatch step {i + 1}/{n_steps}: mean batch inertia: {batch_inertia}, "
                  f"ewa inertia: {ewa}")
        if tol > 0.0 and moved <= tol:
            if verbose:
                print(f"Converged (small centers change) at step {i + 1}/{n_steps}")
            break
        if ewa_min is None or ewa < ewa_min:
            no_improvement, ewa_min = 0, ewa
        else:
            no_improvement += 1
        if max_no_improvement is not None and no_improvement >= max_no_improvement:
            if verbose:
                print(f"Converged (lack of improvement in inertia) at step {i + 1}/{n_steps}")
            break
    n_done = i + 1
    labels, inertia = None, None
    if compute_labels:
        cd = centers.astype(source.dtype).astype(np.float64)
        shift = np.ascontiguousarray(cd.mean(axis=0), dtype=source.dtype)
        c_shift = np.ascontiguousarray(cd - shift, dtype=source.dtype)
        buf = source.labels_buffer()  # None for dask: lazy labels below
        per_block = lambda j, r0, r1: ((buf[r0:r1] if buf is not None else None),)  # noqa: E731
        _, _, inertia, _ = source.map_reduce(K.lloyd_block, shift, c_shift, False,
                                             per_block=per_block)
        labels = buf if buf is not None else source.row_output(
            K.lloyd_labels, shift, c_shift, 1.0, dtype=np.int32)
    else:
        inertia = (ewa if ewa is not None else 0.0) * float(weights.sum())
    return MiniBatchKMeansFit(centers, counts, labels, float(inertia), n_done,
                              int(np.ceil(n_done * batch_size / n)), since)
