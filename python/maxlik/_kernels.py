"""Block kernels: what a data source maps over one block of rows, and how results merge.

The bottom Python layer above the bindings (``_core``). Every function here
takes one block of rows that its caller has already validated (a C-contiguous
float32/float64 array, finite; weights None or of the block's dtype) and
returns a small statistics object or tuple that merges with the others by
:func:`add` (or, for the least-squares R factors, by :func:`merge_r`). The
sources (:mod:`maxlik._sources`, :mod:`maxlik.dask`) run these on every block;
the engine (:mod:`maxlik._engine`) builds each fit from them. Nothing here
loops over blocks, and nothing here knows about estimators.

It also holds the Gaussian-mixture statistics and their M-step
(:class:`MixtureParameters`, :class:`MixtureStatistics`,
:func:`mixture_statistics`, :func:`mixture_update`), public through
:mod:`maxlik.mixture`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from . import _core
from ._validation import (
    as_float_array,
    check_float,
    check_option,
    check_output_size,
    check_sample_weight,
    scale_exponent,
)
from .stats import COVARIANCE_TYPES, _TYPE_CODE, _precision_cholesky_full

#: Rows per sub-chunk inside a block for kernels whose temporaries grow with the
#: rows (k-means++ distances, farthest-row search): bounds them to a few MB.
SUB_ROWS = 65536


class CSRRows:
    """A block of rows of a CSR matrix, as the sparse kernels take it (no scipy needed).

    ``data`` (float32 / float64), ``indices`` (int32 / int64) and ``indptr``
    (n_rows + 1 offsets into them, same dtype as indices; need not start at
    0) hold rows with sorted-or-not, duplicate-free columns, finite values
    (:func:`maxlik._sources.check_csr` builds them). A row slice
    (:meth:`rows`) is a zero-copy view: the same data / indices, a slice of
    indptr. Shared by every sparse block kernel (k-means, linear models).
    """

    __slots__ = ("data", "indices", "indptr", "shape")

    def __init__(self, data, indices, indptr, n_features):
        self.data, self.indices, self.indptr = data, indices, indptr
        self.shape = (int(indptr.shape[0]) - 1, int(n_features))

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def nnz(self):
        return int(self.indptr[-1] - self.indptr[0])

    def args(self):
        """(data, indices, indptr, n_features): the leading arguments of the csr_* bindings."""
        return self.data, self.indices, self.indptr, self.shape[1]

    def rows(self, r0, r1):
        """Rows [r0, r1) as a view."""
        return CSRRows(self.data, self.indices, self.indptr[r0:r1 + 1], self.shape[1])

    def _gather(self, idx):
        idx = np.asarray(idx, dtype=np.int64).reshape(-1)
        start = self.indptr[idx].astype(np.int64)
        length = self.indptr[idx + 1].astype(np.int64) - start
        ptr = np.zeros(idx.shape[0] + 1, dtype=np.int64)
        np.cumsum(length, out=ptr[1:])
        pos = np.repeat(start - ptr[:-1], length) + np.arange(ptr[-1], dtype=np.int64)
        return pos, ptr

    def take_rows(self, idx):
        """Rows `idx` (any order, repeats allowed) as a new CSRRows (a copy)."""
        pos, ptr = self._gather(idx)
        itype = self.indices.dtype
        return CSRRows(np.ascontiguousarray(self.data[pos]), np.ascontiguousarray(
            self.indices[pos]), ptr.astype(itype), self.shape[1])

    def toarray(self):
        """The rows as a dense C-contiguous (n, D) array of the block's dtype."""
        n, D = self.shape
        check_output_size((n, D), self.dtype.itemsize, "dense copy of sparse rows")
        out = np.zeros((n, D), dtype=self.dtype)
        lo = int(self.indptr[0])
        rows = np.repeat(np.arange(n), np.diff(self.indptr))
        out[rows, self.indices[lo:int(self.indptr[-1])]] = self.data[lo:int(self.indptr[-1])]
        return out

    def take(self, idx):
        """Rows `idx` as a dense array."""
        return self.take_rows(idx).toarray()

    def values(self):
        """The stored values of these rows (a view)."""
        return self.data[int(self.indptr[0]):int(self.indptr[-1])]


def is_csr_block(xb) -> bool:
    """True for a :class:`CSRRows` block."""
    return isinstance(xb, CSRRows)


def add(a, b):
    """Merge two block results: statistics objects and arrays by ``+``, tuples elementwise."""
    if isinstance(a, tuple):
        return tuple(add(x, y) for x, y in zip(a, b))
    if a is None:
        return None
    return a + b


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


