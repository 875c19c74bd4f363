"""Closed-form maximum-likelihood fits: Gaussian, categorical, Bernoulli.

Each fit maximises the (weighted) average log-likelihood of the data, i.e.
minimises the cross-entropy from the empirical distribution to the model; the
result objects (:mod:`maxlik.results`) report the log-likelihood at the fitted
parameters together with AIC and BIC.
"""
from __future__ import annotations

import math
import numbers

import numpy as np
import numpy.typing as npt

from . import _core
from ._validation import (
    as_float_array,
    check_float,
    check_int,
    check_option,
    check_output_size,
    check_sample_weight,
)
from .results import BernoulliFit, CategoricalFit, GaussianFit

__all__ = ["fit_gaussian", "fit_categorical", "fit_bernoulli"]

_LOG_2PI = math.log(2.0 * math.pi)


def _ic(k: int, n: float, ll: float) -> tuple[float, float]:
    """AIC = 2k − 2 log L and BIC = k log n − 2 log L."""
    return 2.0 * k - 2.0 * ll, k * math.log(n) - 2.0 * ll


def _check_ddof(ddof) -> float:
    if isinstance(ddof, (bool, np.bool_)) or not isinstance(ddof, numbers.Real):
        raise TypeError(f"ddof must be a number (0: MLE, 1: unbiased, -1: min-MSE); got {ddof!r}")
    ddof = float(ddof)
    if not math.isfinite(ddof):
        raise ValueError(f"ddof must be finite; got {ddof}")
    return ddof


def _scatter(X: np.ndarray, w, full: bool):
    """Weighted mean, scatter Σ w (x - m)(x - m)ᵀ (or its diagonal) in units of 4**e, and e.

    The C++ kernel (cpp/include/maxlik/moments.hpp) runs the shifted two-pass
    algorithm with the correction term of Chan, Golub & LeVeque (1983), in
    float64 whatever the input dtype: the mean is taken relative to the first
    row, so a constant column gets its mean, and a zero variance, exactly, and
    squares of centred float64 values never cancel, unlike E[x²] - E[x]²
    (scikit-learn #30382). Data beyond 2**400 (or below 2**-400) in magnitude
    are scaled by 2**-e on the fly (exact), so squares that would overflow
    (underflow) do not; e = 0 otherwise.
    """
    mean, scatter, _, e, _ = _core.gaussian_moments(X, w, full)
    return mean, scatter, int(e)


def _unscale_covariance(cov_s, e: int, what: str):
    """cov_s * 4**e, or a ValueError naming X if that leaves the float64 range."""
    if e == 0:
        return cov_s
    with np.errstate(over="ignore", under="ignore"):
        cov = np.ldexp(cov_s, 2 * e)
    var_s, var = (np.diagonal(cov_s), np.diagonal(cov)) if cov.ndim == 2 else (cov_s, cov)
    # overflow anywhere, or a variance lost to underflow (off-diagonal entries
    # may become subnormal or 0 like any tiny covariance)
    if not np.all(np.isfinite(cov)) or np.any((var == 0) & (var_s != 0)):
        big = e > 0
        raise ValueError(
            f"X: the {what} of the data {'exceeds' if big else 'falls below'} the float64 range "
            f"(about {'1.8e308' if big else '2.2e-308'}; max |X| is about 2**{e + 1}), so it "
            f"cannot be returned; rescale the data (e.g. {'divide' if big else 'multiply'} X by "
            "a power of ten) and scale the result back"
        )
    return cov


