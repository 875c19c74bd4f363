"""Gaussian mixtures by EM: maximum likelihood with a latent variable.

EM alternates (Bishop, PRML §9.2.2)

* E-step: responsibilities  γ_nk = π_k N(x_n|μ_k,Σ_k) / Σ_j π_j N(x_n|μ_j,Σ_j)   (9.23)
* M-step: N_k = Σ_n γ_nk, π_k = N_k/N, μ_k = Σ_n γ_nk x_n / N_k,
  Σ_k = Σ_n γ_nk (x_n−μ_k)(x_n−μ_k)ᵀ / N_k                                    (9.24–9.27)

and the average log-likelihood (the "lower bound" of scikit-learn) never
decreases.

Two low-level pieces do all the numerical work, and are public because
out-of-core and distributed fits are built from them:

* :func:`mixture_statistics` -- one fused C++ pass over a block of rows
  (log-densities, log-sum-exp, responsibilities and the M-step sufficient
  statistics) returning a small, picklable :class:`MixtureStatistics` that
  merges by ``+``;
* :func:`mixture_update` -- statistics -> new :class:`MixtureParameters`.

>>> import numpy as np
>>> from maxlik import GaussianMixture, mixture_statistics, mixture_update
>>> X = np.concatenate([np.zeros((50, 2)), np.full((50, 2), 5.0)])
>>> X += np.random.default_rng(0).normal(size=X.shape)
>>> gm = GaussianMixture(2, random_state=0).fit(X)
>>> params = gm.parameters()
>>> stats = mixture_statistics(X[:60], params) + mixture_statistics(X[60:], params)
>>> bool(np.isclose(stats.mean_log_likelihood, gm.score(X)))
True
>>> new = mixture_update(stats, reg_covar=gm.reg_covar)
>>> new.means.shape
(2, 2)
"""
from __future__ import annotations

import math
import sys
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

from . import _core, _streaming
from . import exceptions
from ._base import BaseEstimator, check_is_fitted
from ._validation import (
    FloatRangeError,
    as_float_array,
    check_bool,
    check_float,
    check_int,
    check_option,
    check_output_size,
    check_random_state,
    check_sample_weight,
    max_abs,
    scale_exponent,
)
from .stats import COVARIANCE_TYPES, _TYPE_CODE, _precision_cholesky_full

__all__ = [
    "GaussianMixture",
    "MixtureParameters",
    "MixtureStatistics",
    "mixture_statistics",
    "mixture_update",
]

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")


def _rows(a) -> str:
    return f"shape {np.shape(a)}"


@dataclass(frozen=True, eq=False)
class MixtureParameters:
    """Parameters of a Gaussian mixture, in scikit-learn's shapes.

    Attributes
    ----------
    covariance_type : {"full", "tied", "diag", "spherical"}
    weights : ndarray (K,)
    means : ndarray (K, D)
    precisions_cholesky : ndarray
        Upper-triangular factors U with ``inv(cov) = U @ U.T`` ("full" (K, D, D),
        "tied" (D, D)), or ``1/sqrt(cov)`` ("diag" (K, D), "spherical" (K,)).
    covariances : ndarray or None
        Same shapes as scikit-learn's ``covariances_``; None when the
        parameters came from precisions only.
    """

    covariance_type: str
    weights: np.ndarray
    means: np.ndarray
    precisions_cholesky: np.ndarray
    covariances: np.ndarray | None = None

    def __post_init__(self):
        # Users build these for the block API (mixture_statistics): without the
        # checks a 1-D `means` gave IndexError, an unknown type KeyError, lists
        # AttributeError, and NaN or negative weights a silent NaN log-likelihood.
        ctype = check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        means = as_float_array(self.means, "means", ndim=2, dtype=np.float64, finite=True)
        K, D = means.shape
        weights = as_float_array(self.weights, "weights", ndim=1, dtype=np.float64, finite=True)
        if weights.shape != (K,):
            raise ValueError(f"weights must have shape ({K},) to match means {means.shape}; "
                             f"got {weights.shape}")
        if np.any(weights < 0) or not weights.sum() > 0:
            raise ValueError("weights must be non-negative with a positive sum; got "
                             f"{weights[:5]}{' ...' if K > 5 else ''}")
        prec = as_float_array(self.precisions_cholesky, "precisions_cholesky", dtype=np.float64,
                              finite=True)
        expected = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ctype]
        if prec.shape != expected:
            raise ValueError(f"precisions_cholesky must have shape {expected} for "
                             f"covariance_type={ctype!r} with means {means.shape}; "
                             f"got {prec.shape}")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "weights", weights)
        object.__setattr__(self, "precisions_cholesky", prec)

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    def __repr__(self) -> str:
        return (f"MixtureParameters(covariance_type={self.covariance_type!r}, "
                f"n_components={self.n_components}, n_features={self.n_features})")