def mixture_statistics(X: ArrayLike, params: MixtureParameters,
                       sample_weight: ArrayLike | None = None) -> MixtureStatistics:
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
    check_em_memory(X.shape[0], X.shape[1], X.dtype, K, ctype)


def check_em_memory(N, D, dtype, K, ctype) -> None:
    """MemoryError (before anything is allocated) if one E/M pass over N rows with K
    components cannot fit: per-task statistics (K x D² for "full"), per-thread
    scratch (K x ~520 values) and the model copy, as counted by the kernel."""
    need = _core._em_pass_bytes(np.dtype(dtype).itemsize, _TYPE_CODE[ctype], N, D, K)
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
                              log_w, None, None, params.n_components)
    return _pack(X, raw, ctype, shift)


def _resp_statistics(X, w, ctype, K, shift, resp=None, labels=None) -> MixtureStatistics:
    raw = _core.em_statistics(X, w, _TYPE_CODE[ctype], shift, None, None, None,
                              resp, labels, K)
    return _pack(X, raw, ctype, shift)


def _collapse_error(k, reg_covar) -> ValueError:
    return ValueError(
        "Fitting the mixture model failed because some components have ill-defined empirical "
        "covariance (for instance caused by singleton or collapsed samples). Try to decrease "
        "the number of components, increase reg_covar, or scale the input data. "
        f"(Component {k} collapsed onto a point or a lower-dimensional subspace; reg_covar is "
        f"now {reg_covar:g}.)"
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
    return _mixture_update(stats, reg_covar)[0]


def _mixture_update(stats: MixtureStatistics, reg_covar: float, fixed: dict | None = None,
                    mark_collapsed: bool = False) -> tuple[MixtureParameters, list[int]]:
    """The M-step of :func:`mixture_update`, restricted and / or tolerant of collapse.

    `fixed` maps any of "weights", "means", "covariances" to the frozen value
    (for "covariances" also "precisions_cholesky"): those stay as given
    (bit-exact) and the rest maximise Q given them (a restricted M-step, so
    EM stays monotone). The covariances of frozen means are taken around the
    frozen means. With `mark_collapsed`, a collapsed "full" / "diag" /
    "spherical" component does not raise: its covariance is set to a
    placeholder (identity / ones) and its index returned, for the caller to
    re-seed. Returns (parameters, collapsed component indices).
    """
    fixed = fixed or {}
    collapsed: list[int] = []
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
    if "means" in fixed:  # the covariances are then taken around the frozen means
        d = fixed["means"] - (stats.shift[None, :] if ctype == "tied" else stats.shift)
    if "covariances" in fixed:
        cov, prec = fixed["covariances"], fixed["precisions_cholesky"]
        means = stats.shift[None, :] + d if ctype == "tied" else stats.shift + d
    elif ctype == "tied":
        means = stats.shift[None, :] + d
        # Σ_k Σ_n γ (x − m_k)(x − m_k)ᵀ = Q − Σ_k (s_k d_kᵀ + d_k s_kᵀ − n_k d_k d_kᵀ)
        cov = stats.sum_xx - (S.T @ d + d.T @ S - (d * n[:, None]).T @ d)
        cov /= nk.sum()
        cov = 0.5 * (cov + cov.T)
        cov.flat[:: D + 1] += reg_covar
        try:
            prec = _precision_cholesky_full(cov[None], "covariance")[0]
        except ValueError:
            # rounding-level negative eigen-directions are zero (see _rounding_bound)
            scale = (np.trace(np.abs(stats.sum_xx)) + 3 * np.abs(S * d).sum()
                     + (n[:, None] * d * d).sum()) / nk.sum()
            cov = _clamp_eigen(cov, reg_covar, _rounding_bound(scale, eps))
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
                # rounding-level negative eigen-directions are zero (see _rounding_bound)
                scale = (np.einsum("kii->k", np.abs(Q)) + 3 * np.abs(S * d).sum(axis=1)
                         + n * (d * d).sum(axis=1)) / nk
                for k in bad:
                    cov[k] = _clamp_eigen(cov[k], reg_covar, _rounding_bound(scale[k], eps))
                U, status = _core.precision_cholesky(np.ascontiguousarray(cov), 1e-8)
                bad = np.flatnonzero(status)
                if bad.size and not mark_collapsed:
                    raise _collapse_error(int(bad[0]), reg_covar)
            if mark_collapsed:
                # singular to working precision counts as collapsed too: an eigenvalue
                # within rounding of 0 (the clamp above leaves such components finite
                # but their likelihood unbounded, and EM then stops being monotone)
                scale = (np.einsum("kii->k", np.abs(Q)) + 3 * np.abs(S * d).sum(axis=1)
                         + n * (d * d).sum(axis=1)) / nk
                lam = np.array([np.linalg.eigvalsh(c)[0] if np.all(np.isfinite(c)) else -1.0
                                for c in cov])
                collapsed = _collapsed_set(bad, lam <= _rounding_bound(scale, eps), K)
                if collapsed:
                    cov[collapsed] = np.eye(D)
                    U[collapsed] = np.eye(D)
            prec = U
        else:
            terms = (stats.sum_xx, 2 * S * d, n[:, None] * d * d)
            raw = (terms[0] - terms[1] + terms[2]) / nk[:, None]
            bound = _rounding_bound((np.abs(terms[0]) + np.abs(terms[1]) + terms[2])
                                    / nk[:, None], eps)
            # a variance negative by no more than its rounding error is zero
            raw = np.where((raw < 0) & (raw >= -bound), 0.0, raw)
            var = raw + reg_covar
            cov = var if ctype == "diag" else var.mean(axis=1)
            floor = bound if ctype == "diag" else bound.mean(axis=1)
            # zero (to rounding) with reg_covar=0: the variance is below what the
            # statistics resolve, so it is reported as that resolution (finite
            # precisions, as scikit-learn's #18216 test expects) instead of 0
            cov = np.where((cov == 0) & (floor > 0), floor, cov)
            bad = np.flatnonzero((cov <= 0).reshape(K, -1).any(axis=1))
            if bad.size and not mark_collapsed:
                raise _collapse_error(int(bad[0]), reg_covar)
            if mark_collapsed:  # at (or below) the resolution floor: singular, collapsed
                collapsed = _collapsed_set(bad, (cov <= floor).reshape(K, -1).any(axis=1), K)
                if collapsed:
                    cov[collapsed] = 1.0
            prec = 1.0 / np.sqrt(cov)
    weights = nk / nk.sum()
    if "means" in fixed:
        means = fixed["means"]
    if "weights" in fixed:
        weights = fixed["weights"]
    if not (np.all(np.isfinite(means)) and np.all(np.isfinite(prec))
            and np.all(np.isfinite(weights)) and np.all(np.isfinite(cov))):
        # never hand back inf / NaN parameters silently
        raise _overflow_error()
    return MixtureParameters(ctype, weights, means, prec, cov), collapsed


def _collapsed_set(bad, singular, K) -> list[int]:
    """Components to re-seed: those that failed (`bad`) and those singular to working
    precision (`singular`, a (K,) mask) -- unless every component is singular (data in
    a subspace, e.g. a constant column: nothing could donate a covariance), when only
    the failed ones count and the rest stay as the clamped M-step left them."""
    soft = set(np.flatnonzero(singular).tolist())
    hard = {int(k) for k in bad}
    if len(soft | hard) == K:
        return sorted(hard)
    return sorted(soft | hard)


#: Rounding-error constant of the centred M-step formula, see _rounding_bound.
_ROUNDING_C = 16


def _rounding_bound(scale, eps):
    """Largest rounding error of a variance from the shifted statistics.

    The M-step computes a variance as (Q − 2 S d + n d²) / N_k, with Q = Σγ(x−s)²,
    S = Σγ(x−s), d = S/N_k (s the E-step's means). Each term is correct to a few
    units of roundoff relative to its own magnitude (Q is a sum of non-negative
    terms; the two products and the division add one rounding each; the kernel
    blocks the sums, so their relative error stays a small multiple of eps), and the
    two subtractions add one more rounding of the largest term. So the computed
    value differs from the exact, non-negative, variance by at most about
    c·eps·(|Q| + 2|S d| + n d²)/N_k = c·eps·`scale`; since (S d) ≤ Q (Cauchy–Schwarz)
    that is a few ulp of the second moment Σγ‖x−s‖²/N_k around the shift. We take
    c = 16 (a generous "few"): a variance in [−bound, 0) is rounding and is
    treated as 0; anything more negative is a genuinely bad covariance and still
    raises. For "full"/"tied" the same bound, with the trace as the scale (it
    bounds the spectral norm of the scatter), applies to the eigenvalues.
    """
    return _ROUNDING_C * eps * scale


def _clamp_eigen(cov, reg_covar, bound):
    """`cov` (with `reg_covar` on its diagonal) with eigenvalues of the scatter in
    [−bound, 0) set to 0. Left unchanged if any is more negative (it then fails
    the Cholesky step and raises the collapse error)."""
    D = cov.shape[0]
    lam, V = np.linalg.eigh(cov - reg_covar * np.eye(D))
    if lam.min() < -bound:
        return cov
    lam = np.maximum(lam, 0.0) + reg_covar
    out = (V * lam) @ V.T
    return 0.5 * (out + out.T)


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




# ---- block kernels (one block of validated rows in, a small mergeable result out) -----

def em_block(xb, wb, params: MixtureParameters) -> MixtureStatistics:
    """E-step statistics of one block under `params` (one fused C++ pass)."""
    return _statistics(xb, params, wb)


def _weighted_log_prob(xs, params: MixtureParameters) -> np.ndarray:
    """(n, K) log π_k + log N(x | μ_k, Σ_k) of validated rows `xs` (the C++ kernel)."""
    with np.errstate(divide="ignore"):
        log_w = np.log(params.weights)
    center = _tied_center(params) if params.covariance_type == "tied" else None
    return np.asarray(_core.gaussian_logpdf(
        xs, np.ascontiguousarray(params.means), np.ascontiguousarray(params.precisions_cholesky),
        log_w, center, _TYPE_CODE[params.covariance_type]), dtype=np.float64)


def worst_rows_block(xb, wb, params: MixtureParameters, m):
    """The `m` rows of a block that `params` explains worst (lowest log p(x)).

    Rows of zero weight are skipped. Returns (log p, rows (float64), positions
    in the block), the lowest first and ties by position, so the merged
    choice does not depend on the blocking (the re-seeding of collapsed
    components, :func:`maxlik._engine.fit_mixture`).
    """
    from .special import logsumexp

    lp = np.empty(xb.shape[0], dtype=np.float64)
    for r0 in range(0, xb.shape[0], SUB_ROWS):
        lp[r0:r0 + SUB_ROWS] = logsumexp(_weighted_log_prob(xb[r0:r0 + SUB_ROWS], params), axis=1)
    if wb is not None:
        lp[np.asarray(wb) <= 0] = np.inf
    take = np.argsort(lp, kind="stable")[:m]
    take = take[lp[take] < np.inf]
    return lp[take], xb[take].astype(np.float64), take


def score_entropy_block(xb, wb, params: MixtureParameters):
    """(Σ w log p(x), Σ w H(γ(x))) of a block: the log-likelihood and the entropy
    of the responsibilities, H(γ) = −Σ_k γ_k log γ_k (for ICL); merge by addition."""
    from .special import logsumexp

    ll = ent = 0.0
    for r0 in range(0, xb.shape[0], SUB_ROWS):
        a = _weighted_log_prob(xb[r0:r0 + SUB_ROWS], params)
        lse = logsumexp(a, axis=1)
        log_g = a - lse[:, None]
        with np.errstate(invalid="ignore"):
            h = -np.where(np.isfinite(log_g), np.exp(log_g) * log_g, 0.0).sum(axis=1)
        if wb is None:
            ll += float(lse.sum())
            ent += float(h.sum())
        else:
            w = np.asarray(wb[r0:r0 + SUB_ROWS], dtype=np.float64)
            ll += float(w @ lse)
            ent += float(w @ h)
    return ll, ent


def _has_nan(xb) -> bool:
    # one pass, no (N, D) temporary; inf was rejected by the source (a sum that
    # overflows is inf, not NaN)
    with np.errstate(all="ignore"):
        return bool(np.isnan(xb.sum(dtype=np.float64)))


def _missing_args(params: MixtureParameters):
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(params.weights, dtype=np.float64))
    return (_TYPE_CODE[params.covariance_type],
            np.ascontiguousarray(params.means, dtype=np.float64),
            np.ascontiguousarray(params.precisions_cholesky, dtype=np.float64), log_w)


