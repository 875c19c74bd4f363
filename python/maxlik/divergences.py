"""Entropy, cross-entropy and Kullback-Leibler divergences.

The identity behind every fit in maxlik::

    CE(p, q) = H(p) + KL(p || q)

so maximising the average log-likelihood of data under a model q (minimising
the cross-entropy from the empirical distribution p̂ to q) is the same as
minimising KL(p̂ || q).

Discrete divergences (:func:`entropy`, :func:`cross_entropy`,
:func:`kl_divergence`) reduce along one axis in a fused C++ pass that also
validates the inputs. Gaussian divergences (:func:`gaussian_kl`,
:func:`kl_to_standard_normal`) are closed forms.
"""
from __future__ import annotations

import math
import operator

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import _core
from ._validation import (
    as_float_array,
    check_bool,
    check_option,
    check_output_size,
    check_same_dtype,
)

__all__ = [
    "entropy",
    "cross_entropy",
    "kl_divergence",
    "gaussian_kl",
    "kl_to_standard_normal",
    "mixture_kl",
    "MixtureKL",
]


# --------------------------------------------------------------------------- #
# KL to the standard normal (VAE regulariser)
# --------------------------------------------------------------------------- #
def kl_to_standard_normal(mu: npt.ArrayLike, logvar: npt.ArrayLike, return_grad: bool = False) -> Any:
    r"""KL divergence from N(mu, diag(exp(logvar))) to N(0, I), per row.

    .. math::

        \mathrm{KL} = \tfrac12 \sum_j \left(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\right),
        \qquad \sigma_j^2 = e^{\mathrm{logvar}_j}

    the regularisation term of the VAE loss (Kingma & Welling 2014, app. B).
    Computed by a fused, multi-threaded C++ kernel; the term
    :math:`e^x - 1 - x` is evaluated without cancellation, so the result keeps
    full relative accuracy when the posterior is close to the prior.

    Parameters
    ----------
    mu : array_like, shape (..., D)
        Means of the diagonal Gaussians; the last axis is the latent dimension.
    logvar : array_like, shape (..., D)
        Log-variances, same shape as `mu`.
    return_grad : bool, default False
        Also return the exact gradients of each row's KL with respect to `mu`
        (which is ``mu``) and `logvar` (which is ``(exp(logvar) - 1) / 2``),
        computed in the same pass.

    Returns
    -------
    kl : ndarray, shape (...)
        One value per row (a numpy scalar for 1-D inputs). float32 inputs give
        float32; anything else float64.
    grad_mu, grad_logvar : ndarray, shape (..., D)
        Only with ``return_grad=True``.

    Raises
    ------
    TypeError
        Non-numeric inputs, or `return_grad` not a bool.
    ValueError
        `mu` and `logvar` of different shapes, or 0-d inputs.

    Notes
    -----
    NaN and infinite inputs propagate (``logvar = ±inf`` gives ``kl = inf``),
    as in a training loop; they are not rejected.

    Examples
    --------
    >>> import numpy as np
    >>> import maxlik
    >>> maxlik.kl_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 3)))
    array([0., 0.])
    >>> kl, g_mu, g_lv = maxlik.kl_to_standard_normal([[1.0, 0.0]], [[0.0, np.log(2.0)]],
    ...                                               return_grad=True)
    >>> np.round(kl, 6)  # 0.5 * (1 + (2 - 1 - log 2))
    array([0.653426])
    >>> g_lv
    array([[0. , 0.5]])
    """
    if (type(mu) is np.ndarray and type(logvar) is np.ndarray and mu.ndim == 2
            and mu.dtype == logvar.dtype and mu.dtype.char in "fd" and mu.shape == logvar.shape
            and mu.flags.c_contiguous and logvar.flags.c_contiguous
            and type(return_grad) is bool):
        # the per-batch call of a training loop: skip the general conversion path
        return _core.kl_to_standard_normal(mu, logvar, return_grad)
    return_grad = check_bool(return_grad, "return_grad")
    mu_a = as_float_array(mu, "mu", order=None)
    lv_a = as_float_array(logvar, "logvar", order=None)
    if mu_a.ndim == 0:
        raise ValueError("mu must have at least 1 dimension (..., D); got a 0-d array")
    if lv_a.shape != mu_a.shape:
        raise ValueError(
            f"logvar must have the same shape as mu {mu_a.shape}; got shape {lv_a.shape}"
        )
    dtype = check_same_dtype(mu_a, lv_a)
    shape = mu_a.shape
    D = shape[-1]
    lead = shape[:-1]
    N = int(np.prod(lead, dtype=object))
    n_copies = sum(not (a.flags.c_contiguous and a.dtype == dtype) for a in (mu_a, lv_a))
    # copies of broadcast inputs, and the gradients, have the full shape
    check_output_size(shape, np.dtype(dtype).itemsize * (n_copies + (2 if return_grad else 0)),
                      "copies of mu / logvar and the gradients", extra_bytes=N * 8)
    mu2 = np.ascontiguousarray(mu_a, dtype=dtype).reshape(N, D)
    lv2 = np.ascontiguousarray(lv_a, dtype=dtype).reshape(N, D)
    res = _core.kl_to_standard_normal(mu2, lv2, return_grad)
    if return_grad:
        kl, g_mu, g_lv = res
        return kl.reshape(lead)[()], g_mu.reshape(shape), g_lv.reshape(shape)
    return res.reshape(lead)[()]