@dataclass(frozen=True, eq=False)
class MixtureStatistics:
    """Sufficient statistics of one EM pass over some rows; merge with ``+``.

    All sums are weighted by the sample weights w_n and taken around a fixed
    ``shift`` (the means of the parameters the E-step used; for "tied" a
    single centre), which keeps the covariance update numerically stable.

    Attributes
    ----------
    covariance_type : str
    shift : ndarray
        (K, D), or (D,) for "tied".
    resp_sum : ndarray (K,)
        N_k = Σ_n w_n γ_nk.
    sum_x : ndarray (K, D)
        Σ_n w_n γ_nk (x_n − shift_k).
    sum_xx : ndarray
        "full": (K, D, D) Σ w γ (x − s_k)(x − s_k)ᵀ; "diag"/"spherical": (K, D)
        Σ w γ (x − s_k)²; "tied": (D, D) Σ w (x − c)(x − c)ᵀ.
    log_likelihood : float
        Σ_n w_n log p(x_n) under the E-step's parameters.
    sum_weight : float
        Σ_n w_n.
    n_samples : int
        Rows seen.
    dtype : str
        "float32" or "float64", the data's precision.
    """

    covariance_type: str
    shift: np.ndarray
    resp_sum: np.ndarray
    sum_x: np.ndarray
    sum_xx: np.ndarray
    log_likelihood: float
    sum_weight: float
    n_samples: int
    dtype: str = "float64"

    @property
    def mean_log_likelihood(self) -> float:
        """(Σ w log p(x)) / Σ w: scikit-learn's ``lower_bound_`` for these rows."""
        return self.log_likelihood / self.sum_weight if self.sum_weight > 0 else -np.inf

    def __add__(self, other):
        if isinstance(other, int) and other == 0:  # sum([...]) starts from 0
            return self
        if not isinstance(other, MixtureStatistics):
            return NotImplemented
        if other.covariance_type != self.covariance_type:
            raise ValueError("cannot merge statistics of covariance_type "
                             f"{self.covariance_type!r} and {other.covariance_type!r}")
        if other.shift.shape != self.shift.shape or not np.array_equal(other.shift, self.shift):
            raise ValueError("cannot merge statistics computed from different parameters "
                             "(their shifts differ); compute every block from the same "
                             "MixtureParameters")
        dtype = "float32" if "float32" in (self.dtype, other.dtype) else "float64"
        return MixtureStatistics(
            self.covariance_type, self.shift, self.resp_sum + other.resp_sum,
            self.sum_x + other.sum_x, self.sum_xx + other.sum_xx,
            self.log_likelihood + other.log_likelihood, self.sum_weight + other.sum_weight,
            self.n_samples + other.n_samples, dtype)

    __radd__ = __add__

    def __repr__(self) -> str:
        return (f"MixtureStatistics(covariance_type={self.covariance_type!r}, "
                f"n_components={self.resp_sum.shape[0]}, n_samples={self.n_samples}, "
                f"mean_log_likelihood={self.mean_log_likelihood:.6g})")


def _tied_center(params: MixtureParameters) -> np.ndarray:
    return np.ascontiguousarray(params.weights @ params.means)


def _shift_of(params: MixtureParameters) -> np.ndarray:
    if params.covariance_type == "tied":
        return _tied_center(params)
    return np.ascontiguousarray(params.means, dtype=np.float64)


def _check_block(X, sample_weight, n_features=None):
    X = as_float_array(X, "X", ndim=2, finite=True)
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but the mixture has {n_features} "
                         f"(X {_rows(X)})")
    w = None
    if sample_weight is not None:
        w = check_sample_weight(sample_weight, X.shape[0], dtype=X.dtype)
    return X, w


def _pack(X, raw, ctype, shift) -> MixtureStatistics:
    nk, sx, sxx, ll, wsum = raw
    return MixtureStatistics(ctype, shift, nk, sx, sxx, float(ll), float(wsum), int(X.shape[0]),
                             str(X.dtype))


def mixture_statistics(X, params: MixtureParameters, sample_weight=None) -> MixtureStatistics:
    """One fused E-step pass over the rows of `X`: the statistics of the M-step.

    Parameters
    ----------
    X : array_like of shape (N, D)
        A block of rows (any number, including all of the data).
    params : MixtureParameters
        The current parameters (e.g. ``GaussianMixture.parameters()``).
    sample_weight : array_like of shape (N,), optional
        Non-negative row weights (default 1).

    Returns
    -------
    MixtureStatistics
        Small (O(K·D²)) and picklable; statistics of disjoint blocks computed
        from the same `params` add up to those of their union.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import MixtureParameters, mixture_statistics
    >>> p = MixtureParameters("spherical", np.array([1.0]), np.zeros((1, 1)), np.ones(1))
    >>> s = mixture_statistics(np.array([[0.0], [2.0]]), p)
    >>> float(s.resp_sum[0]), float(s.sum_x[0, 0])
    (2.0, 2.0)
    """
    if not isinstance(params, MixtureParameters):
        raise TypeError(f"params must be a MixtureParameters; got {type(params).__name__}")
    X, w = _check_block(X, sample_weight, params.n_features)
    _check_em_memory(X, params.n_components, params.covariance_type)
    return _statistics(X, params, w)


