"""Linear models fitted by maximum likelihood.

- ``LinearRegression``: Gaussian noise, so the maximum-likelihood coefficients
  are least squares and the noise variance is the mean squared residual.
- ``LogisticRegression``: a categorical (softmax) or Bernoulli (sigmoid)
  model; maximum likelihood minimises the cross-entropy between the labels
  and the predicted probabilities. The L2 penalty is the negative log of a
  Gaussian prior on the weights, so the penalised fit is a MAP estimate.

Both follow the scikit-learn estimator API without importing scikit-learn.
"""
from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

import numpy as np
from numpy.typing import ArrayLike

from . import _engine, _inference, _kernels, _sources
from . import exceptions
from ._base import BaseEstimator, check_is_fitted
from ._validation import (
    as_float_array,
    check_bool,
    check_float,
    check_int,
    check_n_features,
    check_output_size,
    check_sample_weight,
    check_X,
    check_y,
    max_abs,
    scale_exponent,
)

if TYPE_CHECKING:
    from typing_extensions import Self
from .special import log_softmax

__all__ = ["LinearRegression", "LogisticRegression"]


def _check_X(X: ArrayLike, estimator: BaseEstimator, *, reset: bool,
             accept_sparse: bool = False) -> np.ndarray:
    """The one validator (float64 for the linear models) and ``n_features_in_``.

    With `accept_sparse`, scipy.sparse X gives validated CSR rows
    (:class:`maxlik._kernels.CSRRows`, float64), for :func:`_dot`."""
    if accept_sparse and _sources.is_sparse(X):
        rows = _sources.check_csr(X, dtype=np.float64)[1]
        check_n_features(estimator, rows.shape[1], reset)
        return cast(np.ndarray, rows)
    X = check_X(X, dtype=np.float64)
    check_n_features(estimator, X.shape[1], reset)
    return X


def _dot(X, coef: np.ndarray) -> np.ndarray:
    """``X @ coef.T`` for a dense X or CSR rows (the C++ CSR product, nothing densified).

    A sparse `coef` (after ``sparsify()``) is made dense: it has only K rows."""
    if _sources.is_sparse(coef):
        coef = np.asarray(cast(Any, coef).toarray(), dtype=np.float64)
    if _kernels.is_csr_block(X):
        B = coef[:, None] if coef.ndim == 1 else coef.T
        out = _kernels.csr_matmul(X, B)
        return out[:, 0] if coef.ndim == 1 else out
    return X @ coef.T


def _weighted_mean(a, w):
    return (w @ a) / w.sum()


def _unscale(a, e, attr, args):
    """a * 2**e for the power-of-two rescaling of LinearRegression, or a ValueError
    naming the fitted attribute and the argument(s) to rescale if that leaves the
    float64 range (a value lost to overflow, or a nonzero one lost to underflow)."""
    with np.errstate(over="ignore", under="ignore"):
        out = np.ldexp(a, e)
    lost_big = ~np.isfinite(out) & np.isfinite(a)
    lost_small = (out == 0) & (a != 0)
    if np.any(lost_big) or np.any(lost_small):
        what = "exceeds" if np.any(lost_big) else "falls below"
        raise ValueError(
            f"{attr} {what} the float64 range for this data (finite {args} of extreme "
            f"magnitude, near the float64 limits), so it cannot be returned; rescale {args} "
            "(e.g. by a power of ten) and scale the fitted values back"
        )
    return out