def fit_gaussian(X: npt.ArrayLike, *, covariance_type: str = "full", ddof: float = 0,
                 sample_weight: npt.ArrayLike | None = None) -> GaussianFit:
    r"""Fit one Gaussian in closed form.

    The maximum-likelihood estimates are the (weighted) sample mean and the
    scatter matrix divided by n. `ddof` selects the variance estimator:

    ======  ===============  ==========================================
    ddof    divisor          estimator
    ======  ===============  ==========================================
    0       n                maximum likelihood (default)
    1       n - 1            unbiased
    -1      n + 1            minimum mean squared error (Gaussian data)
    ======  ===============  ==========================================

    Any real ``ddof < n`` is accepted (divisor n - ddof). The mean does not
    depend on `ddof`.

    Parameters
    ----------
    X : array_like of shape (n_samples, n_features) or (n_samples,)
        Data; 1-D X is one feature, and the result then holds floats.
    covariance_type : {"full", "diag", "spherical"}, default "full"
        "full": a (D, D) covariance; "diag": independent coordinates, (D,)
        variances; "spherical": one variance shared by all coordinates
        (the mean of the diagonal variances, which is its MLE). "tied" is not
        accepted: it means one covariance shared by several components, and
        for a single Gaussian it is "full".
    ddof : float, default 0
        Delta degrees of freedom, see above. Must be < n (the weight sum).
    sample_weight : array_like of shape (n_samples,), optional
        Non-negative frequency weights: a weight of 2 counts a row twice, and
        n is Σ w (as ``np.cov(..., fweights=w)``; fractional weights allowed).

    Returns
    -------
    GaussianFit
        mean, covariance, log_likelihood (at the returned parameters),
        n_samples, weight_sum, n_parameters, aic, bic, stderr_mean and
        stderr_covariance (asymptotic standard errors; ``fit.confint()`` gives
        Wald intervals); see :class:`maxlik.results.GaussianFit`.

    Raises
    ------
    ValueError
        Empty X, NaN or inf in X, ``ddof >= n``, bad `covariance_type`, bad
        weights; a covariance (variance) that is not representable in
        float64 (finite data near the float64 limits, e.g. entries ~1e200
        whose variance is ~1e400): the message says to rescale the data.
    TypeError
        Non-numeric X or ddof.

    Notes
    -----
    The log-likelihood has the closed form

    .. math::

        \log L = -\tfrac{n}{2}\left[D\log 2\pi + \log\det\Sigma
                 + \operatorname{tr}(\Sigma^{-1} S)\right]

    with S the MLE scatter of the chosen model; with Σ = S n / (n - ddof)
    the trace is D (n - ddof) / n. A singular covariance (a constant column,
    or n ≤ D for "full") makes the likelihood unbounded: log_likelihood is
    +inf then, and aic / bic are -inf.

    The computation is a shifted two-pass algorithm in float64 whatever the
    input dtype, so float32 data with a large mean and a small spread keeps
    a positive variance (the failure of scikit-learn issue #30382).

    Finite data of any magnitude give finite results or an error, never
    inf / NaN: data beyond ``2**400`` (or below ``2**-400``) in magnitude are
    scaled by a power of two on the fly (exact), so that squares do not
    overflow (underflow); the mean, the log-likelihood and every covariance
    that fits in float64 are then exact as for ordinary data, and a
    covariance that does not fit raises ValueError.

    Standard errors (``stderr_mean``, ``stderr_covariance``) are the
    maximum-likelihood asymptotics under the Gaussian model, in closed form:
    the inverse Fisher information of the chosen covariance model, evaluated
    at the reported parameters and divided by the effective number of
    observations n = Σ w (frequency weights; n_samples unweighted). So with
    ``ddof != 0`` they are those of the ML estimator times n / (n - ddof),
    the delta method for the rescaled estimator. With weights that are not
    frequencies (e.g. normalised to sum to 1) n is not a sample size and the
    standard errors mean nothing: pass counts.

    Examples
    --------
    >>> import maxlik
    >>> fit = maxlik.fit_gaussian([1.0, 2.0, 3.0, 4.0])
    >>> fit.mean, fit.covariance
    (2.5, 1.25)
    >>> maxlik.fit_gaussian([1.0, 2.0, 3.0, 4.0], ddof=1).covariance
    1.6666666666666667
    >>> fit = maxlik.fit_gaussian([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]])
    >>> fit.covariance
    array([[2.66666667, 2.        ],
           [2.        , 2.        ]])
    >>> fit.n_parameters
    5
    >>> fit = maxlik.fit_gaussian([1.0, 2.0, 3.0, 4.0])
    >>> round(fit.stderr_mean, 6), round(fit.stderr_covariance, 6)   # sqrt(σ²/n), sqrt(2σ⁴/n)
    (0.559017, 0.883883)
    """
    ct = check_option(covariance_type, "covariance_type", ("full", "diag", "spherical"))
    ddof = _check_ddof(ddof)
    X = as_float_array(X, "X", ndim=(1, 2), finite=True)
    one_d = X.ndim == 1
    if one_d:
        X = X.reshape(-1, 1)
    n, D = X.shape
    if n == 0:
        raise ValueError("X must have at least one row; got 0 rows")
    if D == 0:
        raise ValueError(f"X must have at least one column; got shape {X.shape}")
    w = check_sample_weight(sample_weight, n)
    W = float(w.sum(dtype=np.float64))
    if not ddof < W:
        what = "n_samples" if sample_weight is None else "the sum of sample_weight"
        raise ValueError(
            f"ddof must be smaller than {what} ({W:g}) so that the divisor n - ddof is "
            f"positive; got ddof={ddof:g}"
        )
    factor = W / (W - ddof)

    mean, scatter, e = _scatter(X, None if sample_weight is None else w, full=(ct == "full"))
    # scatter is in units of 4**e (e = 0 unless |X| is near the float64 limits):
    # log-determinants are taken in those units and shifted by 2 e D log 2.
    cov = scatter / (W - ddof)  # not (scatter / W) * factor: one rounding, as np.cov
    shift = 2.0 * e * D * math.log(2.0)
    if ct == "full":
        try:
            L = np.linalg.cholesky(cov)
            logdet = 2.0 * float(np.sum(np.log(np.diag(L)))) + shift
        except np.linalg.LinAlgError:
            logdet = -math.inf
        cov = _unscale_covariance(cov, e, "covariance")
        var_diag = np.diag(cov)
        k = D + D * (D + 1) // 2
    elif ct == "diag":
        with np.errstate(divide="ignore"):
            logdet = float(np.sum(np.log(cov))) + shift
        cov = _unscale_covariance(cov, e, "variance")
        var_diag = cov
        k = 2 * D
    else:
        var = float(np.sum(scatter)) / (D * (W - ddof))
        with np.errstate(divide="ignore"):
            logdet = D * math.log(var) + shift if var > 0 else -math.inf
        var = float(_unscale_covariance(np.float64(var), e, "variance"))
        cov = var
        var_diag = np.full(D, var)
        k = D + 1
    if logdet == -math.inf:
        ll = math.inf
    else:
        # tr(Σ⁻¹ S) = D / factor for all three models (S is the model's own MLE)
        ll = -0.5 * W * (D * _LOG_2PI + logdet + D / factor)
    aic, bic = _ic(k, W, ll)
    stderr = np.sqrt(var_diag / W)
    stderr_cov = _covariance_stderr(cov, ct, W, D)
    mean_out: float | np.ndarray
    cov_out: float | np.ndarray
    stderr_out: float | np.ndarray
    stderr_cov_out: float | np.ndarray
    if one_d:
        mean_out = float(mean[0])
        cov_out = float(np.ravel(cov)[0])
        stderr_out = float(stderr[0])
        stderr_cov_out = float(np.ravel(stderr_cov)[0])
    else:
        mean_out, cov_out, stderr_out, stderr_cov_out = mean, cov, stderr, stderr_cov
    return GaussianFit(
        mean=mean_out, covariance=cov_out, covariance_type=ct, ddof=ddof,
        log_likelihood=float(ll), n_samples=int(n), weight_sum=W, n_features=int(D),
        n_parameters=int(k), aic=float(aic), bic=float(bic), stderr_mean=stderr_out,
        stderr_covariance=stderr_cov_out,
    )