def _check_em_memory(X, K, ctype) -> None:
    """MemoryError (before anything is allocated) if one E/M pass over X with K
    components cannot fit: per-task statistics (K x D² for "full"), per-thread
    scratch (K x ~520 values) and the model copy, as counted by the kernel."""
    N, D = X.shape
    need = _core._em_pass_bytes(X.dtype.itemsize, _TYPE_CODE[ctype], N, D, K)
    check_output_size(0, 1, f"E-step statistics and scratch for n_components={K}, "
                      f"n_features={D}, covariance_type={ctype!r}", extra_bytes=need)


def _statistics(X, params: MixtureParameters, w) -> MixtureStatistics:
    """mixture_statistics on already validated X (C-contiguous float32/64, finite)
    and weights (None or X.dtype): the fit loop does not rescan X every iteration."""
    ctype = params.covariance_type
    shift = _shift_of(params)
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(params.weights, dtype=np.float64))
    raw = _core.em_statistics(X, w, _TYPE_CODE[ctype], shift,
                              np.ascontiguousarray(params.means, dtype=np.float64),
                              np.ascontiguousarray(params.precisions_cholesky, dtype=np.float64),
                              log_w, None, None, None, params.n_components)
    return _pack(X, raw, ctype, shift)


def _resp_statistics(X, w, ctype, K, shift, resp=None, labels=None) -> MixtureStatistics:
    raw = _core.em_statistics(X, w, _TYPE_CODE[ctype], shift, None, None, None, None,
                              resp, labels, K)
    return _pack(X, raw, ctype, shift)


def _collapse_error(k, reg_covar) -> ValueError:
    return ValueError(
        f"Fitting the mixture model failed because component {k} has an ill-defined "
        "(singular) covariance: it collapsed onto a point or a lower-dimensional subspace. "
        f"Increase reg_covar (now {reg_covar:g}), reduce n_components, or scale/deduplicate "
        "the input data."
    )


def mixture_update(stats: MixtureStatistics, reg_covar: float = 1e-6) -> MixtureParameters:
    """M-step: new parameters from merged statistics (Bishop PRML 9.24–9.27).

    Parameters
    ----------
    stats : MixtureStatistics
        Statistics over all rows (e.g. a sum over blocks).
    reg_covar : float, default 1e-6
        Added to the diagonal of every covariance (as in scikit-learn).

    Returns
    -------
    MixtureParameters

    Raises
    ------
    ValueError
        If a covariance is not positive definite (a collapsed component);
        the message names the component and suggests increasing `reg_covar`.
        If the statistics or the new parameters are not finite (finite X so
        large in magnitude that squared deviations overflow); the message
        says to rescale X.
    """
    if not isinstance(stats, MixtureStatistics):
        raise TypeError(f"stats must be a MixtureStatistics; got {type(stats).__name__}")
    reg_covar = check_float(reg_covar, "reg_covar", min=0.0)
    ctype = stats.covariance_type
    if not (np.all(np.isfinite(stats.resp_sum)) and np.all(np.isfinite(stats.sum_x))
            and np.all(np.isfinite(stats.sum_xx))):
        # finite X whose squares (or sums) overflow: |x - mean| beyond ~1e154
        raise _overflow_error()
    eps = np.finfo(np.float32 if stats.dtype == "float32" else np.float64).eps
    n = stats.resp_sum
    nk = n + 10 * eps  # as scikit-learn, so empty components stay finite
    S = stats.sum_x
    d = S / nk[:, None]  # new mean minus shift
    K, D = S.shape
    if ctype == "tied":
        means = stats.shift[None, :] + d
        # Σ_k Σ_n γ (x − m_k)(x − m_k)ᵀ = Q − Σ_k (s_k d_kᵀ + d_k s_kᵀ − n_k d_k d_kᵀ)
        cov = stats.sum_xx - (S.T @ d + d.T @ S - (d * n[:, None]).T @ d)
        cov /= nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov.flat[:: D + 1] += reg_covar
        try:
            prec = _precision_cholesky_full(cov[None], "covariance")[0]
        except ValueError:
            raise _collapse_error("(tied)", reg_covar) from None
    else:
        means = stats.shift + d
        if ctype == "full":
            Q = stats.sum_xx
            cov = (Q - np.einsum("ki,kj->kij", S, d) - np.einsum("ki,kj->kij", d, S)
                   + n[:, None, None] * np.einsum("ki,kj->kij", d, d)) / nk[:, None, None]
            cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
            idx = np.arange(D)
            cov[:, idx, idx] += reg_covar
            U, status = _core.precision_cholesky(np.ascontiguousarray(cov), 1e-8)
            bad = np.flatnonzero(status)
            if bad.size:
                raise _collapse_error(int(bad[0]), reg_covar)
            prec = U
        else:
            var = (stats.sum_xx - 2 * S * d + n[:, None] * d * d) / nk[:, None] + reg_covar
            cov = var if ctype == "diag" else var.mean(axis=1)
            bad = np.flatnonzero((cov <= 0).reshape(K, -1).any(axis=1))
            if bad.size:
                raise _collapse_error(int(bad[0]), reg_covar)
            prec = 1.0 / np.sqrt(cov)
    weights = nk / nk.sum()
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(prec))
            and np.all(np.isfinite(weights)) and np.all(np.isfinite(cov))):
        # never hand back inf / NaN parameters silently
        raise _overflow_error()
    return MixtureParameters(ctype, weights, means, prec, cov)