# --------------------------------------------------------------------------- #
# Discrete distributions
# --------------------------------------------------------------------------- #
def _sum_tolerance(dtype: np.dtype, D: int) -> float:
    """|row sum - 1| allowed before a row counts as "not a distribution"."""
    eps = float(np.finfo(dtype).eps)
    base = 1e-6 if dtype == np.float64 else 1e-4
    return max(base, 4.0 * D * eps)


def _check_base(base):
    if base is None:
        return None
    if isinstance(base, (bool, np.bool_)) or not isinstance(base, (int, float, np.integer, np.floating)):
        raise TypeError(f"base must be None or a positive real number; got {type(base).__name__}")
    b = float(base)
    if not (np.isfinite(b) and b > 0 and b != 1):
        raise ValueError(f"base must be a positive real number other than 1; got {base!r}")
    return math.log(b)


def _check_reduce_axis(axis, ndim: int) -> int:
    if isinstance(axis, (bool, np.bool_)) or axis is None or isinstance(axis, (tuple, list)):
        raise TypeError(f"axis must be an int (the one axis to reduce over); got {axis!r}")
    try:
        ax = operator.index(axis)
    except TypeError:
        raise TypeError(f"axis must be an int; got {type(axis).__name__}") from None
    if not -ndim <= ax < ndim:
        raise ValueError(f"axis={ax} is out of range for inputs with {ndim} dimension(s)")
    return ax % ndim


def _as_rows(a: np.ndarray) -> np.ndarray:
    """(..., D) view/copy as 2-D (N, D) with contiguous rows, row stride 0 if broadcast."""
    D = a.shape[-1]
    N = int(np.prod(a.shape[:-1], dtype=np.int64))
    if a.flags.c_contiguous:
        return a.reshape(N, D)
    item = a.itemsize
    last_ok = D <= 1 or a.strides[-1] == item
    if last_ok and all(s == 0 or n == 1 for s, n in zip(a.strides[:-1], a.shape[:-1])):
        # one row repeated (e.g. q of shape (D,) against p of shape (N, D)): no copy
        return np.lib.stride_tricks.as_strided(a, shape=(N, D), strides=(0, item), writeable=False)
    # a broadcast input can be far larger than its memory: refuse an impossible copy
    check_output_size((N, D), item, "a contiguous copy of the distributions")
    return np.ascontiguousarray(a).reshape(N, D)


def _first_bad(a2: np.ndarray):
    bad = (a2 < 0) | np.isnan(a2)
    flat = int(np.argmax(bad.ravel()))
    r, c = divmod(flat, a2.shape[1]) if a2.shape[1] else (0, 0)
    return r, c, a2[r, c]


