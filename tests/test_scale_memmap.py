"""Out-of-core fits: np.memmap input streamed in row blocks equals the in-memory fit."""
import numpy as np
import pytest

from maxlik import GaussianMixture, KMeans
from maxlik import _sources

CTYPES = ["full", "diag", "tied", "spherical"]


def _blobs(seed=0, n=600, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0, 0.0], [5.0, 5.0, 0.0], [0.0, 6.0, 6.0]])
    X = np.concatenate([rng.normal(size=(n, 3)) * (0.5 + i) + c
                        for i, c in enumerate(centres)])
    return X[rng.permutation(len(X))].astype(dtype)


@pytest.fixture
def memmap_of(tmp_path):
    made = []

    def make(X):
        path = tmp_path / f"x{len(made)}.npy"
        mm = np.lib.format.open_memmap(path, mode="w+", dtype=X.dtype, shape=X.shape)
        mm[:] = X
        mm.flush()
        del mm
        out = np.load(path, mmap_mode="r")
        made.append(out)
        return out

    return make


def test_detection(memmap_of):
    X = _blobs()
    mm = memmap_of(X)
    assert _sources.is_out_of_core(mm) and _sources.is_streamed(mm)
    assert not _sources.is_streamed(X)
    assert not _sources.is_streamed(np.asarray(mm))  # an explicit ndarray view stays in memory
    assert _sources.auto_block_size(16, 4) == (16 << 20) // 64
    assert _sources.auto_block_size(10**9, 8) == 512


@pytest.mark.parametrize("ctype", CTYPES)
def test_gmm_memmap_equals_in_memory(memmap_of, ctype):
    X = _blobs()
    mm = memmap_of(X)
    # the engine initialises from all rows in block order with the in-memory
    # fit's random draws, so even the k-means initialisation is identical
    a = GaussianMixture(3, covariance_type=ctype, random_state=0).fit(X)
    b = GaussianMixture(3, covariance_type=ctype, random_state=0, block_size=700).fit(mm)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.means_, a.means_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(b.weights_, a.weights_, rtol=0, atol=1e-12)
    assert b.lower_bound_ == pytest.approx(a.lower_bound_, abs=1e-12)
    np.testing.assert_array_equal(b.predict(mm), a.predict(X))
    np.testing.assert_allclose(b.score_samples(mm), a.score_samples(X), rtol=1e-12)
    np.testing.assert_allclose(b.predict_proba(mm), a.predict_proba(X), atol=1e-12)


def test_gmm_memmap_weights_and_float32(memmap_of):
    X = _blobs(1).astype(np.float32)
    w = np.random.default_rng(2).uniform(0, 2, size=len(X))
    w[::7] = 0
    mm = memmap_of(X)
    init = dict(means_init=[[0, 0, 0], [5, 5, 0], [0, 6, 6]], weights_init=[0.3, 0.3, 0.4],
                precisions_init=np.ones((3, 3)))
    a = GaussianMixture(3, covariance_type="diag", **init).fit(X, sample_weight=w)
    b = GaussianMixture(3, covariance_type="diag", block_size=512, **init).fit(mm,
                                                                             sample_weight=w)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-4)


def test_gmm_memmap_warm_start_and_callback(memmap_of):
    X = _blobs()
    mm = memmap_of(X)
    seen = []
    gm = GaussianMixture(2, max_iter=3, random_state=0, warm_start=True,
                         callback=lambda it, lb: seen.append((it, lb)))
    with pytest.warns(Warning, match="did not converge"):
        gm.fit(mm)
    assert [it for it, _ in seen] == [1, 2, 3]
    assert np.all(np.diff([lb for _, lb in seen]) >= -1e-12)  # EM never decreases
    lb = gm.lower_bound_
    gm.max_iter = 100
    gm.fit(mm)
    assert gm.lower_bound_ >= lb


def test_kmeans_memmap_equals_in_memory(memmap_of):
    X = _blobs()
    mm = memmap_of(X)
    a = KMeans(3, random_state=0).fit(X)
    b = KMeans(3, random_state=0, block_size=512).fit(mm)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(b.labels_, a.labels_)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-12)
    np.testing.assert_array_equal(b.predict(mm), a.predict(X))
    np.testing.assert_allclose(b.transform(mm), a.transform(X), rtol=1e-12)


