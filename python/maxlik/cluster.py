"""k-means clustering: hard-assignment EM with a C++ Lloyd iteration.

k-means is the zero-variance limit of a Gaussian mixture with shared
spherical covariance: the E-step assigns each row to its nearest centre
(a hard responsibility) and the M-step sets each centre to the weighted mean
of its rows, which maximises the complete-data likelihood (Bishop PRML 9.1).
"""
from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from . import _core, _streaming
from . import exceptions
from ._base import BaseEstimator, check_is_fitted
from ._validation import (
    FloatRangeError,
    as_float_array,
    check_bool,
    check_dense,
    check_float,
    check_int,
    check_output_size,
    check_random_state,
    check_sample_weight,
    max_abs,
    scale_exponent,
)

__all__ = ["KMeans", "kmeans_plusplus"]

# Rows per chunk for the rare numpy fallbacks (empty-cluster relocation), so
# that they never allocate more than a few MB at a time.
_CHUNK = 1 << 16


def _feature_names(X):
    """Column names of a DataFrame-like X if they are all strings, else None."""
    cols = getattr(X, "columns", None)
    if cols is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(cols), dtype=object)
    if len(names) and all(isinstance(c, str) for c in names):
        return names
    return None


def _sq_distances(X, shift, centers, scale=1.0):
    """Squared Euclidean distances (n_samples, n_centers) of the rows ``X * scale - shift``
    to `centers`, direct form, in C++."""
    return _core.kmeans_sq_distances(X, shift, centers, scale)


def _scale_exponent(dtype, *arrays) -> int:
    """e such that the data spanning `arrays` are handled as X * 2**-e (0: ordinary range;
    see maxlik._validation.scale_exponent)."""
    return scale_exponent(max_abs(*arrays), dtype)


def _scaled_inertia(inertia, e: int, name="X") -> float:
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


def _scaled_mean(X, scale):
    """Column means of X * scale (float64), by the Lloyd kernel with one centre at 0:
    its double sums of the scaled rows cannot overflow where X.mean() would."""
    d = X.shape[1]
    labels = np.empty(X.shape[0], dtype=np.int32)
    S, W, _ = _core.kmeans_lloyd_step(X, np.zeros(d, X.dtype), np.zeros((1, d), X.dtype), None,
                                      labels, True, scale)
    return S[0] / W[0]


_PP_BLOCK = 65536  # rows per block in k-means++ seeding


def _kmeans_plusplus_shifted(X, shift, n_clusters, sample_weight, random_state, n_local_trials=None,
                             scale=1.0):
    """Greedy k-means++ on X * scale - shift; returns (centres in those coordinates, indices).

    The sequence of random draws is the one scikit-learn uses, so the same
    RandomState gives the same seeds (up to rounding in near-ties).
    """
    n_samples = X.shape[0]
    dtype = X.dtype
    if n_local_trials is None:
        # Arthur & Vassilvitskii (2007) suggest O(log k) local trials.
        n_local_trials = 2 + int(np.log(n_clusters))
    w = sample_weight
    centers = np.empty((n_clusters, X.shape[1]), dtype=dtype)
    indices = np.full(n_clusters, -1, dtype=np.intp)
    first = random_state.choice(n_samples, p=w / w.sum())
    centers[0] = X[first] * scale - shift
    indices[0] = first
    closest = np.ascontiguousarray(_sq_distances(X, shift, centers[:1], scale)[:, 0])
    potential = closest @ w
    for c in range(1, n_clusters):
        # Sample candidates with probability proportional to w * D(x)^2.
        rand_vals = random_state.uniform(size=n_local_trials) * potential
        candidates = np.searchsorted(np.cumsum(w * closest), rand_vals)
        np.clip(candidates, None, n_samples - 1, out=candidates)
        cand_centers = np.ascontiguousarray(X[candidates] * scale - shift, dtype=dtype)
        # Potentials of the candidates in row blocks (no N x n_local_trials
        # matrix, so seeding needs O(N) memory), then the new closest
        # distances for the chosen candidate only.
        potentials = np.zeros(len(candidates), dtype=np.float64)
        for r0 in range(0, n_samples, _PP_BLOCK):
            sl = slice(r0, r0 + _PP_BLOCK)
            dist = _sq_distances(X[sl], shift, cand_centers, scale)
            np.minimum(dist, closest[sl, None], out=dist)
            potentials += w[sl] @ dist
        best = int(np.argmin(potentials))
        potential = potentials[best]
        for r0 in range(0, n_samples, _PP_BLOCK):
            sl = slice(r0, r0 + _PP_BLOCK)
            np.minimum(closest[sl],
                       _sq_distances(X[sl], shift, cand_centers[best:best + 1], scale)[:, 0],
                       out=closest[sl])
        centers[c] = cand_centers[best]
        indices[c] = candidates[best]
    return centers, indices


