"""maxlik.MiniBatchKMeans against sklearn.cluster.MiniBatchKMeans (same random draws), plus
its own properties."""
import inspect

import numpy as np
import pytest

import maxlik
from maxlik import MiniBatchKMeans

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import MiniBatchKMeans as SKMB  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402


def _blobs(n=3000, d=5, k=6, std=1.5, seed=0, dtype=np.float64):
    X, _ = make_blobs(n, d, centers=k, cluster_std=std, random_state=seed)
    return X.astype(dtype)


def _same(ours, ref, X, rtol=1e-10):
    assert ours.n_steps_ == ref.n_steps_
    assert ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=0,
                               atol=rtol * np.abs(X).max())
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=rtol)
    if hasattr(ref, "labels_"):
        np.testing.assert_array_equal(ours.labels_, ref.labels_)


def test_signature_is_sklearns():
    ours = inspect.signature(MiniBatchKMeans).parameters
    ref = inspect.signature(SKMB).parameters
    assert list(ours) == list(ref)
    assert {k: v.default for k, v in ours.items()} == {k: v.default for k, v in ref.items()}


@pytest.mark.parametrize("init", ["k-means++", "random"])
@pytest.mark.parametrize("seed", [0, 1])
def test_same_fit_as_sklearn(init, seed):
    # Same random draws (validation rows, init rows, batches, reassignment): same fit.
    X = _blobs(seed=seed)
    kw = dict(init=init, random_state=seed, batch_size=200)
    _same(MiniBatchKMeans(6, **kw).fit(X), SKMB(6, **kw).fit(X), X)


def test_same_fit_as_sklearn_weighted_tol_and_no_labels():
    X = _blobs(n=2000, seed=3)
    w = np.random.default_rng(0).uniform(0.1, 3.0, X.shape[0])
    kw = dict(random_state=4, batch_size=100, tol=1e-3, max_no_improvement=None, n_init=2)
    _same(MiniBatchKMeans(6, **kw).fit(X, sample_weight=w), SKMB(6, **kw).fit(X, sample_weight=w),
          X)
    kw = dict(random_state=5, batch_size=150, compute_labels=False)
    ours, ref = MiniBatchKMeans(6, **kw).fit(X), SKMB(6, **kw).fit(X)
    assert not hasattr(ours, "labels_")
    _same(ours, ref, X)


def test_reassignment_same_as_sklearn():
    # Two initial centres far from the data: they get (almost) no rows and are reassigned.
    X = _blobs(n=2000, k=4, seed=6)
    init = np.concatenate([X[:4], X[:2] + 1e3])
    kw = dict(init=init, random_state=0, batch_size=64, reassignment_ratio=0.05, max_iter=3)
    ours, ref = MiniBatchKMeans(6, **kw).fit(X), SKMB(6, **kw).fit(X)
    _same(ours, ref, X)
    assert np.abs(ours.cluster_centers_).max() < 100  # the far centres moved to the data


def test_float32_follows_sklearn():
    X = _blobs(dtype=np.float32, seed=2)
    kw = dict(random_state=2, batch_size=256)
    ours, ref = MiniBatchKMeans(6, **kw).fit(X), SKMB(6, **kw).fit(X)
    assert ours.cluster_centers_.dtype == np.float32
    assert ours.n_steps_ == ref.n_steps_
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-4)


def test_partial_fit_same_as_sklearn():
    X = _blobs(n=3000, seed=8)
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0])
    ours, ref = MiniBatchKMeans(6, random_state=3), SKMB(6, random_state=3)
    for r0 in range(0, 3000, 300):
        ours.partial_fit(X[r0:r0 + 300], sample_weight=w[r0:r0 + 300])
        ref.partial_fit(X[r0:r0 + 300], sample_weight=w[r0:r0 + 300])
        np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=0,
                                   atol=1e-10 * np.abs(X).max())
        np.testing.assert_array_equal(ours.labels_, ref.labels_)
        np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)
    assert ours.n_steps_ == ref.n_steps_ == 10
    # partial_fit after fit continues from the fitted centres and counts
    a = MiniBatchKMeans(6, random_state=0, batch_size=200).fit(X)
    b = SKMB(6, random_state=0, batch_size=200).fit(X)
    a.partial_fit(X[:500])
    b.partial_fit(X[:500])
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=0,
                               atol=1e-10 * np.abs(X).max())


