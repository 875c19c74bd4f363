"""Gaussian log-densities (batched over rows and components, C++ core).

Parameters use scikit-learn's shapes for the four covariance types
(K components, D features):

=============  ===================  ====================================
type           covariances          precisions_cholesky
=============  ===================  ====================================
"full"         (K, D, D)            (K, D, D), upper triangular
"tied"         (D, D)               (D, D), upper triangular
"diag"         (K, D)               (K, D)
"spherical"    (K,)                 (K,)
=============  ===================  ====================================

A precision-Cholesky factor U satisfies ``inv(covariance) = U @ U.T``; it is
what :class:`maxlik.GaussianMixture` stores in ``precisions_cholesky_``.
"""
from __future__ import annotations

import numpy as np
import numpy.typing as npt

from . import _core
from ._validation import as_float_array, check_finite, check_option, check_output_size

__all__ = ["gaussian_logpdf", "precision_cholesky"]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
_TYPE_CODE = {"full": 0, "tied": 1, "diag": 2, "spherical": 3}

# Relative tolerance |a_ij - a_ji| <= tol * sqrt(a_ii a_jj) for "symmetric".
_SYM_TOL = 1e-8


def _precision_cholesky_full(cov: np.ndarray, name: str, what: str = "covariances") -> np.ndarray:
    """(K, D, D) covariances -> upper precision-Cholesky factors, or ValueError naming k."""
    cov = np.ascontiguousarray(cov, dtype=np.float64)
    U, status = _core.precision_cholesky(cov, _SYM_TOL)
    bad = np.flatnonzero(status)
    if bad.size:
        k = int(bad[0])
        label = f"{name}[{k}]" if cov.shape[0] > 1 or name.endswith("]") else name
        if status[k] == 1:
            raise ValueError(f"{label} is not symmetric (component {k}); {what} must be "
                             "symmetric positive-definite matrices")
        raise ValueError(f"{label} is not positive definite (component {k}); {what} must be "
                         "symmetric positive-definite matrices")
    return U


def precision_cholesky(covariances: npt.ArrayLike, covariance_type: str = "full") -> np.ndarray:
    """Precision-Cholesky factors of covariances, in scikit-learn's convention.

    Parameters
    ----------
    covariances : array_like
        Shapes as for `covariance_type` (see the module documentation).
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    ndarray of float64
        For "full"/"tied" the upper-triangular U with ``inv(cov) = U @ U.T``;
        for "diag"/"spherical" ``1 / sqrt(cov)``.

    Raises
    ------
    ValueError
        If a covariance is not symmetric or not positive definite; the message
        names the component.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import precision_cholesky
    >>> U = precision_cholesky(np.array([[4.0, 0.0], [0.0, 1.0]]), "tied")
    >>> U
    array([[0.5, 0. ],
           [0. , 1. ]])
    """
    check_option(covariance_type, "covariance_type", COVARIANCE_TYPES)
    if covariance_type in ("full", "tied"):
        nd = 3 if covariance_type == "full" else 2
        cov = as_float_array(covariances, "covariances", ndim=nd, dtype=np.float64, finite=True)
        if cov.shape[-1] != cov.shape[-2]:
            raise ValueError(f"covariances must hold square matrices; got shape {cov.shape}")
        if covariance_type == "tied":
            return _precision_cholesky_full(cov[None], "covariances")[0]
        return _precision_cholesky_full(cov, "covariances")
    nd = 2 if covariance_type == "diag" else 1
    cov = as_float_array(covariances, "covariances", ndim=nd, dtype=np.float64, finite=True)
    _check_positive(cov, "covariances")
    return 1.0 / np.sqrt(cov)


def _check_positive(v: np.ndarray, name: str) -> None:
    if np.any(v <= 0):
        idx = np.argwhere(v <= 0)[0]
        k = int(idx[0]) if idx.size else 0
        raise ValueError(f"{name} must be positive; got {v[tuple(idx)]} for component {k}")


def _check_precision_cholesky(P: np.ndarray, covariance_type: str, K: int, D: int,
                              name: str = "precisions_cholesky") -> np.ndarray:
    expected = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[covariance_type]
    if P.shape != expected:
        raise ValueError(f"{name} must have shape {expected} for covariance_type="
                         f"{covariance_type!r}; got {P.shape}")
    if covariance_type in ("full", "tied"):
        mats = P.reshape(-1, D, D)
        for k, U in enumerate(mats):
            if np.any(np.tril(U, -1) != 0):
                raise ValueError(f"{name}[{k}] must be upper triangular (scikit-learn's "
                                 "convention: inv(covariance) = U @ U.T)")
            d = np.diagonal(U)
            if np.any(d <= 0):
                raise ValueError(f"{name}[{k}] must have a positive diagonal; got min {d.min()}")
    else:
        _check_positive(P, name)
    return P