def kmeans_plusplus(X, n_clusters, *, sample_weight=None, random_state=None, n_local_trials=None):
    """Choose initial k-means centres by greedy k-means++ seeding.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
    n_clusters : int
        Number of centres to choose.
    sample_weight : array_like of shape (n_samples,), optional
        Row weights (the sampling probability is proportional to weight times
        squared distance).
    random_state : None, int, RandomState or Generator
    n_local_trials : int, optional
        Candidates tried per centre; default ``2 + int(log(n_clusters))``.

    Returns
    -------
    centers : ndarray of shape (n_clusters, n_features)
    indices : ndarray of shape (n_clusters,)
        Rows of X chosen as centres.

    Raises
    ------
    ValueError
        If n_clusters exceeds the number of rows, or X is not finite.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import kmeans_plusplus
    >>> X = np.array([[0.0, 0.0], [0.1, 0.0], [10.0, 10.0], [10.1, 10.0]])
    >>> centers, idx = kmeans_plusplus(X, 2, random_state=0)
    >>> sorted(int(i) // 2 for i in idx)
    [0, 1]
    """
    X = as_float_array(X, "X", ndim=2, finite=True, min_rows=1)
    n_clusters = check_int(n_clusters, "n_clusters", min=1, max=X.shape[0])
    if n_local_trials is not None:
        n_local_trials = check_int(n_local_trials, "n_local_trials", min=1)
    w = check_sample_weight(sample_weight, X.shape[0], dtype=X.dtype)
    rs = check_random_state(random_state)
    e = _scale_exponent(X.dtype, X)
    scale = 2.0**-e
    shift = X.mean(axis=0) if e == 0 else _scaled_mean(X, scale).astype(X.dtype)
    centers, idx = _kmeans_plusplus_shifted(X, shift, n_clusters, w, rs, n_local_trials, scale)
    return X[idx].copy(), idx


def _is_same_clustering(labels1, labels2, n_clusters):
    """True if the labelings are equal up to a permutation of the labels."""
    pairs = np.unique(np.stack([labels1, labels2], axis=1), axis=0)
    # Same clustering <=> each label of labels1 meets exactly one label of labels2.
    return len(np.unique(pairs[:, 0])) == len(pairs)


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


def _column_variance(X, mean, block=65536, scale=1.0):
    """Per-column variance (1/n) of X * scale in row blocks: np.var(X, axis=0) without
    its N x D temporary, so fitting adds O(block x D) memory, not O(N x D)."""
    acc = np.zeros(X.shape[1], dtype=np.float64)
    for start in range(0, X.shape[0], block):
        dev = X[start:start + block] * scale - mean
        acc += np.einsum("ij,ij->j", dev, dev, dtype=np.float64)
    return acc / max(X.shape[0], 1)


