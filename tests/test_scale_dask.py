"""Dask fits: one graph per iteration on the workers, equal to the in-memory fit."""
import importlib
import os
import signal
import sys
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from maxlik import GaussianMixture, KMeans, LogisticRegression  # noqa: E402

CTYPES = ["full", "diag", "tied", "spherical"]


def _blobs(seed=0, n=500):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 6.0]])
    X = np.concatenate([rng.normal(size=(n, 3)) * (0.5 + i) + c for i, c in enumerate(centres)])
    return X[rng.permutation(len(X))]


def _gmm_init(ctype, D=3):
    prec = {"full": np.tile(np.eye(D), (3, 1, 1)), "tied": np.eye(D), "diag": np.ones((3, D)),
            "spherical": np.ones(3)}[ctype]
    return dict(weights_init=[0.3, 0.3, 0.4], means_init=[[1, 0, 0], [4, 4, 0], [0, 5, 5]],
                precisions_init=prec)


@pytest.fixture
def threads():
    with dask.config.set(scheduler="threads"):
        yield


def _assert_gmm_equal(a, b):
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=0, atol=1e-10)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, abs=1e-10)


@pytest.mark.parametrize("ctype", CTYPES)
def test_gmm_threads_equals_in_memory(threads, ctype):
    X = _blobs()
    w = np.random.default_rng(1).uniform(0, 2, size=len(X))
    dX = da.from_array(X, chunks=(400, 2))  # column chunks are merged
    kw = dict(covariance_type=ctype, tol=1e-8, max_iter=200, **_gmm_init(ctype))
    a = GaussianMixture(3, **kw).fit(X, sample_weight=w)
    b = GaussianMixture(3, **kw).fit(dX, sample_weight=da.from_array(w, chunks=300))
    _assert_gmm_equal(a, b)


def test_gmm_threads_default_init_and_lazy_predictions(threads):
    X = _blobs(2)
    dX = da.from_array(X, chunks=(300, 3))
    a = GaussianMixture(3, random_state=0).fit(X)
    b = GaussianMixture(3, random_state=0).fit(dX)  # the engine's initialisation: all rows
    _assert_gmm_equal(a, b)
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(b, method)(dX)
        assert isinstance(lazy, da.Array)
        assert lazy.chunks[0] == dX.chunks[0]
        np.testing.assert_allclose(lazy.compute(), getattr(a, method)(X), rtol=1e-12,
                                   atol=1e-12)
    assert b.score(dX) == pytest.approx(a.score(X), rel=1e-12)


def test_one_graph_per_iteration(threads):
    """Each EM iteration is one compute of one graph over all blocks."""
    from dask.callbacks import Callback

    X = _blobs()
    dX = da.from_array(X, chunks=(250, 3))
    starts = []

    class Count(Callback):
        def _start(self, dsk):
            starts.append(len(dsk))

    with Count():
        gm = GaussianMixture(3, max_iter=4, tol=0, **_gmm_init("diag"),
                             covariance_type="diag")
        with pytest.warns(Warning, match="did not converge"):
            gm.fit(dX)
    assert len(starts) == 4
    # 6 row blocks -> 6 kernel tasks + a reduction tree, plus the data/parameter keys
    assert all(n <= 6 * 3 + 8 for n in starts)


def test_kmeans_threads_equals_in_memory(threads):
    X = _blobs(3)
    w = np.random.default_rng(0).uniform(0.5, 1.5, size=len(X))
    dX = da.from_array(X, chunks=(400, 3))
    init = np.array([[0.0, 0, 0], [5, 5, 0], [0, 6, 6], [100, 100, 100]])  # one empty
    a = KMeans(4, init=init, n_init=1).fit(X, sample_weight=w)
    b = KMeans(4, init=init, n_init=1).fit(dX, sample_weight=w)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=0, atol=1e-10)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-12)
    assert isinstance(b.labels_, da.Array)
    np.testing.assert_array_equal(b.labels_.compute(), a.labels_)
    lazy = b.predict(dX)
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), a.predict(X))
    np.testing.assert_allclose(b.transform(dX).compute(), a.transform(X), rtol=1e-12)
    c = KMeans(3, random_state=0).fit(X)
    d = KMeans(3, random_state=0).fit(dX)  # k-means++ on all rows, same draws
    np.testing.assert_allclose(d.cluster_centers_, c.cluster_centers_, rtol=0, atol=1e-10)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_logistic_threads_equals_in_memory(threads, n_classes):
    rng = np.random.default_rng(n_classes)
    X = rng.normal(size=(900, 4))
    y = np.digitize(X @ [1.0, -0.5, 0.3, 0.0] + 0.5 * rng.normal(size=900),
                    [0.0] if n_classes == 2 else [-0.5, 0.5])
    labels = np.array(["a", "b", "c"])[y]
    w = rng.uniform(0.5, 2, size=900)
    kw = dict(C=0.5, tol=1e-6, max_iter=500)  # stops on the gradient test (see maxlik.dask)
    a = LogisticRegression(**kw).fit(X, labels, sample_weight=w)
    b = LogisticRegression(**kw).fit(da.from_array(X, chunks=(200, 4)),
                                     da.from_array(labels, chunks=150),
                                     sample_weight=da.from_array(w, chunks=200))
    np.testing.assert_array_equal(b.classes_, a.classes_)
    np.testing.assert_allclose(b.coef_, a.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.intercept_, a.intercept_, rtol=0, atol=1e-10)
    assert b.objective_ == pytest.approx(a.objective_, rel=1e-12)
    dX = da.from_array(X, chunks=(200, 4))
    proba = b.predict_proba(dX)
    assert isinstance(proba, da.Array)
    np.testing.assert_allclose(proba.compute(), a.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(b.predict(dX).compute(), a.predict(X))


def test_dask_input_errors(threads):
    with pytest.raises(ValueError, match="2-D"):
        GaussianMixture(2).fit(da.zeros(10, chunks=5))
    with pytest.raises(ValueError, match="at least 2 classes"):
        LogisticRegression().fit(da.ones((10, 2), chunks=5), np.zeros(10))
    bad = da.from_array(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0], [3, 3]]), chunks=2)
    with pytest.raises(ValueError, match="NaN|finite"):
        GaussianMixture(2, **{k: v for k, v in dict(
            weights_init=[0.5, 0.5], means_init=[[0, 0], [1, 1]],
            precisions_init=np.ones((2, 2))).items()}, covariance_type="diag").fit(bad)