def _covariance_stderr(cov, ct: str, n: float, D: int):
    """Asymptotic standard errors of the covariance entries (see GaussianFit.stderr_covariance).

    full: sqrt((σ_ii σ_jj + σ_ij²) / n); diag: sqrt(2 / n) σ_i; spherical:
    sqrt(2 / (n D)) σ², each evaluated at the reported (ddof-scaled)
    covariance. sqrt(σ_ii σ_jj + σ_ij²) is taken as hypot(sqrt σ_ii sqrt σ_jj, σ_ij)
    so that covariances near the float64 limit do not overflow when squared.
    """
    if ct == "full":
        sd = np.sqrt(np.diag(cov))
        return np.hypot(np.outer(sd, sd), cov) / math.sqrt(n)
    if ct == "diag":
        return np.asarray(cov) * math.sqrt(2.0 / n)
    return np.float64(cov) * math.sqrt(2.0 / (n * D))


def _check_alpha(alpha) -> float:
    return check_float(alpha, "alpha", min=0.0)


def _xlogy_sum(counts: np.ndarray, probs: np.ndarray) -> float:
    """Σ counts · log probs with 0·log 0 = 0 (and counts > 0 = probs giving -inf)."""
    pos = counts > 0
    with np.errstate(divide="ignore"):
        return float(np.sum(counts[pos] * np.log(probs[pos])))