class LinearRegression(BaseEstimator):
    r"""Ordinary least squares, as maximum likelihood under Gaussian noise.

    The model is :math:`y = X\beta + b + \varepsilon`, :math:`\varepsilon \sim
    N(0, \sigma^2)` independently per sample. The log-likelihood is

    .. math:: \ell(\beta, b, \sigma^2) = -\tfrac{n}{2}\log(2\pi\sigma^2)
              - \tfrac{1}{2\sigma^2}\sum_i w_i (y_i - x_i\beta - b)^2,

    maximised over :math:`\beta, b` by (weighted) least squares and over
    :math:`\sigma^2` by the mean squared residual. Sample weights act as
    frequency weights, so :math:`n = \sum_i w_i`.

    Parameters
    ----------
    fit_intercept : bool, default True
        Fit the intercept b (otherwise b = 0).
    ddof : float, default 0
        ``noise_variance_ = RSS / (n - ddof)``: 0 gives the maximum-likelihood
        variance, ``n_features + fit_intercept`` the unbiased one.

    Attributes
    ----------
    coef_ : ndarray, shape (n_features,) or (n_targets, n_features)
    intercept_ : float or ndarray of shape (n_targets,)
    noise_variance_ : float or ndarray of shape (n_targets,)
    log_likelihood_ : float
        The Gaussian log-likelihood of the training data at the fitted
        coefficients and ``noise_variance_`` (summed over targets).
    rank_ : int
    singular_values_ : ndarray
    stderr_ : ndarray shaped like coef_
        Classical OLS standard errors ``sqrt(σ̂² [(XᵀWX)⁻¹]_jj)`` with
        ``σ̂² = Σ w r² / (n - p)``, p = n_features + fit_intercept, whatever
        `ddof` is (as statsmodels OLS / WLS ``bse``; from the R factor of the
        fit, so memmap and Dask data need no further pass).
    intercept_stderr_ : float or ndarray of shape (n_targets,)
        The same for the intercept (0 without an intercept).
    df_resid_ : int
        n - p, the residual degrees of freedom of ``stderr_`` and :meth:`confint`.
    n_features_in_ : int

    Notes
    -----
    Standard errors with sample weights are those of weighted least squares
    with the weights as inverse-variance (precision) weights, i.e.
    statsmodels ``WLS(y, X, weights=w).bse``: n in n - p counts the rows of
    positive weight, and rescaling all weights leaves the standard errors
    unchanged. (This differs from the frequency reading of the weights used
    by ``noise_variance_`` and ``log_likelihood_``, where n = Σ w; for integer
    frequency weights, repeat the rows to get the frequency standard errors.)
    When n <= p, or X is rank-deficient (``rank_ < n_features``), the
    coefficients are not identified: ``stderr_`` and ``intercept_stderr_``
    are NaN and reading them (or :meth:`confint`) warns (UserWarning); the
    fit itself succeeds silently, as ``np.linalg.lstsq`` and scikit-learn do.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import LinearRegression
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> y = np.array([1.0, 3.1, 4.9, 7.0])
    >>> reg = LinearRegression().fit(X, y)
    >>> round(float(reg.coef_[0]), 6), round(float(reg.intercept_), 6)
    (1.98, 1.03)
    >>> round(float(reg.noise_variance_), 6)
    0.0045
    >>> round(float(reg.stderr_[0]), 6), round(float(reg.intercept_stderr_), 6)
    (0.042426, 0.079373)
    """

    _estimator_type = "regressor"

    # fitted attributes (declared for type checkers; no class attribute is created)
    coef_: np.ndarray
    intercept_: float | np.ndarray
    noise_variance_: float | np.ndarray

    def __init__(self, fit_intercept: bool = True, ddof: float = 0) -> None:
        self.fit_intercept = fit_intercept
        self.ddof = ddof

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit by weighted least squares; returns self.

        The solve is a QR of the weighted, centred rows, blockwise (TSQR, see
        :func:`maxlik._engine.least_squares`): X may be an ndarray, an
        ``np.memmap`` / HDF5 / zarr dataset or a ``dask.array`` (with y a
        matching array), all giving the same coefficients up to rounding; or a
        scipy.sparse matrix / array (CSR, CSC converted), never densified nor
        centred: the normal equations from C++ CSR kernels, centred implicitly
        (:func:`maxlik._engine._least_squares_normal`; the rank cutoff is then
        a Gram matrix's, see there);
        ``rank_`` and ``singular_values_`` are those of the weighted, centred X,
        as ``np.linalg.lstsq`` on all rows would give.

        Finite data of any magnitude give finite results or an error, never
        inf / NaN: X and each column of y whose largest magnitude is beyond
        ``2**400`` or below ``2**-400`` (where squares and sums of squares
        overflow or underflow, e.g. entries ~1e300) are scaled by a power of
        two before the least-squares solve (exact), and the fitted values
        scaled back.

        Raises
        ------
        ValueError
            Non-finite X or y, mismatched lengths, bad sample weights; a fitted
            value (coef_, intercept_, noise_variance_, singular_values_) that
            is not representable in float64 for such extreme data: the message
            names it and says which argument to rescale.
        """
        fit_intercept = check_bool(self.fit_intercept, "fit_intercept")
        ddof = check_float(self.ddof, "ddof")
        if _sources.is_streamed(X):
            source = _sources.make_source(X, y, sample_weight, dtype=np.float64)
            n, D = source.n_samples, source.n_features
            y_ndim = 1 if source.y is None or source.y.ndim == 1 else 2
        else:
            sparse = _sources.is_sparse(X)
            if not sparse:
                X = _check_X(X, self, reset=True)
            n = np.shape(X)[0]
            y = check_y(y, n, allow_2d=True, estimator_name=type(self).__name__)
            if y.dtype.kind == "O":
                y = y.astype(np.float64)  # numbers stored as objects
            y = as_float_array(y, "y", dtype=np.float64, finite=True)
            y_ndim = y.ndim
            if sparse:  # CSR rows (CSC is converted), validated; never densified
                source = _sources.SparseSource(X, y.reshape(n, -1), sample_weight,
                                               dtype=np.float64)
            else:
                source = _sources.ArraySource(X, y.reshape(n, -1), sample_weight)
            D = source.n_features
        check_n_features(self, D, reset=True)
        n_pos = source.positive_weights()
        # Data near the float64 limits (|X| or |y| beyond 2**400 or below 2**-400,
        # whose squares and sums overflow / underflow) are fitted as X 2**-ex and
        # y_t 2**-ey_t: powers of two, so exact; the coefficients are then
        # beta_s 2**(ey - ex). Ordinary data: ex = ey = 0, nothing changes.
        fit = _engine.least_squares(source, fit_intercept)
        beta, intercept, rss, ex, ey = fit.beta, fit.intercept, fit.rss, fit.ex, fit.ey
        rank, sv, n_eff = fit.rank, fit.singular_values, fit.n_eff
        denom = n_eff - ddof
        with np.errstate(divide="ignore", invalid="ignore"):
            var = rss / denom if denom > 0 else np.full_like(rss, np.nan)
            # log(2 pi var) of the unscaled var = log(2 pi var_s) + 2 ey log 2
            ll = (-0.5 * n_eff * (np.log(2 * np.pi * var) + 2.0 * ey * math.log(2.0))
                  - rss / (2 * var))
            ll = np.where(var == 0, np.inf, ll)  # a perfect fit: the likelihood is unbounded
        if ex or np.any(ey):
            beta = _unscale(beta, ey[None, :] - ex, "coef_", "X and y")
            intercept = _unscale(intercept, ey, "intercept_", "y")
            var = _unscale(var, 2 * ey, "noise_variance_", "y")
            sv = _unscale(sv, ex, "singular_values_", "X")
        self.rank_ = int(rank)
        self.singular_values_ = sv
        self._n_eff = n_eff
        self._n_params = beta.shape[1] * (D + int(fit_intercept) + 1)
        if y_ndim == 1:
            self.coef_ = beta[:, 0].copy()
            self.intercept_ = float(intercept[0])
            self.noise_variance_ = float(var[0])
        else:
            self.coef_ = beta.T.copy()
            self.intercept_ = intercept
            self.noise_variance_ = var
        self.log_likelihood_ = float(np.sum(ll))
        self._set_stderr(fit, n_pos, fit_intercept, y_ndim)
        return self

    def _set_stderr(self, fit, n_pos, fit_intercept, y_ndim):
        """stderr_ / intercept_stderr_ from the fit's R factor (no pass over the data)."""
        se_b, se_i, df, self._stderr_nan = _inference.ols_stderr(fit, n_pos, fit_intercept)
        if fit.ex or np.any(fit.ey):
            se_b = _unscale(se_b, fit.ey[None, :] - fit.ex, "stderr_", "X and y")
            se_i = _unscale(se_i, fit.ey, "intercept_stderr_", "y")
        self.df_resid_ = df
        if y_ndim == 1:
            self._stderr, self._intercept_stderr = se_b[:, 0].copy(), float(se_i[0])
        else:
            self._stderr, self._intercept_stderr = se_b.T.copy(), se_i

    @property
    def stderr_(self) -> np.ndarray:
        """Standard errors of ``coef_`` (see the class docstring); warns if they are NaN."""
        check_is_fitted(self, "coef_")
        _inference.warn_nan(self._stderr_nan)
        return self._stderr

    @property
    def intercept_stderr_(self) -> float | np.ndarray:
        """Standard error(s) of ``intercept_`` (see the class docstring); warns if NaN."""
        check_is_fitted(self, "coef_")
        _inference.warn_nan(self._stderr_nan)
        return self._intercept_stderr

    def confint(self, alpha: float = 0.05) -> dict[str, np.ndarray]:
        """Two-sided t confidence intervals at level 1 - `alpha`, as statsmodels' ``conf_int``.

        ``estimate ± t · stderr`` with t the 1 - alpha/2 quantile of Student's
        t with ``df_resid_`` = n - p degrees of freedom.

        Returns
        -------
        dict
            ``{"coef": ..., "intercept": ...}``: arrays shaped like ``coef_``
            and ``intercept_`` plus a last axis of length 2 holding (lower,
            upper); NaN where the standard errors are NaN.
        """
        check_is_fitted(self, "coef_")
        alpha = _inference.check_alpha(alpha)
        df = self.df_resid_
        q = _inference.t_quantile(alpha, df) if df > 0 else math.nan
        out = {}
        _inference.warn_nan(self._stderr_nan)
        for name, est, se in (("coef", self.coef_, self._stderr),
                              ("intercept", self.intercept_, self._intercept_stderr)):
            est, se = np.asarray(est, dtype=np.float64), np.asarray(se, dtype=np.float64)
            out[name] = np.stack([est - q * se, est + q * se], axis=-1)
        return out

    def predict(self, X: ArrayLike) -> np.ndarray:
        """X @ coef_.T + intercept_.

        Raises
        ------
        ValueError
            If a prediction exceeds the float64 range (X far beyond the
            training data's scale): rescale X.
        """
        check_is_fitted(self, "coef_")
        X = _check_X(X, self, reset=False, accept_sparse=True)
        with np.errstate(over="ignore", invalid="ignore"):
            pred = _dot(X, self.coef_) + self.intercept_
        if not np.isfinite(pred.sum()) and not np.all(np.isfinite(pred)):
            raise ValueError("X: a prediction X @ coef_.T + intercept_ exceeds the float64 range; "
                             "rescale X (and refit on the rescaled data)")
        return pred

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Coefficient of determination R^2 (scikit-learn's definition).

        R^2 does not change when y and the predictions are scaled together,
        so y near the float64 limits is scored in power-of-two units (exact).
        """
        pred = self.predict(X)
        y = as_float_array(y, "y", dtype=np.float64, finite=True)
        w = check_sample_weight(sample_weight, y.shape[0])
        y2 = y.reshape(y.shape[0], -1)
        p2 = pred.reshape(y2.shape)
        e = scale_exponent(max_abs(y2, p2))
        if e:
            y2, p2 = np.ldexp(y2, -e), np.ldexp(p2, -e)
        ss_res = w @ (y2 - p2) ** 2
        ss_tot = w @ (y2 - _weighted_mean(y2, w)) ** 2
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(ss_tot > 0, 1 - ss_res / ss_tot, np.where(ss_res == 0, 1.0, 0.0))
        return float(np.mean(r2))

    def aic(self) -> float:
        """Akaike information criterion ``2 k - 2 log_likelihood_``.

        k counts the coefficients, the intercept(s) and the noise variance(s).
        """
        check_is_fitted(self, "coef_")
        return 2.0 * self._n_params - 2.0 * self.log_likelihood_

    def bic(self) -> float:
        """Bayesian information criterion ``k log(n) - 2 log_likelihood_`` (n = sum of weights)."""
        check_is_fitted(self, "coef_")
        return self._n_params * math.log(self._n_eff) - 2.0 * self.log_likelihood_

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.input_tags.sparse = True
        return tags


class LogisticRegression(BaseEstimator):
    r"""Logistic (binary) and multinomial (softmax) regression with an L2 penalty.

    Maximum likelihood for a Bernoulli / categorical model whose logits are
    linear in the features. With sample weights :math:`s_i`, :math:`S =
    \sum_i s_i`, the minimised objective is scikit-learn's (``lbfgs`` solver,
    version 1.9):

    .. math:: f(W, b) = \frac{1}{S}\sum_i s_i\,\mathrm{CE}(y_i, \mathrm{softmax}(W x_i + b))
              + \frac{1}{2\,C\,S}\,\lVert W\rVert_F^2,

    i.e. ``C * sum_i s_i CE_i + ||W||^2 / 2`` divided by ``C S``. The
    intercept is not penalised (flat prior). Multiplied by S, the objective
    is the negative log-likelihood ``sum_i s_i CE_i`` plus ``||W||^2 / (2 C)``,
    the negative log-density (up to a constant) of independent Gaussian priors
    :math:`W_{kj} \sim N(0, C)`: the fit is the MAP estimate under that prior,
    and ``C=np.inf`` (a flat prior) gives plain maximum likelihood.

    Two classes use the binomial parametrisation (one weight vector and a
    sigmoid), as scikit-learn does; more classes use the full softmax with one
    weight vector per class.

    Fitted by L-BFGS (own implementation, strong Wolfe line search) whose
    objective and gradient come from the fused C++ cross-entropy kernel
    (``grad_W = G^T X + W / (C S)`` with ``G`` the kernel's logit gradient).

    Features of large scale: a column j whose largest magnitude exceeds
    ``2**16`` (up to the float64 limit, e.g. ~1e300) is fitted over
    ``W'_j = W_j 2**e_j`` with ``2**e_j`` about that magnitude. This is an
    exact reparametrisation (same objective, same minimiser, the penalty
    included; X is not copied) that L-BFGS solves where the raw
    parametrisation stalls (it gave all-zero coefficients for features
    ~1e10) and where squares of X would overflow; `tol` then applies to the
    gradient with respect to ``W'``. Other columns are fitted as before
    (scale tiny features yourself: there the penalty would dominate).

    Parameters
    ----------
    The signature is scikit-learn 1.9's; what the ``lbfgs`` solver does not
    use is accepted and documented as such.

    penalty : {"deprecated", "l2", None}, default "deprecated"
        "deprecated" (scikit-learn 1.9's default): L2 unless ``C=np.inf``;
        "l2": L2; None: no penalty (C is ignored). "l1" and "elasticnet" are a
        ValueError: only the lbfgs solver (smooth objectives) is implemented.
    C : float, default 1.0
        Inverse regularisation strength (> 0); ``np.inf`` for no penalty.
    l1_ratio : float, default 0.0
        Only 0 (pure L2) is supported; other values are a ValueError.
    dual : bool, default False
        Only False (the primal problem) is supported.
    tol : float, default 1e-4
        Stop when the largest absolute gradient entry is below `tol`
        (scikit-learn's ``gtol``; for columns of large scale, with respect to
        the rescaled coefficients described below), or when the objective
        stops decreasing (relative change below ``64 * machine epsilon``).
    fit_intercept : bool, default True
    intercept_scaling : float, default 1
        Accepted for compatibility; like scikit-learn's lbfgs it has no effect
        (the intercept is fitted as its own unpenalised parameter).
    class_weight : dict, "balanced" or None, default None
        Row weights multiplied by their class's weight: ``{label: weight}``
        (missing labels weigh 1), or "balanced":
        ``n_eff / (n_classes * n_eff_c)`` with ``n_eff_c`` the class's total
        sample weight. The objective's ``S`` is then the total of the
        resulting weights (as in scikit-learn).
    random_state : None, int or Generator
        Accepted for compatibility: the lbfgs fit is deterministic.
    solver : {"lbfgs"}, default "lbfgs"
        Only "lbfgs"; any other solver is a ValueError naming it.
    max_iter : int, default 100
        Maximum number of L-BFGS iterations.
    verbose : int, default 0
        > 0 prints one line per fit (iterations, objective, max|gradient|, why it stopped).
    warm_start : bool, default False
        Start L-BFGS from the previous fit's ``coef_`` / ``intercept_`` when
        the classes and features are the same (else from zero).
    n_jobs : None or int
        Accepted for compatibility, with scikit-learn 1.9's FutureWarning when
        set; threads are set by :func:`maxlik.set_num_threads` (scikit-learn
        1.9 ignores it too).

    Attributes
    ----------
    classes_ : ndarray
        The sorted class labels (any labels ``np.unique`` can sort).
    coef_ : ndarray, shape (1, n_features) for two classes, else (n_classes, n_features)
    intercept_ : ndarray, shape (1,) or (n_classes,)
    n_iter_ : ndarray of shape (1,)
    objective_ : float
        The final value of the objective above.
    stderr_ : ndarray shaped like coef_
        Standard errors from the inverse observed information at the fitted
        coefficients: the inverse Hessian of ``S f(W, b)`` (the negative
        log-likelihood Σ s_i CE_i plus the penalty ``||W||² / (2 C)``), i.e.
        of XᵀDX (D = s p (1 - p) for two classes) plus I / C on the weights.
        Computed in ``fit`` with one more pass over the data (blockwise for
        memmap / Dask X) when n_out * (n_features + fit_intercept) is at most
        256, where that pass costs no more than the fit; for larger models
        (up to 4096 coefficients) :meth:`compute_stderr` forms it on request,
        and until then reading it raises AttributeError. NaN if the
        information is singular (reading it then warns, UserWarning).

        * ``penalty=None``, two classes: the asymptotic maximum-likelihood
          standard errors, equal to statsmodels ``Logit(...).fit().bse``.
        * L2 penalty: the inverse of the *penalised* Hessian, i.e. the
          covariance of the Laplace (Gaussian) approximation to the
          posterior under the prior W_kj ~ N(0, C) (flat prior on the
          intercept); they are typically smaller than the ML standard
          errors and are posterior, not sampling, standard deviations.
        * More than two classes (softmax): the model is unchanged by adding
          one vector to every class's coefficients and intercept, so the
          Hessian is singular along those shifts (for the intercepts even
          with L2). The fit lies in the sum-to-zero parametrisation
          (Σ_k coef_[k] = 0, Σ_k intercept_[k] = 0: L-BFGS from zero never
          leaves it) and the standard errors are those of the estimator
          constrained to it: the covariance is Q (Qᵀ H Q)⁻¹ Qᵀ with Q an
          orthonormal basis of the constraint (for ``penalty=None``, the
          Moore-Penrose inverse of H). With ``penalty=None``, contrasts
          between classes (coef_[k] - coef_[0], the reference-class
          parametrisation of statsmodels MNLogit) have the same covariance
          in either parametrisation.
        * ``sample_weight`` / ``class_weight`` enter as frequency weights
          (s_i multiplies each row's log-likelihood).
    intercept_stderr_ : ndarray of shape (1,) or (n_classes,)
        The same for the intercepts (0 without an intercept).
    n_features_in_ : int

    Warns
    -----
    ConvergenceWarning
        If L-BFGS stopped before `tol` ("lbfgs failed to converge ...", scikit-learn's wording).

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import LogisticRegression
    >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    >>> y = np.array(["no", "no", "yes", "yes"])
    >>> clf = LogisticRegression().fit(X, y)
    >>> clf.predict([[-3.0], [3.0]]).tolist()
    ['no', 'yes']
    """

    _estimator_type = "classifier"

    # fitted attributes (declared for type checkers; no class attribute is created)
    classes_: np.ndarray
    coef_: np.ndarray
    intercept_: np.ndarray

    def __init__(self, penalty: str | None = "deprecated", *, C: float = 1.0,
                 l1_ratio: float | None = 0.0, dual: bool = False, tol: float = 1e-4,
                 fit_intercept: bool = True, intercept_scaling: float = 1,
                 class_weight: Mapping[Any, float] | str | None = None,
                 random_state: int | np.random.RandomState | np.random.Generator | None = None,
                 solver: str = "lbfgs", max_iter: int = 100, verbose: int = 0,
                 warm_start: bool = False, n_jobs: int | None = None) -> None:
        self.penalty = penalty
        self.C = C
        self.l1_ratio = l1_ratio
        self.dual = dual
        self.tol = tol
        self.fit_intercept = fit_intercept
        self.intercept_scaling = intercept_scaling
        self.class_weight = class_weight
        self.random_state = random_state
        self.solver = solver
        self.max_iter = max_iter
        self.verbose = verbose
        self.warm_start = warm_start
        self.n_jobs = n_jobs

    def _check_params(self):
        if isinstance(self.C, (bool, np.bool_)) or not isinstance(self.C, numbers.Real):
            raise TypeError(f"C must be a positive real number; got {self.C!r}")
        C = float(self.C)
        if not C > 0:
            raise ValueError(f"C must be > 0 (np.inf for no penalty); got {C}")
        if self.solver != "lbfgs":
            raise ValueError(f"solver={self.solver!r} is not supported; the supported solver is "
                             "'lbfgs'")
        penalty = self.penalty
        if penalty == "deprecated":
            l1 = self.l1_ratio
            if l1 is not None and (isinstance(l1, (bool, np.bool_)) or not isinstance(l1, numbers.Real)):
                raise TypeError(f"l1_ratio must be a number in [0, 1]; got {l1!r}")
            if l1 is not None and l1 != 0:
                kind = "l1" if l1 == 1 else "elasticnet"
                raise ValueError(f"l1_ratio={l1} asks for an {kind} penalty, which the lbfgs solver "
                                 "does not support; use l1_ratio=0 (L2) or C=np.inf (none)")
            if l1 is None:  # scikit-learn 1.9's deprecation, in its words
                warnings.warn("'l1_ratio=None' was deprecated in version 1.8 and will trigger an "
                              "error in 1.10. Use 0<=l1_ratio<=1 instead.", FutureWarning,
                              stacklevel=3)
            penalty = None if np.isinf(C) else "l2"
        elif penalty in ("l1", "elasticnet"):
            raise ValueError(f"penalty={penalty!r} is not supported (only the lbfgs solver is "
                             "implemented); use penalty='l2' or None")
        elif penalty not in ("l2", None):
            raise ValueError(f"penalty must be 'l2', None or 'deprecated'; got {penalty!r} "
                             "(C is keyword-only, as in scikit-learn)")
        else:  # scikit-learn 1.9's deprecation of an explicit penalty, in its words
            warnings.warn("'penalty' was deprecated in version 1.8 and will be removed in 1.10. "
                          "To avoid this warning, leave 'penalty' set to its default value and "
                          "use 'l1_ratio' or 'C' instead. Use l1_ratio=0 instead of "
                          "penalty='l2', l1_ratio=1 instead of penalty='l1', l1_ratio set to a "
                          "float between 0 and 1 instead of penalty='elasticnet', and "
                          "C=np.inf instead of penalty=None.", FutureWarning, stacklevel=3)
        l1 = self.l1_ratio
        if self.penalty != "deprecated" and isinstance(l1, numbers.Real):
            # scikit-learn's warnings for an explicit penalty that l1_ratio contradicts
            if 0 < l1 < 1:
                warnings.warn("l1_ratio parameter is only used when penalty is 'elasticnet'. "
                              f"Got (penalty={penalty})", UserWarning, stacklevel=3)
            if penalty == "l2" and l1 != 0:
                warnings.warn(f"Inconsistent values: penalty={penalty} with l1_ratio={l1}. "
                              "penalty is deprecated. Please use l1_ratio only.", UserWarning,
                              stacklevel=3)
        if penalty is None:
            if self.penalty is None and self.C != 1.0:  # explicit penalty=None with a C
                warnings.warn("Setting penalty=None will ignore the C and l1_ratio parameters",
                              UserWarning, stacklevel=3)
            C = np.inf
        if check_bool(self.dual, "dual"):
            raise ValueError("dual=True is not supported: the lbfgs solver solves the primal "
                             "problem; use dual=False")
        check_float(self.intercept_scaling, "intercept_scaling", min=0.0)
        if self.n_jobs is not None:
            check_int(self.n_jobs, "n_jobs")
            warnings.warn("'n_jobs' has no effect since 1.8 and will be removed in 1.10. You "
                          f"provided 'n_jobs={self.n_jobs}', please leave it unspecified "
                          "(maxlik's threads: maxlik.set_num_threads).", FutureWarning,
                          stacklevel=3)
        verbose = int(self.verbose) if isinstance(self.verbose, (bool, np.bool_)) else \
            check_int(self.verbose, "verbose", min=0)
        return (C, check_bool(self.fit_intercept, "fit_intercept"),
                check_int(self.max_iter, "max_iter", min=0),
                check_float(self.tol, "tol", min=0.0), verbose,
                check_bool(self.warm_start, "warm_start"))

    def fit(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> Self:
        """Fit the model by penalised maximum likelihood; returns self.

        Each L-BFGS evaluation is one pass of the fused C++ cross-entropy over
        the rows (:func:`maxlik._engine.fit_logistic`); X may be an ndarray,
        an ``np.memmap`` / HDF5 / zarr dataset or a ``dask.array`` (one graph
        per evaluation), or a scipy.sparse matrix / array (CSR; CSC is
        converted) whose stored values the C++ CSR kernel reads (never
        densified), with the same result up to summation order. float32 X
        gives float32 ``coef_`` and ``intercept_`` (the fit runs in float64).

        Raises
        ------
        ValueError
            Fewer than two classes, continuous y, non-finite X, bad weights.
        """
        C, fit_intercept, max_iter, tol, verbose, warm_start = self._check_params()
        # float32 X gives float32 coef_ / intercept_ (scikit-learn's lbfgs keeps it); the
        # fit itself runs in float64
        out_dtype = np.float32 if np.dtype(getattr(X, "dtype", np.float64)) == np.float32 \
            else np.float64
        source = self._source(X, y, sample_weight, reset=True)
        x0 = None
        if warm_start and hasattr(self, "coef_") and getattr(self, "n_features_in_", None) == \
                source.n_features:
            coef = cast(Any, self.coef_).toarray() if _sources.is_sparse(self.coef_) else self.coef_
            x0 = np.column_stack([coef, self.intercept_]) if fit_intercept else coef
        fit = _engine.fit_logistic(source, C=C, fit_intercept=fit_intercept, max_iter=max_iter,
                                   tol=tol, class_weight=self.class_weight, x0=x0)
        res = fit.result
        if verbose:
            print(f"LogisticRegression (lbfgs): {res.n_iter} iterations, objective "
                  f"{float(res.fun):.10g}, max|gradient| {np.max(np.abs(res.grad)):.3g}: "
                  f"{res.message}")
        if not res.converged:
            warnings.warn(
                f"lbfgs failed to converge after {res.n_iter} iteration(s): {res.message}; "
                f"max|gradient| = {np.max(np.abs(res.grad)):.3g} > tol = {tol}.\n"
                f"Increase the number of iterations (max_iter={max_iter}), scale the features "
                "(e.g. StandardScaler), or decrease C.",
                exceptions.ConvergenceWarning,
                stacklevel=3,  # fit <- its all-or-nothing wrapper <- the caller
            )
        check_n_features(self, source.n_features, reset=True)
        self.classes_ = fit.classes
        self.coef_ = fit.coef.astype(out_dtype, copy=False)
        self.intercept_ = fit.intercept.astype(out_dtype, copy=False)
        self.n_iter_ = np.array([fit.n_iter], dtype=np.int32)
        self.objective_ = fit.objective
        self._set_stderr(source, C, fit_intercept)
        return self

    def _source(self, X, y, sample_weight, *, reset):
        """The validated rows of a fit (in memory, streamed, or CSR) as an engine source."""
        if _sources.is_streamed(X):
            source = _sources.make_source(X, y, sample_weight, dtype=np.float64)
            if not reset:
                check_n_features(self, source.n_features, reset=False)
        else:
            sparse = _sources.is_sparse(X)
            if not sparse:
                X = _check_X(X, self, reset=reset)
            y = check_y(y, np.shape(X)[0], allow_2d=False, estimator_name=type(self).__name__,
                        stacklevel=5)  # check_y <- _source <- fit / compute_stderr <- ...
            if y.dtype.kind == "O":
                _engine.check_label_kinds(y)
            elif y.dtype.kind not in "biufUS":
                raise ValueError(f"Unknown label type: y has dtype {y.dtype}")
            if sparse:  # CSR rows (CSC is converted), validated; never densified
                source = _sources.SparseSource(X, y, sample_weight, dtype=np.float64)
                if not reset:
                    check_n_features(self, source.n_features, reset=False)
            else:
                source = _sources.ArraySource(X, y, sample_weight)
        source.positive_weights()
        return source

    def compute_stderr(self, X: ArrayLike, y: ArrayLike,
                       sample_weight: ArrayLike | None = None) -> Self:
        """Form the observed information on the training data and set ``stderr_``; returns self.

        ``fit`` does this itself only while the Hessian pass is cheap next to
        the fit (at most 256 coefficients, n_out * (n_features +
        fit_intercept)): the pass costs about n_samples * n_coefficients²
        flops, for 10 classes x 100 features ten times the L-BFGS fit. For
        larger models (up to 4096 coefficients) call this with the data,
        weights and classes the model was fitted on; the result means what
        ``stderr_`` documents only for those.

        Raises
        ------
        ValueError
            More than 4096 coefficients, labels not among ``classes_``, or a
            different number of features than the fit saw.
        """
        check_is_fitted(self, "coef_")
        C, fit_intercept, *_ = self._check_params()
        if not _sources.is_streamed(y):
            unknown = ~np.isin(np.asarray(y), self.classes_)
            if np.any(unknown):
                raise ValueError(f"compute_stderr: y has labels the model was not fitted on "
                                 f"(first: {np.asarray(y)[unknown][0]!r}); classes_ are "
                                 f"{self.classes_.tolist()}")
        source = self._source(X, y, sample_weight, reset=False)
        K, D = self.coef_.shape
        if K * (D + int(fit_intercept)) > _inference.LOGISTIC_MAX_PARAMS:
            raise ValueError(
                f"compute_stderr: the model has {K * (D + int(fit_intercept))} coefficients; "
                f"standard errors are formed for at most {_inference.LOGISTIC_MAX_PARAMS} "
                "(the Hessian is their square)")
        self._set_stderr(source, C, fit_intercept, limit=_inference.LOGISTIC_MAX_PARAMS)
        return self

    def _set_stderr(self, source, C, fit_intercept, limit=None):
        """stderr_ / intercept_stderr_ from one more pass (the Hessian, blockwise)."""
        K, D = self.coef_.shape
        for name in ("_stderr", "_intercept_stderr", "_covariance", "_stderr_nan"):
            self.__dict__.pop(name, None)  # a refit too large for them keeps no stale values
        if limit is None:
            limit = _inference.LOGISTIC_EAGER_PARAMS
        if K * (D + int(fit_intercept)) > limit:
            return
        cov, scale, self._stderr_nan = _inference.logistic_covariance(
            source, self.classes_, self.coef_, self.intercept_, C=C,
            fit_intercept=fit_intercept, class_weight=self.class_weight)
        P = D + int(fit_intercept)
        if cov is None:
            se = np.full((K, P), np.nan)
        else:
            se = (np.sqrt(np.maximum(np.diag(cov), 0.0)) * scale).reshape(K, P)
            with np.errstate(under="ignore"):
                cov = cov * np.outer(scale, scale)
        self._covariance = cov
        self._stderr = np.ascontiguousarray(se[:, :D])
        self._intercept_stderr = se[:, D].copy() if fit_intercept else np.zeros(K)

    def _stderr_attr(self, name):
        check_is_fitted(self, "coef_")
        if name not in self.__dict__:
            raise AttributeError(
                f"{name[1:]}_ is not available: the model has more than "
                f"{_inference.LOGISTIC_EAGER_PARAMS} coefficients (n_out * (n_features + "
                "fit_intercept)), so fit did not form the Hessian (it would cost more than "
                "the fit); call compute_stderr(X, y) with the training data")
        _inference.warn_nan(self._stderr_nan)
        return self.__dict__[name]

    @property
    def stderr_(self) -> np.ndarray:
        """Standard errors of ``coef_`` (see the class docstring); warns if they are NaN."""
        return self._stderr_attr("_stderr")

    @property
    def intercept_stderr_(self) -> np.ndarray:
        """Standard errors of ``intercept_`` (see the class docstring); warns if they are NaN."""
        return self._stderr_attr("_intercept_stderr")

    def confint(self, alpha: float = 0.05) -> dict[str, np.ndarray]:
        """Two-sided Wald confidence intervals at level 1 - `alpha`, as statsmodels' ``conf_int``.

        ``estimate ± z · stderr`` with z the 1 - alpha/2 standard normal
        quantile (asymptotic intervals; see ``stderr_`` for what they mean
        with a penalty and for several classes).

        Returns
        -------
        dict
            ``{"coef": ..., "intercept": ...}``: arrays shaped like ``coef_``
            and ``intercept_`` plus a last axis of length 2 holding (lower, upper).
        """
        se_coef, se_int = self.stderr_, self.intercept_stderr_
        z = _inference.normal_quantile(_inference.check_alpha(alpha))
        out = {}
        for name, est, se in (("coef", self.coef_, se_coef),
                              ("intercept", self.intercept_, se_int)):
            out[name] = np.stack([est - z * se, est + z * se], axis=-1)
        return out

    def decision_function(self, X: ArrayLike) -> np.ndarray:
        """Logits ``X @ coef_.T + intercept_``; shape (n,) for two classes, else (n, K)."""
        check_is_fitted(self, "coef_")
        X = _check_X(X, self, reset=False, accept_sparse=True)
        # (N, K) logits, and in predict_proba two more (N, K) temporaries
        check_output_size((X.shape[0], max(self.classes_.shape[0], 2)), 8,
                          "class scores (n_samples, n_classes)",
                          extra_bytes=2 * X.shape[0] * max(self.classes_.shape[0], 2) * 8)
        z = _dot(X, self.coef_) + self.intercept_
        return z.ravel() if self.coef_.shape[0] == 1 else z

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def sparsify(self) -> Self:
        """Store ``coef_`` as a scipy.sparse CSR matrix (scikit-learn's ``sparsify``).

        Predictions are unchanged; worth it only when most coefficients are
        zero, which the L2 penalty rarely gives. Needs scipy. Returns self.
        """
        check_is_fitted(self, "coef_")
        from scipy import sparse  # only reached when asked for a sparse coef_

        self.coef_ = sparse.csr_matrix(self.coef_)
        return self

    def densify(self) -> Self:
        """Store ``coef_`` as a dense ndarray again (the default); returns self."""
        check_is_fitted(self, "coef_")
        if _sources.is_sparse(self.coef_):
            self.coef_ = np.asarray(cast(Any, self.coef_).toarray())
        return self

    def predict_log_proba(self, X: ArrayLike) -> np.ndarray:
        """Log class probabilities, shape (n, n_classes), columns ordered as classes_."""
        z = self.decision_function(X)
        if z.ndim == 1:
            z = np.column_stack([np.zeros_like(z), z])
        return log_softmax(z, axis=1)

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Class probabilities, shape (n, n_classes), columns ordered as classes_."""
        if _sources.is_dask(X):  # lazy, block by block
            return _sources.apply_blockwise(self, "predict_proba", X,
                                            n_out=self.classes_.shape[0])
        return np.exp(self.predict_log_proba(X))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """The most probable class of each row."""
        if _sources.is_dask(X):
            return _sources.apply_blockwise(self, "predict", X)
        z = self.decision_function(X)
        idx = (z > 0).astype(np.intp) if z.ndim == 1 else np.argmax(z, axis=1)
        return self.classes_[idx]

    def score(self, X: ArrayLike, y: ArrayLike, sample_weight: ArrayLike | None = None) -> float:
        """Mean accuracy (weighted by `sample_weight`)."""
        pred = self.predict(X)
        y = np.asarray(y).reshape(-1)
        w = check_sample_weight(sample_weight, y.shape[0])
        return float(np.average(pred == y, weights=w))