def em_missing_block(xb, wb, params: MixtureParameters) -> MixtureStatistics:
    """E-step statistics of one block whose NaN entries are missing at random.

    A block without NaN is :func:`em_block` itself (the same numbers as the
    ordinary fit). Otherwise one C++ pass (``cpp/include/maxlik/mixture_missing.hpp``)
    gives the observed-data log-likelihood and the expected sufficient
    statistics (conditional means and covariances of the missing entries),
    in the layout of :func:`em_block`, so :func:`mixture_update` is the M-step
    and the statistics of both kinds of blocks add up. Rows with no observed
    entry get weight 0.
    """
    if not _has_nan(xb):
        return _statistics(xb, params, wb)
    code, means, prec, log_w = _missing_args(params)
    shift = _shift_of(params)
    raw = _core.em_missing_statistics(xb, wb, code, shift, means, prec, log_w)
    return _pack(xb, raw, params.covariance_type, shift)


def check_em_missing_memory(D, K) -> None:
    """MemoryError (before anything is allocated) if the per-thread scratch of the
    missing-value kernels (K x D x 520 filled values, factors) cannot fit."""
    check_output_size(0, 1, f"missing-value E-step scratch for n_components={K}, "
                      f"n_features={D}", extra_bytes=_core._em_missing_bytes(D, K))