class KMeans(BaseEstimator):
    """k-means clustering (Lloyd's algorithm in C++), scikit-learn compatible.

    Minimises the inertia ``sum_n w_n ||x_n - c_label(n)||^2`` by alternating
    nearest-centre assignment (E-step) and weighted means (M-step). From the
    same initial centres it gives the same labels, centres and inertia as
    ``sklearn.cluster.KMeans`` (up to rounding). Results do not depend on
    the number of threads (see :func:`maxlik.set_num_threads`).

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    init : {"k-means++", "random"}, callable or array_like of shape (n_clusters, n_features), default="k-means++"
        "k-means++": greedy k-means++ seeding (same random draws as
        scikit-learn); "random": n_clusters rows drawn without replacement
        with probability proportional to sample_weight; an array: the initial
        centres; a callable ``init(X, n_clusters, random_state=rs)`` returning
        centres.
    n_init : "auto" or int, default="auto"
        Number of initialisations; the run with the lowest inertia is kept.
        "auto" means 1 for "k-means++" or an array, 10 otherwise.
    max_iter : int, default=300
        Maximum number of Lloyd iterations per initialisation.
    tol : float, default=1e-4
        Convergence when the summed squared centre shift is at most
        ``tol * mean(var(X, axis=0))`` (scikit-learn's semantics); iteration
        also stops when the labels no longer change. ``tol=0`` runs until
        the labels are stable or max_iter.
    verbose : int, default=0
        Print the inertia per iteration.
    random_state : None, int, RandomState or Generator
        Seeds the initialisation.
    copy_x : bool, default=True
        Accepted for scikit-learn compatibility; X is never modified.
    algorithm : {"lloyd", "elkan"}, default="lloyd"
        Accepted for compatibility; Lloyd's algorithm is always used.
    block_size : int, optional
        Rows per block when X is out of core (``np.memmap``, HDF5, zarr);
        default about 16 MB of rows. A ``dask.array`` is fitted on the Dask
        workers (:mod:`maxlik.dask`). Both initialise from a random subsample
        of at most 100 000 rows unless `init` is an array.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,), int32
    inertia_ : float
        Weighted sum of squared distances of the rows to their centre.
    n_iter_ : int
        Lloyd iterations of the kept run.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names (a DataFrame).

    Notes
    -----
    Empty clusters are relocated as in scikit-learn: each takes the row
    farthest from its current centre. Distances in the assignment step use
    ``||x||^2 - 2 x.c + ||c||^2`` on mean-centred data (the dot products as a
    small blocked GEMM); the inertia uses the direct form and is never
    negative.

    Finite data of any magnitude give finite results or an error, never
    inf / NaN: data whose largest magnitude is beyond ``2**400`` or below
    ``2**-400`` (float32: ``2**40`` / ``2**-30``) are clustered in the
    coordinates ``X * 2**-e`` (a power of two, so exact: the labels and
    centres are those of the unscaled data) without a copy of X, so squared
    distances do not overflow. An inertia (or a distance from
    :meth:`transform`) beyond the float64 range raises ValueError saying to
    rescale the data. This covers in-memory X; out-of-core and dask input
    raise that ValueError instead of rescaling.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import KMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> km = KMeans(n_clusters=2, init=np.array([[1.0, 2.0], [10.0, 2.0]]), n_init=1).fit(X)
    >>> km.labels_
    array([0, 0, 0, 1, 1, 1], dtype=int32)
    >>> km.cluster_centers_
    array([[ 1.,  2.],
           [10.,  2.]])
    >>> float(km.inertia_)
    16.0
    >>> km.predict([[0, 0], [12, 3]])
    array([0, 1], dtype=int32)
    """

    _estimator_type = "clusterer"

    def __init__(self, n_clusters=8, *, init="k-means++", n_init="auto", max_iter=300, tol=1e-4,
                 verbose=0, random_state=None, copy_x=True, algorithm="lloyd", block_size=None):
        self.n_clusters = n_clusters
        self.init = init
        self.n_init = n_init
        self.max_iter = max_iter
        self.tol = tol
        self.verbose = verbose
        self.random_state = random_state
        self.copy_x = copy_x
        self.algorithm = algorithm
        self.block_size = block_size

    # ------------------------------------------------------------------ checks
    def _check_params(self):
        n_clusters = check_int(self.n_clusters, "n_clusters", min=1)
        max_iter = check_int(self.max_iter, "max_iter", min=1)
        tol = check_float(self.tol, "tol", min=0.0)
        verbose = check_int(int(self.verbose) if isinstance(self.verbose, (bool, np.bool_))
                            else self.verbose, "verbose", min=0)
        check_bool(self.copy_x, "copy_x")
        if not isinstance(self.algorithm, str) or self.algorithm not in ("lloyd", "elkan"):
            raise ValueError(f"algorithm must be 'lloyd' or 'elkan'; got {self.algorithm!r}")
        init = self.init
        if isinstance(init, str):
            if init not in ("k-means++", "random"):
                raise ValueError(
                    f"init must be 'k-means++', 'random', a callable or an array of shape "
                    f"(n_clusters, n_features); got {init!r}")
        elif not callable(init):
            init = as_float_array(init, "init", ndim=2, finite=True)
        if isinstance(self.n_init, str):
            if self.n_init != "auto":
                raise ValueError(f"n_init must be 'auto' or a positive integer; got {self.n_init!r}")
            n_init = 10 if (callable(init) or (isinstance(init, str) and init == "random")) else 1
        else:
            n_init = check_int(self.n_init, "n_init", min=1)
        if isinstance(init, np.ndarray) and n_init != 1:
            warnings.warn(
                f"Explicit initial center position passed: performing only one init in "
                f"KMeans instead of n_init={n_init}.", RuntimeWarning, stacklevel=3)
            n_init = 1
        return n_clusters, max_iter, tol, verbose, init, n_init

    @staticmethod
    def _as_2d(X, dtype=None):
        X = as_float_array(X, "X", dtype=dtype, finite=True)
        if X.ndim == 1:
            raise ValueError(
                f"X must be 2-D (n_samples, n_features); got a 1-D array of shape {X.shape}. "
                "Reshape your data with X.reshape(-1, 1) if it has a single feature or "
                "X.reshape(1, -1) if it is a single sample.")
        if X.ndim != 2:
            raise ValueError(f"X must be 2-D (n_samples, n_features); got a {X.ndim}-D array "
                             f"of shape {X.shape}")
        return X

    def _validate_X(self, X, reset):
        check_dense(X, "X")
        names = _feature_names(X)
        if reset:
            X = self._as_2d(X)
            if X.shape[0] < 1:
                raise ValueError(f"X has 0 sample(s) (shape={X.shape}) while a minimum of 1 "
                                 "is required.")
            if X.shape[1] < 1:
                raise ValueError(f"X has 0 feature(s) (shape={X.shape}) while a minimum of 1 "
                                 "is required.")
            self.n_features_in_ = X.shape[1]
            if names is not None:
                self.feature_names_in_ = names
            elif hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            return X
        check_is_fitted(self, "cluster_centers_")
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is None:
            warnings.warn(f"X has feature names, but {type(self).__name__} was fitted without "
                          "feature names", UserWarning, stacklevel=3)
        elif names is None and fitted is not None:
            warnings.warn(f"X does not have valid feature names, but {type(self).__name__} was "
                          "fitted with feature names", UserWarning, stacklevel=3)
        elif names is not None and (len(names) != len(fitted) or np.any(names != fitted)):
            raise ValueError("The feature names should match those that were passed during fit; "
                             f"got {list(names)}, expected {list(fitted)}")
        X = self._as_2d(X, dtype=self.cluster_centers_.dtype)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        return X

    # ---------------------------------------------------------------- core loop
    def _init_centroids(self, X, shift, init, n_clusters, w, rs, scale=1.0):
        """Initial centres in the coordinates X * scale - shift."""
        if isinstance(init, str) and init == "k-means++":
            centers, _ = _kmeans_plusplus_shifted(X, shift, n_clusters, w, rs, scale=scale)
        elif isinstance(init, str) and init == "random":
            seeds = rs.choice(X.shape[0], size=n_clusters, replace=False, p=w / w.sum())
            centers = X[seeds] * scale - shift
        elif callable(init):
            centers = as_float_array(init(X, n_clusters, random_state=rs), "init(X) result",
                                     ndim=2, dtype=X.dtype, finite=True)
            self._check_center_shape(centers, X, n_clusters)
            centers = centers * scale - shift
        else:
            centers = init * scale - shift
        return np.ascontiguousarray(centers, dtype=X.dtype)

    @staticmethod
    def _check_center_shape(centers, X, n_clusters):
        if centers.shape != (n_clusters, X.shape[1]):
            raise ValueError(
                f"The shape of the initial centers {centers.shape} does not match "
                f"(n_clusters, n_features) = ({n_clusters}, {X.shape[1]})")

    @staticmethod
    def _m_step(X, shift, w, centers_old, labels, S, W, scale=1.0):
        """New centres from the statistics, relocating empty clusters like scikit-learn."""
        empty = np.flatnonzero(W == 0)
        relocated = False
        if empty.size:
            # Squared distance of every row to its assigned (old) centre.
            dist = np.empty(X.shape[0], dtype=np.float64)
            for r0 in range(0, X.shape[0], _CHUNK):
                sl = slice(r0, r0 + _CHUNK)
                diff = (X[sl] * scale - shift) - centers_old[labels[sl]]
                dist[sl] = np.einsum("ij,ij->i", diff, diff)
            if dist.max() > 0:
                relocated = True
                n_empty = empty.size
                far = np.argpartition(dist, -n_empty)[:-n_empty - 1:-1]
                rows = (X[far] * scale - shift).astype(np.float64)
                weights = w[far] if w is not None else np.ones(n_empty)
                _move_rows(S, W, empty, rows, labels[far], weights)
        return _centres(S, W).astype(X.dtype), relocated

    def _lloyd(self, X, shift, w_kernel, w, centers, max_iter, tol, verbose, scale=1.0):
        n = X.shape[0]
        labels = np.full(n, -1, dtype=np.int32)
        labels_old = labels.copy()
        strict = False
        relocated = False
        inertia = None
        for i in range(max_iter):
            S, W, inertia = _core.kmeans_lloyd_step(X, shift, centers, w_kernel, labels, True,
                                                    scale)
            new, relocated = self._m_step(X, shift, w, centers, labels, S, W, scale)
            if verbose:
                print(f"Iteration {i}, inertia {inertia}.")
            shift_sq = float(np.sum((new.astype(np.float64) - centers) ** 2))
            centers = new
            if np.array_equal(labels, labels_old):
                # Same labels => the new centres equal the previous ones, so
                # the labels and inertia just computed are final.
                if verbose:
                    print(f"Converged at iteration {i}: strict convergence.")
                strict = True
                break
            if shift_sq <= tol:
                if verbose:
                    print(f"Converged at iteration {i}: center shift {shift_sq} within "
                          f"tolerance {tol}.")
                break
            labels_old[:] = labels
        if not strict or relocated:
            # E-step with the final centres so that labels_ matches them.
            _, _, inertia = _core.kmeans_lloyd_step(X, shift, centers, w_kernel, labels, False,
                                                    scale)
        return labels, float(inertia), centers, i + 1

    # ------------------------------------------------------------------ API
    def fit(self, X, y=None, sample_weight=None):
        """Compute k-means clustering.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative row weights; integer weights equal repeated rows.
            Not used by the initialisation when init is an array or callable.

        Returns
        -------
        self : KMeans

        Raises
        ------
        ValueError
            Bad hyper-parameters, non-finite X, fewer rows than n_clusters,
            initial centres of the wrong shape, or an inertia beyond the
            float64 range (finite X near the float64 limits; see Notes).
        TypeError
            Non-numeric X or wrongly typed hyper-parameters.
        """
        if _streaming.is_streamed(X):  # memmap / HDF5 / zarr / dask: row blocks
            return _streaming.fit_kmeans(self, X, sample_weight)
        n_clusters, max_iter, tol, verbose, init, n_init = self._check_params()
        X = self._validate_X(X, reset=True)
        n, d = X.shape
        if n < n_clusters:
            raise ValueError(f"n_samples={n} should be >= n_clusters={n_clusters}.")
        w = check_sample_weight(sample_weight, n, dtype=X.dtype)
        w_kernel = None if sample_weight is None else w
        if isinstance(init, np.ndarray):
            init = np.ascontiguousarray(init, dtype=X.dtype)
            self._check_center_shape(init, X, n_clusters)
        rs = check_random_state(self.random_state)
        # Work in mean-centred coordinates (the kernels subtract on the fly):
        # the dot-product distance form then loses far less to cancellation.
        # Data near the float64 (float32) limits: also scaled by 2**-e on the fly.
        e = _scale_exponent(X.dtype, X)
        scale = 2.0**-e
        mean = X.mean(axis=0) if e == 0 else _scaled_mean(X, scale)
        shift = np.ascontiguousarray(mean, dtype=X.dtype)
        tol_abs = (float(np.mean(_column_variance(X, shift, scale=scale))) * tol
                   if tol > 0 else 0.0)

        best = None
        for _ in range(n_init):
            centers = self._init_centroids(X, shift, init, n_clusters, w, rs, scale)
            if verbose:
                print("Initialization complete")
            labels, inertia, centers, n_iter = self._lloyd(
                X, shift, w_kernel, w, centers, max_iter, tol_abs, verbose, scale)
            # Prefer a lower inertia only if it is a different clustering
            # (not the same partition with permuted labels and rounding noise).
            if best is None or (inertia < best[1]
                                and not _is_same_clustering(labels, best[0], n_clusters)):
                best = (labels, inertia, centers, n_iter)

        labels, inertia, centers, n_iter = best
        distinct = len(np.unique(labels))
        if distinct < n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({distinct}) found smaller than n_clusters "
                f"({n_clusters}). Possibly due to duplicate points in X.",
                exceptions.ConvergenceWarning, stacklevel=2)
        inertia = _scaled_inertia(inertia, e)
        self.cluster_centers_ = np.ldexp(centers + shift, e).astype(X.dtype)
        self.labels_ = labels
        self.inertia_ = inertia
        self.n_iter_ = n_iter
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """One mini-batch k-means update from the batch `X` (MiniBatchKMeans semantics).

        Each centre moves to the weighted mean of all rows ever assigned to
        it (per-centre counts); the first call initialises from its batch (after
        :meth:`fit`: starts from the fitted centres). Sets ``labels_`` and
        ``inertia_`` of the batch under the updated centres. Unlike
        scikit-learn's MiniBatchKMeans, centres with small counts are not
        randomly reassigned.

        Parameters
        ----------
        X : array_like of shape (n_batch, n_features)
        y : ignored
        sample_weight : array_like of shape (n_batch,), optional

        Returns
        -------
        self : KMeans
        """
        return _streaming.partial_fit_kmeans(self, X, sample_weight)

    def _labels_inertia(self, X, sample_weight=None, need_inertia=True):
        centers = self.cluster_centers_
        e = _scale_exponent(centers.dtype, X, centers)  # 0 for data of ordinary range
        centers = np.ldexp(centers, -e).astype(centers.dtype) if e else centers
        shift = np.ascontiguousarray(centers.mean(axis=0), dtype=centers.dtype)
        labels = np.empty(X.shape[0], dtype=np.int32)
        w = None
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, X.shape[0], dtype=X.dtype)
        _, _, inertia = _core.kmeans_lloyd_step(X, shift, np.ascontiguousarray(centers - shift),
                                                w, labels, False, 2.0**-e)
        return labels, (_scaled_inertia(inertia, e) if need_inertia else None)

    def predict(self, X):
        """Index of the nearest centre for each row of X.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        if _streaming.is_streamed(X):  # lazy for dask, block by block for memmaps
            return _streaming.apply_blockwise(self, "predict", X)
        X = self._validate_X(X, reset=False)
        return self._labels_inertia(X, need_inertia=False)[0]

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit and return ``labels_``."""
        return self.fit(X, sample_weight=sample_weight).labels_

    def transform(self, X):
        """Euclidean distances from each row of X to every centre.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)

        Returns
        -------
        distances : ndarray of shape (n_samples, n_clusters)

        Raises
        ------
        MemoryError
            If the (n_samples, n_clusters) result cannot fit in memory (the
            message gives its size); raised before anything is allocated.
        ValueError
            A distance beyond the range of the centres' dtype (data near its
            limits: rescale the data).
        """
        if _streaming.is_streamed(X):
            return _streaming.apply_blockwise(self, "transform", X,
                                              n_out=self.cluster_centers_.shape[0])
        X = self._validate_X(X, reset=False)
        return self._transform(X)

    def _transform(self, X):
        centers = self.cluster_centers_
        check_output_size((X.shape[0], centers.shape[0]), centers.dtype.itemsize,
                          "KMeans.transform output (n_samples, n_clusters)")
        X = np.ascontiguousarray(X, dtype=centers.dtype)
        e = _scale_exponent(centers.dtype, X, centers)  # 0 for data of ordinary range
        zero = np.zeros(X.shape[1], dtype=centers.dtype)
        if e == 0:
            return np.sqrt(_sq_distances(X, zero, centers))
        c = np.ldexp(centers, -e).astype(centers.dtype)
        d = np.sqrt(_sq_distances(X, zero, c, 2.0**-e))
        with np.errstate(over="ignore"):
            d = np.ldexp(d, e).astype(centers.dtype)
        if not np.all(np.isfinite(d)):
            raise FloatRangeError(
                f"X: a distance to a centre exceeds the range of {centers.dtype} "
                f"(about {np.finfo(centers.dtype).max:.2g}), so it cannot be returned; rescale "
                "the data (e.g. divide X by a power of ten)")
        return d

    def fit_transform(self, X, y=None, sample_weight=None):
        """Fit and return the distances of X to the fitted centres."""
        if _streaming.is_streamed(X):
            return self.fit(X, sample_weight=sample_weight).transform(X)
        self.fit(X, sample_weight=sample_weight)
        return self._transform(as_float_array(X, "X", ndim=2, dtype=self.cluster_centers_.dtype))

    def score(self, X, y=None, sample_weight=None):
        """Minus the (weighted) inertia of X under the fitted centres."""
        X = self._validate_X(X, reset=False)
        return -self._labels_inertia(X, sample_weight)[1]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        return tags