def _discrete(kind, p, q, axis, base, normalize, func):
    normalize = check_bool(normalize, "normalize")
    log_base = _check_base(base)
    two = kind != "entropy"
    p_a = as_float_array(p, "p", order=None)
    if p_a.ndim == 0:
        raise ValueError(f"{func}: p must have at least 1 dimension; got a scalar")
    arrays = [p_a]
    if two:
        q_a = as_float_array(q, "q", order=None)
        if q_a.ndim == 0:
            raise ValueError(f"{func}: q must have at least 1 dimension; got a scalar")
        arrays.append(q_a)
        try:
            shape = np.broadcast_shapes(p_a.shape, q_a.shape)
        except ValueError:
            raise ValueError(
                f"{func}: p of shape {p_a.shape} and q of shape {q_a.shape} cannot be "
                "broadcast together (numpy broadcasting rules)"
            ) from None
    else:
        shape = p_a.shape
    dtype = check_same_dtype(*arrays)
    ax = _check_reduce_axis(axis, len(shape))
    names = ("p", "q")
    rows = []
    for a in arrays:
        a = np.broadcast_to(a.astype(dtype, copy=False), shape)
        a = np.moveaxis(a, ax, -1)
        rows.append(_as_rows(a))
    out_shape = tuple(n for i, n in enumerate(shape) if i != ax)
    D = shape[ax]
    if rows[0].shape[0] == 0:
        return np.empty(out_shape, dtype=dtype)

    def where(i: int) -> str:  # a flat distribution index as the user's index
        idx = np.unravel_index(i, out_shape)
        return str(int(idx[0])) if len(idx) == 1 else str(tuple(int(k) for k in idx))

    vals, s_p, s_q, bad_p, bad_q = _core.discrete_divergence(kind, *rows)
    for n_bad, name, r2 in zip((bad_p, bad_q), names, rows):
        if n_bad:
            r, c, v = _first_bad(r2)
            raise ValueError(
                f"{func}: {name} must hold probabilities (non-negative, not NaN); got {float(v)} "
                f"at position {c} along axis {ax} of distribution {where(r)} ({n_bad} such entries)"
            )
    sums = [s_p] + ([s_q] if two else [])
    tol = _sum_tolerance(dtype, D)
    off = [~(np.abs(s - 1) <= tol) for s in sums]  # NaN/inf sums count as off
    if any(o.any() for o in off):
        if not normalize:
            for o, s, name in zip(off, sums, names):
                if o.any():
                    i = int(np.argmax(o))
                    raise ValueError(
                        f"{func}: {name} must sum to 1 along axis {ax} (tolerance {tol:g}); "
                        f"distribution {where(i)} sums to {float(s[i])!r}. Pass normalize=True to divide "
                        f"each distribution by its sum ({int(o.sum())} of {o.size} are off)"
                    )
        for s, name in zip(sums, names):
            bad = ~(np.isfinite(s) & (s > 0))
            if bad.any():
                i = int(np.argmax(bad))
                raise ValueError(
                    f"{func}: normalize=True needs every distribution of {name} to have a "
                    f"positive finite sum; distribution {where(i)} sums to {float(s[i])!r}"
                )
        # Off by more than rounding (e.g. counts): divide explicitly and recompute,
        # which keeps full accuracy, rather than correcting the sums afterwards.
        check_output_size((len(rows),) + rows[0].shape, rows[0].itemsize,
                          "normalised copies of the distributions")
        with np.errstate(all="ignore"):
            rows = [r2 / s.astype(dtype)[:, None] for r2, s in zip(rows, sums)]
        vals, s_p, s_q, _, _ = _core.discrete_divergence(kind, *rows)
        sums = [s_p] + ([s_q] if two else [])
    if normalize:
        # Remaining deviations are rounding-sized: exact correction in closed form,
        #   H(p/a) = H/a + log a,  CE(p/a, q/b) = CE/a + log b,  KL = KL/a - log a + log b.
        lp = np.log(sums[0])
        if kind == "entropy":
            vals = vals / sums[0] + lp
        elif kind == "cross_entropy":
            vals = vals / sums[0] + np.log(sums[1])
        else:
            vals = vals / sums[0] - lp + np.log(sums[1])
    if log_base is not None:
        vals = vals / vals.dtype.type(log_base)
    return vals.reshape(out_shape)[()]