def test_step_is_the_running_weighted_mean():
    # Independent check of one step: with no reassignment every centre is the weighted
    # mean of all rows ever assigned to it (the counts carry the history).
    rng = np.random.default_rng(0)
    X = _blobs(n=600, k=3, seed=9)
    w = rng.uniform(0.5, 2.0, X.shape[0])
    init = X[:3].copy()
    km = MiniBatchKMeans(3, init=init, reassignment_ratio=0.0)
    sums, tot = np.zeros((3, X.shape[1])), np.zeros(3)
    centers = init.astype(np.float64)
    for r0 in range(0, 600, 200):
        xb, wb = X[r0:r0 + 200], w[r0:r0 + 200]
        lab = ((xb[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
        for k in range(3):
            sums[k] += (wb[lab == k, None] * xb[lab == k]).sum(0)
            tot[k] += wb[lab == k].sum()
        centers = np.where(tot[:, None] > 0,
                           (init * 0 + sums) / np.maximum(tot, 1e-300)[:, None], centers)
        km.partial_fit(xb, sample_weight=wb)
        np.testing.assert_allclose(km.cluster_centers_, centers, rtol=1e-12, atol=1e-12)


def test_api_and_errors():
    X = _blobs(n=500)
    km = MiniBatchKMeans(6, random_state=0, batch_size=100).fit(X)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_array_equal(km.fit_predict(X), km.labels_)
    d = km.transform(X)
    np.testing.assert_allclose(d.min(axis=1) ** 2, ((X - km.cluster_centers_[km.labels_]) ** 2)
                               .sum(1), rtol=1e-10)
    np.testing.assert_allclose(km.score(X), -km.inertia_, rtol=1e-10)
    assert list(km.get_feature_names_out()) == [f"minibatchkmeans{i}" for i in range(6)]
    assert km.n_features_in_ == 5
    with pytest.raises(maxlik.NotFittedError):
        MiniBatchKMeans(2).predict(X)
    with pytest.raises(ValueError, match="batch_size"):
        MiniBatchKMeans(2, batch_size=0).fit(X)
    with pytest.raises(ValueError, match="reassignment_ratio"):
        MiniBatchKMeans(2, reassignment_ratio=-1.0).fit(X)
    with pytest.raises(ValueError, match="n_samples=3 should be >= n_clusters=6"):
        MiniBatchKMeans(6).fit(X[:3])
    with pytest.warns(RuntimeWarning, match="init_size=2 should be larger than n_clusters=6"):
        MiniBatchKMeans(6, init_size=2, random_state=0).fit(X)
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        MiniBatchKMeans(2, init=X[:2], n_init=3).fit(X)


def test_thread_count_determinism(threads):
    X = _blobs(n=20_000, d=6, k=8, std=4.0, seed=1)
    threads(1)
    a = MiniBatchKMeans(8, random_state=0, batch_size=2048).fit(X)
    threads(2)
    b = MiniBatchKMeans(8, random_state=0, batch_size=2048).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_


def test_memmap_and_dask_give_the_in_memory_fit(tmp_path):
    # the engine draws the same rows from every source
    X = _blobs(n=4000, d=4, k=4)
    ref = MiniBatchKMeans(4, random_state=0, batch_size=300).fit(X)
    np.save(tmp_path / "x.npy", X)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    got = MiniBatchKMeans(4, random_state=0, batch_size=300).fit(mm)
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(got.labels_, ref.labels_)
    da = pytest.importorskip("dask.array")
    got = MiniBatchKMeans(4, random_state=0, batch_size=300).fit(da.from_array(X, chunks=1000))
    np.testing.assert_array_equal(got.cluster_centers_, ref.cluster_centers_)
    np.testing.assert_array_equal(np.asarray(got.labels_), ref.labels_)