def logpdf_missing_block(xb, params: MixtureParameters) -> np.ndarray:
    """(nb, K) float64 log π_k + log N(x_o | μ_k,o, Σ_k,oo) over the observed entries
    of each row (0 + log π_k for a row with none)."""
    return _core.mixture_logpdf_missing(xb, *_missing_args(params))


def impute_block(xb, params: MixtureParameters) -> np.ndarray:
    """A copy of `xb` with each NaN replaced by E[x_m | x_o] (observed entries unchanged)."""
    return _core.mixture_impute(xb, *_missing_args(params))


def nan_column_sums_block(xb, wb):
    """(Σ w x over the observed entries, Σ w of them) per column (float64, (D,) each)."""
    obs = ~np.isnan(xb)
    w = np.ones(xb.shape[0]) if wb is None else np.asarray(wb, np.float64)
    return (np.where(obs, xb, 0).astype(np.float64, copy=False).T @ w,
            obs.T.astype(np.float64) @ w)


def fill_block(xb, col_means):
    """`xb` with its NaN entries replaced by `col_means` (xb itself if it has none)."""
    if not _has_nan(xb):
        return xb
    return np.ascontiguousarray(np.where(np.isnan(xb), col_means.astype(xb.dtype), xb))


def filled_call(fn, col_means, xb, wb, *rest):
    """``fn`` on the block with its NaN entries filled by the column means."""
    return fn(fill_block(xb, col_means), wb, *rest)


