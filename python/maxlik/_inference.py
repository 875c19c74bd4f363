"""Standard errors and confidence intervals of the regression fits.

* :func:`ols_stderr` -- the classical OLS / WLS standard errors from the R
  factor that :func:`maxlik._engine.least_squares` already computed (no
  further pass over the data);
* :func:`logistic_covariance` -- the inverse observed information of the
  (penalised) logistic / softmax likelihood, assembled blockwise through the
  source's ``map_reduce`` (one pass; X is never materialised);
* :func:`normal_quantile`, :func:`t_quantile` -- the quantiles of the Wald
  and t intervals, without scipy (numpy is the only run-time dependency).

The estimators (:mod:`maxlik.linear_model`) store the results; everything
here is O(P²) parameter algebra except the one Hessian pass.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ._validation import check_float

__all__ = ["check_alpha", "normal_quantile", "t_quantile", "ols_stderr", "logistic_covariance",
           "LOGISTIC_MAX_PARAMS", "LOGISTIC_EAGER_PARAMS"]

#: Logistic standard errors are computed in ``fit`` only up to this many
#: coefficients (n_out * (n_features + fit_intercept)): the Hessian pass costs
#: about n * P² flops against the fit's ~n_evals * 2 n P, so beyond ~256 it
#: would dominate the fit (10 classes x 100 features: 21 of 27 s).
LOGISTIC_EAGER_PARAMS = 256
#: ``compute_stderr`` forms the Hessian up to this many coefficients (P² doubles).
LOGISTIC_MAX_PARAMS = 4096


# ---- quantiles ---------------------------------------------------------------------------

def check_alpha(alpha) -> float:
    """alpha of a two-sided 1 - alpha interval: a float strictly between 0 and 1."""
    a = check_float(alpha, "alpha")
    if not 0.0 < a < 1.0:
        raise ValueError(f"alpha must be in (0, 1) (0.05 gives a 95% interval); got {a}")
    return a


def normal_quantile(alpha: float) -> float:
    """z with P(|Z| <= z) = 1 - alpha for a standard normal Z."""
    import statistics  # late: it imports decimal and fractions (~10 ms), needed only here

    return float(statistics.NormalDist().inv_cdf(1.0 - 0.5 * alpha))


def _t_central_prob(theta: float, nu: int) -> float:
    """P(|T| <= sqrt(nu) tan theta) for Student's t with integer nu (Abramowitz & Stegun 26.7.3-4)."""
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if nu % 2 == 0:
        j = np.arange(1, nu // 2)
        coef = np.cumprod((2.0 * j - 1.0) / (2.0 * j))  # 1/2, 1·3/(2·4), ...
        powers = c2 ** j
        return s * (1.0 + float(np.sum(coef * powers)))
    if nu == 1:
        return 2.0 * theta / math.pi
    j = np.arange(1, (nu - 1) // 2)
    coef = np.cumprod((2.0 * j) / (2.0 * j + 1.0))      # 2/3, 2·4/(3·5), ...
    return 2.0 / math.pi * (theta + s * c * (1.0 + float(np.sum(coef * c2 ** j))))


def t_quantile(alpha: float, df: int) -> float:
    """t with P(|T| <= t) = 1 - alpha for Student's t with `df` (a positive integer) degrees of freedom.

    Exact finite sums of the t distribution function for df <= 1000 (solved
    by bisection in the angle θ = atan(t / sqrt(df)), to full precision); the
    Cornish-Fisher expansion around the normal quantile to order df**-4
    beyond (relative error below 1e-12 there).
    """
    df = int(df)
    if df < 1:
        raise ValueError(f"degrees of freedom must be >= 1; got {df}")
    if df > 1000:
        z = normal_quantile(alpha)
        z2 = z * z
        g1 = z * (z2 + 1) / 4
        g2 = z * ((5 * z2 + 16) * z2 + 3) / 96
        g3 = z * (((3 * z2 + 19) * z2 + 17) * z2 - 15) / 384
        g4 = z * ((((79 * z2 + 776) * z2 + 1482) * z2 - 1920) * z2 - 945) / 92160
        return z + g1 / df + g2 / df**2 + g3 / df**3 + g4 / df**4
    target = 1.0 - alpha
    lo, hi = 0.0, 0.5 * math.pi
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid in (lo, hi):
            break
        if _t_central_prob(mid, df) < target:
            lo = mid
        else:
            hi = mid
    return math.sqrt(df) * math.tan(0.5 * (lo + hi))


# ---- least squares -----------------------------------------------------------------------

def ols_stderr(fit, n_rows: int, fit_intercept: bool):
    """Classical (WLS) standard errors of a :class:`maxlik._engine.LeastSquaresFit`.

    σ̂²_t = Σ w r² / (n_rows − p), p = D + fit_intercept, and
    Var(β̂) = σ̂² (X_cᵀ W X_c)⁻¹ = σ̂² R⁻¹ R⁻ᵀ with R the fit's R factor;
    Var(b̂) = σ̂² (1 / Σ w + x̄ᵀ (X_cᵀ W X_c)⁻¹ x̄). Returns
    (se_beta (D, T), se_intercept (T,), df, reason) in the fit's scaled units
    (β units 2**(ey − ex), intercept units 2**ey); NaN when df <= 0 or X is
    rank-deficient (the coefficients are then not identified), with `reason`
    the message the estimator warns with when they are read (else None).
    """
    R, x_mean = fit.r_factor, fit.x_mean
    D = fit.beta.shape[0]
    T = fit.rss.shape[0]
    p = D + int(fit_intercept)
    df = int(n_rows) - p
    nan = (np.full((D, T), np.nan), np.full(T, np.nan), df)
    if R is None:  # a least-squares path that did not keep its R factor
        return *nan, "LinearRegression: the standard errors are not available for this input"
    if df <= 0:
        return *nan, (f"LinearRegression: the standard errors are NaN: {n_rows} sample(s) with "
                      f"positive weight leave no residual degrees of freedom for {p} "
                      f"coefficient(s) (n - p = {df}); they need more samples than coefficients")
    if fit.rank < D:
        return *nan, (f"LinearRegression: the standard errors are NaN: X has rank {fit.rank} < "
                      f"{D} features (collinear or constant columns), so the coefficients are "
                      "not identified; drop the redundant columns")
    sigma2 = fit.rss / df                                   # (T,)
    Rinv = np.linalg.solve(R, np.eye(D)) if D else np.zeros((0, 0))
    diag = np.einsum("ij,ij->i", Rinv, Rinv)                # diag (X_cᵀ W X_c)⁻¹
    se_beta = np.sqrt(diag[:, None] * sigma2[None, :])
    if fit_intercept:
        v = np.linalg.solve(R.T, x_mean) if D else np.zeros(0)   # R⁻ᵀ x̄
        se_int = np.sqrt(sigma2 * (1.0 / fit.n_eff + float(v @ v)))
    else:
        se_int = np.zeros(T)
    return se_beta, se_int, df, None


# ---- logistic regression -------------------------------------------------------------------

_HESSIAN_CHUNK_VALUES = 1 << 21  # rows x (n_out * P) values per chunk of the Hessian pass


def _dense_rows(xb, r0, r1):
    from ._kernels import is_csr_block  # (as below: _kernels imports nothing from here)

    rows = xb.rows(r0, r1) if is_csr_block(xb) else xb[r0:r1]
    if hasattr(rows, "toarray"):  # a scipy.sparse block: densified one chunk at a time
        rows = rows.toarray()
    return np.asarray(rows, dtype=np.float64)


def logistic_hessian_block(xb, yb, wb, coef, intercept, cw, fit_intercept, scale=None):
    """Σ_i w_i cw[y_i] ∇²CE_i of one block: the unpenalised observed information.

    Binary (coef (1, D)): Xᵀ diag(w p (1 − p)) X over [x, 1]. Softmax (K rows):
    the (K P, K P) matrix with blocks Xᵀ diag(w (p_k δ_kl − p_k p_l)) X, in the
    order of ``theta.reshape(K, P)`` (class-major). Rows are taken in chunks
    so the temporaries stay small whatever the block size. `scale` (D,) powers
    of two: the Hessian in the coordinates of the columns ``x_j scale_j``
    (exact; `coef` is then in those coordinates too), for columns whose
    squares overflow.
    """
    n = xb.shape[0]
    K, D = coef.shape
    P = D + int(fit_intercept)
    H = np.zeros((K * P, K * P))
    if n == 0:
        return H
    y = np.asarray(yb, dtype=np.int64)
    w = np.ones(n) if wb is None else np.asarray(wb, dtype=np.float64)
    if cw is not None:
        w = w * cw[y]
    step = max(1, _HESSIAN_CHUNK_VALUES // (K * P))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        X = _dense_rows(xb, r0, r1)
        if scale is not None:
            X = X * scale
        if fit_intercept:
            X = np.concatenate([X, np.ones((r1 - r0, 1))], axis=1)
        Z = X[:, :D] @ coef.T + intercept
        wc = w[r0:r1]
        if K == 1:
            a = np.exp(-np.abs(Z[:, 0]))
            c = wc * a / (1.0 + a) ** 2                  # w p (1 − p), stable for large |z|
            H += X.T @ (X * c[:, None])
        else:
            Z -= Z.max(axis=1, keepdims=True)
            pr = np.exp(Z)
            pr /= pr.sum(axis=1, keepdims=True)
            for k in range(K):
                sl = slice(k * P, (k + 1) * P)
                H[sl, sl] += X.T @ (X * (wc * pr[:, k])[:, None])
            B = (X[:, None, :] * (np.sqrt(wc)[:, None] * pr)[:, :, None]).reshape(r1 - r0, K * P)
            H -= B.T @ B
    return H


def _sum_to_zero_basis(K: int) -> np.ndarray:
    """(K, K − 1) orthonormal columns orthogonal to the vector of ones."""
    q, _ = np.linalg.qr(np.concatenate([np.ones((K, 1)), np.eye(K)[:, :K - 1]], axis=1))
    return q[:, 1:]


def _inverse_information(H):
    """H⁻¹ of a symmetric positive definite H, or None if H is (numerically) singular.

    Singular means: after the Jacobi scaling S H S (S = diag(H)^-1/2, which
    removes the ill-conditioning of features on different scales) the
    smallest eigenvalue is at most 1000 P ε times the largest, the rank
    tolerance of np.linalg.matrix_rank with a margin for the rounding of a
    Hessian summed over many rows (duplicated columns leave eigenvalues of
    order ε, not exactly 0).
    """
    if not np.all(np.isfinite(H)):
        return None
    d = np.diag(H)
    if not np.all(d > 0):
        return None
    s = 1.0 / np.sqrt(d)
    Hs = (H * s) * s[:, None]
    lam, V = np.linalg.eigh(0.5 * (Hs + Hs.T))
    if not lam[0] > lam[-1] * 1000 * H.shape[0] * np.finfo(np.float64).eps:
        return None
    return ((V / lam) @ V.T) * s * s[:, None]


def logistic_covariance(source, classes, coef, intercept, *, C, fit_intercept, class_weight):
    """Inverse observed information of the (penalised) negative log-likelihood at the fit.

    The objective is Σ_i s_i CE_i + ||W||² / (2 C) (the fit's objective times
    the weight total S, so its curvature is that of the log-likelihood of
    the data, not of the mean). Binary: the inverse Hessian. Softmax with K
    classes: the Hessian is singular along adding one vector to every
    class's (w_k, b_k) (the softmax does not change; with an unpenalised
    intercept even under L2), and the fit lies on Σ_k θ_k = 0 (L-BFGS from
    zero never leaves it); the covariance is that of the estimator
    constrained there, Q (Qᵀ H Q)⁻¹ Qᵀ with Q an orthonormal basis of the
    constraint (for penalty=None: the Moore-Penrose inverse of H).

    One pass over the source (blockwise, :func:`logistic_hessian_block`).
    Returns (covariance, scale, None): the (n_out P, n_out P) covariance in
    class-major order of the coefficients divided by `scale` (powers of two;
    all ones unless features of extreme magnitude made the Hessian overflow),
    so the standard errors are ``sqrt(diag(covariance)) * scale`` (no underflow);
    or (None, scale, the reason) when the information is singular.
    """
    from . import _engine

    cw, _ = _engine.class_weights(class_weight, classes, source)
    coded = source.derive(y=_engine._codes(classes))
    coef = np.asarray(coef, dtype=np.float64)
    intercept = np.asarray(intercept, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):  # squares of huge features: see below
        H = coded.map_reduce(logistic_hessian_block, coef, intercept, cw, fit_intercept,
                             with_y=True)
    K, D = coef.shape
    P = D + int(fit_intercept)
    theta_scale = np.ones(K * P)
    if not np.all(np.isfinite(H)):
        # features of extreme magnitude (squares overflow): the Hessian in the
        # coordinates x_j 2**-e_j, exactly as the fit rescales them, mapped back below
        from . import _kernels

        m = coded.map_reduce(_kernels.column_max_abs_block, merge=np.maximum)
        e = np.where(m > 1.0, np.minimum(np.frexp(m)[1].astype(np.int64) - 1, 1000), 0)
        scale = np.ldexp(1.0, -e)
        H = coded.map_reduce(logistic_hessian_block, coef / scale, intercept, cw,
                             fit_intercept, scale, with_y=True)
        ts = np.ones((K, P))
        ts[:, :D] = scale
        theta_scale = ts.ravel()
    idx = (np.arange(K)[:, None] * P + np.arange(D)[None, :]).ravel()
    if not math.isinf(C):
        H[idx, idx] += theta_scale[idx] ** 2 / C
    if K > 1:
        Q = np.kron(_sum_to_zero_basis(K), np.eye(P))
        Hq = Q.T @ H @ Q
    else:
        Q, Hq = None, H
    cov = _inverse_information(Hq)
    if cov is None:
        return None, theta_scale, ("LogisticRegression: the standard errors are NaN: the observed information "
                      "is singular (collinear or constant features without a penalty, or too "
                      "few samples); drop redundant features or use an L2 penalty")
    if Q is not None:
        cov = Q @ cov @ Q.T
    return cov, theta_scale, None


def warn_nan(reason) -> None:
    """The warning of NaN standard errors, raised when they are read (not in fit)."""
    if reason is not None:
        warnings.warn(reason, UserWarning, stacklevel=3)