def _overflow_error() -> ValueError:
    return ValueError(
        "X has values too large in magnitude for a Gaussian mixture in float64: the "
        "statistics of the M-step (sums of squared deviations, beyond ~1.8e308 once "
        "|x - mean| exceeds ~1e154) or the covariances overflowed; rescale X (e.g. divide it "
        "by its standard deviation or a power of ten) and scale the fitted means and "
        "covariances back")


# ---- helpers on parameters -----------------------------------------------------

def _upper_factor_of_precision(P: np.ndarray) -> np.ndarray:
    """U upper with P = U Uᵀ: J chol(J P J) J (J reverses; scikit-learn #26415)."""
    L = np.linalg.cholesky(P[..., ::-1, ::-1])
    return np.ascontiguousarray(L[..., ::-1, ::-1])


def _precisions_from_cholesky(U, ctype):
    if ctype == "full":
        return np.einsum("kij,klj->kil", U, U)
    if ctype == "tied":
        return U @ U.T
    return U**2


def _covariances_from_cholesky(U, ctype):
    if ctype in ("full", "tied"):
        P = _precisions_from_cholesky(U, ctype)
        return np.linalg.inv(P)
    return 1.0 / U**2


def _n_parameters(ctype, K, D) -> int:
    cov = {"full": K * D * (D + 1) / 2, "diag": K * D, "tied": D * (D + 1) / 2,
           "spherical": K}[ctype]
    return int(cov + K * D + K - 1)


def _kmeans_plusplus(X, K, w, rs):
    """Greedy k-means++ seeding (Arthur & Vassilvitskii 2007) -> row indices."""
    e = scale_exponent(max_abs(X), X.dtype)
    if e:  # data near the float limits: squared distances of X 2**-e (exact) stay finite
        X = np.ldexp(X, -e).astype(X.dtype)
    N = X.shape[0]
    n_trials = 2 + int(np.log(K))
    p = w / w.sum()
    idx = [int(rs.choice(N, p=p))]
    d2 = ((X - X[idx[0]]) ** 2).sum(1)
    for _ in range(1, K):
        pot = (w * d2)
        total = pot.sum()
        if total <= 0:
            cand = rs.choice(N, size=n_trials, p=p)
        else:
            cand = np.searchsorted(np.cumsum(pot), rs.uniform(size=n_trials) * total)
            cand = np.minimum(cand, N - 1)
        best, best_pot, best_d2 = None, np.inf, None
        for c in cand:
            nd = np.minimum(d2, ((X - X[c]) ** 2).sum(1))
            s = (w * nd).sum()
            if s < best_pot:
                best, best_pot, best_d2 = int(c), s, nd
        idx.append(best)
        d2 = best_d2
    return np.asarray(idx)


def _kmeans_labels(X, K, w, rs):
    """Labels of k-means: maxlik.KMeans when available, else a small Lloyd."""
    from . import cluster

    KMeans = getattr(cluster, "KMeans", None)
    if KMeans is not None:
        km = KMeans(n_clusters=K, n_init=1, random_state=rs)
        try:
            km.fit(X, sample_weight=w)
        except FloatRangeError:  # k-means' inertia overflowed: so would the covariances
            raise _overflow_error() from None
        return np.asarray(km.labels_, dtype=np.int64)
    # Fallback (only until maxlik.KMeans exists): Lloyd from k-means++ seeds.
    w = np.ones(X.shape[0]) if w is None else np.asarray(w, dtype=np.float64)
    C = X[_kmeans_plusplus(X, K, w, rs)].astype(np.float64)
    labels = np.zeros(X.shape[0], dtype=np.int64)
    for _ in range(100):
        d = (X**2).sum(1)[:, None] - 2 * X @ C.T + (C**2).sum(1)[None, :]
        new = np.argmin(d, axis=1)
        for k in range(K):
            m = new == k
            if np.any(w[m] > 0):
                C[k] = np.average(X[m], axis=0, weights=w[m])
        if np.array_equal(new, labels):
            break
        labels = new
    return labels


# ---- the estimator ---------------------------------------------------------------