def resp_block(xb, wb, resp, labels, ctype, K, shift, kmeans=None):
    """Statistics of one block under given responsibilities (the initialisations).

    `resp` (nb, K) soft or `labels` (nb,) int64 hard assignments (-1: none), or
    `kmeans` = (shift, centres, scale): hard labels of the nearest k-means centre.
    """
    if kmeans is not None:
        labels = lloyd_labels(xb, *kmeans).astype(np.int64)
    return _resp_statistics(xb, wb, ctype, K, shift, resp, labels)


def _csr_column_summary(xb):
    """:func:`column_summary_block` of CSR rows: the implicit zeros count in every column."""
    n, D = xb.shape
    lo, hi = int(xb.indptr[0]), int(xb.indptr[-1])
    v = xb.data[lo:hi].astype(np.float64)
    col = xb.indices[lo:hi]
    amax = column_max_abs_block(xb, None)
    e = scale_exponent(float(amax.max(initial=0.0)))
    if e:
        v = np.ldexp(v, -e)
    mean = np.bincount(col, weights=v, minlength=D) / max(n, 1)
    nnz = np.bincount(col, minlength=D)
    # two-pass scatter around the mean: stored values, then the (n - nnz) zeros
    scatter = np.bincount(col, weights=(v - mean[col]) ** 2, minlength=D) + (n - nnz) * mean**2
    return amax, int(n), np.ldexp(mean, e), scatter, int(e)


def column_summary_block(xb, wb):
    """(max |x| per column, n, mean, scatter, e) of one block, all float64.

    The mean and the per-column scatter Σ (x − mean)² come from the C++
    shifted two-pass kernel; the scatter is in units of 4**e (e = 0 unless
    the block is near the float64 limits).
    """
    if is_csr_block(xb):
        return _csr_column_summary(xb)
    # one C++ call: max |x| per column comes from the first moments pass (numpy's
    # max and min over axis 0 cost three times the whole kernel on 2e5 x 16 rows)
    mean, scatter, _, e, amax = _core.gaussian_moments(xb, None, False)
    mean, amax = np.asarray(mean), np.asarray(amax)
    amax[np.isnan(mean)] = np.nan  # the kernel skips NaN in the max; the mean carries it
    return amax, int(xb.shape[0]), mean, np.asarray(scatter), int(e)


def merge_column_summaries(parts):
    """Merge :func:`column_summary_block` results in block order (Chan et al. 1979).

    Returns (max |x| per column, n, mean, variance in units of 4**E, E)."""
    E = max(p[4] for p in parts)
    amax = parts[0][0]
    n, mean, m2 = 0, None, None
    for a, nb, mb, sb, e in parts:
        amax = np.maximum(amax, a)
        sb = np.ldexp(sb, 2 * (e - E)) if e != E else sb
        mbs = np.ldexp(mb, -E) if E else mb  # the mean in units of 2**E: its squares stay finite
        if mean is None:
            n, mean, m2 = nb, mbs, sb
            continue
        tot = n + nb
        delta = mbs - mean
        mean = mean + delta * (nb / tot)
        m2 = m2 + sb + delta**2 * (n * nb / tot)
        n = tot
    return amax, n, np.ldexp(mean, E) if E else mean, m2 / max(n, 1), E


