"""maxlik.select_mixture: the table against scikit-learn's bic/aic and a numpy ICL, the
pick on the bundled eruption durations, memmap / Dask / weights, errors."""
import os
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import GaussianMixture, select_mixture
from maxlik.exceptions import ConvergenceWarning

COLUMNS = ["n_components", "covariance_type", "log_likelihood", "n_parameters", "bic", "aic",
           "icl", "converged", "n_iter"]


def faithful():
    path = os.path.join(os.path.dirname(maxlik.__file__), "data", "faithful.csv")
    return np.loadtxt(path, delimiter=",", skiprows=1)


@pytest.fixture(scope="module")
def eruptions():
    return faithful()[:, :1].copy()


@pytest.fixture(scope="module")
def selection(eruptions):
    return select_mixture(eruptions, random_state=0)


def test_picks_two_components_on_eruption_durations(selection, eruptions):
    assert selection.best_.n_components == 2
    assert selection.criterion == "bic"
    row = selection.table[selection.best_index]
    assert row["bic"] == min(r["bic"] for r in selection.table)
    # ICL penalises overlap: it agrees here
    icl = select_mixture(eruptions, criterion="icl", random_state=0)
    assert icl.best_.n_components == 2
    # the two eruption types: short (~2 min) and long (~4.3 min)
    np.testing.assert_allclose(np.sort(selection.best_.means_.ravel()), [2.02, 4.27], atol=0.03)


def test_table_has_one_row_per_pair(selection):
    pairs = [(r["n_components"], r["covariance_type"]) for r in selection.table]
    assert pairs == [(k, t) for k in range(1, 9) for t in ("full", "tied", "diag", "spherical")]
    assert all(list(r) == COLUMNS for r in selection.table)
    assert set(selection.models) == set(pairs)


def test_table_matches_sklearn_and_numpy_icl(selection, eruptions):
    from sklearn.mixture import GaussianMixture as SkGM

    X = eruptions
    n = X.shape[0]
    for row in selection.table:
        m = selection.models[(row["n_components"], row["covariance_type"])]
        # scikit-learn as an independent scorer of our fitted parameters
        sk = SkGM(row["n_components"], covariance_type=row["covariance_type"])
        for a in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
            setattr(sk, a, getattr(m, a))
        sk.n_features_in_ = 1
        np.testing.assert_allclose(row["log_likelihood"], sk.score(X) * n, rtol=1e-6)
        np.testing.assert_allclose(row["bic"], sk.bic(X), rtol=1e-6)
        np.testing.assert_allclose(row["aic"], sk.aic(X), rtol=1e-6)
        g = sk.predict_proba(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.nansum(np.where(g > 0, g * np.log(g), 0.0))
        np.testing.assert_allclose(row["icl"], sk.bic(X) + 2 * ent, rtol=1e-6)
        assert row["n_parameters"] == sk._n_parameters()
        assert row["n_iter"] == m.n_iter_ and row["converged"] == m.converged_


def test_to_frame(selection):
    pd = pytest.importorskip("pandas")
    df = selection.to_frame()
    assert isinstance(df, pd.DataFrame) and list(df.columns) == COLUMNS and len(df) == 32
    assert df.loc[selection.best_index, "n_components"] == 2


def test_deterministic_given_random_state(eruptions):
    a = select_mixture(eruptions, n_components=range(1, 5), random_state=3, n_init=2)
    b = select_mixture(eruptions, n_components=range(1, 5), random_state=3, n_init=2)
    assert a.table == b.table
    rs1, rs2 = np.random.RandomState(5), np.random.RandomState(5)
    c = select_mixture(eruptions, n_components=[2, 3], random_state=rs1)
    d = select_mixture(eruptions, n_components=[2, 3], random_state=rs2)
    assert c.table == d.table


def test_memmap_and_dask_give_the_same_table(tmp_path):
    X = faithful()
    kw = dict(n_components=[1, 2, 3], covariance_types=("full", "diag"), random_state=0)
    ref = select_mixture(X, **kw)
    path = tmp_path / "f.npy"
    np.save(path, X)
    mm = select_mixture(np.load(path, mmap_mode="r"), block_size=64, **kw)
    da = pytest.importorskip("dask.array")
    dk = select_mixture(da.from_array(X, chunks=(100, 2)), **kw)
    for other in (mm, dk):
        assert other.best_index == ref.best_index
        for r, o in zip(ref.table, other.table):
            for key in ("log_likelihood", "bic", "aic", "icl"):
                np.testing.assert_allclose(o[key], r[key], rtol=1e-8)


def test_integer_weights_equal_repeated_rows():
    X = faithful()[:60]
    w = np.arange(60) % 3 + 1.0
    Xr = np.repeat(X, w.astype(int), axis=0)
    kw = dict(n_components=[1, 2], covariance_types=["diag"], init_params="random_from_data",
              tol=1e-10, max_iter=500)
    a = select_mixture(X, sample_weight=w, **kw, random_state=0)
    # the same start for the repeated rows (random_from_data draws rows)
    b_models = [GaussianMixture(k, covariance_type="diag", tol=1e-10, max_iter=500,
                                means_init=a.models[(k, "diag")].means_,
                                weights_init=a.models[(k, "diag")].weights_,
                                precisions_init=a.models[(k, "diag")].precisions_).fit(Xr)
                for k in (1, 2)]
    for row, m in zip(a.table, b_models):
        np.testing.assert_allclose(row["log_likelihood"], m.score(Xr) * Xr.shape[0], rtol=1e-6)
        np.testing.assert_allclose(row["bic"], m.bic(Xr), rtol=1e-6)


def test_bad_arguments(eruptions):
    X = eruptions
    with pytest.raises(ValueError, match="criterion must be one of"):
        select_mixture(X, criterion="likelihood")
    with pytest.raises(ValueError, match="covariance_types must hold types among"):
        select_mixture(X, covariance_types=["full", "banana"])
    with pytest.raises(ValueError, match="n_components must be >= 1"):
        select_mixture(X, n_components=[0, 1])
    with pytest.raises(TypeError, match="n_components must hold ints"):
        select_mixture(X, n_components=[1.5])
    with pytest.raises(ValueError, match="n_components is empty"):
        select_mixture(X, n_components=[])
    with pytest.raises(TypeError, match="use its own argument"):
        select_mixture(X, covariance_type="full")
    with pytest.raises(ValueError, match=r"n_components=3, covariance_type='full' failed"):
        select_mixture(X[:2], n_components=[1, 3], covariance_types="full")


def test_collapse_names_the_fit_and_reseed_helps():
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(size=(500, 2)), np.full((50, 2), 3.0)])
    with pytest.raises(ValueError, match=r"n_components=4.*on_collapse='reseed'"):
        select_mixture(X, n_components=[4], covariance_types="full", reg_covar=0.0,
                       random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        sel = select_mixture(X, n_components=[4], covariance_types="full", reg_covar=0.0,
                             random_state=0, on_collapse="reseed")
    assert sel.best_.n_reseeds_ >= 1 and np.isfinite(sel.table[0]["bic"])


def test_non_convergence_warns_once(eruptions):
    with pytest.warns(ConvergenceWarning, match="did not converge") as rec:
        sel = select_mixture(eruptions, n_components=[2, 3], max_iter=1, tol=0.0,
                             random_state=0)
    assert len([w for w in rec if issubclass(w.category, ConvergenceWarning)]) == 1
    assert not any(r["converged"] for r in sel.table)