def entropy(p: npt.ArrayLike, axis: int = -1, base: float | None = None, normalize: bool = False) -> Any:
    """Shannon entropy H(p) = -Σ p log p of discrete distributions.

    0·log 0 is taken as 0. Computed in one fused C++ pass that also checks the
    input (no silent normalisation, unlike scipy.stats.entropy).

    Parameters
    ----------
    p : array_like
        Probabilities; every 1-D slice along `axis` is one distribution.
    axis : int, default -1
        The axis holding the probabilities of one distribution.
    base : float, optional
        Logarithm base; None (default) gives nats, 2 gives bits.
    normalize : bool, default False
        Divide every distribution by its sum first. Without it, a distribution
        whose sum differs from 1 by more than rounding (1e-6 in float64, 1e-4
        in float32, or 4·D·eps if larger) raises ValueError.

    Returns
    -------
    H : ndarray or scalar
        `p`'s shape without `axis`; a numpy scalar for 1-D `p`.

    Raises
    ------
    ValueError
        Negative or NaN entries, a distribution not summing to 1 (without
        `normalize`), a bad `axis` or `base`.
    TypeError
        Non-numeric `p`, non-int `axis`.

    See Also
    --------
    cross_entropy, kl_divergence

    Examples
    --------
    >>> import maxlik
    >>> float(maxlik.entropy([0.5, 0.5], base=2))
    1.0
    >>> maxlik.entropy([[1.0, 0.0], [0.25, 0.75]], base=2).round(4)
    array([0.    , 0.8113])
    >>> float(maxlik.entropy([2, 2], normalize=True))  # counts
    0.6931471805599453
    """
    return _discrete("entropy", p, None, axis, base, normalize, "entropy")


def cross_entropy(p: npt.ArrayLike, q: npt.ArrayLike, axis: int = -1, base: float | None = None,
                  normalize: bool = False) -> Any:
    """Cross-entropy CE(p, q) = -Σ p log q of discrete distributions.

    CE(p, q) = H(p) + KL(p ‖ q). With p the empirical distribution of labels,
    this is the negative mean log-likelihood of the data under the model q.
    Terms with p = 0 contribute 0 (even where q = 0); p > 0 = q gives +inf.

    Parameters
    ----------
    p, q : array_like
        Probabilities; broadcast against each other (numpy rules), and every
        1-D slice along `axis` is one distribution.
    axis : int, default -1
        The axis holding the probabilities of one distribution.
    base : float, optional
        Logarithm base; None (default) gives nats, 2 gives bits.
    normalize : bool, default False
        Divide every distribution (of p and of q) by its sum first. Without it,
        a distribution whose sum differs from 1 by more than rounding raises
        ValueError.

    Returns
    -------
    CE : ndarray or scalar
        The broadcast shape without `axis`.

    Raises
    ------
    ValueError
        Shapes that do not broadcast, negative or NaN entries (naming p or q),
        a distribution not summing to 1 (without `normalize`).
    TypeError
        Non-numeric input.

    Examples
    --------
    >>> import maxlik
    >>> round(float(maxlik.cross_entropy([0.5, 0.5], [0.25, 0.75], base=2)), 4)
    1.2075
    """
    return _discrete("cross_entropy", p, q, axis, base, normalize, "cross_entropy")


def kl_divergence(p: npt.ArrayLike, q: npt.ArrayLike, axis: int = -1, base: float | None = None,
                  normalize: bool = False) -> Any:
    """Kullback-Leibler divergence KL(p ‖ q) = Σ p log(p / q).

    0·log(0/q) is taken as 0; p > 0 = q gives +inf. KL ≥ 0 with equality iff
    p = q, and it is not symmetric. Matches ``scipy.special.rel_entr(p, q).sum(axis)``
    and ``scipy.stats.entropy(p, q)`` on normalised input.

    Parameters
    ----------
    p, q : array_like
        Probabilities; broadcast against each other (numpy rules), and every
        1-D slice along `axis` is one distribution.
    axis : int, default -1
        The axis holding the probabilities of one distribution.
    base : float, optional
        Logarithm base; None (default) gives nats, 2 gives bits.
    normalize : bool, default False
        Divide every distribution (of p and of q) by its sum first. Without it,
        a distribution whose sum differs from 1 by more than rounding raises
        ValueError (scipy.stats.entropy would normalise silently).

    Returns
    -------
    KL : ndarray or scalar
        The broadcast shape without `axis`.

    Raises
    ------
    ValueError
        Shapes that do not broadcast, negative or NaN entries (naming p or q),
        a distribution not summing to 1 (without `normalize`).
    TypeError
        Non-numeric input.

    Examples
    --------
    >>> import maxlik
    >>> round(float(maxlik.kl_divergence([0.5, 0.5], [0.25, 0.75], base=2)), 4)
    0.2075
    >>> round(float(maxlik.kl_divergence([0.25, 0.75], [0.5, 0.5], base=2)), 4)
    0.1887
    >>> float(maxlik.kl_divergence([0.5, 0.5], [1.0, 0.0]))
    inf
    """
    return _discrete("kl", p, q, axis, base, normalize, "kl_divergence")