def column_max_abs_block(xb, wb):
    """Largest |x| of each column of one block (float64); merge with np.maximum."""
    if is_csr_block(xb):
        lo, hi = int(xb.indptr[0]), int(xb.indptr[-1])
        out = np.zeros(xb.shape[1])
        np.maximum.at(out, xb.indices[lo:hi], np.abs(xb.data[lo:hi]).astype(np.float64))
        return out
    return np.maximum(np.abs(xb.max(axis=0)), np.abs(xb.min(axis=0))).astype(np.float64)


def lloyd_step(xb, shift, centers, wb, labels, update, scale=1.0):
    """``_core.kmeans_lloyd_step`` for a dense block, its CSR twin for a :class:`CSRRows` one."""
    if is_csr_block(xb):
        return _core.csr_kmeans_lloyd_step(*xb.args(), shift, centers, wb, labels, update, scale)
    return _core.kmeans_lloyd_step(xb, shift, centers, wb, labels, update, scale)


def sq_distances(xb, shift, centers, scale=1.0):
    """Squared distances (n, M) of the rows ``xb * scale - shift`` to `centers` (dense or CSR)."""
    if is_csr_block(xb):
        return _core.csr_kmeans_sq_distances(*xb.args(), shift, centers, scale)
    return _core.kmeans_sq_distances(xb, shift, centers, scale)


def _sub_rows(xb, r0, r1):
    return xb.rows(r0, min(r1, xb.shape[0])) if is_csr_block(xb) else xb[r0:r1]


def _shifted_rows(xb, idx, scale, shift):
    """Rows `idx` of the block in the shifted coordinates, float64."""
    rows = xb.take(idx) if is_csr_block(xb) else xb[idx]
    return (rows * scale - shift).astype(np.float64)


def lloyd_labels(xb, shift, centers, scale=1.0):
    """Nearest-centre labels (int32) of the rows ``xb * scale - shift``."""
    labels = np.empty(xb.shape[0], dtype=np.int32)
    lloyd_step(xb, shift, centers, None, labels, False, scale)
    return labels


def lloyd_block(xb, wb, labels_out, shift, centers, update, scale=1.0):
    """One Lloyd pass over a block: (S (K, D), W (K,), inertia, counts (K,)).

    S and W (None unless `update`) are the weighted sums and weights of the
    rows per nearest centre, the inertia is Σ w ||x − c||², counts the rows per
    label (unweighted). The labels go into `labels_out` when given.
    """
    labels = labels_out if labels_out is not None else np.empty(xb.shape[0], dtype=np.int32)
    S, W, J = lloyd_step(xb, shift, centers, wb, labels, update, scale)
    return _lloyd_result(S, W, J, wb, labels, centers.shape[0])


def lloyd_block_bounded(xb, wb, labels, upper, lower, shift, centers, update, scale, moved,
                        inertia=True, delta=False):
    """:func:`lloyd_block` keeping Hamerly bounds (dense blocks only).

    `upper` / `lower` (float64, one per row) are updated in place; `moved` is how
    far each centre moved since the pass that wrote them and `labels` (that
    pass's labels), or None to start them. Rows the bounds settle are not
    scored; the labels are those of :func:`lloyd_block`, and without `delta`
    so are the sums and inertia, bit for bit (kmeans.hpp).
    With ``inertia=False`` the inertia is NaN (not measured) and the pass only
    sums the rows the bounds settle. With ``delta=True`` as well (and `moved`)
    S and W are the changes since the pass that wrote the bounds (the rows whose
    label changed; the others are not read), and the counts are None.
    """
    S, W, J = _core.kmeans_lloyd_step(xb, shift, centers, wb, labels, update, scale, upper, lower, moved,
                                      inertia, delta)
    if delta and moved is not None and not inertia:
        return S, W, float(J), None
    return _lloyd_result(S, W, J, wb, labels, centers.shape[0])


def _lloyd_result(S, W, J, wb, labels, n_clusters):
    if W is not None and wb is None:  # unit weights: W holds the exact counts (a serial
        counts = W.astype(np.int64)   # bincount cost ~10% of a 2-thread Lloyd pass)
    else:
        counts = np.bincount(labels, minlength=n_clusters).astype(np.int64)
    return S, W, float(J), counts


def same_clustering_block(xb, wb, shift, scale, centers_a, centers_b):
    """The distinct (label under a, label under b) pairs of a block, as a set."""
    la = lloyd_labels(xb, shift, centers_a, scale).astype(np.int64)
    lb = lloyd_labels(xb, shift, centers_b, scale).astype(np.int64)
    return set(np.unique(la * centers_b.shape[0] + lb).tolist())


