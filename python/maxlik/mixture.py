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

(Both live in :mod:`maxlik._kernels`.) The fit itself, EM with its
initialisations, is :func:`maxlik._engine.fit_mixture`: one loop for
in-memory, out-of-core and Dask data; :class:`GaussianMixture` owns the
hyper-parameters and the fitted attributes.

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

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from . import _core, _engine, _kernels, _sources
from . import exceptions
from ._base import BaseEstimator, check_is_fitted
from ._kernels import (  # the block API is public here
    MixtureParameters,
    MixtureStatistics,
    _covariances_from_cholesky,
    _mixture_update,
    _n_parameters,
    _precisions_from_cholesky,
    _tied_center,
    _upper_factor_of_precision,
    mixture_statistics,
    mixture_update,
)
from ._validation import (
    as_float_array,
    check_bool,
    check_finite,
    check_float,
    check_int,
    check_n_features,
    check_option,
    check_output_size,
    check_random_state,
    check_sample_weight,
    check_X,
)
from .special import logsumexp, softmax
from .stats import COVARIANCE_TYPES, _TYPE_CODE

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = [
    "GaussianMixture",
    "MixtureParameters",
    "MixtureStatistics",
    "mixture_statistics",
    "mixture_update",
]

INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")
ON_COLLAPSE = ("raise", "reseed")
MISSING = ("raise", "marginalize")
FREEZABLE = ("weights", "means", "covariances")




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
    on_collapse : {"raise", "reseed"}, default "raise"
        What a component whose covariance becomes singular does (with
        ``reg_covar=0``, e.g. on many identical rows). "raise": ValueError
        (scikit-learn's behaviour). "reseed": the component is re-initialised
        and EM goes on: its mean moves to the row the current mixture
        explains worst (lowest log p(x), one extra pass), it takes half the
        weight of the heaviest component and that component's covariance.
        The lower bound is monotone from each re-seed on; ``n_reseeds_``
        counts them and ``verbose`` reports them. After 20 re-seeds in one
        initialisation (a point mass keeps attracting components) it raises.
        "tied" covariances have no donor and always raise.
    freeze : iterable of {"weights", "means", "covariances"}, optional
        Parameters held at ``weights_init`` / ``means_init`` /
        ``precisions_init`` (which must then be given); EM maximises over
        the others (a restricted M-step, so the lower bound stays monotone).
        With frozen means the covariances are taken around them. :meth:`fit`
        and :meth:`partial_fit` both honour it.
    missing : {"raise", "marginalize"}, default "raise"
        NaN entries of X. "raise": ValueError (scikit-learn's behaviour).
        "marginalize": they are missing at random and EM treats them as latent
        variables (Dempster, Laird & Rubin 1977; Ghahramani & Jordan 1994):
        the E-step uses each row's observed-data density
        log N(x_o | μ_o, Σ_oo), the M-step the expected sufficient statistics
        (conditional means and covariances of the missing entries), so
        ``lower_bounds_`` is the observed-data mean log-likelihood and is
        monotone. The initialisation (``init_params``) runs on X with each NaN
        replaced by its column's observed mean. :meth:`score_samples`,
        :meth:`score`, :meth:`predict` and :meth:`predict_proba` then accept
        NaN and marginalise over the missing entries; :meth:`impute` fills
        them. A row with no observed entry carries no information: the fit
        ignores it (weight 0, not in ``lower_bound_``), ``score_samples`` gives
        it 0 (log of the marginal density of nothing) and ``predict_proba``
        the weights. Infinity is always an error; data without NaN give
        exactly the ordinary fit. :meth:`partial_fit` does not take NaN.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
        The lower bound of every iteration of the best initialisation.
    n_reseeds_ : int
        Components re-seeded in the best initialisation (``on_collapse="reseed"``).
    reseed_iterations_ : list of int
        The EM iterations after which they were re-seeded (0: at initialisation);
        ``lower_bounds_[t:]`` is monotone up to the next one.
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
    Dask workers (one graph per EM iteration, :mod:`maxlik.dask`). Both run
    the in-memory fit's engine, initialisation included: it reads all rows in
    block order with the same random draws, so the same rows and
    `random_state` give the same parameters (up to summation order) wherever
    they live and however they are chunked. The "kmeans" initialisation costs
    a k-means fit over all rows (as in memory); pass ``means_init`` (and
    ``weights_init`` / ``precisions_init``) to skip it on huge data.
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

    # fitted attributes, set by _set_parameters (declared for type checkers only:
    # an annotation without a value creates no class attribute, so hasattr is unchanged)
    weights_: np.ndarray
    means_: np.ndarray
    precisions_cholesky_: np.ndarray
    covariances_: np.ndarray
    precisions_: np.ndarray

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full",
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100,
                 n_init: int = 1, init_params: str = "kmeans",
                 weights_init: ArrayLike | None = None, means_init: ArrayLike | None = None,
                 precisions_init: ArrayLike | None = None,
                 random_state: int | np.random.RandomState | np.random.Generator | None = None,
                 warm_start: bool = False, verbose: int = 0, verbose_interval: int = 10,
                 callback: Callable[..., Any] | None = None, block_size: int | None = None,
                 learning_decay: float = 0.7, learning_offset: float = 1.0,
                 on_collapse: str = "raise", freeze: Iterable[str] | None = None,
                 missing: str = "raise") -> None:
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
        self.on_collapse = on_collapse
        self.freeze = freeze
        self.missing = missing

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
        check_option(self.on_collapse, "on_collapse", ON_COLLAPSE)
        check_option(self.missing, "missing", MISSING)
        return K, verbose

    def _check_freeze(self) -> tuple[str, ...]:
        """The validated `freeze` names; each needs its ``*_init``."""
        if self.freeze is None:
            return ()
        names = (self.freeze,) if isinstance(self.freeze, str) else self.freeze
        try:
            names = tuple(names)
        except TypeError:
            raise TypeError("freeze must be None or an iterable of names among "
                            f"{FREEZABLE}; got {type(self.freeze).__name__}") from None
        for name in names:
            if not isinstance(name, str) or name not in FREEZABLE:
                raise ValueError(f"freeze must name parameters among {FREEZABLE}; got {name!r}")
        need = {"weights": "weights_init", "means": "means_init",
                "covariances": "precisions_init"}
        for name in FREEZABLE:
            if name in names and getattr(self, need[name]) is None:
                raise ValueError(f"freeze contains {name!r} but {need[name]} is None: frozen "
                                 f"{name} stay at {need[name]}, so give it")
        return tuple(n for n in FREEZABLE if n in names)

    def _check_X(self, X: ArrayLike, *, reset: bool, allow_nan: bool = False) -> np.ndarray:
        X = check_X(X, finite=not allow_nan)
        if allow_nan:  # NaN marks a missing entry; inf is still an error
            check_finite(X, "X", allow_nan=True)
        check_n_features(self, X.shape[1], reset)
        return X

    def _allow_nan(self) -> bool:
        """True when NaN entries are missing values (``missing="marginalize"``)."""
        return check_option(self.missing, "missing", MISSING) == "marginalize"

    def _check_initial(self, K, D, ctype, dtype, values=None,
                       names=("weights_init", "means_init", "precisions_init")):
        """Validated (weights, means, precision factors) of `values` (default the
        ``*_init`` parameters); messages name them by `names`."""
        w_name, m_name, p_name = names
        w_in, m_in, p_in = (values if values is not None else
                            (self.weights_init, self.means_init, self.precisions_init))
        winit = minit = pinit = None
        if w_in is not None:
            winit = as_float_array(w_in, w_name, dtype=np.float64,
                                   finite=True)
            if winit.shape != (K,):
                # scikit-learn's wording first (its tests match it), then ours
                raise ValueError(f"The parameter 'weights' should have the shape of ({K},), but "
                                 f"got {winit.shape}: {w_name} must hold one weight per "
                                 f"component (n_components={K})")
            if np.any(winit < 0) or np.any(winit > 1):
                raise ValueError(f"{w_name} must be in [0, 1]; got min "
                                 f"{winit.min():.5f}, max {winit.max():.5f}")
            atol = 1e-6 if dtype == np.float32 else 1e-8
            if abs(1.0 - winit.sum()) > atol:
                raise ValueError("The parameter 'weights' should be normalized, but got "
                                 f"sum(weights) = {winit.sum():.5f}: {w_name} must sum to 1")
        if m_in is not None:
            minit = as_float_array(m_in, m_name, ndim=2, dtype=np.float64,
                                   finite=True)
            if minit.shape != (K, D):
                raise ValueError(f"The parameter 'means' should have the shape of ({K}, {D}), but "
                                 f"got {minit.shape}: {m_name} must have shape ({K}, {D}), one "
                                 "row of n_features per component")
        if p_in is not None:
            shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ctype]
            P = as_float_array(p_in, p_name, dtype=np.float64,
                               finite=True)
            if P.shape != shape:
                raise ValueError(f"The parameter '{ctype} precision' should have the shape of "
                                 f"{shape}, but got {P.shape}: {p_name} must have shape "
                                 f"{shape} for covariance_type={ctype!r}")
            if ctype in ("full", "tied"):
                mats = P.reshape(-1, D, D)
                for k, M in enumerate(mats):
                    if not (np.allclose(M, M.T) and np.all(np.linalg.eigvalsh(M) > 0)):
                        where = f"{p_name}[{k}]" if ctype == "full" else p_name
                        raise ValueError(f"'{ctype} precision' should be symmetric, "
                                         f"positive-definite: {where} is not")
                pinit = _upper_factor_of_precision(P)
            else:
                if np.any(P <= 0):
                    raise ValueError(f"'{ctype} precision' should be positive: {p_name} "
                                     f"has {int(np.count_nonzero(P <= 0))} entries <= 0")
                pinit = np.sqrt(P)
        return winit, minit, pinit

    # -- fitting ----------------------------------------------------------------
    def fit(self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None) -> Self:
        """Estimate the parameters with EM (weighted EM with `sample_weight`).

        `X` may be an ndarray (or array_like), an ``np.memmap`` / HDF5 / zarr
        dataset (streamed in row blocks of `block_size` rows, memory
        independent of N) or a ``dask.array`` (one graph per pass on the Dask
        workers, :mod:`maxlik.dask`). All three run the same engine
        (:func:`maxlik._engine.fit_mixture`), initialisation included: the same
        rows and `random_state` give the same fit wherever they are stored.

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
        self._fit(X, sample_weight)
        return self

    def fit_predict(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> np.ndarray:
        """Fit, then return the most likely component of each row of `X`."""
        return self.fit(X, sample_weight=sample_weight).predict(X)

    def _fit(self, X, sample_weight):
        K, verbose = self._check_hyper()
        source = _sources.make_source(X, None, sample_weight, block_size=self.block_size,
                                      allow_nan=self._allow_nan())
        N, D = source.n_samples, source.n_features
        if N < 2:
            raise ValueError(f"GaussianMixture needs at least 2 samples; got n_samples = {N} "
                             f"(X shape {(N, D)})")
        n_pos = source.positive_weights()
        if n_pos < K:
            what = "samples with positive weight" if source.weighted else "samples"
            raise ValueError(f"Expected n_samples >= n_components but got n_components = {K}, "
                             f"n_samples = {n_pos} ({what}); reduce n_components")
        check_n_features(self, D, reset=True)
        freeze = self._check_freeze()
        winit, minit, pinit = self._check_initial(K, D, self.covariance_type, source.dtype)
        warm = None
        if self.warm_start and hasattr(self, "converged_"):
            warm = (self.parameters(), self.lower_bound_)
        res = _engine.fit_mixture(
            source, n_components=K, covariance_type=self.covariance_type, tol=float(self.tol),
            reg_covar=float(self.reg_covar), max_iter=self.max_iter, n_init=self.n_init,
            init_params=self.init_params, rs=check_random_state(self.random_state),
            winit=winit, minit=minit, pinit=pinit, warm=warm, verbose=verbose,
            verbose_interval=self.verbose_interval, callback=self.callback,
            on_collapse=self.on_collapse, freeze=freeze, missing=self.missing)
        if not res.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data. "
                f"(The lower bound still changed by >= tol={self.tol:g} after "
                f"max_iter={self.max_iter} iterations.)",
                exceptions.ConvergenceWarning,
                stacklevel=4,  # _fit <- fit <- its all-or-nothing wrapper <- the caller
            )
        self.converged_ = res.converged
        self._set_parameters(res.params, source.dtype)
        self.n_iter_ = res.n_iter
        self.lower_bound_ = res.lower_bound
        self.lower_bounds_ = res.lower_bounds
        self.n_reseeds_ = res.n_reseeds
        self.reseed_iterations_ = res.reseed_iterations
        return self

    def partial_fit(self, X: ArrayLike, y: object = None,
                    sample_weight: ArrayLike | None = None) -> Self:
        """One stepwise-EM update from the batch `X` (online EM).

        The running sufficient statistics s (normalised per unit weight) are
        blended with the batch's, s ← (1 − ρ_t) s + ρ_t s_batch with
        ρ_t = (t + learning_offset)^(−learning_decay) for call t = 1, 2, ...
        (Cappé & Moulines 2009; Liang & Klein 2009), then the M-step sets the
        parameters. Call 0 sets s to its batch's statistics; on an unfitted
        estimator it first initialises from that batch (``init_params`` /
        ``*_init``), after :meth:`fit` it starts from the fitted parameters.
        The Robbins–Monro conditions need ``0.5 < learning_decay <= 1``.
        Sample weights weight rows within a batch; every batch counts once.

        Parameters
        ----------
        X : array_like of shape (n_batch, D)
        y : ignored
        sample_weight : array_like of shape (n_batch,), optional

        Returns
        -------
        self
        """
        K, _ = self._check_hyper()
        freeze = self._check_freeze()
        decay = check_float(self.learning_decay, "learning_decay", min=0.5)
        if not (0.5 < decay <= 1.0):
            raise ValueError(f"learning_decay must be in (0.5, 1]; got {decay}")
        offset = check_float(self.learning_offset, "learning_offset", min=0.0)
        state = getattr(self, "_stepwise_state", None)
        fitted = hasattr(self, "means_")
        if state is not None and (not fitted or state[3] is not self.means_):
            state = None  # fit() (or set_params/clone) ran since: the running statistics are stale
        X = self._check_X(X, reset=not fitted)
        N, D = X.shape
        w = None if sample_weight is None else check_sample_weight(sample_weight, N,
                                                                   dtype=X.dtype)
        if state is None and fitted:
            # after fit(): continue from the fitted parameters, new running statistics
            params = self.parameters()
            ref = np.average(X, axis=0, weights=w).astype(np.float64)
            running, t = None, 0
        elif state is None:
            if N < K:
                raise ValueError(f"the first batch of partial_fit needs n_samples >= "
                                 f"n_components; got n_samples = {N}, n_components = {K}")
            winit, minit, pinit = self._check_initial(K, D, self.covariance_type, X.dtype)
            params = _engine.initial_mixture_parameters(
                _sources.ArraySource(X, None, w), K, self.covariance_type,
                float(self.reg_covar), self.init_params, check_random_state(self.random_state),
                winit, minit, pinit)
            ref = np.average(X, axis=0, weights=w).astype(np.float64)
            running, t = None, 0
        else:
            running, t, ref, _ = state
            params = self.parameters()
        batch = mixture_statistics(X, params, w)
        if batch.sum_weight <= 0:
            return self
        rho = 1.0 if running is None else _engine.step_size(t, decay, offset)
        running = _engine.blend_statistics(running, _engine.recentre(batch, ref), rho)
        fixed = {}
        if freeze:  # the same restricted M-step as fit
            fixed = _engine.frozen_parameters(freeze, self.covariance_type, *self._check_initial(
                K, D, self.covariance_type, X.dtype))
        self._set_parameters(_mixture_update(running, float(self.reg_covar), fixed)[0], X.dtype)
        self._stepwise_state = (running, t + 1, ref, self.means_)
        self.n_iter_ = t + 1
        self.lower_bound_ = batch.mean_log_likelihood
        self.converged_ = False
        return self

    def _set_parameters(self, p: MixtureParameters, dtype=np.float64):
        """Set the fitted attributes from `p` (float64), in the data's `dtype`.

        As scikit-learn, float32 X gives float32 fitted attributes (the EM
        arithmetic itself stays as the kernels do it); float64 X keeps the
        float64 arrays of `p` untouched."""
        ctype = p.covariance_type
        cov = (p.covariances if p.covariances is not None
               else _covariances_from_cholesky(p.precisions_cholesky, ctype))
        attrs = dict(weights_=p.weights, means_=p.means,
                     precisions_cholesky_=p.precisions_cholesky, covariances_=cov,
                     precisions_=_precisions_from_cholesky(p.precisions_cholesky, ctype))
        keep32 = np.dtype(dtype) == np.float32
        for name, value in attrs.items():
            setattr(self, name, value.astype(np.float32) if keep32 else value)

    def parameters(self) -> MixtureParameters:
        """The fitted parameters as a :class:`MixtureParameters` (for the block API).

        Always float64 (upcast from float32 attributes of a float32 fit)."""
        check_is_fitted(self, "means_")
        cov = self.covariances_
        return MixtureParameters(self.covariance_type, np.asarray(self.weights_, dtype=np.float64),
                                 np.asarray(self.means_, dtype=np.float64),
                                 np.asarray(self.precisions_cholesky_, dtype=np.float64),
                                 None if cov is None else np.asarray(cov, dtype=np.float64))

    @classmethod
    def from_parameters(cls, weights: ArrayLike, means: ArrayLike, covariances: ArrayLike,
                        covariance_type: str = "full", **params: Any) -> Self:
        """A ready-to-use mixture with the given parameters, without fitting.

        predict, predict_proba, score_samples, score, sample, bic and aic work
        at once (and :func:`maxlik.mixture_kl`); a later ``fit`` with
        ``warm_start=True`` starts from these parameters.

        Parameters
        ----------
        weights : array_like of shape (K,)
            Mixing weights in [0, 1] summing to 1 (checked as ``weights_init``).
        means : array_like of shape (K, D)
        covariances : array_like
            In scikit-learn's ``covariances_`` shapes: (K, D, D) "full", (D, D)
            "tied", (K, D) "diag", (K,) "spherical"; symmetric positive-definite
            or positive. The precisions are computed from them as a fit does,
            so a model built from a fitted model's ``weights_``, ``means_`` and
            ``covariances_`` scores as that model does.
        covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        **params
            Other constructor parameters (e.g. ``random_state`` for :meth:`sample`).

        Returns
        -------
        GaussianMixture
            With ``weights_``, ``means_``, ``covariances_``, ``precisions_``,
            ``precisions_cholesky_`` and ``n_features_in_`` set, ``n_iter_ = 0``,
            ``converged_ = False`` and ``lower_bound_ = -inf``.

        Examples
        --------
        >>> import numpy as np
        >>> from maxlik import GaussianMixture
        >>> gm = GaussianMixture.from_parameters([0.5, 0.5], [[0.0], [4.0]], [1.0, 1.0],
        ...                                      covariance_type="spherical")
        >>> gm.predict([[0.2], [3.9]]).tolist()
        [0, 1]
        """
        from .stats import precision_cholesky

        ctype = check_option(covariance_type, "covariance_type", COVARIANCE_TYPES)
        m = as_float_array(means, "means", ndim=2, dtype=np.float64, finite=True)
        K, D = m.shape
        if K < 1 or D < 1:
            raise ValueError(f"means must have shape (n_components, n_features) with both >= 1; "
                             f"got {m.shape}")
        model = cls(n_components=K, covariance_type=ctype, **params)
        w, m, _ = model._check_initial(K, D, ctype, np.float64, values=(weights, m, None),
                                       names=("weights", "means", "covariances"))
        cov = as_float_array(covariances, "covariances", dtype=np.float64, finite=True)
        shape = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ctype]
        if cov.shape != shape:
            raise ValueError(f"covariances must have shape {shape} for covariance_type="
                             f"{ctype!r} with means {m.shape}; got {cov.shape}")
        U = precision_cholesky(cov, ctype)  # as the M-step computes them
        model._set_parameters(MixtureParameters(ctype, w, m, U, cov))
        check_n_features(model, D, reset=True)
        model.converged_ = False
        model.n_iter_ = 0
        model.lower_bound_ = -np.inf
        model.lower_bounds_ = []
        model.n_reseeds_ = 0
        model.reseed_iterations_ = []
        return model

    # -- prediction ---------------------------------------------------------------
    _CHUNK = 65536  # rows per chunk (fewer for large K): bounds the (chunk, K) temporaries
    _CHUNK_VALUES = 1 << 22  # at most this many (chunk x K) values per chunk

    def _weighted_log_prob_chunks(self, X: ArrayLike, out_columns: int | None = None
                                  ) -> Iterator[np.ndarray]:
        """(chunk, K) weighted log-densities of successive row chunks of X.

        `out_columns`: columns per row of the caller's concatenated result, which
        is checked against the machine's memory before anything is computed."""
        check_is_fitted(self, "means_")
        marginalize = self._allow_nan()
        X = self._check_X(X, reset=False, allow_nan=marginalize)
        p = self.parameters()
        K, D = p.means.shape
        chunk = max(1, min(self._CHUNK, self._CHUNK_VALUES // K))
        code = _TYPE_CODE[p.covariance_type]
        # as scikit-learn: the result has the dtype of X and the fitted attributes
        # combined (float32 only when both are; float32 X of a float64 fit is
        # computed in float64, chunk by chunk)
        out_dtype = np.result_type(X.dtype, np.asarray(self.means_).dtype)
        size = out_dtype.itemsize
        check_output_size((min(chunk, X.shape[0]), K), size, "log-densities of a chunk of rows",
                          extra_bytes=_core._logpdf_scratch_bytes(size, code, D, K))
        if out_columns is not None:
            check_output_size((X.shape[0], out_columns), size, "result (N, K)")
        with np.errstate(divide="ignore"):
            log_w = np.log(p.weights)
        center = _tied_center(p) if p.covariance_type == "tied" else None
        for s in range(0, max(X.shape[0], 1), chunk):
            xc = X[s:s + chunk]
            if xc.dtype != out_dtype:
                xc = xc.astype(out_dtype)
            if marginalize and _kernels._has_nan(xc):  # over the observed entries of each row
                yield _kernels.logpdf_missing_block(xc, p).astype(out_dtype, copy=False)
                continue
            yield _core.gaussian_logpdf(xc, np.ascontiguousarray(p.means),
                                        np.ascontiguousarray(p.precisions_cholesky), log_w,
                                        center, code)

    def score_samples(self, X: ArrayLike) -> np.ndarray:
        """log p(x_n) of every row under the fitted mixture, shape (N,)."""
        if _sources.is_streamed(X):  # lazy for dask, block by block for memmaps
            return _sources.apply_blockwise(self, "score_samples", X,
                                            allow_nan=self._allow_nan())
        return np.concatenate([logsumexp(a, axis=1) for a in self._weighted_log_prob_chunks(X)])

    def score(self, X: ArrayLike, y: object = None, sample_weight: ArrayLike | None = None
              ) -> float:
        """Mean (weighted) log-likelihood of the rows of `X`."""
        s = self.score_samples(X)
        if sample_weight is None:
            return float(s.mean())
        w = check_sample_weight(sample_weight, s.shape[0], dtype=np.float64)
        return float(np.average(s, weights=w))

    def predict(self, X: ArrayLike) -> np.ndarray:
        """Most likely component of every row, shape (N,)."""
        if _sources.is_streamed(X):
            return _sources.apply_blockwise(self, "predict", X, allow_nan=self._allow_nan())
        return np.concatenate([a.argmax(axis=1) for a in self._weighted_log_prob_chunks(X)])

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """Responsibilities γ_nk, shape (N, K).

        Raises MemoryError (before computing anything) if the (N, K) result
        cannot fit in memory.
        """
        if _sources.is_streamed(X):
            return _sources.apply_blockwise(self, "predict_proba", X,
                                            n_out=self.means_.shape[0],
                                            allow_nan=self._allow_nan())
        check_is_fitted(self, "means_")
        out = []
        for a in self._weighted_log_prob_chunks(X, out_columns=self.means_.shape[0]):
            out.append(softmax(a, axis=1))
        return np.concatenate(out)

    def impute(self, X: ArrayLike) -> np.ndarray:
        """`X` with every missing (NaN) entry replaced by its conditional expectation.

        For a row with observed entries x_o, a missing block gets
        E[x_m | x_o] = Σ_k p(k | x_o) (μ_k,m + Σ_k,mo Σ_k,oo⁻¹ (x_o − μ_k,o)):
        each component's conditional mean, mixed by the posterior
        responsibilities given the observed entries. Observed entries are
        returned unchanged (bit for bit); a row with no observed entry gets
        the mixture mean Σ_k π_k μ_k. Works whatever ``missing`` is.

        Parameters
        ----------
        X : array_like of shape (N, D)
            NaN marks a missing entry; infinity is an error. An ``np.memmap``
            is imputed block by block, a ``dask.array`` lazily.

        Returns
        -------
        ndarray of shape (N, D)
            A new array of X's floating dtype.
        """
        check_is_fitted(self, "means_")
        if _sources.is_streamed(X):
            return _sources.apply_blockwise(self, "impute", X, n_out=self.means_.shape[1],
                                            allow_nan=True)
        X = self._check_X(X, reset=False, allow_nan=True)
        return _kernels.impute_block(X, self.parameters())

    def sample(self, n_samples: int = 1) -> tuple[np.ndarray, np.ndarray]:
        """Draw samples (same random stream as scikit-learn's ``sample``).

        Returns
        -------
        X : ndarray (n_samples, D)
        y : ndarray (n_samples,)
            The component of each sample.
        """
        check_is_fitted(self, "means_")
        if isinstance(n_samples, (int, np.integer)) and not isinstance(n_samples, bool) \
                and n_samples < 1:
            raise ValueError(f"Invalid value for 'n_samples': {n_samples}; n_samples must be an "
                             "integer >= 1")
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

    def _loglik_and_rows(self, X: ArrayLike) -> tuple[float, int]:
        """(Σ log p(x_n), number of rows that carry information) for bic/aic.

        With ``missing="marginalize"`` log p is the density of each row's
        observed entries, and a row with no observed entry (log p = 0) is not
        counted in n: it is no observation.
        """
        X = self._check_X(X, reset=False, allow_nan=self._allow_nan())
        if self._allow_nan():
            nan = np.isnan(X)
            if nan.any():
                return float(self.score_samples(X).sum()), int((~nan.all(axis=1)).sum())
        return self.score(X) * X.shape[0], X.shape[0]

    def bic(self, X: ArrayLike) -> float:
        """Bayesian information criterion on `X` (lower is better):
        -2 log L + p log n. With ``missing="marginalize"``, X may hold NaN
        (L is then the observed-data likelihood, and n counts the rows with at
        least one observed entry)."""
        ll, n = self._loglik_and_rows(X)
        return -2 * ll + self._n_parameters() * np.log(n)

    def aic(self, X: ArrayLike) -> float:
        """Akaike information criterion on `X` (lower is better): -2 log L + 2 p.
        NaN entries are handled as in :meth:`bic`."""
        ll, _ = self._loglik_and_rows(X)
        return -2 * ll + 2 * self._n_parameters()

    def stderr(self, X: ArrayLike, sample_weight: ArrayLike | None = None
               ) -> dict[str, np.ndarray]:
        """Asymptotic standard errors of the fitted parameters from the observed information.

        The inverse of the exact Hessian of the observed-data log-likelihood
        Σ_i w_i log p(x_i) of `X` (the data the model was fitted on) at the
        fitted parameters, in the free parametrisation: the first K - 1
        weights (the last is one minus their sum; its standard error by the
        delta method), the means, and the unique entries of each covariance
        (σ_ab, a <= b; the variances for "diag", the one variance for
        "spherical"). Not the outer-product-of-scores approximation. One
        pass over X (memmap and Dask X are read blockwise). The parameters
        include ``reg_covar``, so with a large reg_covar they are not the
        maximum of the likelihood and the numbers lose their meaning. See
        :mod:`maxlik._mixture_stderr` for the formulas.

        Parameters
        ----------
        X : array_like of shape (n_samples, n_features)
        sample_weight : array_like of shape (n_samples,), optional
            The frequency weights of the fit.

        Returns
        -------
        dict
            ``{"weights": (K,), "means": (K, D), "covariances": ...}`` with
            "covariances" shaped like ``covariances_`` (entry (a, b) and (b, a)
            of a full / tied matrix are one parameter and share one value).
            NaN, with a UserWarning, if the information is not positive
            definite (not an interior maximum for this X).
        """
        from ._mixture_stderr import mixture_stderr

        check_is_fitted(self, "means_")
        if not _sources.is_streamed(X):
            X = self._check_X(X, reset=False)
        source = _sources.make_source(X, None, sample_weight, dtype=np.float64)
        check_n_features(self, source.n_features, reset=False)
        return mixture_stderr(source, self.parameters())
