"""Sparse (scipy.sparse CSR / CSC) input to KMeans and MiniBatchKMeans: the results of the
dense fit of the same matrix, from the C++ CSR kernels (sparse.hpp)."""
import subprocess
import sys

import numpy as np
import pytest

import maxlik
from maxlik import KMeans, MiniBatchKMeans

sp = pytest.importorskip("scipy.sparse")


def _sparse_blobs(n=3000, d=12, k=5, seed=0, dtype=np.float64, density=0.4):
    """Well separated clusters with many exact zeros (each centre uses a few columns)."""
    rng = np.random.default_rng(seed)
    centres = np.zeros((k, d))
    for j in range(k):
        cols = rng.choice(d, size=max(2, d // 3), replace=False)
        centres[j, cols] = rng.uniform(5, 10, size=cols.size)
    lab = rng.integers(0, k, size=n)
    X = centres[lab] + rng.normal(scale=0.5, size=(n, d))
    X[rng.random((n, d)) > density] = 0.0
    return X.astype(dtype)


FORMATS = {
    "csr_matrix": sp.csr_matrix,
    "csc_matrix": sp.csc_matrix,
    "csr_array": sp.csr_array,
    "csc_array": sp.csc_array,
}


def _bruteforce(X, centers, w=None):
    """Independent reference: labels and inertia from explicit dense distances (float64)."""
    d = ((X[:, None, :].astype(np.float64) - centers[None, :, :]) ** 2).sum(-1)
    lab = d.argmin(1)
    w = np.ones(X.shape[0]) if w is None else w
    return lab, float((w * d[np.arange(X.shape[0]), lab]).sum())


@pytest.mark.parametrize("fmt", list(FORMATS))
@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
@pytest.mark.parametrize("weighted", [False, True])
def test_kmeans_sparse_equals_dense(fmt, init, weighted):
    X = _sparse_blobs()
    w = np.random.default_rng(1).uniform(0.5, 2.0, X.shape[0]) if weighted else None
    ini = X[:5].copy() if init == "array" else init
    kw = dict(init=ini, n_init=1 if init == "array" else 2, random_state=3)
    dense = KMeans(5, **kw).fit(X, sample_weight=w)
    sparse = KMeans(5, **kw).fit(FORMATS[fmt](X), sample_weight=w)
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    assert sparse.n_iter_ == dense.n_iter_
    np.testing.assert_allclose(sparse.inertia_, dense.inertia_, rtol=1e-10)
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_, rtol=0,
                               atol=1e-12 * np.abs(X).max())
    # and both are a k-means fixed point by an independent computation
    lab, inertia = _bruteforce(X, sparse.cluster_centers_, w)
    np.testing.assert_array_equal(sparse.labels_, lab)
    np.testing.assert_allclose(sparse.inertia_, inertia, rtol=1e-10)


def test_kmeans_sparse_float32_and_int64_indices():
    X = _sparse_blobs(dtype=np.float32)
    S = sp.csr_matrix(X)
    S64 = S.copy()  # scipy downcasts indices it is given; set them after construction
    S64.indices = S.indices.astype(np.int64)
    S64.indptr = S.indptr.astype(np.int64)
    assert S64.indices.dtype == np.int64
    dense = KMeans(5, init=X[:5].copy(), n_init=1).fit(X)
    for M in (S, S64):
        ours = KMeans(5, init=X[:5].copy(), n_init=1).fit(M)
        assert ours.cluster_centers_.dtype == np.float32
        np.testing.assert_array_equal(ours.labels_, dense.labels_)
        np.testing.assert_allclose(ours.inertia_, dense.inertia_, rtol=1e-5)
        np.testing.assert_allclose(ours.cluster_centers_, dense.cluster_centers_, rtol=0,
                                   atol=1e-5 * np.abs(X).max())


def test_predict_transform_score_accept_sparse():
    X = _sparse_blobs()
    km = KMeans(5, n_init=1, random_state=0).fit(X)
    w = np.linspace(0.5, 1.5, X.shape[0])
    for fmt in FORMATS.values():
        S = fmt(X)
        np.testing.assert_array_equal(km.predict(S), km.predict(X))
        np.testing.assert_allclose(km.transform(S), km.transform(X), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(km.score(S, sample_weight=w), km.score(X, sample_weight=w),
                                   rtol=1e-10)
    # a model fitted on sparse X predicts dense X
    ks = KMeans(5, n_init=1, random_state=0).fit(sp.csr_matrix(X))
    np.testing.assert_array_equal(ks.predict(X), km.predict(X))
    np.testing.assert_allclose(ks.fit_transform(sp.csr_matrix(X)), km.transform(X),
                               rtol=1e-10, atol=1e-10)


def test_integer_weights_equal_repeated_rows_sparse():
    X = _sparse_blobs(n=600)
    reps = np.random.default_rng(2).integers(0, 4, size=X.shape[0])
    init = X[reps > 0][:5].copy()
    a = KMeans(5, init=init, n_init=1).fit(sp.csr_matrix(X), sample_weight=reps)
    b = KMeans(5, init=init, n_init=1).fit(sp.csr_matrix(np.repeat(X, reps, axis=0)))
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-10)


def test_unsorted_and_duplicate_entries_are_handled():
    # duplicates are summed (scipy's meaning of a non-canonical CSR), order does not matter
    rng = np.random.default_rng(5)
    n, d = 400, 6
    rows = np.repeat(np.arange(n), 5)
    cols = rng.integers(0, d, size=rows.size)
    vals = rng.normal(size=rows.size) + 3 * (rows % 2)
    M = sp.csr_matrix((vals, (rows, cols)), shape=(n, d))  # COO -> CSR sums duplicates
    raw = sp.csr_matrix((vals, cols, np.arange(0, rows.size + 1, 5)), shape=(n, d))
    assert not raw.has_canonical_format
    init = M[:3].toarray()
    a = KMeans(3, init=init, n_init=1).fit(raw)
    b = KMeans(3, init=init, n_init=1).fit(M.toarray())
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=1e-10)
    assert not raw.has_canonical_format  # the user's matrix is not modified


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sparse_thread_count_determinism(dtype, threads):
    X = _sparse_blobs(n=20_000, d=30, k=8, dtype=dtype, density=0.2)
    S = sp.csr_matrix(X)
    init = X[:8].copy()
    threads(1)
    a = KMeans(8, init=init, n_init=1, max_iter=10, tol=0).fit(S)
    ta = a.transform(S)
    threads(2)
    b = KMeans(8, init=init, n_init=1, max_iter=10, tol=0).fit(S)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
    np.testing.assert_array_equal(ta, b.transform(S))