def fit_categorical(labels: npt.ArrayLike | None = None, *, counts: npt.ArrayLike | None = None, n_categories: int | None = None,
                    alpha: float = 0.0, sample_weight: npt.ArrayLike | None = None) -> CategoricalFit:
    r"""Fit a categorical distribution to labels or to category counts.

    The maximum-likelihood estimate is :math:`\hat\pi_k = n_k / n`. With
    ``alpha > 0`` the estimate is

    .. math:: \hat\pi_k = \frac{n_k + \alpha}{n + K\alpha}

    (additive / Lidstone smoothing; alpha=1 is Laplace's rule). This is the
    maximum a posteriori estimate under a symmetric Dirichlet prior with
    concentration **alpha + 1** (the mode of the Dirichlet(n + alpha + 1)
    posterior), and equally the posterior *mean* under a symmetric
    Dirichlet(alpha) prior.

    Parameters
    ----------
    labels : array_like of shape (n_samples,), optional
        Observed categories. Integer labels must be non-negative and name
        categories 0..K-1 (K = `n_categories`, or max(labels) + 1); any other
        labels (e.g. strings) define the categories as their sorted unique
        values. Give exactly one of `labels` and `counts`.
    counts : array_like of shape (K,), optional
        Non-negative (possibly fractional) number of observations per category.
    n_categories : int, optional
        K for integer labels, so that unseen categories get a probability
        (0 without smoothing).
    alpha : float, default 0
        Additive smoothing, >= 0 (0 = maximum likelihood).
    sample_weight : array_like of shape (n_samples,), optional
        Frequency weights for `labels`.

    Returns
    -------
    CategoricalFit
        probabilities, categories, counts, alpha, log_likelihood (of the
        observed label sequence at the estimate), n_samples, n_parameters
        (K - 1), aic, bic; see :class:`maxlik.results.CategoricalFit`.

    Raises
    ------
    ValueError
        Both or neither of labels / counts, negative or out-of-range labels,
        negative / NaN counts, zero total count, negative alpha.
    TypeError
        Non-integer `n_categories`, non-numeric counts or alpha.

    Examples
    --------
    >>> import maxlik
    >>> fit = maxlik.fit_categorical([0, 1, 1, 2, 1, 0])
    >>> fit.probabilities
    array([0.33333333, 0.5       , 0.16666667])
    >>> maxlik.fit_categorical(counts=[3, 0, 1], alpha=1).probabilities
    array([0.57142857, 0.14285714, 0.28571429])
    >>> maxlik.fit_categorical(["b", "a", "b"]).categories
    array(['a', 'b'], dtype='<U1')
    """
    alpha = _check_alpha(alpha)
    if (labels is None) == (counts is None):
        raise ValueError("fit_categorical needs exactly one of labels and counts")
    if n_categories is not None:
        n_categories = check_int(n_categories, "n_categories", min=1)
    if counts is not None:
        if sample_weight is not None:
            raise ValueError("sample_weight applies to labels; with counts, weight the counts instead")
        c = as_float_array(counts, "counts", ndim=1, dtype=np.float64, copy=True)  # frozen later
        if np.any(~(c >= 0)) or np.any(~np.isfinite(c)):
            i = int(np.argmax(~((c >= 0) & np.isfinite(c))))
            raise ValueError(f"counts must be non-negative and finite; got {c[i]} at index {i}")
        if n_categories is not None and n_categories != c.shape[0]:
            raise ValueError(f"n_categories={n_categories} but counts has {c.shape[0]} entries")
        categories = np.arange(c.shape[0])
    else:
        lab = np.asarray(labels)
        if lab.ndim != 1:
            raise ValueError(f"labels must be 1-D; got shape {lab.shape}")
        w = check_sample_weight(sample_weight, lab.shape[0])
        if lab.dtype.kind in "biu":
            lab = lab.astype(np.int64)
            if lab.size and lab.min() < 0:
                raise ValueError(
                    f"integer labels must be >= 0 (categories 0..K-1); got {int(lab.min())}"
                )
            K = int(lab.max()) + 1 if lab.size else 0
            if n_categories is not None:
                if K > n_categories:
                    raise ValueError(
                        f"labels contain {K - 1}, which is >= n_categories={n_categories}"
                    )
                K = n_categories
            # counts, categories, probabilities and a temporary: 4 arrays of K values
            check_output_size(K, 4 * 8, f"per-category arrays for {K} categories "
                              "(n_categories, or the largest label + 1)")
            c = np.bincount(lab, weights=w, minlength=K).astype(np.float64)
            categories = np.arange(K)
        elif lab.dtype.kind == "f":
            raise TypeError(
                "labels must be integers or discrete values such as strings; got floats "
                f"(dtype {lab.dtype}). Convert whole-number floats with labels.astype(int)"
            )
        else:
            if n_categories is not None:
                raise ValueError("n_categories applies only to integer labels")
            categories, inv = np.unique(lab, return_inverse=True)
            c = np.bincount(inv.ravel(), weights=w, minlength=categories.size).astype(np.float64)
    n = float(c.sum())
    K = c.shape[0]
    if K == 0 or n <= 0:
        raise ValueError("fit_categorical needs at least one observation (the counts sum to 0)")
    probs = (c + alpha) / (n + K * alpha)
    ll = _xlogy_sum(c, probs)
    k = K - 1
    aic, bic = _ic(k, n, ll)
    return CategoricalFit(
        probabilities=probs, categories=categories, counts=c, alpha=alpha,
        log_likelihood=ll, n_samples=n, n_parameters=k, aic=aic, bic=bic,
    )