class GaussianMixture(BaseEstimator):
    """Gaussian mixture fitted by EM with a fused C++ E/M pass.

    A drop-in for :class:`sklearn.mixture.GaussianMixture` (same parameters,
    attributes and methods, same numbers from the same initialisation), plus
    ``sample_weight`` in :meth:`fit` and a progress ``callback``.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
    tol : float, default 1e-3
        Stop when the lower bound (mean log-likelihood) changes by less.
    reg_covar : float, default 1e-6
        Added to the diagonal of the covariances.
    max_iter : int, default 100
    n_init : int, default 1
        Initialisations; the best (highest lower bound) is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default "kmeans"
    weights_init, means_init, precisions_init : array_like, optional
        User-provided initial weights (K,), means (K, D) and precisions
        (shape by covariance type, as in scikit-learn).
    random_state : int, RandomState or None
    warm_start : bool, default False
        Start from the previous fit's parameters (then ``n_init`` is ignored).
    verbose : int, default 0
    verbose_interval : int, default 10
    callback : callable, optional
        ``callback(iteration, lower_bound)`` after every EM iteration.
    block_size : int, optional
        Rows per block when `X` is out of core (``np.memmap``, HDF5, zarr);
        default about 16 MB of rows. See "Scaling" below.
    learning_decay, learning_offset : float, default 0.7 and 1.0
        Step sizes of :meth:`partial_fit` (stepwise EM):
        ρ_t = (t + learning_offset)^(−learning_decay), 0.5 < learning_decay <= 1.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
        The lower bound of every iteration of the best initialisation.
    n_features_in_ : int

    Notes
    -----
    Each EM iteration is one pass over fixed row blocks that computes the
    log-densities, the log-sum-exp, the responsibilities and the M-step
    statistics together; the (N, K) responsibilities are never stored. The
    statistics are merged in block order, so results do not depend on the
    number of threads. See :func:`mixture_statistics` / :func:`mixture_update`.

    Scaling: an ``np.memmap`` (or HDF5 / zarr dataset) is streamed in row
    blocks with memory independent of N, a ``dask.array`` is fitted on the
    Dask workers (one graph per EM iteration, :mod:`maxlik.dask`); both
    initialise from a random subsample of at most 100 000 rows unless all of
    weights_init, means_init and precisions_init are given.
    :meth:`partial_fit` is stepwise (online) EM.

    Data near the float64 limits: finite X never gives inf / NaN parameters.
    Where the deviations of X from the component means exceed about 1e154,
    their squares, and so the covariances themselves, are beyond float64
    (a spread ~1e200 has a variance ~1e400); no rescaling inside the fit can
    return such covariances, so the fit raises ValueError saying to rescale
    X. (Rescaling X changes the problem only through `reg_covar`, an
    absolute amount added to the variances: scale it with X².) The
    initialisations themselves work at any magnitude.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import GaussianMixture
    >>> X = np.array([[1, 2], [1, 4], [1, 0], [10, 2], [10, 4], [10, 0]])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0])
    array([ 1., 10.])
    >>> int(gm.predict([[0, 0], [12, 3]])[0] != gm.predict([[0, 0], [12, 3]])[1])
    1
    """

    _estimator_type = "density_estimator"

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 verbose=0, verbose_interval=10, callback=None, block_size=None,
                 learning_decay=0.7, learning_offset=1.0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.callback = callback
        self.block_size = block_size
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # -- validation ------------------------------------------------------------
    def _check_hyper(self):
        K = check_int(self.n_components, "n_components", min=1)
        check_option(self.covariance_type, "covariance_type", COVARIANCE_TYPES)
        check_float(self.tol, "tol", min=0.0)
        check_float(self.reg_covar, "reg_covar", min=0.0)
        check_int(self.max_iter, "max_iter", min=0)
        check_int(self.n_init, "n_init", min=1)
        check_option(self.init_params, "init_params", INIT_PARAMS)
        check_bool(self.warm_start, "warm_start")
        if isinstance(self.verbose, (bool, np.bool_)):
            verbose = int(self.verbose)
        else:
            verbose = check_int(self.verbose, "verbose", min=0)
        check_int(self.verbose_interval, "verbose_interval", min=1)
        if self.callback is not None and not callable(self.callback):
            raise TypeError(f"callback must be callable or None; got {type(self.callback).__name__}")
        return K, verbose

    def _check_X(self, X, *, reset):
        if hasattr(X, "dtype") and np.issubdtype(getattr(X, "dtype", None), np.complexfloating):
            raise ValueError("Complex data not supported: X must be real; got dtype "
                             f"{X.dtype}")
        if hasattr(X, "toarray") and hasattr(X, "nnz"):
            raise TypeError("X is a sparse matrix; GaussianMixture needs a dense array "
                            "(call X.toarray())")
        try:
            if getattr(X, "dtype", None) == object:
                # scikit-learn accepts object arrays of numbers (check_dtype_object);
                # float() raises the TypeError for anything else.
                X = np.asarray(X).astype(np.float64)
            if not isinstance(X, np.ndarray) and hasattr(X, "__array__"):
                X = np.asarray(X)
            np.ndim(X)  # ragged nested lists raise here
        except (TypeError, ValueError) as exc:  # name the argument
            raise type(exc)(f"X must be a numeric array of shape (n_samples, n_features): "
                            f"{exc}") from None
        if np.ndim(X) == 1:
            raise ValueError(f"X must be 2-D; got a 1-D array of shape {np.shape(X)}. Reshape "
                             "your data with X.reshape(-1, 1) if it has a single feature or "
                             "X.reshape(1, -1) if it is a single sample.")
        X = as_float_array(X, "X", ndim=2, finite=True)
        if X.ndim == 2 and X.shape[1] == 0:
            raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a "
                             "minimum of 1 is required.")
        if reset:
            self.n_features_in_ = X.shape[1]
        elif X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input.")
        return X

    def _check_initial(self, K, D, ctype, dtype):
        winit = minit = pinit = None
        if self.weights_init is not None:
            winit = as_float_array(self.weights_init, "weights_init", ndim=1, dtype=np.float64,
                                   finite=True)
            if winit.shape != (K,):
                raise ValueError(f"weights_init must have shape ({K},); got {winit.shape}")
            if np.any(winit < 0) or np.any(winit > 1):
                raise ValueError("weights_init must be in [0, 1]; got min "
                                 f"{winit.min():.5f}, max {winit.max():.5f}")
            atol = 1e-6 if dtype == np.float32 else 1e-8
            if abs(1.0 - winit.sum()) > atol:
                raise ValueError(f"weights_init must sum to 1; got sum {winit.sum():.5f}")
        if self.means_init is not None:
            minit = as_float_array(self.means_init, "means_init", ndim=2, dtype=np.float64,
                                   finite=True)
            if minit.shape != (K, D):
                raise ValueError(f"means_init must have shape ({K}, {D}); got {minit.shape}")
        if self.precisions_init is not None:
            shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ctype]
            P = as_float_array(self.precisions_init, "precisions_init", dtype=np.float64,
                               finite=True)
            if P.shape != shape:
                raise ValueError(f"precisions_init must have shape {shape} for covariance_type="
                                 f"{ctype!r}; got {P.shape}")
            if ctype in ("full", "tied"):
                mats = P.reshape(-1, D, D)
                for k, M in enumerate(mats):
                    if not (np.allclose(M, M.T) and np.all(np.linalg.eigvalsh(M) > 0)):
                        where = f"precisions_init[{k}]" if ctype == "full" else "precisions_init"
                        raise ValueError(f"{where} must be symmetric positive-definite")
                pinit = _upper_factor_of_precision(P)
            else:
                if np.any(P <= 0):
                    raise ValueError("precisions_init must be positive")
                pinit = np.sqrt(P)
        return winit, minit, pinit

    # -- initialisation ---------------------------------------------------------
    def _initial_parameters(self, X, w, K, rs, winit, minit, pinit) -> MixtureParameters:
        ctype = self.covariance_type
        N, D = X.shape
        _check_em_memory(X, K, ctype)  # the two initial passes (also for streamed fits)
        if winit is not None and minit is not None and pinit is not None:
            # Everything given: no data-driven initialisation needed.
            return MixtureParameters(ctype, winit, minit, pinit,
                                     _covariances_from_cholesky(pinit, ctype))
        resp = labels = None
        wt = w if w is not None else np.ones(N)
        if self.init_params == "kmeans":
            labels = _kmeans_labels(X, K, w, rs)
        elif self.init_params == "random":
            check_output_size((N, K), 8, "initial responsibilities (N, K) of init_params='random'")
            resp = rs.uniform(size=(N, K)).astype(X.dtype)
            resp /= resp.sum(axis=1)[:, None]
        elif self.init_params == "random_from_data":
            idx = rs.choice(N, size=K, replace=False)
            labels = np.full(N, -1, dtype=np.int64)
            labels[idx] = np.arange(K)
        else:  # k-means++
            idx = _kmeans_plusplus(X, K, wt.astype(np.float64), rs)
            labels = np.full(N, -1, dtype=np.int64)
            labels[idx] = np.arange(K)
        if labels is not None:
            labels = np.ascontiguousarray(labels, dtype=np.int64)
        shift_ctype = "tied" if ctype == "tied" else "diag"
        # Two passes: means first, then the covariances around them (stable).
        zero = np.zeros(D if ctype == "tied" else (K, D))
        s0 = _resp_statistics(X, w, shift_ctype, K, zero, resp, labels)
        nk0 = s0.resp_sum + 10 * np.finfo(X.dtype).eps
        means0 = s0.sum_x / nk0[:, None]
        if ctype == "tied":
            shift = np.ascontiguousarray((nk0 / nk0.sum()) @ means0)
        else:
            shift = np.ascontiguousarray(means0)
        stats = _resp_statistics(X, w, ctype, K, shift, resp, labels)
        params = mixture_update(stats, self.reg_covar)
        # scikit-learn normalises the initial weights by n_samples
        weights = stats.resp_sum + 10 * np.finfo(X.dtype).eps
        weights = weights / stats.sum_weight
        weights = winit if winit is not None else weights
        means = minit if minit is not None else params.means
        if pinit is not None:
            return MixtureParameters(ctype, weights, means, pinit,
                                     _covariances_from_cholesky(pinit, ctype))
        return MixtureParameters(ctype, weights, means, params.precisions_cholesky,
                                 params.covariances)

    # -- fitting ----------------------------------------------------------------
    def fit(self, X, y=None, sample_weight=None):
        """Estimate the parameters with EM (weighted EM with `sample_weight`).

        Parameters
        ----------
        X : array_like of shape (N, D)
        y : ignored
        sample_weight : array_like of shape (N,), optional
            Non-negative row weights. Integer weights give the same fit as
            repeating rows; zero weights the same as dropping them.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            Bad hyper-parameters or data, n_components > n_samples, a
            collapsed component (suggesting a larger reg_covar), or X too
            large in magnitude for float64 covariances (suggesting to rescale
            X; see the class Notes).
        MemoryError
            If the E-step scratch (about K x 520 values per thread plus
            K x D² statistics per task for "full") or, for
            ``init_params="random"``, the (N, K) initial responsibilities
            cannot fit in memory; raised before the allocation.
        """
        if _streaming.is_streamed(X):  # memmap / HDF5 / zarr / dask: row blocks
            return _streaming.fit_gaussian_mixture(self, X, sample_weight)
        self._fit(X, sample_weight)
        return self

    def partial_fit(self, X, y=None, sample_weight=None):
        """One stepwise-EM update from the batch `X` (online EM).

        The running sufficient statistics s are blended with the batch's,
        s ← (1 − ρ_t) s + ρ_t s_batch with ρ_t = (t + learning_offset)^(−learning_decay)
        for call t = 1, 2, ... (Cappé & Moulines 2009), then the M-step sets
        the parameters. Call 0 sets s to its batch's statistics; on an
        unfitted estimator it first initialises from that batch, after
        :meth:`fit` it starts from the fitted parameters.

        Parameters
        ----------
        X : array_like of shape (n_batch, D)
        y : ignored
        sample_weight : array_like of shape (n_batch,), optional

        Returns
        -------
        self
        """
        return _streaming.partial_fit_gaussian_mixture(self, X, sample_weight)

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most likely component of each row of `X`."""
        if _streaming.is_streamed(X):
            return self.fit(X, sample_weight=sample_weight).predict(X)
        self._fit(X, sample_weight)
        return self.predict(X)

    def _fit(self, X, sample_weight):
        K, verbose = self._check_hyper()
        X = self._check_X(X, reset=True)
        N, D = X.shape
        if N < 2:
            raise ValueError(f"GaussianMixture needs at least 2 samples; got n_samples = {N} "
                             f"(X shape {X.shape})")
        w = None
        if sample_weight is not None:
            if not np.isscalar(sample_weight):
                sample_weight = np.asarray(sample_weight)
                if sample_weight.dtype.kind in "biuf" and sample_weight.size and not np.any(
                        sample_weight):
                    raise ValueError("sample_weight: all weights are zero; at least one row "
                                     "needs a positive weight")
            w = check_sample_weight(sample_weight, N, dtype=X.dtype)
            n_pos = int(np.count_nonzero(w))
        else:
            n_pos = N
        if n_pos < K:
            what = "samples with positive weight" if sample_weight is not None else "samples"
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {K}, "
                             f"n_samples = {n_pos} ({what}); reduce n_components")
        ctype = self.covariance_type
        reg = float(self.reg_covar)
        _check_em_memory(X, K, ctype)  # once: every E/M pass below has this size
        winit, minit, pinit = self._check_initial(K, D, ctype, X.dtype)
        do_init = not (self.warm_start and hasattr(self, "converged_"))
        n_init = self.n_init if do_init else 1
        rs = check_random_state(self.random_state)

        best = None
        max_lb = -np.inf
        best_bounds: list[float] = []
        self.converged_ = False
        for init in range(n_init):
            t_init = time.time()
            if verbose:
                print(f"Initialization {init}")
            if do_init:
                params = self._initial_parameters(X, w, K, rs, winit, minit, pinit)
                lb = -np.inf
            else:
                params = self.parameters()
                lb = self.lower_bound_
            bounds: list[float] = []
            converged = False
            if self.max_iter == 0:
                best, best_iter = params, 0
                continue
            t_iter = time.time()
            for it in range(1, self.max_iter + 1):
                prev = lb
                stats = _statistics(X, params, w)
                params = mixture_update(stats, reg)
                lb = stats.mean_log_likelihood
                bounds.append(lb)
                change = lb - prev
                if self.callback is not None:
                    self.callback(it, lb)
                if verbose and it % self.verbose_interval == 0:
                    if verbose == 1:
                        print(f"  Iteration {it}")
                    else:
                        now = time.time()
                        print(f"  Iteration {it}\t time lapse {now - t_iter:.5f}s\t "
                              f"ll change {change:.5f}")
                        t_iter = now
                if abs(change) < self.tol:
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
                best, best_iter, best_bounds = params, it, bounds
                self.converged_ = converged
        if not self.converged_ and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge "
                f"(lower bound change still >= tol={self.tol:g} after max_iter={self.max_iter} "
                "iterations). Try different init parameters, or increase max_iter, tol, "
                "or check for degenerate data.",
                exceptions.ConvergenceWarning,
                stacklevel=3,
            )
        self._set_parameters(best)
        self.n_iter_ = best_iter
        self.lower_bound_ = max_lb
        self.lower_bounds_ = best_bounds
        return self

    def _set_parameters(self, p: MixtureParameters):
        ctype = p.covariance_type
        self.weights_ = p.weights
        self.means_ = p.means
        self.precisions_cholesky_ = p.precisions_cholesky
        self.covariances_ = (p.covariances if p.covariances is not None
                             else _covariances_from_cholesky(p.precisions_cholesky, ctype))
        self.precisions_ = _precisions_from_cholesky(p.precisions_cholesky, ctype)

    def parameters(self) -> MixtureParameters:
        """The fitted parameters as a :class:`MixtureParameters` (for the block API)."""
        check_is_fitted(self, "means_")
        return MixtureParameters(self.covariance_type, np.asarray(self.weights_, dtype=np.float64),
                                 np.asarray(self.means_, dtype=np.float64),
                                 np.asarray(self.precisions_cholesky_, dtype=np.float64),
                                 self.covariances_)

    # -- prediction ---------------------------------------------------------------
    _CHUNK = 65536  # rows per chunk (fewer for large K): bounds the (chunk, K) temporaries
    _CHUNK_VALUES = 1 << 22  # at most this many (chunk x K) values per chunk

    def _weighted_log_prob_chunks(self, X, out_columns=None):
        """(chunk, K) weighted log-densities of successive row chunks of X.

        `out_columns`: columns per row of the caller's concatenated result, which
        is checked against the machine's memory before anything is computed."""
        check_is_fitted(self, "means_")
        X = self._check_X(X, reset=False)
        p = self.parameters()
        K, D = p.means.shape
        chunk = max(1, min(self._CHUNK, self._CHUNK_VALUES // K))
        code = _TYPE_CODE[p.covariance_type]
        check_output_size((min(chunk, X.shape[0]), K), X.dtype.itemsize,
                          "log-densities of a chunk of rows",
                          extra_bytes=_core._logpdf_scratch_bytes(X.dtype.itemsize, code, D, K))
        if out_columns is not None:
            check_output_size((X.shape[0], out_columns), X.dtype.itemsize, "result (N, K)")
        with np.errstate(divide="ignore"):
            log_w = np.log(p.weights)
        center = _tied_center(p) if p.covariance_type == "tied" else None
        for s in range(0, max(X.shape[0], 1), chunk):
            yield _core.gaussian_logpdf(X[s:s + chunk], np.ascontiguousarray(p.means),
                                        np.ascontiguousarray(p.precisions_cholesky), log_w,
                                        center, code)

    @staticmethod
    def _lse(a):
        m = a.max(axis=1)
        m = np.where(np.isfinite(m), m, 0)
        return m + np.log(np.exp(a - m[:, None]).sum(axis=1))

    def score_samples(self, X):
        """log p(x_n) of every row under the fitted mixture, shape (N,)."""
        if _streaming.is_streamed(X):  # lazy for dask, block by block for memmaps
            return _streaming.apply_blockwise(self, "score_samples", X)
        return np.concatenate([self._lse(a) for a in self._weighted_log_prob_chunks(X)])

    def score(self, X, y=None, sample_weight=None):
        """Mean (weighted) log-likelihood of the rows of `X`."""
        s = self.score_samples(X)
        if sample_weight is None:
            return float(s.mean())
        w = check_sample_weight(sample_weight, s.shape[0], dtype=np.float64)
        return float(np.average(s, weights=w))

    def predict(self, X):
        """Most likely component of every row, shape (N,)."""
        if _streaming.is_streamed(X):
            return _streaming.apply_blockwise(self, "predict", X)
        return np.concatenate([a.argmax(axis=1) for a in self._weighted_log_prob_chunks(X)])

    def predict_proba(self, X):
        """Responsibilities γ_nk, shape (N, K).

        Raises MemoryError (before computing anything) if the (N, K) result
        cannot fit in memory.
        """
        if _streaming.is_streamed(X):
            return _streaming.apply_blockwise(self, "predict_proba", X,
                                              n_out=self.means_.shape[0])
        check_is_fitted(self, "means_")
        out = []
        for a in self._weighted_log_prob_chunks(X, out_columns=self.means_.shape[0]):
            out.append(np.exp(a - self._lse(a)[:, None]))
        return np.concatenate(out)

    def sample(self, n_samples=1):
        """Draw samples (same random stream as scikit-learn's ``sample``).

        Returns
        -------
        X : ndarray (n_samples, D)
        y : ndarray (n_samples,)
            The component of each sample.
        """
        check_is_fitted(self, "means_")
        n_samples = check_int(n_samples, "n_samples", min=1)
        check_output_size((n_samples, self.means_.shape[1]), 8, "samples (n_samples, D)")
        rng = check_random_state(self.random_state)
        counts = rng.multinomial(n_samples, self.weights_)
        D = self.means_.shape[1]
        if self.covariance_type == "full":
            X = np.vstack([rng.multivariate_normal(m, c, int(n))
                           for m, c, n in zip(self.means_, self.covariances_, counts)])
        elif self.covariance_type == "tied":
            X = np.vstack([rng.multivariate_normal(m, self.covariances_, int(n))
                           for m, n in zip(self.means_, counts)])
        else:
            X = np.vstack([m + rng.standard_normal(size=(n, D)) * np.sqrt(c)
                           for m, c, n in zip(self.means_, self.covariances_, counts)])
        y = np.concatenate([np.full(n, j, dtype=int) for j, n in enumerate(counts)])
        return X, y

    def _n_parameters(self) -> int:
        return _n_parameters(self.covariance_type, self.means_.shape[0], self.means_.shape[1])

    def bic(self, X):
        """Bayesian information criterion on `X` (lower is better)."""
        X = self._check_X(X, reset=False)
        return -2 * self.score(X) * X.shape[0] + self._n_parameters() * np.log(X.shape[0])

    def aic(self, X):
        """Akaike information criterion on `X` (lower is better)."""
        X = self._check_X(X, reset=False)
        return -2 * self.score(X) * X.shape[0] + 2 * self._n_parameters()