def test_import_error_without_dask(monkeypatch):
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.setitem(sys.modules, "dask.array", None)
    monkeypatch.delitem(sys.modules, "maxlik.dask", raising=False)
    with pytest.raises(ImportError, match=r'pip install "maxlik\[dask\]"'):
        importlib.import_module("maxlik.dask")
    monkeypatch.delitem(sys.modules, "maxlik.dask", raising=False)


# ---- a real cluster: 2 worker processes --------------------------------------------------

@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                           dashboard_address=None, silence_logs=50)
        cl = distributed.Client(cluster)
    try:
        yield cl
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            cl.close()
            cluster.close()


def _on_cluster(client, X, chunks):
    dX = da.from_array(X, chunks=chunks)
    dX = client.persist(dX)
    return dX


def test_distributed_gmm_kmeans_logistic(client):
    X = _blobs(5)
    dX = _on_cluster(client, X, (300, 3))
    kw = dict(covariance_type="full", tol=1e-8, max_iter=200, **_gmm_init("full"))
    a = GaussianMixture(3, **kw).fit(X)
    b = GaussianMixture(3, **kw).fit(dX)
    _assert_gmm_equal(a, b)
    np.testing.assert_allclose(b.predict_proba(dX).compute(), a.predict_proba(X), atol=1e-10)

    init = np.array([[0.0, 0, 0], [5, 5, 0], [0, 6, 6]])
    ka = KMeans(3, init=init, n_init=1).fit(X)
    kb = KMeans(3, init=init, n_init=1).fit(dX)
    np.testing.assert_allclose(kb.cluster_centers_, ka.cluster_centers_, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(kb.labels_.compute(), ka.labels_)

    y = (X[:, 0] - X[:, 1] > -2).astype(int)
    la = LogisticRegression(tol=1e-6, max_iter=500).fit(X, y)
    lb = LogisticRegression(tol=1e-6, max_iter=500).fit(dX, y)
    np.testing.assert_allclose(lb.coef_, la.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(lb.intercept_, la.intercept_, rtol=0, atol=1e-10)


def test_distributed_default_init_over_100k_rows_equals_in_memory(client):
    """Issue 12: above 100 000 rows a default-initialised fit on the cluster is the
    in-memory fit (maxlik 0.1 initialised from a subsample and found another optimum)."""
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=6.0, size=(3, 2))
    z = rng.integers(0, 3, size=120_000)
    X = centres[z] + rng.normal(size=(120_000, 2))
    dX = _on_cluster(client, X, (30_000, 2))
    kw = dict(n_components=3, covariance_type="diag", random_state=0, max_iter=4, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is capped on purpose
        a = GaussianMixture(**kw).fit(X)
        b = GaussianMixture(**kw).fit(dX)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-9)
    ka = KMeans(3, random_state=0).fit(X)
    kb = KMeans(3, random_state=0).fit(dX)
    np.testing.assert_allclose(kb.cluster_centers_, ka.cluster_centers_, rtol=1e-9, atol=1e-9)
    assert kb.inertia_ == pytest.approx(ka.inertia_, rel=1e-9)


def test_distributed_worker_killed_mid_fit(client):
    """SIGKILL a worker after EM iteration 2: Dask recomputes its blocks, same result."""
    X = _blobs(6)
    kw = dict(covariance_type="full", tol=0, max_iter=6, **_gmm_init("full"))
    dX = _on_cluster(client, X, (250, 3))
    with pytest.warns(Warning, match="did not converge"):
        ref = GaussianMixture(3, **kw).fit(dX)
    pids = client.run(os.getpid)  # {address: pid}
    has = client.has_what()
    victim = max(pids, key=lambda a: len(has.get(a, ())))  # the worker holding most blocks
    assert has.get(victim)
    killed = []

    def kill_after_two(it, lb):
        if it == 2 and not killed:
            os.kill(pids[victim], signal.SIGKILL)
            killed.append(victim)

    with pytest.warns(Warning, match="did not converge"):
        gm = GaussianMixture(3, callback=kill_after_two, **kw).fit(dX)
    assert killed
    # identical graph and reduction order -> identical numbers
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(gm, name), getattr(ref, name))
    assert gm.lower_bounds_ == ref.lower_bounds_
    client.wait_for_workers(2, timeout=60)
