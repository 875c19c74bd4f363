"""Result objects of the closed-form fits (frozen dataclasses).

Every result carries the fitted parameters, the log-likelihood of the data at
those parameters, and the information criteria

    aic = 2 k - 2 log L,        bic = k log n - 2 log L

with k = ``n_parameters`` free parameters and n the (weighted) number of
observations. They are immutable; arrays inside are read-only.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Union

import numpy as np

__all__ = ["GaussianFit", "CategoricalFit", "BernoulliFit"]

ArrayOrFloat = Union[np.ndarray, float]


def _fmt(name: str, value) -> str:
    if isinstance(value, np.ndarray):
        # continuation lines of a matrix align under its first row
        return np.array2string(value, precision=6, threshold=20, edgeitems=3, separator=", ",
                               prefix=" " * (4 + len(name) + 1))
    if isinstance(value, float):
        return f"{value:.10g}"
    return repr(value)


def _freeze(obj) -> None:
    for f in fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v.flags.writeable = False


class _Result:
    """Shared repr: one field per line, arrays printed compactly."""

    def __repr__(self) -> str:
        items = [f"{f.name}={_fmt(f.name, getattr(self, f.name))}" for f in fields(self) if f.repr]
        return f"{type(self).__name__}(\n    " + ",\n    ".join(items) + "\n)"


@dataclass(frozen=True, repr=False, eq=False)
class GaussianFit(_Result):
    """Closed-form fit of one Gaussian (see :func:`maxlik.fit_gaussian`).

    Attributes
    ----------
    mean : ndarray of shape (D,), or float for 1-D data
    covariance : ndarray or float
        In scikit-learn's shapes: (D, D) for "full", (D,) variances for
        "diag", one float variance for "spherical"; a float (the variance)
        for 1-D data whatever the type.
    covariance_type : str
    ddof : float
        The variance estimator: divisor ``n - ddof`` (0 = MLE, 1 = unbiased,
        -1 = minimum mean squared error for Gaussian data).
    log_likelihood : float
        Σ_i w_i log N(x_i | mean, covariance) at the returned parameters
        (+inf when the covariance is singular: the likelihood is unbounded).
    n_samples : int
        Rows of X.
    weight_sum : float
        Σ w_i, the effective number of observations n (= n_samples unweighted).
    n_features : int
    n_parameters : int
        D + D(D+1)/2 (full), 2D (diag), D + 1 (spherical).
    aic, bic : float
        2k - 2 log L and k log n - 2 log L with n = weight_sum.
    stderr_mean : float or ndarray of shape (D,)
        sqrt(variance / n) per coordinate, with the variance of the chosen
        `ddof` (so ddof=1 matches scipy.stats.sem); a float for 1-D data.
    stderr_covariance : float or ndarray shaped like `covariance`
        Asymptotic (maximum-likelihood, Gaussian model) standard errors of
        the covariance entries, from the inverse Fisher information of the
        chosen model at the reported covariance, with n = weight_sum:

        * "full": ``sqrt((σ_ii σ_jj + σ_ij²) / n)`` for entry (i, j) (the
          diagonal: ``sqrt(2 / n) σ_ii``); the matrix is symmetric, and entry
          (i, j) and (j, i) are one parameter;
        * "diag": ``sqrt(2 / n) σ_i²`` per variance (coordinates independent);
        * "spherical": ``sqrt(2 / (n D)) σ²``: all n D squared deviations
          inform the one variance.

        Since σ is the reported (ddof-scaled) covariance c Σ̂_ML, c = n / (n - ddof),
        these are c times the ML standard errors (delta method); all ddof
        agree to first order in 1/n. Exact finite-sample variances differ by
        O(1/n): e.g. the unbiased variance of normal data has variance
        2 σ⁴ / (n - 1), not 2 σ⁴ / n.
    """

    mean: ArrayOrFloat
    covariance: ArrayOrFloat
    covariance_type: str
    ddof: float
    log_likelihood: float
    n_samples: int
    weight_sum: float
    n_features: int
    n_parameters: int
    aic: float
    bic: float
    stderr_mean: ArrayOrFloat
    stderr_covariance: ArrayOrFloat = float("nan")

    def __post_init__(self):
        _freeze(self)

    @property
    def cross_entropy(self) -> float:
        """-log_likelihood / n: the empirical cross-entropy (nats) of the data under the fit."""
        return -self.log_likelihood / self.weight_sum

    def confint(self, alpha: float = 0.05) -> dict[str, np.ndarray]:
        """Two-sided Wald confidence intervals at level 1 - `alpha`.

        ``estimate ± z · stderr`` with z the 1 - alpha/2 standard normal
        quantile (1.959964 for alpha=0.05), for the mean and for every
        covariance entry (with ``stderr_covariance``). These are asymptotic
        intervals: for small n the variance interval is too narrow and can
        extend below zero (it is not clipped); the exact interval for a
        variance uses the chi-square distribution of the scatter instead.

        Parameters
        ----------
        alpha : float, default 0.05
            In (0, 1).

        Returns
        -------
        dict
            ``{"mean": ..., "covariance": ...}``; each array has the shape of
            the estimate plus a last axis of length 2 holding (lower, upper):
            (D, 2) for the mean, (D, D, 2) / (D, 2) / (2,) for a full / diag /
            spherical covariance, (2,) for 1-D data.
        """
        from ._inference import check_alpha, normal_quantile

        z = normal_quantile(check_alpha(alpha))
        out = {}
        for name, est, se in (("mean", self.mean, self.stderr_mean),
                              ("covariance", self.covariance, self.stderr_covariance)):
            est, se = np.asarray(est, dtype=np.float64), np.asarray(se, dtype=np.float64)
            out[name] = np.stack([est - z * se, est + z * se], axis=-1)
        return out

    def logpdf(self, X) -> np.ndarray:
        """Log-density of the rows of `X` under the fitted Gaussian (via maxlik.gaussian_logpdf)."""
        from .stats import gaussian_logpdf  # late import: results has no kernel dependency

        mean = np.atleast_1d(np.asarray(self.mean, dtype=np.float64))
        cov = self.covariance
        if np.ndim(cov) == 0 and self.n_features == 1 and self.covariance_type == "full":
            cov = np.array([[cov]])
        return gaussian_logpdf(X, mean, cov, self.covariance_type)


@dataclass(frozen=True, repr=False, eq=False)
class CategoricalFit(_Result):
    """Fit of a categorical distribution (see :func:`maxlik.fit_categorical`).

    Attributes
    ----------
    probabilities : ndarray of shape (K,)
    categories : ndarray of shape (K,)
        The label of each category (0..K-1 for integer labels and counts).
    counts : ndarray of shape (K,)
        (Weighted) number of observations per category.
    alpha : float
        Additive smoothing (0 = maximum likelihood).
    log_likelihood : float
        Σ_k counts_k log probabilities_k: the log-probability of the observed
        sequence of labels (no multinomial coefficient), 0·log 0 = 0.
    n_samples : float
        Σ counts.
    n_parameters : int
        K - 1.
    aic, bic : float
    """

    probabilities: np.ndarray
    categories: np.ndarray
    counts: np.ndarray
    alpha: float
    log_likelihood: float
    n_samples: float
    n_parameters: int
    aic: float
    bic: float

    def __post_init__(self):
        _freeze(self)

    @property
    def n_categories(self) -> int:
        return int(self.probabilities.shape[0])

    @property
    def cross_entropy(self) -> float:
        """-log_likelihood / n_samples: CE(empirical, fitted) in nats."""
        return -self.log_likelihood / self.n_samples


@dataclass(frozen=True, repr=False, eq=False)
class BernoulliFit(_Result):
    """Fit of independent Bernoulli variables (see :func:`maxlik.fit_bernoulli`).

    Attributes
    ----------
    probability : float or ndarray of shape (D,)
        P(x = 1), one per column for 2-D data.
    n_successes : float or ndarray of shape (D,)
        (Weighted) number of ones.
    n_samples : float
        (Weighted) number of observations.
    alpha : float
    log_likelihood : float
        Summed over all columns.
    n_parameters : int
        D (1 for 1-D data).
    aic, bic : float
    stderr : float or ndarray
        sqrt(p (1 - p) / n), the plug-in standard error of the estimate.
    """

    probability: ArrayOrFloat
    n_successes: ArrayOrFloat
    n_samples: float
    alpha: float
    log_likelihood: float
    n_parameters: int
    aic: float
    bic: float
    stderr: ArrayOrFloat

    def __post_init__(self):
        _freeze(self)
