"""Choosing the number of components and the covariance type of a Gaussian mixture.

:func:`select_mixture` fits one :class:`~maxlik.GaussianMixture` per
(n_components, covariance_type) pair, each by the one EM engine (so memmap and
Dask input are streamed as in ``GaussianMixture.fit``), scores every fit in
one more pass over the rows and keeps the one of lowest criterion:

* ``bic = -2 log L + p log n``,
* ``aic = -2 log L + 2 p``,
* ``icl = bic + 2 E`` with E = −Σ_n w_n Σ_k γ_nk log γ_nk, the entropy of the
  responsibilities (Biernacki, Celeux & Govaert 2000): BIC penalised for
  overlapping components.

All three are "lower is better" (scikit-learn's sign for ``bic`` / ``aic``;
mclust reports the negatives). log L = Σ_n w_n log p(x_n) is the total
(weighted) log-likelihood at the fitted parameters, p the number of free
parameters and n = Σ_n w_n (the number of rows without weights).
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from . import _kernels, _sources, exceptions
from .mixture import GaussianMixture
from .stats import COVARIANCE_TYPES

__all__ = ["select_mixture", "MixtureSelection"]

CRITERIA = ("bic", "aic", "icl")
COLUMNS = ("n_components", "covariance_type", "log_likelihood", "n_parameters", "bic", "aic",
           "icl", "converged", "n_iter")


@dataclass(frozen=True, eq=False)
class MixtureSelection:
    """What :func:`select_mixture` found.

    Attributes
    ----------
    best_ : GaussianMixture
        The fitted mixture of lowest `criterion` (the first in table order on a tie,
        so the fewest components).
    table : list of dict
        One row per (n_components, covariance_type), in the order fitted (K
        ascending, then the covariance types as given), with keys
        n_components, covariance_type, log_likelihood (total Σ w log p(x), not
        the mean), n_parameters, bic, aic, icl, converged, n_iter.
    criterion : str
        "bic", "aic" or "icl".
    best_index : int
        The row of `best_` in `table`.
    models : dict
        Every fitted mixture, keyed by (n_components, covariance_type).
    """

    best_: GaussianMixture
    table: list[dict[str, Any]]
    criterion: str
    best_index: int
    models: dict[tuple[int, str], GaussianMixture] = field(repr=False)

    def to_frame(self) -> Any:
        """The table as a ``pandas.DataFrame`` (needs pandas)."""
        import importlib

        try:
            pd = importlib.import_module("pandas")
        except ImportError:
            raise ImportError("MixtureSelection.to_frame needs pandas (pip install pandas); "
                              "the rows are in .table") from None
        return pd.DataFrame(self.table, columns=list(COLUMNS))

    def __repr__(self) -> str:
        row = self.table[self.best_index]
        return (f"MixtureSelection(criterion={self.criterion!r}, best: n_components="
                f"{row['n_components']}, covariance_type={row['covariance_type']!r}, "
                f"{self.criterion}={row[self.criterion]:.6g}; {len(self.table)} fits)")


def _check_ks(n_components) -> list[int]:
    if isinstance(n_components, (int, np.integer)) and not isinstance(n_components, bool):
        n_components = [n_components]
    try:
        ks = list(n_components)
    except TypeError:
        raise TypeError("n_components must be an int or an iterable of ints; got "
                        f"{type(n_components).__name__}") from None
    out: list[int] = []
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
            raise TypeError(f"n_components must hold ints; got {k!r}")
        if k < 1:
            raise ValueError(f"n_components must be >= 1; got {int(k)}")
        if int(k) not in out:
            out.append(int(k))
    if not out:
        raise ValueError("n_components is empty; give at least one number of components")
    return out


def _check_types(covariance_types) -> list[str]:
    if isinstance(covariance_types, str):
        covariance_types = [covariance_types]
    try:
        types = list(covariance_types)
    except TypeError:
        raise TypeError("covariance_types must be a str or an iterable of str; got "
                        f"{type(covariance_types).__name__}") from None
    out: list[str] = []
    for t in types:
        if t not in COVARIANCE_TYPES:
            raise ValueError(f"covariance_types must hold types among {COVARIANCE_TYPES}; "
                             f"got {t!r}")
        if t not in out:
            out.append(t)
    if not out:
        raise ValueError("covariance_types is empty; give at least one covariance type")
    return out


def select_mixture(X: ArrayLike, n_components: int | Iterable[int] = range(1, 9),
                   covariance_types: str | Iterable[str] = ("full", "tied", "diag",
                                                            "spherical"),
                   n_init: int = 1, criterion: str = "bic",
                   random_state: int | np.random.RandomState | None = None,
                   sample_weight: ArrayLike | None = None, **params: Any) -> MixtureSelection:
    """Fit a Gaussian mixture for every (n_components, covariance_type) and keep the best.

    Parameters
    ----------
    X : array_like of shape (N, D), np.memmap, HDF5 / zarr dataset or dask array
        Streamed as by :meth:`GaussianMixture.fit` when out of core or Dask.
    n_components : int or iterable of int, default range(1, 9)
    covariance_types : str or iterable of str, default all four
        Among "full", "tied", "diag", "spherical".
    n_init : int, default 1
        Initialisations per fit (the best lower bound is kept): more restarts
        make the choice less dependent on the initialisation.
    criterion : {"bic", "aic", "icl"}, default "bic"
        Lower is better for all three (see the module documentation; ICL =
        BIC + 2 × the entropy of the responsibilities).
    random_state : int, RandomState or None
        Passed to every fit: an int gives each fit the same seed, so the
        result is deterministic; a RandomState is drawn from in table order.
    sample_weight : array_like of shape (N,), optional
        Row weights: log L is the weighted sum and n = Σ w.
    **params
        Other GaussianMixture parameters for every fit (reg_covar, tol,
        max_iter, init_params, on_collapse, block_size, ...).

    Returns
    -------
    MixtureSelection
        ``.best_`` (the fitted GaussianMixture), ``.table`` (one dict per
        fit) and ``.to_frame()``.

    Raises
    ------
    ValueError
        Bad arguments, or a fit that fails (e.g. more components than rows,
        or a collapsed component: the message names the fit and suggests
        reg_covar / ``on_collapse="reseed"``).

    Warns
    -----
    ConvergenceWarning
        Once, naming the fits that did not converge (they stay in the table
        with converged=False).

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import select_mixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(0, 1, (200, 1)), rng.normal(8, 1, (200, 1))])
    >>> sel = select_mixture(X, n_components=range(1, 5), covariance_types="full",
    ...                      random_state=0)
    >>> sel.best_.n_components
    2
    >>> [row["n_components"] for row in sel.table]
    [1, 2, 3, 4]
    """
    ks = _check_ks(n_components)
    types = _check_types(covariance_types)
    crit = criterion
    if crit not in CRITERIA:
        raise ValueError(f"criterion must be one of {CRITERIA}; got {criterion!r}")
    for bad in ("n_components", "covariance_type", "random_state", "n_init"):
        if bad in params:
            raise TypeError(f"select_mixture got {bad!r} among the GaussianMixture parameters; "
                            "use its own argument" + ("s" if bad.startswith("n_c") else ""))
    if not _sources.is_streamed(X):
        from ._validation import check_X

        X = check_X(X)
    source = _sources.make_source(X, None, sample_weight,
                                  block_size=params.get("block_size"))
    n_eff = source.weight_sum()
    table: list[dict[str, Any]] = []
    models: dict[tuple[int, str], GaussianMixture] = {}
    not_converged = []
    for k in ks:
        for ctype in types:
            gm = GaussianMixture(k, covariance_type=ctype, n_init=n_init,
                                 random_state=random_state, **params)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", exceptions.ConvergenceWarning)
                try:
                    gm.fit(X, sample_weight=sample_weight)
                except ValueError as exc:
                    hint = (" (or pass on_collapse='reseed')" if "ill-defined" in str(exc)
                            else "")
                    raise ValueError(f"select_mixture: the fit with n_components={k}, "
                                     f"covariance_type={ctype!r} failed{hint}: {exc}") from exc
            ll, ent = source.map_reduce(_kernels.score_entropy_block, gm.parameters())
            n_par = gm._n_parameters()
            bic = -2.0 * ll + n_par * math.log(n_eff)
            converged = bool(gm.converged_)
            if not converged and gm.max_iter > 0:
                not_converged.append((k, ctype))
            table.append({"n_components": k, "covariance_type": ctype,
                          "log_likelihood": float(ll), "n_parameters": int(n_par),
                          "bic": float(bic), "aic": float(-2.0 * ll + 2.0 * n_par),
                          "icl": float(bic + 2.0 * ent), "converged": converged,
                          "n_iter": int(gm.n_iter_)})
            models[(k, ctype)] = gm
    if not_converged:
        warnings.warn(f"select_mixture: {len(not_converged)} of {len(table)} fits did not "
                      f"converge: {not_converged}; increase max_iter or tol (they are in "
                      "the table with converged=False)", exceptions.ConvergenceWarning, stacklevel=2)
    values = np.array([row[crit] for row in table])
    best = int(np.argmin(np.where(np.isnan(values), np.inf, values)))
    row = table[best]
    return MixtureSelection(models[(row["n_components"], row["covariance_type"])], table,
                            crit, best, models)