def farthest_block(xb, wb, shift, centers, m, scale=1.0):
    """The `m` rows of a block farthest from their nearest centre.

    Returns (squared distances, rows in the shifted coordinates (float64),
    their labels, their weights, their positions in the block), the largest
    distance first and ties by position (a stable order, so the merged result
    does not depend on the blocking).
    """
    labels = lloyd_labels(xb, shift, centers, scale)
    d = np.empty(xb.shape[0], dtype=np.float64)
    for r0 in range(0, xb.shape[0], SUB_ROWS):
        sl = slice(r0, r0 + SUB_ROWS)
        if is_csr_block(xb):  # the distance to the labelled centre, by the CSR kernel
            dist = np.asarray(sq_distances(_sub_rows(xb, r0, r0 + SUB_ROWS), shift, centers, scale))
            d[sl] = dist[np.arange(dist.shape[0]), labels[sl]]
            continue
        diff = (xb[sl] * scale - shift).astype(np.float64) - centers[labels[sl]]
        d[sl] = np.einsum("ij,ij->i", diff, diff)
    take = np.argsort(-d, kind="stable")[:m]
    w = np.ones(take.size) if wb is None else np.asarray(wb, dtype=np.float64)[take]
    return d[take], _shifted_rows(xb, take, scale, shift), labels[take], w, take


def pp_block(xb, wb, shift, scale, chosen, candidates):
    """k-means++ potentials of a block, per sub-chunk of :data:`SUB_ROWS` rows.

    With closest(x) the squared distance of row x to the nearest `chosen`
    centre (+inf when none is chosen yet), returns the (n_sub, T) table of
    Σ w · min(closest(x), d(x, candidate_t)) over each sub-chunk.
    """
    n_chosen = chosen.shape[0]
    both = np.ascontiguousarray(np.concatenate([chosen, candidates]), dtype=xb.dtype)
    out = []
    for r0 in range(0, xb.shape[0], SUB_ROWS):
        xs = _sub_rows(xb, r0, r0 + SUB_ROWS)
        dist = np.asarray(sq_distances(xs, shift, both, scale), dtype=np.float64)
        cand = dist[:, n_chosen:]
        if n_chosen:
            np.minimum(cand, dist[:, :n_chosen].min(axis=1)[:, None], out=cand)
        w = np.ones(xs.shape[0]) if wb is None else np.asarray(wb[r0:r0 + SUB_ROWS], np.float64)
        out.append(w @ cand)
    return np.array(out).reshape(-1, candidates.shape[0])


def pp_closest_cumsum(xb, wb, shift, scale, chosen):
    """Running sums of w · closest(x) over the rows of a sub-chunk (see :func:`pp_block`)."""
    if not is_csr_block(xb):
        xb = np.ascontiguousarray(xb)
    dist = np.asarray(sq_distances(
        xb, shift, np.ascontiguousarray(chosen, dtype=xb.dtype), scale), dtype=np.float64)
    closest = dist.min(axis=1)
    w = np.ones(xb.shape[0]) if wb is None else np.asarray(wb, np.float64)
    return np.cumsum(w * closest)


def class_weight_sums_block(xb, yb, wb, n_classes):
    """Σ w per class code of a block (float64, length n_classes); merge by addition."""
    return np.bincount(np.asarray(yb), weights=None if wb is None else np.asarray(wb, np.float64),
                       minlength=n_classes).astype(np.float64)


def ce_block(xb, yb, wb, theta, n_out, fit_intercept):
    """Weighted softmax / sigmoid cross-entropy of a block and its gradient, fused in C++.

    `yb` holds class codes (int64), `wb` the weights already divided by their
    total. Returns (Σ w CE, gradient (n_out, D + fit_intercept)) without any penalty.
    """
    D = xb.shape[1]
    P = D + int(fit_intercept)
    Th = theta.reshape(n_out, P)
    W = np.ascontiguousarray(Th[:, :D])
    b = np.ascontiguousarray(Th[:, D]) if fit_intercept else None
    if is_csr_block(xb):  # the same fused kernel over the stored values (sparse.hpp)
        loss, gW, gb = _core.csr_linear_ce(*xb.args(), W, b, yb, wb)
    else:
        loss, gW, gb = _core._linear_ce(xb, W, b, yb, wb)
    grad = np.empty((n_out, P))
    grad[:, :D] = gW
    if fit_intercept:
        grad[:, D] = gb
    return float(loss), grad