def fit_bernoulli(x: npt.ArrayLike, *, alpha: float = 0.0, sample_weight: npt.ArrayLike | None = None) -> BernoulliFit:
    r"""Fit independent Bernoulli variables to 0/1 data.

    The maximum-likelihood estimate of P(x = 1) is the (weighted) fraction of
    ones, k / n. With ``alpha > 0`` it is (k + alpha) / (n + 2 alpha): the
    MAP estimate under a symmetric Beta(alpha + 1, alpha + 1) prior, and the
    posterior mean under Beta(alpha, alpha) (alpha=1: Laplace's rule).

    Parameters
    ----------
    x : array_like of shape (n_samples,) or (n_samples, D)
        Outcomes, each 0 or 1 (bool, int or float); 2-D data fits one
        probability per column (independent features, as in Bernoulli naive Bayes).
    alpha : float, default 0
        Additive smoothing, >= 0.
    sample_weight : array_like of shape (n_samples,), optional
        Frequency weights.

    Returns
    -------
    BernoulliFit
        probability, n_successes, n_samples, alpha, log_likelihood, n_parameters,
        aic, bic and the plug-in standard error sqrt(p (1 - p) / n).

    Raises
    ------
    ValueError
        Values other than 0 and 1, empty x, bad weights, negative alpha.
    TypeError
        Non-numeric x.

    Examples
    --------
    >>> import maxlik
    >>> fit = maxlik.fit_bernoulli([1, 0, 1, 1])
    >>> fit.probability
    0.75
    >>> maxlik.fit_bernoulli([1, 1, 1], alpha=1).probability
    0.8
    """
    alpha = _check_alpha(alpha)
    a = as_float_array(x, "x", ndim=(1, 2), dtype=np.float64, order=None)
    one_d = a.ndim == 1
    if one_d:
        a = a[:, None]
    n_rows = a.shape[0]
    if n_rows == 0:
        raise ValueError("x must have at least one observation; got 0")
    bad = ~((a == 0) | (a == 1))
    if np.any(bad):
        r, col = np.argwhere(bad)[0]
        raise ValueError(f"x must hold only 0 and 1 (or booleans); got {a[r, col]} at row {r}")
    w = check_sample_weight(sample_weight, n_rows)
    n = float(w.sum())
    k1 = w @ a
    p = (k1 + alpha) / (n + 2.0 * alpha)
    ll = _xlogy_sum(k1, p) + _xlogy_sum(n - k1, 1.0 - p)
    D = a.shape[1]
    aic, bic = _ic(D, n, ll)
    se = np.sqrt(p * (1.0 - p) / n)
    if one_d:
        p_out, k_out, se_out = float(p[0]), float(k1[0]), float(se[0])
    else:
        p_out, k_out, se_out = p, k1, se
    return BernoulliFit(
        probability=p_out, n_successes=k_out, n_samples=n, alpha=alpha, log_likelihood=ll,
        n_parameters=D, aic=aic, bic=bic, stderr=se_out,
    )