def test_kmeans_memmap_empty_cluster_relocation(memmap_of):
    X = _blobs(4)
    mm = memmap_of(X)
    w = np.random.default_rng(0).uniform(0.5, 1.5, size=len(X))
    # the fourth centre is far from every row: it is empty after the first E-step
    init = np.array([[0.0, 0, 0], [5, 5, 0], [0, 6, 6], [100, 100, 100]])
    a = KMeans(4, init=init, n_init=1).fit(X, sample_weight=w)
    b = KMeans(4, init=init, n_init=1, block_size=512).fit(mm, sample_weight=w)
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(b.cluster_centers_, a.cluster_centers_, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(b.labels_, a.labels_)
    assert b.inertia_ == pytest.approx(a.inertia_, rel=1e-12)


def test_memmap_errors(memmap_of):
    X = _blobs()
    X[1000, 1] = np.nan
    mm = memmap_of(X)
    # the same message as in memory: the row is counted from the start of X
    with pytest.raises(ValueError, match=r"^Input X contains NaN \(first at row 1000\)"):
        GaussianMixture(2, block_size=512).fit(mm)
    with pytest.raises(ValueError, match="block_size"):
        KMeans(2, block_size=0).fit(memmap_of(_blobs()))
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        GaussianMixture(2).fit(memmap_of(_blobs()), sample_weight=np.ones(3))


def test_block_reader_releases_pages(memmap_of):
    """The reader drops the pages of finished blocks (madvise), so RSS stays bounded."""
    mm = memmap_of(_blobs())
    src = _sources.BlockSource(mm, block_size=512)
    assert src._mmap is not None
    calls = []
    src._release = lambda: calls.append(1)
    n_blocks = len(src.map_blocks(lambda xb, wb: 1))
    assert n_blocks == 4 and len(calls) >= n_blocks


class _FakeDataset:
    """Stands in for an h5py.Dataset (h5py is not installed here): shape, dtype, slicing."""

    __module__ = "h5py._hl.dataset"

    def __init__(self, a):
        self._a = a
        self.shape = a.shape
        self.dtype = a.dtype
        self.reads = 0

    def __getitem__(self, key):
        self.reads += 1
        return np.array(self._a[key])


def test_hdf5_like_dataset_is_streamed():
    X = _blobs(5)
    ds = _FakeDataset(X)
    assert _sources.is_out_of_core(ds)
    init = dict(weights_init=[0.3, 0.3, 0.4], means_init=[[0, 0, 0], [5, 5, 0], [0, 6, 6]],
                precisions_init=np.ones(3), covariance_type="spherical")
    a = GaussianMixture(3, **init).fit(X)
    b = GaussianMixture(3, block_size=600, **init).fit(ds)
    np.testing.assert_allclose(b.means_, a.means_, rtol=0, atol=1e-10)
    assert ds.reads >= 3 * b.n_iter_  # read block by block, every iteration


_RSS_SCRIPT = r"""
import os, resource, sys, warnings
import numpy as np
import maxlik

path, n, d = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(0)
with open(path, "wb") as f:  # write in chunks: never the whole array in this process
    np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False,
                                             "shape": (n, d)})
    for r0 in range(0, n, 65536):
        m = min(65536, n - r0)
        (rng.standard_normal((m, d)) + 4.0 * (rng.random((m, 1)) < 0.5)).tofile(f)
X = np.load(path, mmap_mode="r")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    maxlik.GaussianMixture(2, covariance_type="diag", max_iter=2, random_state=0,
                           block_size=32768).fit(X)
    maxlik.KMeans(2, max_iter=2, random_state=0, block_size=32768).fit(X)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print((peak - base) / 1024.0)
"""


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(__import__("mmap"), "MADV_DONTNEED"), reason="needs madvise")
def test_peak_memory_does_not_grow_with_n(tmp_path):
    """Fitting a 96 MB memmap raises the peak RSS by far less than the file size."""
    import subprocess
    import sys

    n, d = 1_500_000, 8  # 96 MB of float64
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(tmp_path / "x.npy"), str(n),
                          str(d)], capture_output=True, text=True, check=True)
    growth_mb = float(out.stdout.strip().splitlines()[-1])
    # blocks of 2 MB and KMeans.labels_ (6 MB int32); no O(N) initialisation state
    assert growth_mb < 40, growth_mb


def test_streamed_fits_do_not_depend_on_thread_count(memmap_of, threads):
    mm = memmap_of(_blobs(6))
    fits = []
    for n in (1, 2):
        threads(n)
        gm = GaussianMixture(3, random_state=0, block_size=1000).fit(mm)
        km = KMeans(3, random_state=0, n_init=2, block_size=1000).fit(mm)
        fits.append((gm, km))
    (g1, k1), (g2, k2) = fits
    np.testing.assert_array_equal(g1.means_, g2.means_)
    np.testing.assert_array_equal(g1.covariances_, g2.covariances_)
    np.testing.assert_array_equal(k1.cluster_centers_, k2.cluster_centers_)
    assert k1.inertia_ == k2.inertia_
