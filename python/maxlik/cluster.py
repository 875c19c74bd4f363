"""k-means clustering: hard-assignment EM with a C++ Lloyd iteration.

k-means is the zero-variance limit of a Gaussian mixture with shared
spherical covariance: the E-step assigns each row to its nearest centre
(a hard responsibility) and the M-step sets each centre to the weighted mean
of its rows, which maximises the complete-data likelihood (Bishop PRML 9.1).

The loop (Lloyd, k-means++ / random seeding, restarts, empty-cluster
relocation) is :func:`maxlik._engine.fit_kmeans`, one for every data source.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike

from . import _engine, _kernels as K, _sources
from . import exceptions
from ._base import BaseEstimator, check_is_fitted
from ._engine import scaled_inertia as _scaled_inertia
from ._validation import (
    FloatRangeError,
    as_float_array,
    check_bool,
    check_float,
    check_int,
    check_n_features,
    check_output_size,
    check_random_state,
    check_sample_weight,
    check_X,
    max_abs,
    scale_exponent,
)

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["KMeans", "MiniBatchKMeans", "kmeans_plusplus"]


def _feature_names(X):
    """Column names of a DataFrame-like X if they are all strings, else None."""
    cols = getattr(X, "columns", None)
    if cols is None or isinstance(X, np.ndarray):
        return None
    names = np.asarray(list(cols), dtype=object)
    if len(names) and all(isinstance(c, str) for c in names):
        return names
    return None


def kmeans_plusplus(X: ArrayLike, n_clusters: int, *, sample_weight: ArrayLike | None = None,
                    x_squared_norms: ArrayLike | None = None,
                    random_state: int | np.random.RandomState | np.random.Generator | None = None,
                    n_local_trials: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Choose initial k-means centres by greedy k-means++ seeding.

    The same seeding (:func:`maxlik._engine.kmeans_plusplus`) initialises
    :class:`KMeans` and the "kmeans" / "k-means++" initialisations of
    :class:`~maxlik.GaussianMixture`, for in-memory, out-of-core and Dask data
    alike; its random draws are scikit-learn's.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features)
    n_clusters : int
        Number of centres to choose.
    sample_weight : array_like of shape (n_samples,), optional
        Row weights (the sampling probability is proportional to weight times
        squared distance).
    x_squared_norms : array_like of shape (n_samples,), optional
        scikit-learn's precomputed ``||x||^2`` per row. Accepted (and checked
        for shape) for compatibility; maxlik's kernel measures distances from
        the centred rows directly, which is more accurate, so it does not use them.
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
    if sample_weight is not None:
        check_sample_weight(sample_weight, X.shape[0], dtype=X.dtype)
    if x_squared_norms is not None:
        xsn = as_float_array(x_squared_norms, "x_squared_norms", ndim=1)
        if xsn.shape != (X.shape[0],):
            raise ValueError(f"x_squared_norms must have shape ({X.shape[0]},) to match X; got "
                             f"shape {xsn.shape}")
    rs = check_random_state(random_state)
    source = _sources.ArraySource(X, None, sample_weight)
    summary = _engine.column_summary(source)
    e = scale_exponent(float(np.max(summary.max_abs)), X.dtype)
    shift = np.ascontiguousarray(np.ldexp(summary.mean, -e), dtype=X.dtype)
    _, idx = _engine.kmeans_plusplus(source, shift, 2.0**-e, n_clusters, rs, n_local_trials)
    return X[idx].copy(), idx


def _max_abs_of(X) -> float:
    """Largest |x| of a dense array or of the stored values of CSR rows."""
    return max_abs(X.values() if K.is_csr_block(X) else X)


def _as_rows(X, dtype=None) -> np.ndarray:
    """The one validator for k-means input: dense ``check_X`` or CSR rows (scipy.sparse X).

    Typed as an ndarray: :class:`maxlik._kernels.CSRRows` has the parts of one
    that the callers use (shape, dtype) and the kernels dispatch on it."""
    if _sources.is_sparse(X):
        return cast(np.ndarray, _sources.check_csr(X, dtype=dtype)[1])
    return check_X(X, dtype=dtype)


def _n_init(n_init, init, default):
    """scikit-learn's n_init: "auto" is 1 for k-means++ or an array, `default` otherwise."""
    if isinstance(n_init, str):
        if n_init != "auto":
            raise ValueError(f"n_init must be 'auto' or a positive integer; got {n_init!r}")
        return default if (callable(init) or (isinstance(init, str) and init == "random")) else 1
    return check_int(n_init, "n_init", min=1)