# --------------------------------------------------------------------------- #
# Gaussians in closed form
# --------------------------------------------------------------------------- #
def _expm1_minus_x(t: np.ndarray) -> np.ndarray:
    """e^t - 1 - t without cancellation near 0 (Taylor series for |t| < 1/2)."""
    t = np.asarray(t, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        out = np.expm1(t) - t
    out = np.where(t == np.inf, np.inf, out)
    small = np.abs(t) < 0.5
    if np.any(small):
        ts = t[small]
        poly = np.zeros_like(ts)
        for n in range(17, 1, -1):  # Σ_{n≥2} t^n / n!; t^16/17! < 1e-19 of the sum
            poly = poly * ts + 1.0 / math.factorial(n)
        out = np.array(out, copy=True)
        out[small] = poly * ts * ts
    return out


def _positive(a: np.ndarray, name: str) -> None:
    if np.any(~(a > 0)):
        i = np.unravel_index(int(np.argmax(~(a > 0))), a.shape) if a.ndim else ()
        raise ValueError(f"{name} must hold positive variances; got {a[i]} at index {i}")


def _check_full_cov(C: np.ndarray, name: str, D: int) -> np.ndarray:
    if C.ndim < 2 or C.shape[-1] != C.shape[-2]:
        raise ValueError(
            f"{name} must be a (..., D, D) covariance matrix for covariance_type='full'; "
            f"got shape {C.shape}"
        )
    if C.shape[-1] != D:
        raise ValueError(f"{name} is {C.shape[-1]}x{C.shape[-1]} but the means have D={D}")
    scale = np.abs(C).max(axis=(-1, -2), keepdims=True)
    asym = np.abs(C - np.swapaxes(C, -1, -2)) > 1e-8 * scale
    if np.any(asym):
        idx = np.argwhere(asym)[0]
        raise ValueError(
            f"{name} must be symmetric; entry {tuple(int(i) for i in idx[-2:])} differs from "
            f"its transpose" + (f" in matrix {tuple(int(i) for i in idx[:-2])}" if C.ndim > 2 else "")
        )
    try:
        return np.linalg.cholesky(C)
    except np.linalg.LinAlgError:
        pass
    flat = C.reshape(-1, D, D)
    for i, m in enumerate(flat):
        try:
            np.linalg.cholesky(m)
        except np.linalg.LinAlgError:
            where = f" (matrix {np.unravel_index(i, C.shape[:-2])})" if C.ndim > 2 else ""
            raise ValueError(
                f"{name} must be positive definite{where}; its Cholesky factorisation failed"
            ) from None
    raise AssertionError("unreachable")  # pragma: no cover


def gaussian_kl(mean_p: npt.ArrayLike, cov_p: npt.ArrayLike, mean_q: npt.ArrayLike, cov_q: npt.ArrayLike,
                covariance_type: str = "full") -> Any:
    r"""KL(N(mean_p, cov_p) ‖ N(mean_q, cov_q)) in closed form.

    .. math::

        \mathrm{KL} = \tfrac12\left[\operatorname{tr}(\Sigma_q^{-1}\Sigma_p)
        + (\mu_q-\mu_p)^\top\Sigma_q^{-1}(\mu_q-\mu_p) - D
        + \log\frac{\det\Sigma_q}{\det\Sigma_p}\right]

    The trace and log-determinant terms are evaluated together as
    :math:`\sum_i (\lambda_i - 1 - \log\lambda_i)` over the eigenvalues of
    :math:`\Sigma_q^{-1}\Sigma_p` (singular values of :math:`L_q^{-1}L_p`, squared),
    with :math:`e^t - 1 - t` summed without cancellation, so the result keeps
    its relative accuracy when p and q are close.

    Parameters
    ----------
    mean_p, mean_q : array_like
        Means, shape (..., D); for ``"univariate"`` any shape (...).
    cov_p, cov_q : array_like
        Covariances in the form given by `covariance_type`:

        - ``"full"``: (..., D, D) symmetric positive-definite matrices
        - ``"diag"``: (..., D) variances
        - ``"spherical"``: (...) one variance per distribution
        - ``"univariate"``: (...) variances of scalar Gaussians, elementwise
    covariance_type : {"full", "diag", "spherical", "univariate"}, default "full"

    Leading (batch) dimensions of all four arguments broadcast.

    Returns
    -------
    kl : float64 ndarray or scalar
        Shape of the broadcast batch dimensions.

    Raises
    ------
    ValueError
        Non-symmetric or non-positive-definite full covariances, non-positive
        variances, non-finite values, or mismatched D (each naming the argument).
    TypeError
        Non-numeric input.

    Examples
    --------
    >>> import maxlik
    >>> float(maxlik.gaussian_kl(0.0, 1.0, 1.0, 1.0, covariance_type="univariate"))
    0.5
    >>> round(float(maxlik.gaussian_kl([0, 0], [[2, 0], [0, 2]], [0, 0], [[1, 0], [0, 1]])), 6)
    0.306853
    """
    ct = check_option(covariance_type, "covariance_type",
                      ("full", "diag", "spherical", "univariate"))
    f64 = np.float64
    mp = as_float_array(mean_p, "mean_p", dtype=f64, finite=True, order=None)
    mq = as_float_array(mean_q, "mean_q", dtype=f64, finite=True, order=None)
    cp = as_float_array(cov_p, "cov_p", dtype=f64, finite=True, order=None)
    cq = as_float_array(cov_q, "cov_q", dtype=f64, finite=True, order=None)

    if ct == "univariate":
        _positive(cp, "cov_p")
        _positive(cq, "cov_q")
        try:
            np.broadcast_shapes(mp.shape, cp.shape, mq.shape, cq.shape)
        except ValueError:
            raise ValueError(
                "gaussian_kl: shapes of mean_p, cov_p, mean_q, cov_q do not broadcast: "
                f"{mp.shape}, {cp.shape}, {mq.shape}, {cq.shape}"
            ) from None
        t = np.log(cp) - np.log(cq)  # log of the variance ratio σp²/σq²
        return (0.5 * (_expm1_minus_x(t) + (mq - mp) ** 2 / cq))[()]

    for m, name in ((mp, "mean_p"), (mq, "mean_q")):
        if m.ndim == 0:
            raise ValueError(f"{name} must have shape (..., D) for covariance_type={ct!r}; got a scalar")
    D = mp.shape[-1]
    if mq.shape[-1] != D:
        raise ValueError(f"mean_q has D={mq.shape[-1]} but mean_p has D={D}")
    try:  # broadcast batches (say (N, 1, D) against (1, M, D)) can be far larger than the inputs
        check_output_size(np.broadcast_shapes(mq.shape, mp.shape), 8 * 3,
                          "gaussian_kl temporaries of the broadcast batch")
    except ValueError:
        pass  # reported below with the argument names
    delta = mq - mp

    def _batch(*shapes):
        try:
            return np.broadcast_shapes(*shapes)
        except ValueError:
            raise ValueError(
                "gaussian_kl: the batch dimensions of mean_p, cov_p, mean_q, cov_q do not "
                f"broadcast: {mp.shape}, {cp.shape}, {mq.shape}, {cq.shape}"
            ) from None

    if ct == "spherical":
        _positive(cp, "cov_p")
        _positive(cq, "cov_q")
        _batch(mp.shape[:-1], cp.shape, mq.shape[:-1], cq.shape)
        t = np.log(cp) - np.log(cq)
        return (0.5 * (D * _expm1_minus_x(t) + np.sum(delta**2, axis=-1) / cq))[()]

    if ct == "diag":
        for c, name in ((cp, "cov_p"), (cq, "cov_q")):
            if c.ndim == 0 or c.shape[-1] != D:
                raise ValueError(
                    f"{name} must hold (..., D) variances with D={D} for covariance_type='diag'; "
                    f"got shape {c.shape}"
                )
            _positive(c, name)
        _batch(mp.shape[:-1], cp.shape[:-1], mq.shape[:-1], cq.shape[:-1])
        t = np.log(cp) - np.log(cq)
        return (0.5 * np.sum(_expm1_minus_x(t) + delta**2 / cq, axis=-1))[()]

    # full
    Lp = _check_full_cov(cp, "cov_p", D)
    Lq = _check_full_cov(cq, "cov_q", D)
    batch = _batch(mp.shape[:-1], cp.shape[:-2], mq.shape[:-1], cq.shape[:-2])
    # the solves materialise (batch, D, D) arrays: L_q^-1 L_p and LAPACK's copies
    check_output_size(batch + (D, D), 8 * 4, "gaussian_kl (batch, D, D) temporaries")
    Lq_b = np.broadcast_to(Lq, batch + (D, D))
    A = np.linalg.solve(Lq_b, np.broadcast_to(Lp, batch + (D, D)))  # L_q^{-1} L_p
    s = np.linalg.svd(A, compute_uv=False)
    trace_logdet = np.sum(_expm1_minus_x(2.0 * np.log(s)), axis=-1)
    z = np.linalg.solve(Lq_b, np.broadcast_to(delta, batch + (D,))[..., None])[..., 0]
    return (0.5 * (trace_logdet + np.sum(z**2, axis=-1)))[()]


# --------------------------------------------------------------------------- #
# KL between Gaussian mixtures (no closed form)
# --------------------------------------------------------------------------- #

@dataclass(frozen=True, eq=False)
class MixtureKL:
    """An estimate of KL(p ‖ q) between two Gaussian mixtures (see :func:`mixture_kl`).

    Attributes
    ----------
    value : float
        The estimate, in nats.
    stderr : float or None
        Monte Carlo standard error std(log p − log q) / sqrt(n_samples);
        None for ``method="variational"`` (a deterministic approximation
        whose error is not a sampling error).
    method : str
        "mc" or "variational".
    n_samples : int
        Draws from p (0 for "variational").
    """

    value: float
    stderr: float | None
    method: str
    n_samples: int

    def __float__(self) -> float:
        return float(self.value)


def _check_mixture(m, name: str):
    from ._base import check_is_fitted
    from .mixture import GaussianMixture

    if not isinstance(m, GaussianMixture):
        raise TypeError(f"{name} must be a fitted maxlik.GaussianMixture (or one from "
                        f"GaussianMixture.from_parameters); got {type(m).__name__}")
    check_is_fitted(m, "means_")
    return m.parameters()


def _full_covariances(params) -> np.ndarray:
    """(K, D, D) covariance matrices of a MixtureParameters of any covariance type."""
    from ._kernels import _covariances_from_cholesky

    ct = params.covariance_type
    cov = (params.covariances if params.covariances is not None
           else _covariances_from_cholesky(params.precisions_cholesky, ct))
    cov = np.asarray(cov, dtype=np.float64)
    K, D = params.means.shape
    if ct == "full":
        return cov
    if ct == "tied":
        return np.broadcast_to(cov, (K, D, D))
    if ct == "diag":
        return cov[:, :, None] * np.eye(D)
    return cov[:, None, None] * np.eye(D)


def _sample_mixture(params, n: int, rng) -> np.ndarray:
    """n draws from the mixture (float64), component by component."""
    K, D = params.means.shape
    counts = rng.multinomial(n, params.weights / params.weights.sum())
    cov = _full_covariances(params)
    out = []
    for k in range(K):
        if counts[k] == 0:
            continue
        z = rng.standard_normal(size=(int(counts[k]), D))
        if params.covariance_type in ("diag", "spherical"):
            out.append(params.means[k] + z * np.sqrt(np.diagonal(cov[k])))
        else:
            out.append(params.means[k] + z @ np.linalg.cholesky(cov[k]).T)
    return np.concatenate(out)


def _same_parameters(a, b) -> bool:
    return (a.covariance_type == b.covariance_type and a.means.shape == b.means.shape
            and np.array_equal(a.weights, b.weights) and np.array_equal(a.means, b.means)
            and np.array_equal(a.precisions_cholesky, b.precisions_cholesky))


def mixture_kl(p: Any, q: Any, n_samples: int = 10_000,
               random_state: int | np.random.RandomState | np.random.Generator | None = None,
               method: str = "mc") -> MixtureKL:
    r"""KL(p ‖ q) between two fitted Gaussian mixtures, estimated.

    The KL divergence between mixtures has no closed form. Two estimates:

    * ``method="mc"``: Monte Carlo with exact log-densities,
      :math:`rac1n\sum_i \log p(x_i) - \log q(x_i)` over ``n_samples``
      draws :math:`x_i \sim p`, with the standard error
      :math:`\mathrm{std}(\log p - \log q)/\sqrt n`. Unbiased; exactly 0 when
      q has the same parameters as p (the two log-densities are computed
      identically).
    * ``method="variational"``: the variational approximation of Hershey and
      Olsen (2007),

      .. math::

          D_{var}(p\|q) = \sum_a \pi_a \log
              rac{\sum_{a'} \pi_{a'} e^{-\mathrm{KL}(p_a\|p_{a'})}}
                   {\sum_b \omega_b e^{-\mathrm{KL}(p_a\|q_b)}}

      from the closed-form Gaussian KLs (:func:`gaussian_kl`); deterministic,
      not a bound. For one component each, both methods give
      ``gaussian_kl`` (the variational one exactly, Monte Carlo within its
      standard error).

    Parameters
    ----------
    p, q : GaussianMixture
        Fitted (or built by ``GaussianMixture.from_parameters``) mixtures of
        the same number of features; the covariance types may differ.
    n_samples : int, default 10_000
        Draws from p for "mc" (at least 2).
    random_state : int, RandomState, Generator or None
        Seeds the draws (not the mixtures' own ``random_state``).
    method : {"mc", "variational"}, default "mc"

    Returns
    -------
    MixtureKL
        ``value`` (nats) and ``stderr`` (None for "variational").

    Raises
    ------
    TypeError
        If p or q is not a GaussianMixture.
    ValueError
        If either is not fitted (NotFittedError), their numbers of features
        differ, or `n_samples` / `method` is invalid.

    Examples
    --------
    >>> import maxlik
    >>> p = maxlik.GaussianMixture.from_parameters([1.0], [[0.0]], [[[1.0]]])
    >>> q = maxlik.GaussianMixture.from_parameters([1.0], [[1.0]], [[[1.0]]])
    >>> maxlik.mixture_kl(p, q, method="variational").value
    0.5
    >>> maxlik.mixture_kl(p, p, random_state=0).value
    0.0
    """
    from ._validation import check_int, check_random_state

    meth = check_option(method, "method", ("mc", "variational"))
    pp = _check_mixture(p, "p")
    pq = _check_mixture(q, "q")
    if pp.n_features != pq.n_features:
        raise ValueError(f"p and q must have the same number of features; p has "
                         f"{pp.n_features}, q has {pq.n_features}")
    same = p is q or _same_parameters(pp, pq)
    if meth == "variational":
        if same:
            return MixtureKL(0.0, None, meth, 0)
        from .special import logsumexp

        mp, cp = pp.means, _full_covariances(pp)
        mq, cq = pq.means, _full_covariances(pq)
        kl_pp = np.asarray(gaussian_kl(mp[:, None], cp[:, None], mp[None], cp[None]))
        np.fill_diagonal(kl_pp, 0.0)  # KL(p_a ‖ p_a) = 0 exactly
        kl_pq = np.asarray(gaussian_kl(mp[:, None], cp[:, None], mq[None], cq[None]))
        with np.errstate(divide="ignore"):
            lw_p, lw_q = np.log(pp.weights), np.log(pq.weights)
        num = logsumexp(lw_p[None, :] - kl_pp, axis=1)
        den = logsumexp(lw_q[None, :] - kl_pq, axis=1)
        use = pp.weights > 0
        value = float(np.sum(pp.weights[use] * (num[use] - den[use])))
        return MixtureKL(value, None, meth, 0)
    n = check_int(n_samples, "n_samples", min=2)
    check_output_size((n, pp.n_features), 8 * 3, "samples (n_samples, D) of mixture_kl")
    rng = check_random_state(random_state)
    X = _sample_mixture(pp, n, rng)
    log_p = p.score_samples(X)
    if same:
        # identical computation of log q: the difference is exactly 0
        return MixtureKL(0.0, 0.0, meth, n)
    diff = log_p - q.score_samples(X)
    return MixtureKL(float(np.mean(diff)), float(np.std(diff, ddof=1) / math.sqrt(n)), meth, n)