def xy_max_abs_block(xb, yb, wb):
    """(max |x| over the block, max |y| per target) in float64; merge with np.maximum.

    The first pass of least squares: it also checks that y is finite."""
    yb = np.asarray(yb, dtype=np.float64).reshape(yb.shape[0], -1)
    if not np.all(np.isfinite(yb)):
        raise ValueError("y contains NaN or infinity; remove or impute such rows first")
    xv = xb.values() if is_csr_block(xb) else xb
    xm = max(abs(float(xv.max())), abs(float(xv.min()))) if xv.size else 0.0
    return (np.float64(xm),
            np.maximum(np.abs(yb.max(axis=0)), np.abs(yb.min(axis=0))).astype(np.float64))


def _scaled(xb, yb, ex, ey):
    yb = np.asarray(yb, dtype=np.float64).reshape(yb.shape[0], -1)
    # powers of two, so exact; only data near the float64 limits have ex or ey != 0
    if ex and is_csr_block(xb):
        xb = CSRRows(np.ldexp(xb.data, -ex), xb.indices, xb.indptr, xb.shape[1])
    elif ex:
        xb = np.ldexp(xb, -ex)
    if np.any(ey):
        yb = np.ldexp(yb, -ey[None, :])
    return xb, yb


def weighted_sums_block(xb, yb, wb, ex, ey):
    """(Σ w, Σ w x, Σ w y) of a block (X 2**-ex, y 2**-ey) in float64."""
    xb, yb = _scaled(xb, yb, ex, ey)
    w = np.ones(xb.shape[0]) if wb is None else np.asarray(wb, np.float64)
    return float(w.sum()), w @ xb, w @ yb


def qr_block(xb, yb, wb, ex, ey, x_mean, y_mean):
    """R factor of the weighted, centred block [√w (x − x̄) | √w (y − ȳ)].

    R factors merge by :func:`merge_r` (tall-skinny QR): the R of stacked
    blocks is the R of their stacked R factors, so least squares over any
    blocking solves the same triangular problem, up to rounding, and as
    accurately as a QR of all rows (no squared condition number).
    """
    xb, yb = _scaled(xb, yb, ex, ey)
    sw = np.ones((xb.shape[0], 1)) if wb is None else np.sqrt(np.asarray(wb, np.float64))[:, None]
    A = np.concatenate([(xb - x_mean) * sw, (yb - y_mean) * sw], axis=1)
    return np.linalg.qr(A, mode="r")


def csr_transpose(xb):
    """X^T of CSR rows as CSR rows (X in CSC form: per column, its rows in order)."""
    n, D = xb.shape
    lo, hi = int(xb.indptr[0]), int(xb.indptr[-1])
    itype = xb.indices.dtype
    cols = xb.indices[lo:hi]
    order = np.argsort(cols, kind="stable")  # rows stay ascending within a column
    rows = np.repeat(np.arange(n, dtype=itype), np.diff(xb.indptr).astype(np.int64))
    indptr = np.zeros(D + 1, dtype=itype)
    np.cumsum(np.bincount(cols, minlength=D), out=indptr[1:])
    return CSRRows(np.ascontiguousarray(xb.data[lo:hi][order]), np.ascontiguousarray(rows[order]),
                   indptr, n)


def csr_matmul(xb, B):
    """X B (float64) for CSR rows X and B (D, T), in C++ (``sparse.hpp``)."""
    return _core.csr_matmul(*xb.args(), np.ascontiguousarray(B, dtype=np.float64))


def gram_block(xb, yb, wb, ex, ey):
    """Raw weighted moments of a CSR block for the normal equations, (Σ w, Xᵀw, Σ w y,
    XᵀWX, XᵀWy) in the units X 2**-ex, y 2**-ey (float64); merge by addition.

    The least-squares path for sparse X (a QR would densify it): the caller
    centres implicitly, XᵀWX − S x̄x̄ᵀ, so no centred (dense) row is formed.
    """
    xb, yb = _scaled(xb, yb, ex, ey)
    w = np.ones(xb.shape[0]) if wb is None else np.ascontiguousarray(wb, dtype=np.float64)
    xt = csr_transpose(xb)
    wy = w[:, None] * yb
    A = _core.csr_gram(*xt.args()[:3], *xb.args(), None if wb is None else w)
    return (float(w.sum()), csr_matmul(xt, w[:, None])[:, 0], w @ yb, A, csr_matmul(xt, wy))


def merge_r(a, b):
    """R factor of two stacked R factors (the TSQR merge)."""
    return np.linalg.qr(np.concatenate([a, b]), mode="r")


def residual_block(xb, yb, wb, ex, ey, beta, intercept):
    """Σ w (y − x β − b)² per target of a block (in the scaled units)."""
    xb, yb = _scaled(xb, yb, ex, ey)
    w = np.ones(xb.shape[0]) if wb is None else np.asarray(wb, np.float64)
    r = yb - (csr_matmul(xb, beta) if is_csr_block(xb) else xb @ beta) - intercept
    return w @ (r * r)