def _check_init(init):
    if isinstance(init, str):
        if init not in ("k-means++", "random"):
            raise ValueError(
                f"init must be 'k-means++', 'random', a callable or an array of shape "
                f"(n_clusters, n_features); got {init!r}")
        return init
    if callable(init):
        return init
    return as_float_array(init, "init", ndim=2, finite=True)


class _BaseKMeans(BaseEstimator):
    """What KMeans and MiniBatchKMeans share: validation, predict / transform / score."""

    _estimator_type = "clusterer"
    cluster_centers_: np.ndarray
    labels_: Any  # ndarray (N,) int32, or a lazy dask array

    def fit(self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the centres (defined by each subclass)."""
        raise NotImplementedError

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def _validate_X(self, X: ArrayLike, reset: bool) -> np.ndarray:
        """The one validator (``check_X``, or CSR rows for scipy.sparse X) plus the feature
        names of a DataFrame."""
        names = _feature_names(X)
        if reset:
            rows = _as_rows(X)
            check_n_features(self, rows.shape[1], reset=True)
            self._set_feature_names(names)
            return rows
        check_is_fitted(self, "cluster_centers_")
        self._check_feature_names(names)
        rows = _as_rows(X, dtype=self.cluster_centers_.dtype)
        check_n_features(self, rows.shape[1], reset=False)
        return rows

    def _set_feature_names(self, names):
        if names is not None:
            self.feature_names_in_ = names
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_

    def _check_feature_names(self, names):
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is None:
            warnings.warn(f"X has feature names, but {type(self).__name__} was fitted without "
                          "feature names", UserWarning, stacklevel=4)
        elif names is None and fitted is not None:
            warnings.warn(f"X does not have valid feature names, but {type(self).__name__} was "
                          "fitted with feature names", UserWarning, stacklevel=4)
        elif names is not None and (len(names) != len(fitted) or np.any(names != fitted)):
            raise ValueError("The feature names should match those that were passed during fit; "
                             f"got {list(names)}, expected {list(fitted)}")

    def _labels_inertia(self, X, sample_weight=None, need_inertia=True):
        centers = self.cluster_centers_
        e = scale_exponent(max(_max_abs_of(X), max_abs(centers)), centers.dtype)
        centers = np.ldexp(centers, -e).astype(centers.dtype) if e else centers
        shift = np.ascontiguousarray(centers.mean(axis=0), dtype=centers.dtype)
        labels = np.empty(X.shape[0], dtype=np.int32)
        w = None
        if sample_weight is not None:
            w = check_sample_weight(sample_weight, X.shape[0], dtype=X.dtype)
        _, _, inertia = K.lloyd_step(X, shift, np.ascontiguousarray(centers - shift), w, labels,
                                     False, 2.0**-e)
        return labels, (_scaled_inertia(inertia, e) if need_inertia else None)

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Index of the nearest centre for each row of X.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray of shape (n_samples,), int32
        """
        if _sources.is_streamed(X):  # lazy for dask, block by block for memmaps
            return _sources.apply_blockwise(self, "predict", X)
        X = self._validate_X(X, reset=False)
        return self._labels_inertia(X, need_inertia=False)[0]

    def fit_predict(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> np.ndarray:
        """Fit and return ``labels_``."""
        # labels_ is typed object by the engine (a lazy dask array for dask X)
        return cast(np.ndarray, self.fit(X, sample_weight=sample_weight).labels_)

    def transform(self, X: ArrayLike) -> np.ndarray:
        """Euclidean distances from each row of X to every centre.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix of shape (n_samples, n_features)

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
        if _sources.is_streamed(X):
            return _sources.apply_blockwise(self, "transform", X,
                                              n_out=self.cluster_centers_.shape[0])
        X = self._validate_X(X, reset=False)
        return self._transform(X)

    def _transform(self, X):
        centers = self.cluster_centers_
        check_output_size((X.shape[0], centers.shape[0]), centers.dtype.itemsize,
                          f"{type(self).__name__}.transform output (n_samples, n_clusters)")
        if not K.is_csr_block(X):
            X = np.ascontiguousarray(X, dtype=centers.dtype)
        e = scale_exponent(max(_max_abs_of(X), max_abs(centers)), centers.dtype)
        zero = np.zeros(X.shape[1], dtype=centers.dtype)
        if e == 0:
            return np.sqrt(K.sq_distances(X, zero, centers, 1.0))
        c = np.ldexp(centers, -e).astype(centers.dtype)
        d = np.sqrt(K.sq_distances(X, zero, c, 2.0**-e))
        with np.errstate(over="ignore"):
            d = np.ldexp(d, e).astype(centers.dtype)
        if not np.all(np.isfinite(d)):
            raise FloatRangeError(
                f"X: a distance to a centre exceeds the range of {centers.dtype} "
                f"(about {np.finfo(centers.dtype).max:.2g}), so it cannot be returned; rescale "
                "the data (e.g. divide X by a power of ten)")
        return d

    def fit_transform(self, X: ArrayLike, y: object = None,
                      sample_weight: ArrayLike | None = None) -> np.ndarray:
        """Fit and return the distances of X to the fitted centres."""
        if _sources.is_streamed(X):
            return self.fit(X, sample_weight=sample_weight).transform(X)
        self.fit(X, sample_weight=sample_weight)
        return self._transform(_as_rows(X, dtype=self.cluster_centers_.dtype))

    def get_feature_names_out(self, input_features: ArrayLike | None = None) -> np.ndarray:
        """Names of the `transform` output columns: ``<classname>0 ... <classname>{k-1}``.

        As scikit-learn's (class name, lower case, plus the column index);
        `input_features`, if given, must match the features seen in fit.
        """
        check_is_fitted(self, "cluster_centers_")
        if input_features is not None:
            names = np.asarray(input_features, dtype=object)
            fitted = getattr(self, "feature_names_in_", None)
            n_in = self.cluster_centers_.shape[1]  # = n_features_in_
            if names.ndim != 1 or names.shape[0] != n_in:
                raise ValueError(f"input_features should have length equal to number of features "
                                 f"({n_in}), got {names.shape[0] if names.ndim else 0}")
            if fitted is not None and not np.array_equal(names, fitted):
                raise ValueError("input_features is not equal to feature_names_in_")
        prefix = type(self).__name__.lower()
        return np.asarray([f"{prefix}{i}" for i in range(self.cluster_centers_.shape[0])],
                          dtype=object)

    def score(self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
              ) -> float:
        """Minus the (weighted) inertia of X under the fitted centres."""
        X = self._validate_X(X, reset=False)
        return -self._labels_inertia(X, sample_weight)[1]

    def _init_centroids(self, X, x_squared_norms=None, init="k-means++", random_state=None,
                        sample_weight=None, init_size=None, n_centroids=None):
        """scikit-learn's private initialiser, with its signature (its own tests call it).

        The initial centres of X (dense or sparse) by the engine's seeding, on
        `init_size` random rows if given; `x_squared_norms` is not used."""
        rows = _as_rows(X)
        n_clusters = self.n_clusters if n_centroids is None else n_centroids
        init = _check_init(init)
        rs = check_random_state(random_state)
        if init_size is not None and init_size >= rows.shape[0]:
            init_size = None
        centers = self._first_batch_centers(rows, sample_weight, init, n_clusters, init_size, rs)
        return centers.astype(rows.dtype)

    def _first_batch_centers(self, X, sample_weight, init, n_clusters, init_size, rs):
        """Initial centres (float64) of partial_fit from its first batch."""
        n, d = X.shape
        if n < n_clusters:
            raise ValueError(f"n_samples={n} should be >= n_clusters={n_clusters}: the first "
                             "batch of partial_fit initialises the centres")
        if isinstance(init, np.ndarray):
            init = np.ascontiguousarray(init, dtype=X.dtype)
            _engine.check_center_shape(init, d, n_clusters)
        source = _engine.make_block_source(None, X, sample_weight)
        if init_size is None:
            return _engine.initial_centers(source, init, n_clusters, rs)
        return _engine._minibatch_initial_centers(source, init, n_clusters, init_size, rs)


class KMeans(_BaseKMeans):
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
        workers (:mod:`maxlik.dask`). Every source runs the same engine with
        the same random draws, so the fit does not depend on where X lives.

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

    X may be a scipy.sparse matrix or array (CSR; CSC and other formats are
    converted to CSR, a copy, since the kernels read rows). Sparse rows run
    the C++ CSR kernels (``sparse.hpp``: ``||x||^2 - 2 x.c + ||c||^2`` over
    the stored values, in double) without centring, and give the result of
    the dense fit of the same matrix up to rounding; predict, transform and
    score accept sparse X too.

    Finite data of any magnitude give finite results or an error, never
    inf / NaN: data whose largest magnitude is beyond ``2**400`` or below
    ``2**-400`` (float32: ``2**40`` / ``2**-30``) are clustered in the
    coordinates ``X * 2**-e`` (a power of two, so exact: the labels and
    centres are those of the unscaled data) without a copy of X, so squared
    distances do not overflow. An inertia (or a distance from
    :meth:`transform`) beyond the float64 range raises ValueError saying to
    rescale the data. This holds for in-memory, out-of-core and dask input
    alike (the scale comes from the engine's first pass over the rows).

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

    def __init__(self, n_clusters: int = 8, *,
                 init: str | ArrayLike | Callable[..., Any] = "k-means++",
                 n_init: str | int = "auto", max_iter: int = 300, tol: float = 1e-4,
                 verbose: int = 0,
                 random_state: int | np.random.RandomState | np.random.Generator | None = None,
                 copy_x: bool = True, algorithm: str = "lloyd",
                 block_size: int | None = None) -> None:
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
        if self.algorithm == "elkan" and n_clusters == 1:
            warnings.warn("algorithm='elkan' doesn't make sense for a single cluster. Using "
                          "'lloyd' instead (maxlik always runs Lloyd's algorithm).",
                          RuntimeWarning, stacklevel=4)
        init = _check_init(self.init)
        n_init = _n_init(self.n_init, init, 10)
        if isinstance(init, np.ndarray) and n_init != 1:
            warnings.warn(
                f"Explicit initial center position passed: performing only one init in "
                f"KMeans instead of n_init={n_init}.", RuntimeWarning, stacklevel=4)
            n_init = 1
        return n_clusters, max_iter, tol, verbose, init, n_init

    # ------------------------------------------------------------------ API
    def fit(self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None) -> Self:
        """Compute k-means clustering.

        `X` may be an ndarray (or array_like), an ``np.memmap`` / HDF5 / zarr
        dataset (streamed in row blocks of `block_size` rows) or a
        ``dask.array``: all run the same engine (:func:`maxlik._engine.fit_kmeans`),
        initialisation included, so the same rows and `random_state` give the
        same clustering wherever they are stored.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix of shape (n_samples, n_features)
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
            Bad hyper-parameters, non-finite or complex X, fewer rows than
            n_clusters, initial centres of the wrong shape, or an inertia
            beyond the float64 range (finite X near the float64 limits; see Notes).
        TypeError
            Non-numeric X, or wrongly typed hyper-parameters.
        """
        n_clusters, max_iter, tol, verbose, init, n_init = self._check_params()
        names = _feature_names(X)
        source = _sources.make_source(X, None, sample_weight, block_size=self.block_size,
                                      accept_sparse=True)
        n, d = source.n_samples, source.n_features
        if n < n_clusters:
            raise ValueError(f"n_samples={n} should be >= n_clusters={n_clusters}.")
        source.positive_weights()
        if isinstance(init, np.ndarray):
            init = np.ascontiguousarray(init, dtype=source.dtype)
            _engine.check_center_shape(init, d, n_clusters)
        res = _engine.fit_kmeans(source, n_clusters, init=init, n_init=n_init,
                                 max_iter=max_iter, tol=tol,
                                 rs=check_random_state(self.random_state), verbose=verbose)
        if res.n_distinct < n_clusters:
            warnings.warn(
                f"Number of distinct clusters ({res.n_distinct}) found smaller than n_clusters "
                f"({n_clusters}). Possibly due to duplicate points in X.",
                exceptions.ConvergenceWarning, stacklevel=3)  # fit <- wrapper <- the caller
        check_n_features(self, d, reset=True)
        self._set_feature_names(names)
        self._n_init = n_init  # scikit-learn's resolved n_init (its tests read it)
        self.cluster_centers_ = res.cluster_centers
        self.labels_ = res.labels
        self.inertia_ = res.inertia
        self.n_iter_ = res.n_iter
        return self

    def partial_fit(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> Self:
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
        n_clusters, _, _, _, init, _ = self._check_params()
        fitted = hasattr(self, "cluster_centers_")
        state = getattr(self, "_minibatch_state", None)
        if state is not None and (not fitted or state[2] is not self.cluster_centers_):
            state = None  # fit() ran since: start again from its centres
        X = self._validate_X(X, reset=not fitted)
        n, d = X.shape
        w = check_sample_weight(sample_weight, n, dtype=X.dtype)
        if state is None and fitted:
            # after fit(): continue from the fitted centres with zero counts
            centers = np.asarray(self.cluster_centers_, dtype=np.float64)
            counts = np.zeros(n_clusters)
            self.n_steps_ = 0
        elif state is None:
            centers = self._first_batch_centers(X, sample_weight, init, n_clusters, None,
                                                check_random_state(self.random_state))
            counts = np.zeros(n_clusters)
            self.n_steps_ = 0
        else:
            centers, counts, _ = state
        step = _engine.minibatch_kmeans_step(X, None if sample_weight is None else w, centers,
                                             counts)
        self.cluster_centers_ = step.centers.astype(X.dtype)
        self._minibatch_state = (step.centers, step.counts, self.cluster_centers_)
        self.labels_ = step.labels
        # near the float64 limits: ValueError, not inf
        self.inertia_ = _scaled_inertia(step.inertia_after, 0)
        self.n_steps_ += 1
        return self


class MiniBatchKMeans(_BaseKMeans):
    """Mini-batch k-means (Sculley 2010) with scikit-learn 1.9's API, on maxlik's engine.

    Each step draws `batch_size` rows (with replacement, probability
    proportional to sample_weight), assigns them to their nearest centre with
    the C++ Lloyd kernel and moves every centre to the weighted mean of all
    rows ever assigned to it (:func:`maxlik._engine.minibatch_kmeans_step`,
    the step :meth:`KMeans.partial_fit` also takes). Same random draws as
    ``sklearn.cluster.MiniBatchKMeans``: the same `random_state` gives the
    same fit up to rounding.

    Parameters
    ----------
    n_clusters : int, default=8
    init : {"k-means++", "random"}, callable or array_like of shape (n_clusters, n_features), default="k-means++"
        As :class:`KMeans`, applied to `init_size` random rows.
    max_iter : int, default=100
        Passes over the data: at most ``max_iter * n_samples // batch_size`` steps.
    batch_size : int, default=1024
        Rows per mini-batch (at most n_samples).
    verbose : int, default=0
    compute_labels : bool, default=True
        Compute ``labels_`` and ``inertia_`` over all rows once fitting ends
        (otherwise ``inertia_`` is the smoothed batch inertia times the total weight).
    random_state : None, int, RandomState or Generator
    tol : float, default=0.0
        Stop when the summed squared centre move of a step is at most
        ``tol * mean(var(X, axis=0))``; 0 disables this test.
    max_no_improvement : int or None, default=10
        Stop after this many steps without improvement of the exponentially
        weighted average of the batch inertia; None disables it.
    init_size : int, optional
        Rows drawn for each initialisation (default ``3 * batch_size``, at
        least ``3 * n_clusters``, at most n_samples).
    n_init : "auto" or int, default="auto"
        Initialisations, the best by inertia on a validation sample of
        `init_size` rows; "auto" is 1 for "k-means++" or an array, 3 otherwise.
    reassignment_ratio : float, default=0.01
        Centres whose count falls below this fraction of the largest count
        are moved to random rows of the batch (every ``10 * n_clusters`` rows
        seen, or when a centre is empty); 0 disables reassignment.

    Attributes
    ----------
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
    labels_ : ndarray of shape (n_samples,), int32
    inertia_ : float
    n_iter_ : int
        Passes over the data (``ceil(n_steps_ * batch_size / n_samples)``).
    n_steps_ : int
        Mini-batch steps taken.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names (a DataFrame).

    Notes
    -----
    X may be a dense array or a scipy.sparse matrix / array (CSR; CSC and
    other formats are converted to CSR, a copy): sparse batches run the C++
    CSR kernels (:mod:`maxlik._kernels`, ``sparse.hpp``) and give the result of
    the dense fit of the same matrix.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import MiniBatchKMeans
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [4, 2], [4, 0], [4, 4],
    ...               [4, 5], [0, 1], [2, 2], [3, 2], [5, 5], [1, -1]], dtype=float)
    >>> km = MiniBatchKMeans(n_clusters=2, random_state=0, batch_size=6, n_init="auto").fit(X)
    >>> km.cluster_centers_.shape
    (2, 2)
    >>> km.predict([[0, 0], [4, 4]]).shape
    (2,)
    """

    def __init__(self, n_clusters: int = 8, *,
                 init: str | ArrayLike | Callable[..., Any] = "k-means++",
                 max_iter: int = 100, batch_size: int = 1024, verbose: int = 0,
                 compute_labels: bool = True,
                 random_state: int | np.random.RandomState | np.random.Generator | None = None,
                 tol: float = 0.0, max_no_improvement: int | None = 10,
                 init_size: int | None = None, n_init: str | int = "auto",
                 reassignment_ratio: float = 0.01) -> None:
        self.n_clusters = n_clusters
        self.init = init
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.verbose = verbose
        self.compute_labels = compute_labels
        self.random_state = random_state
        self.tol = tol
        self.max_no_improvement = max_no_improvement
        self.init_size = init_size
        self.n_init = n_init
        self.reassignment_ratio = reassignment_ratio

    def _check_params(self, n_samples):
        n_clusters = check_int(self.n_clusters, "n_clusters", min=1)
        max_iter = check_int(self.max_iter, "max_iter", min=1)
        batch_size = check_int(self.batch_size, "batch_size", min=1)
        tol = check_float(self.tol, "tol", min=0.0)
        verbose = check_int(int(self.verbose) if isinstance(self.verbose, (bool, np.bool_))
                            else self.verbose, "verbose", min=0)
        check_bool(self.compute_labels, "compute_labels")
        max_no_improvement = None
        if self.max_no_improvement is not None:
            max_no_improvement = check_int(self.max_no_improvement, "max_no_improvement", min=0)
        ratio = check_float(self.reassignment_ratio, "reassignment_ratio", min=0.0)
        init = _check_init(self.init)
        n_init = _n_init(self.n_init, init, 3)
        if isinstance(init, np.ndarray) and n_init != 1:
            warnings.warn(
                f"Explicit initial center position passed: performing only one init in "
                f"MiniBatchKMeans instead of n_init={n_init}.", RuntimeWarning, stacklevel=4)
            n_init = 1
        if n_samples < n_clusters:
            raise ValueError(f"n_samples={n_samples} should be >= n_clusters={n_clusters}.")
        batch_size = min(batch_size, n_samples)
        if self.init_size is None:
            init_size = 3 * batch_size
            if init_size < n_clusters:
                init_size = 3 * n_clusters
        else:
            init_size = check_int(self.init_size, "init_size", min=1)
            if init_size < n_clusters:
                warnings.warn(f"init_size={init_size} should be larger than "
                              f"n_clusters={n_clusters}. Setting it to min(3*n_clusters, "
                              "n_samples)", RuntimeWarning, stacklevel=4)
                init_size = 3 * n_clusters
        init_size = min(init_size, n_samples)
        return dict(n_clusters=n_clusters, max_iter=max_iter, batch_size=batch_size, tol=tol,
                    verbose=verbose, max_no_improvement=max_no_improvement,
                    reassignment_ratio=ratio, init=init, n_init=n_init, init_size=init_size)

    def fit(self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None) -> Self:
        """Compute the centres on X by mini-batches.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix of shape (n_samples, n_features)
        y : ignored
        sample_weight : array_like of shape (n_samples,), optional
            Non-negative row weights: batches are drawn with probability
            proportional to them. Not used by the initialisation when init is
            an array or callable.

        Returns
        -------
        self : MiniBatchKMeans

        Raises
        ------
        ValueError
            Bad hyper-parameters, non-finite or complex X, fewer rows than
            n_clusters, initial centres of the wrong shape.
        TypeError
            Non-numeric X or wrongly typed hyper-parameters.
        """
        names = _feature_names(X)
        source = _sources.make_source(X, None, sample_weight, accept_sparse=True)
        p = self._check_params(source.n_samples)
        d = source.n_features
        source.positive_weights()
        init = p["init"]
        if isinstance(init, np.ndarray):
            init = np.ascontiguousarray(init, dtype=source.dtype)
            _engine.check_center_shape(init, d, p["n_clusters"])
        summary = _engine.column_summary(source)
        var = np.ldexp(summary.var, 2 * summary.E)
        tol_abs = float(np.mean(var)) * p["tol"] if p["tol"] > 0 else 0.0
        res = _engine.fit_minibatch_kmeans(
            source, p["n_clusters"], init=init, n_init=p["n_init"], max_iter=p["max_iter"],
            batch_size=p["batch_size"], tol=tol_abs, max_no_improvement=p["max_no_improvement"],
            init_size=p["init_size"], reassignment_ratio=p["reassignment_ratio"],
            rs=check_random_state(self.random_state), verbose=p["verbose"],
            compute_labels=self.compute_labels)
        check_n_features(self, d, reset=True)
        self._set_feature_names(names)
        self.cluster_centers_ = res.cluster_centers.astype(source.dtype)
        self._counts = res.counts
        self._centers64 = (res.cluster_centers, self.cluster_centers_)
        self._batch_size = p["batch_size"]
        # scikit-learn's resolved n_init / init_size (its tests read them)
        self._n_init, self._init_size = p["n_init"], p["init_size"]
        self._n_since_last_reassign = res.n_since_last_reassign
        self.n_steps_ = res.n_steps
        self.n_iter_ = res.n_iter
        if self.compute_labels:
            self.labels_ = res.labels
        elif hasattr(self, "labels_"):
            del self.labels_
        self.inertia_ = _scaled_inertia(res.inertia, 0)
        return self

    def partial_fit(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """Update the centres with one mini-batch `X` (scikit-learn's partial_fit).

        The first call (on an unfitted estimator) initialises the centres
        from `init_size` rows of its batch; later calls continue from the
        current centres and counts (after :meth:`fit` too). Small clusters are
        reassigned as in :meth:`fit`. With `compute_labels`, ``labels_`` and
        ``inertia_`` are those of the batch under the updated centres.

        Parameters
        ----------
        X : array_like or scipy.sparse matrix of shape (n_batch, n_features)
        y : ignored
        sample_weight : array_like of shape (n_batch,), optional

        Returns
        -------
        self : MiniBatchKMeans
        """
        fitted = hasattr(self, "cluster_centers_")
        X = self._validate_X(X, reset=not fitted)
        n = X.shape[0]
        w = check_sample_weight(sample_weight, n, dtype=X.dtype)
        rs = getattr(self, "_random_state", None)
        if rs is None:
            rs = check_random_state(self.random_state)
        self._random_state = rs
        if not fitted:
            p = self._check_params(n)
            centers = self._first_batch_centers(X, sample_weight, p["init"], p["n_clusters"],
                                                p["init_size"], rs)
            counts = np.zeros(p["n_clusters"])
            self._batch_size = p["batch_size"]
            self._n_init, self._init_size = p["n_init"], p["init_size"]
            self._n_since_last_reassign = 0
            self.n_steps_ = 0
        else:
            c64, c_out = getattr(self, "_centers64", (None, None))
            centers = c64 if c_out is self.cluster_centers_ else np.asarray(
                self.cluster_centers_, dtype=np.float64)
            counts = self._counts
        self._n_since_last_reassign += self._batch_size
        reassign = bool((counts == 0).any()) or self._n_since_last_reassign >= 10 * len(counts)
        if reassign:
            self._n_since_last_reassign = 0
        step = _engine.minibatch_kmeans_step(
            X, w, centers, counts, rs=rs, reassign=reassign,
            reassignment_ratio=check_float(self.reassignment_ratio, "reassignment_ratio",
                                           min=0.0),
            verbose=self.verbose, after=bool(self.compute_labels))
        self.cluster_centers_ = step.centers.astype(X.dtype)
        self._centers64 = (step.centers, self.cluster_centers_)
        self._counts = step.counts
        if self.compute_labels:
            self.labels_ = step.labels
            self.inertia_ = _scaled_inertia(step.inertia_after, 0)
        self.n_steps_ = getattr(self, "n_steps_", 0) + 1
        return self