def gaussian_logpdf(X: npt.ArrayLike, means: npt.ArrayLike, covariances: npt.ArrayLike | None = None,
                    covariance_type: str = "full", *,
                    precisions_cholesky: npt.ArrayLike | None = None) -> np.ndarray:
    """Log-densities of rows of `X` under one or K Gaussians, in one fused pass.

    Parameters
    ----------
    X : array_like of shape (N, D)
        Points; a 1-D array is taken as N points when D = 1.
    means : array_like of shape (K, D) or (D,)
        Component means. A 1-D `means` is a single Gaussian.
    covariances : array_like, optional
        Shapes as in scikit-learn: "full" (K, D, D), "tied" (D, D),
        "diag" (K, D), "spherical" (K,); for a single Gaussian drop the K
        axis ("full" (D, D), "diag" (D,), "spherical" a scalar).
        Factorised in C++; not needed if `precisions_cholesky` is given.
    covariance_type : {"full", "tied", "diag", "spherical"}
    precisions_cholesky : array_like, optional
        Precomputed precision-Cholesky factors (same shapes as `covariances`;
        upper triangular for "full"/"tied"), e.g. a fitted
        ``GaussianMixture.precisions_cholesky_``. Skips the factorisation.

    Returns
    -------
    ndarray of shape (N, K), or (N,) for a single Gaussian
        ``log N(x_n | mean_k, cov_k)``; float32 if X is float32, else float64.

    Raises
    ------
    ValueError
        Mismatched shapes, non-finite values, a covariance that is not
        symmetric or not positive definite (naming the component), or both
        or neither of `covariances` / `precisions_cholesky`.
    TypeError
        Non-numeric input.
    MemoryError
        If the (N, K) output plus the kernel's scratch (about 520 values per
        component and thread) cannot fit in this machine's memory; raised at
        once, before the covariances are processed, with the size requested.

    Notes
    -----
    The quadratic form uses the triangular factor as a triangular matrix
    (half the multiply-adds of a dense product) on centred rows, blocked over
    rows and multi-threaded; no per-component (N, D) temporary is formed.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import gaussian_logpdf
    >>> X = np.array([[0.0, 0.0], [1.0, 2.0]])
    >>> np.round(gaussian_logpdf(X, np.zeros(2), np.eye(2)), 6)
    array([-1.837877, -4.337877])
    >>> gaussian_logpdf(X, np.zeros((3, 2)), np.ones(3), "spherical").shape
    (2, 3)
    """
    check_option(covariance_type, "covariance_type", COVARIANCE_TYPES)
    if (covariances is None) == (precisions_cholesky is None):
        raise ValueError("give exactly one of covariances and precisions_cholesky")
    means_arr = as_float_array(means, "means", ndim=(0, 1, 2), dtype=np.float64, finite=True)
    single = means_arr.ndim <= 1
    if means_arr.ndim == 0:
        means_arr = means_arr.reshape(1, 1)
    elif means_arr.ndim == 1:
        means_arr = means_arr[None, :]
    K, D = means_arr.shape
    if K == 0:
        raise ValueError("means must hold at least one component")
    # Finiteness of X is checked on the (D/K times smaller) output below: NaN/inf
    # in a row propagate to that row's log-densities.
    X = as_float_array(X, "X", ndim=(1, 2))
    if X.ndim == 1:
        if D != 1:
            raise ValueError(f"X must be 2-D (N, {D}); got a 1-D array of shape {X.shape}")
        X = X.reshape(-1, 1)
    if X.shape[1] != D:
        raise ValueError(f"X has {X.shape[1]} features but means has {D} (X shape {X.shape}, "
                         f"means shape {np.shape(means)})")
    # Before any O(K) work: the (N, K) output and the per-thread scratch (K rows
    # of a 512-row block) must be able to fit at all.
    check_output_size((X.shape[0], K), X.dtype.itemsize, "gaussian_logpdf output (N, K)",
                      extra_bytes=_core._logpdf_scratch_bytes(X.dtype.itemsize,
                                                              _TYPE_CODE[covariance_type], D, K))

    if precisions_cholesky is not None:
        P = as_float_array(precisions_cholesky, "precisions_cholesky", dtype=np.float64,
                           finite=True)
        if single and covariance_type != "tied":
            P = P[None] if P.ndim >= 1 or covariance_type == "spherical" else P
            if covariance_type == "spherical":
                P = P.reshape(1)
        prec = _check_precision_cholesky(P, covariance_type, K, D)
    else:
        cov = as_float_array(covariances, "covariances", dtype=np.float64, finite=True)
        if single and covariance_type != "tied":
            if covariance_type == "spherical":
                cov = cov.reshape(1)
            elif cov.ndim == 0:  # a scalar variance for D == 1
                cov = cov.reshape((1, 1) if covariance_type == "diag" else (1, 1, 1))
            else:
                cov = cov[None]
        expected = {"full": (K, D, D), "tied": (D, D), "diag": (K, D),
                    "spherical": (K,)}[covariance_type]
        if cov.shape != expected:
            raise ValueError(f"covariances must have shape {expected} for covariance_type="
                             f"{covariance_type!r} with means of shape {means_arr.shape}; "
                             f"got {cov.shape}")
        if covariance_type == "full":
            prec = _precision_cholesky_full(cov, "covariances")
        elif covariance_type == "tied":
            prec = _precision_cholesky_full(cov[None], "covariances")[0]
        else:
            _check_positive(cov, "covariances")
            prec = 1.0 / np.sqrt(cov)
    out = _core.gaussian_logpdf(X, np.ascontiguousarray(means_arr),
                                np.ascontiguousarray(prec, dtype=np.float64), None, None,
                                _TYPE_CODE[covariance_type])
    if not np.isfinite(out.sum(dtype=np.float64)):
        check_finite(X, "X")  # names the first bad row; finite X with -inf output is legit
    return out[:, 0] if single else out