@pytest.mark.parametrize("init", ["k-means++", "random", "array"])
def test_minibatch_sparse_equals_dense(init):
    X = _sparse_blobs()
    w = np.random.default_rng(4).uniform(0.5, 2.0, X.shape[0])
    ini = X[:5].copy() if init == "array" else init
    kw = dict(init=ini, random_state=0, batch_size=256)
    dense = MiniBatchKMeans(5, **kw).fit(X, sample_weight=w)
    sparse = MiniBatchKMeans(5, **kw).fit(sp.csc_array(X), sample_weight=w)
    assert sparse.n_steps_ == dense.n_steps_
    np.testing.assert_array_equal(sparse.labels_, dense.labels_)
    np.testing.assert_allclose(sparse.inertia_, dense.inertia_, rtol=1e-10)
    np.testing.assert_allclose(sparse.cluster_centers_, dense.cluster_centers_, rtol=0,
                               atol=1e-10 * np.abs(X).max())
    # partial_fit on sparse batches follows the dense batches
    a, b = MiniBatchKMeans(5, **kw), MiniBatchKMeans(5, **kw)
    for r0 in range(0, 1500, 500):
        a.partial_fit(X[r0:r0 + 500], sample_weight=w[r0:r0 + 500])
        b.partial_fit(sp.csr_matrix(X[r0:r0 + 500]), sample_weight=w[r0:r0 + 500])
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=0,
                               atol=1e-10 * np.abs(X).max())


def test_kmeans_partial_fit_sparse():
    X = _sparse_blobs(n=1200)
    a, b = KMeans(5, random_state=0), KMeans(5, random_state=0)
    for r0 in range(0, 1200, 400):
        a.partial_fit(X[r0:r0 + 400])
        b.partial_fit(sp.csr_matrix(X[r0:r0 + 400]))
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=0, atol=1e-10)


def test_bad_sparse_input():
    X = sp.csr_matrix(np.eye(4))
    bad = X.copy()
    bad.data[2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        KMeans(2).fit(bad)
    with pytest.raises(ValueError, match="Complex data not supported"):
        KMeans(2).fit(X.astype(np.complex128))
    km = KMeans(2, n_init=1, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but KMeans is expecting 4"):
        km.predict(sp.csr_matrix(np.eye(3)))
    with pytest.raises(TypeError, match="sparse"):
        maxlik.GaussianMixture(2).fit(X)


def test_callable_init_receives_the_csr_matrix():
    X = _sparse_blobs(n=300)
    seen = []

    def init(M, k, random_state):
        seen.append(M)
        return M[:k].toarray()

    KMeans(5, init=init, n_init=1).fit(sp.csc_array(X))
    assert seen and sp.issparse(seen[0]) and seen[0].format == "csr"


def test_import_maxlik_does_not_import_scipy_sparse():
    # scikit-learn imports scipy itself; block it to see what maxlik imports
    code = ("import sys; sys.modules['sklearn'] = None; import maxlik; "
            "print('scipy.sparse' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
