"""One engine, many sources: the same fit wherever the rows live; one validator; no cycles.

* Fits with the DEFAULT initialisation on more than 100 000 rows are equal
  (1e-9 relative) whether X is an ndarray, an np.memmap (several block sizes)
  or a Dask array (several chunkings, the threaded scheduler and a 2-worker
  LocalCluster, in test_scale_dask.py where the cluster fixture lives): the
  initialisation reads all rows in block order with the
  same random draws. (maxlik 0.1 initialised streamed fits from a 100 000-row
  subsample, which converged to a different optimum.)
* The in-memory source is one block: one kernel call per pass.
* The package's import graph, function-level imports included, has no cycle.
* The same bad input gets the same exception type and message from every
  estimator, and from every source.
"""
from __future__ import annotations

import ast
import pathlib
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import GaussianMixture, KMeans, LinearRegression, LogisticRegression
from maxlik import _kernels, _sources

CTYPES = ["full", "diag", "tied", "spherical"]
N_BIG = 120_000  # above maxlik 0.1's 100 000-row initialisation subsample


def _shuffled_blobs(n=N_BIG, d=2, k=3, seed=0):
    """k separated clusters, rows shuffled (the failing case of issue 12, smaller)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=6.0, size=(k, d))
    z = rng.integers(0, k, size=n)
    X = centres[z] + rng.normal(size=(n, d)) * (0.5 + z[:, None] * 0.3)
    return X


@pytest.fixture(scope="module")
def big():
    return _shuffled_blobs()


@pytest.fixture(scope="module")
def big_memmap(big, tmp_path_factory):
    path = tmp_path_factory.mktemp("engine") / "x.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=big.dtype, shape=big.shape)
    mm[:] = big
    mm.flush()
    del mm
    return np.load(path, mmap_mode="r")


def _close(a, b, rtol=1e-9):
    np.testing.assert_allclose(b, a, rtol=rtol, atol=rtol * np.max(np.abs(a)))


def _assert_same_gmm(a, b):
    assert a.n_iter_ == b.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        _close(getattr(a, name), getattr(b, name))
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, rel=1e-9)


_GMM = dict(n_components=3, random_state=0, max_iter=4, tol=0.0)


@pytest.fixture(scope="module")
def in_memory_gmm(big):
    fits = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is capped on purpose
        for ct in CTYPES:
            fits[ct] = GaussianMixture(covariance_type=ct, **_GMM).fit(big)
    return fits


@pytest.mark.parametrize("ctype", CTYPES)
def test_gmm_default_init_memmap_equals_in_memory(big_memmap, in_memory_gmm, ctype):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = GaussianMixture(covariance_type=ctype, block_size=25_000, **_GMM).fit(big_memmap)
    _assert_same_gmm(in_memory_gmm[ctype], b)


def test_kmeans_default_init_memmap_equals_in_memory(big, big_memmap):
    a = KMeans(3, random_state=0).fit(big)
    for bs in (16_384, 50_000):
        b = KMeans(3, random_state=0, block_size=bs).fit(big_memmap)
        assert a.n_iter_ == b.n_iter_
        _close(a.cluster_centers_, b.cluster_centers_)
        assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-9)
        np.testing.assert_array_equal(a.labels_, b.labels_)


def test_kmeans_random_init_restarts_memmap_equal_in_memory(big, big_memmap):
    a = KMeans(3, init="random", n_init=3, random_state=1, max_iter=20).fit(big)
    b = KMeans(3, init="random", n_init=3, random_state=1, max_iter=20,
               block_size=30_000).fit(big_memmap)
    _close(a.cluster_centers_, b.cluster_centers_)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-9)


# ---- Dask --------------------------------------------------------------------------------

@pytest.fixture
def threads():
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="threads"):
        yield


@pytest.mark.parametrize("chunks", [40_000, 17_000])
def test_dask_default_init_equals_in_memory(big, in_memory_gmm, threads, chunks):
    da = pytest.importorskip("dask.array")
    dX = da.from_array(big, chunks=(chunks, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for ct in ("full", "spherical"):
            _assert_same_gmm(in_memory_gmm[ct], GaussianMixture(covariance_type=ct, **_GMM).fit(dX))
    a = KMeans(3, random_state=0).fit(big)
    b = KMeans(3, random_state=0).fit(dX)
    _close(a.cluster_centers_, b.cluster_centers_)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-9)
    np.testing.assert_array_equal(a.labels_, b.labels_.compute())


def test_linear_models_on_every_source(big, big_memmap, threads):
    da = pytest.importorskip("dask.array")
    rng = np.random.default_rng(3)
    y = big @ np.array([1.5, -2.0]) + 0.3 + rng.normal(size=len(big))
    w = rng.uniform(0.5, 2.0, size=len(big))
    a = LinearRegression().fit(big, y, sample_weight=w)
    ref = np.linalg.lstsq(np.column_stack([big, np.ones(len(big))]) * np.sqrt(w)[:, None],
                          y * np.sqrt(w), rcond=None)[0]
    np.testing.assert_allclose(np.r_[a.coef_, a.intercept_], ref, rtol=1e-10)
    for Xs in (big_memmap, da.from_array(big, chunks=(25_000, 2))):
        ys = y if not hasattr(Xs, "dask") else da.from_array(y, chunks=25_000)
        b = LinearRegression().fit(Xs, ys, sample_weight=w)
        _close(a.coef_, b.coef_, 1e-10)
        assert b.noise_variance_ == pytest.approx(a.noise_variance_, rel=1e-10)
        assert b.rank_ == a.rank_
        _close(a.singular_values_, b.singular_values_, 1e-10)
    labels = (y > 0).astype(int)
    la = LogisticRegression(tol=1e-8, max_iter=200).fit(big[:20_000], labels[:20_000])
    lb = LogisticRegression(tol=1e-8, max_iter=200).fit(big_memmap[:20_000], labels[:20_000])
    _close(la.coef_, lb.coef_, 1e-8)


# ---- the in-memory source: one block, one kernel call per pass ---------------------------

def test_in_memory_pass_is_one_kernel_call(monkeypatch):
    X = _shuffled_blobs(5000)
    src = _sources.make_source(X)
    assert isinstance(src, _sources.ArraySource) and src.block_bounds == [(0, 5000)]
    calls = []
    orig = _kernels._core.em_statistics

    def spy(*a):
        calls.append(a[0].shape[0])
        return orig(*a)

    monkeypatch.setattr(_kernels._core, "em_statistics", spy)
    init = dict(means_init=[[0, 0], [5, 5], [-5, 5]], weights_init=[0.3, 0.3, 0.4],
                precisions_init=np.ones((3, 2)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        gm = GaussianMixture(3, covariance_type="diag", max_iter=5, tol=0, **init).fit(X)
    assert calls == [5000] * gm.n_iter_  # every EM iteration: one call over all rows


def test_block_size_aligned_to_kernel_block():
    assert _sources.ROW_ALIGN == maxlik._core.row_block
    assert _sources.auto_block_size(10**9, 8) == maxlik._core.row_block


def test_no_python_kernel_copies():
    from maxlik import linear_model, mixture

    assert not hasattr(GaussianMixture, "_lse")
    assert not hasattr(linear_model, "_log_softmax")
    assert not hasattr(mixture, "_kmeans_plusplus") and not hasattr(mixture, "_kmeans_labels")
    assert not hasattr(LogisticRegression, "_binary_objective")
    assert not hasattr(LogisticRegression, "_multinomial_objective")
    assert "__sklearn_tags__" not in vars(KMeans)


# ---- imports point one way ------------------------------------------------------------------

PKG = pathlib.Path(maxlik.__file__).parent


def _import_graph():
    """{module: set of maxlik modules it imports}, module-level and function-level imports."""
    # the compiled modules may live elsewhere (editable installs)
    names = {p.stem for p in PKG.glob("*.py")} | {"_core", "_cpu"}
    graph = {}
    for path in PKG.glob("*.py"):
        mod = path.stem
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level == 1 and node.module is None:
                    deps.update(a.name for a in node.names if a.name in names)
                elif node.level == 1:
                    deps.add(node.module.split(".")[0])
                elif node.module and node.module.startswith("maxlik."):
                    deps.add(node.module.split(".")[1])
                elif node.module == "maxlik":
                    deps.update(a.name for a in node.names if a.name in names)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("maxlik."):
                        deps.add(a.name.split(".")[1])
        deps.discard(mod)
        graph[mod] = {d for d in deps if d in names}
    return graph


def _cycle(graph, skip=("__init__", "__main__")):
    state = {}

    def visit(m, stack):
        state[m] = 1
        for d in sorted(graph.get(m, ())):
            if d in skip:
                continue
            if state.get(d) == 1:
                return stack + [m, d]
            if d not in state:
                found = visit(d, stack + [m])
                if found:
                    return found
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and m not in skip:
            found = visit(m, [])
            if found:
                return found
    return None


def test_import_graph_has_no_cycle():
    graph = _import_graph()
    assert graph["_engine"] >= {"_kernels", "_validation"}  # the graph sees what it should
    assert "_core" in graph["_kernels"]
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_import_cycle_detector_can_fail():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) is not None
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def test_layers_point_one_way():
    """estimators -> engine -> sources -> kernels -> bindings, never back."""
    graph = _import_graph()
    estimators = {"mixture", "cluster", "linear_model"}
    for low in ("_engine", "_sources", "dask", "_kernels", "_validation"):
        assert not graph[low] & estimators, (low, graph[low] & estimators)
    for low in ("_sources", "dask", "_kernels"):
        assert "_engine" not in graph[low], low
    assert "_sources" not in graph["_kernels"] and "dask" not in graph["_kernels"]


# ---- one validator: the same bad input, the same error, from every estimator ----------------

_Xok = np.random.default_rng(0).normal(size=(20, 2))
_yok = (_Xok[:, 0] > 0).astype(int)

_FITS = {
    "GaussianMixture": lambda X, w=None: GaussianMixture(2).fit(X, sample_weight=w),
    "KMeans": lambda X, w=None: KMeans(2, n_init=1).fit(X, sample_weight=w),
    "LinearRegression": lambda X, w=None: LinearRegression().fit(X, np.arange(20) * 1.0,
                                                                 sample_weight=w),
    "LogisticRegression": lambda X, w=None: LogisticRegression().fit(
        X, np.arange(20) % 2, sample_weight=w),
}

_nan = _Xok.copy()
_nan[3, 1] = np.nan
_BAD_X = {
    "complex": _Xok + 1j,
    "1-D": _Xok[:, 0],
    "3-D": _Xok[:, :, None],
    "0 rows": np.zeros((0, 2)),
    "0 columns": np.zeros((20, 0)),
    "NaN": _nan,
    "strings": np.array([["a", "b"]] * 20),
    "objects": np.array([[1.0, "a"]] * 20, dtype=object),
    "ragged": [[1.0, 2.0], [3.0]],
    "None": None,
}
_BAD_W = {
    "all zero": np.zeros(20),
    "negative": -np.ones(20),
    "wrong length": np.ones(3),
    "NaN weight": np.r_[np.ones(19), np.nan],
}


def _error(f, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            f(*args)
        except Exception as exc:  # the type and message are the result
            return type(exc), str(exc)
    return None


@pytest.mark.parametrize("case", list(_BAD_X))
def test_same_bad_X_same_error_from_every_estimator(case):
    errors = {name: _error(f, _BAD_X[case]) for name, f in _FITS.items()}
    assert all(e is not None for e in errors.values()), errors
    assert len(set(errors.values())) == 1, errors
    (exc, msg), = set(errors.values())
    assert exc in (TypeError, ValueError)
    assert "X" in msg
    if case == "complex":
        assert exc is ValueError and "Complex data not supported" in msg  # check_complex_data


@pytest.mark.parametrize("case", list(_BAD_W))
def test_same_bad_sample_weight_same_error_from_every_estimator(case):
    errors = {name: _error(f, _Xok, _BAD_W[case]) for name, f in _FITS.items()}
    assert all(e is not None for e in errors.values()), errors
    assert len(set(errors.values())) == 1, errors
    (exc, msg), = set(errors.values())
    assert exc is ValueError and "sample_weight" in msg


@pytest.mark.parametrize("case", ["complex", "1-D", "0 columns", "NaN"])
def test_same_bad_X_same_error_from_every_source(case, tmp_path, threads):
    da = pytest.importorskip("dask.array")
    bad = _BAD_X[case]
    path = tmp_path / "bad.npy"
    np.save(path, bad)
    mm = np.load(path, mmap_mode="r")
    dk = da.from_array(bad, chunks=(10,) + bad.shape[1:])
    fit = lambda X: KMeans(2, n_init=1).fit(X)  # noqa: E731
    errors = {src: _error(fit, X) for src, X in (("ndarray", bad), ("memmap", mm), ("dask", dk))}
    assert len({e[0] for e in errors.values()}) == 1, errors
    if case != "NaN":  # the message: identical too (NaN: the block says where)
        assert len(set(errors.values())) == 1, errors
    else:
        assert all("X contains NaN (first at row 3)" in e[1] for e in errors.values()), errors


def test_fit_warnings_point_at_the_caller():
    """Warnings from the engine's fits name the line that called fit, not maxlik's internals."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 2))
    cases = [
        lambda: GaussianMixture(2, max_iter=1, random_state=0).fit(X),
        lambda: KMeans(5, random_state=0).fit(np.repeat(X[:2], 50, axis=0)),
        lambda: KMeans(2, init=X[:2], n_init=3).fit(X),
        lambda: LogisticRegression(max_iter=1).fit(X, X[:, 0] > 0),
        lambda: LogisticRegression().fit(X, (X[:, :1] > 0).astype(int)),  # a column-vector y
    ]
    for make in cases:
        with warnings.catch_warnings(record=True) as rec:
            warnings.simplefilter("always")
            make()
        assert rec, make
        assert all(r.filename == __file__ for r in rec), [(r.filename, str(r.message)) for r in rec]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_column_summary_max_abs_from_the_moments_kernel(dtype):
    # max |x| per column now comes from the C++ moments pass: against numpy, with
    # negative extremes, a constant column, and a NaN (which the mean carries).
    from maxlik import _kernels as K

    rng = np.random.default_rng(0)
    X = (rng.normal(size=(3001, 7)) * [1, 10, 1e-3, 1e5, 1, 1, 3]).astype(dtype)
    X[17, 3] = -4e6
    X[:, 5] = 2.5
    amax, n, mean, scatter, e = K.column_summary_block(X, None)
    np.testing.assert_array_equal(amax, np.abs(X).max(axis=0).astype(np.float64))
    assert n == 3001 and e == 0 and scatter[5] == 0.0
    X[100, 2] = np.nan
    amax = K.column_summary_block(X, None)[0]
    assert np.isnan(amax[2]) and np.all(np.isfinite(np.delete(amax, 2)))
