"""maxlik.KMeans against sklearn.cluster.KMeans, plus properties of the C++ Lloyd kernel."""
import pickle

import numpy as np
import pytest

import maxlik
from maxlik import KMeans, kmeans_plusplus
from maxlik.exceptions import ConvergenceWarning, NotFittedError

sklearn = pytest.importorskip("sklearn")
from sklearn.cluster import KMeans as SKKMeans  # noqa: E402
from sklearn.datasets import make_blobs  # noqa: E402


def _blobs(n=3000, d=5, k=6, std=2.5, seed=0, dtype=np.float64):
    X, _ = make_blobs(n, d, centers=k, cluster_std=std, random_state=seed)
    return X.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tol,max_iter", [(1e-4, 300), (0.0, 7)])
def test_same_as_sklearn_from_same_init(dtype, tol, max_iter):
    # Overlapping blobs so that Lloyd needs many iterations and labels move.
    X = _blobs(std=4.0, dtype=dtype)
    init = X[:6].copy()
    ours = KMeans(6, init=init, n_init=1, tol=tol, max_iter=max_iter).fit(X)
    ref = SKKMeans(6, init=init, n_init=1, tol=tol, max_iter=max_iter).fit(X)
    assert ours.cluster_centers_.dtype == dtype
    assert ours.labels_.dtype == np.int32
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    assert ours.n_iter_ == ref.n_iter_
    rtol = 1e-10 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=rtol)
    scale = np.abs(X).max()
    np.testing.assert_allclose(ours.cluster_centers_, ref.cluster_centers_, rtol=0,
                               atol=(1e-12 if dtype == np.float64 else 1e-5) * scale)


@pytest.mark.parametrize("init", ["k-means++", "random"])
def test_same_seeding_as_sklearn(init):
    # Same random draws as scikit-learn: the same random_state gives the same fit.
    X = _blobs(n=2000, d=4, k=5, seed=3)
    for seed in range(3):
        ours = KMeans(5, init=init, n_init=2, random_state=seed).fit(X)
        ref = SKKMeans(5, init=init, n_init=2, random_state=seed).fit(X)
        np.testing.assert_array_equal(ours.labels_, ref.labels_)
        np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)


def test_kmeans_plusplus_function_matches_sklearn():
    from sklearn.cluster import kmeans_plusplus as sk_kpp

    X = _blobs(n=1000, d=3, k=4, seed=7)
    c1, i1 = kmeans_plusplus(X, 4, random_state=11)
    c2, i2 = sk_kpp(X, 4, random_state=11)
    np.testing.assert_array_equal(i1, i2)
    np.testing.assert_array_equal(c1, X[i1])


def test_labels_are_nearest_centre_and_inertia_direct(rng):
    # E-step identity: each label is the argmin of the squared distances, and
    # the inertia is their (weighted) sum.
    X = rng.normal(size=(2000, 7)) * 3 + 100.0  # offset: tests cancellation handling
    km = KMeans(9, n_init=1, random_state=0, max_iter=3).fit(X)
    d2 = ((X[:, None, :] - km.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(km.labels_, d2.argmin(1))
    np.testing.assert_allclose(km.inertia_, d2.min(1).sum(), rtol=1e-12)
    np.testing.assert_array_equal(km.predict(X), km.labels_)
    np.testing.assert_allclose(km.transform(X), np.sqrt(d2), rtol=1e-12)
    np.testing.assert_allclose(km.score(X), -km.inertia_, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_integer_sample_weight_equals_repeated_rows(dtype, rng):
    X = _blobs(n=600, d=3, k=4, std=3.0, seed=5, dtype=dtype)
    w = rng.integers(0, 4, size=len(X))
    init = X[w > 0][:4].copy()
    a = KMeans(4, init=init, n_init=1).fit(X, sample_weight=w.astype(dtype))
    b = KMeans(4, init=init, n_init=1).fit(np.repeat(X, w, axis=0))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=rtol)
    np.testing.assert_array_equal(np.repeat(a.labels_, w), b.labels_)
    # and the same as scikit-learn's weighted fit
    ref = SKKMeans(4, init=init, n_init=1).fit(X, sample_weight=w.astype(dtype))
    np.testing.assert_array_equal(a.labels_, ref.labels_)


def test_sample_weight_seeding_same_as_sklearn(rng):
    X = _blobs(n=800, d=3, k=4, seed=2)
    w = rng.random(len(X))
    ours = KMeans(4, random_state=0).fit(X, sample_weight=w)
    ref = SKKMeans(4, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thread_count_determinism(dtype, threads):
    # Bit-identical for 1 and 2 threads: fixed row blocks merged in order.
    X = _blobs(n=20_000, d=6, k=8, std=4.0, seed=1, dtype=dtype)
    init = X[:8].copy()
    threads(1)
    a = KMeans(8, init=init, n_init=1, max_iter=15, tol=0).fit(X)
    threads(2)
    b = KMeans(8, init=init, n_init=1, max_iter=15, tol=0).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.inertia_ == b.inertia_
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_empty_cluster_relocated_like_sklearn():
    # A centre far away from all data gets no points on the first step.
    X = _blobs(n=500, d=2, k=3, seed=4)
    init = np.array([[0.0, 0.0], [1.0, 1.0], [1e3, 1e3]]) + X.mean(0)
    ours = KMeans(3, init=init, n_init=1).fit(X)
    ref = SKKMeans(3, init=init, n_init=1).fit(X)
    np.testing.assert_array_equal(ours.labels_, ref.labels_)
    np.testing.assert_allclose(ours.inertia_, ref.inertia_, rtol=1e-10)
    assert len(np.unique(ours.labels_)) == 3


def test_duplicate_points_warn():
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 1.0]]), 5, axis=0)
    with pytest.warns(ConvergenceWarning, match="distinct clusters"):
        KMeans(3, n_init=1, random_state=0).fit(X)


@pytest.mark.parametrize("n_features", [1, 2, 3, 9, 17])
@pytest.mark.parametrize("n_clusters", [1, 2, 5, 16, 33])
def test_odd_shapes_against_bruteforce(n_features, n_clusters, rng):
    # Shapes that exercise the kernel's tails (odd K, D not a multiple of the
    # vector width, rows not a multiple of the block).
    X = rng.normal(size=(1037, n_features))
    for dtype in (np.float64, np.float32):
        Xd = X.astype(dtype)
        km = KMeans(n_clusters, n_init=1, random_state=1, max_iter=2).fit(Xd)
        C = km.cluster_centers_.astype(np.float64)
        d2 = ((Xd.astype(np.float64)[:, None, :] - C[None]) ** 2).sum(-1)
        lab = km.predict(Xd)
        chosen = d2[np.arange(len(X)), lab]
        # the chosen centre is the nearest up to float rounding
        tol = 1e-12 if dtype == np.float64 else 1e-4
        assert np.all(chosen <= d2.min(1) * (1 + tol) + tol)


def test_fit_predict_transform_consistency():
    X = _blobs(n=500, d=3, k=3)
    km = KMeans(3, random_state=0)
    labels = km.fit_predict(X)
    np.testing.assert_array_equal(labels, km.labels_)
    np.testing.assert_allclose(KMeans(3, random_state=0).fit_transform(X), km.transform(X))


def test_pickle_and_clone_roundtrip():
    from sklearn.base import clone

    X = _blobs(n=300, d=2, k=3)
    km = KMeans(3, random_state=0).fit(X)
    km2 = pickle.loads(pickle.dumps(km))
    np.testing.assert_array_equal(km2.predict(X), km.predict(X))
    c = clone(km)
    assert c.get_params() == km.get_params()
    assert not hasattr(c, "cluster_centers_")


def test_verbose_prints(capsys):
    X = _blobs(n=200, d=2, k=2)
    KMeans(2, n_init=1, random_state=0, verbose=1).fit(X)
    out = capsys.readouterr().out
    assert "Initialization complete" in out and "inertia" in out


# ---- bad input -------------------------------------------------------------------------

def test_bad_inputs():
    X = _blobs(n=50, d=3, k=2)
    with pytest.raises(ValueError, match="n_samples=50 should be >= n_clusters=60"):
        KMeans(60).fit(X)
    with pytest.raises(TypeError, match="n_clusters must be an integer"):
        KMeans(2.5).fit(X)
    with pytest.raises(ValueError, match="n_clusters must be >= 1"):
        KMeans(0).fit(X)
    with pytest.raises(ValueError, match="init must be"):
        KMeans(2, init="kmeans").fit(X)
    with pytest.raises(ValueError, match="shape of the initial centers"):
        KMeans(2, init=np.zeros((3, 3))).fit(X)
    with pytest.raises(ValueError, match="tol must be >= 0"):
        KMeans(2, tol=-1).fit(X)
    with pytest.raises(ValueError, match="max_iter must be >= 1"):
        KMeans(2, max_iter=0).fit(X)
    with pytest.raises(ValueError, match="n_init must be 'auto'"):
        KMeans(2, n_init="many").fit(X)
    with pytest.raises(ValueError, match="algorithm"):
        KMeans(2, algorithm="fast").fit(X)
    Xn = X.copy()
    Xn[7, 1] = np.nan
    with pytest.raises(ValueError, match="NaN.*row 7"):
        KMeans(2).fit(Xn)
    with pytest.raises(ValueError, match="Reshape your data"):
        KMeans(2).fit(X[:, 0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        KMeans(2).fit(X + 1j)  # scikit-learn's convention, as every maxlik estimator
    with pytest.raises(ValueError, match="sample_weight must have shape"):
        KMeans(2).fit(X, sample_weight=np.ones(3))
    with pytest.raises(ValueError, match="non-negative"):
        KMeans(2).fit(X, sample_weight=-np.ones(50))
    with pytest.raises(NotFittedError):
        KMeans(2).predict(X)
    km = KMeans(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 2 features, but KMeans is expecting 3"):
        km.predict(X[:, :2])
    with pytest.warns(RuntimeWarning, match="performing only one init"):
        KMeans(2, init=X[:2], n_init=3).fit(X)


def test_sparse_accepted_and_gaussian_mixture_still_rejects_it():
    # KMeans takes CSR / CSC (tests/test_sparse_cluster.py compares with the dense fit);
    # GaussianMixture keeps its clear TypeError (issue 13, item 7).
    sp = pytest.importorskip("scipy.sparse")
    X = sp.csr_matrix(np.eye(5))
    assert KMeans(2, n_init=1, random_state=0).fit(X).labels_.shape == (5,)
    with pytest.raises(TypeError, match="sparse"):
        maxlik.GaussianMixture(2).fit(X)


# ---- scikit-learn's estimator checks ----------------------------------------------------

# Exempted checks, with the reason.
EXEMPT = {
    # scikit-learn xfails this for its own KMeans too: with random seeding,
    # weights and repeated rows draw different initial centres. Our
    # test_integer_sample_weight_equals_repeated_rows checks it from one init.
    "check_sample_weight_equivalence_on_dense_data":
        "seeding consumes randomness differently (sklearn xfails it for KMeans too)",
    # the same for sparse X (sklearn xfails both for KMeans and MiniBatchKMeans);
    # tests/test_sparse_cluster.py checks weights = repeats from one init on CSR rows
    "check_sample_weight_equivalence_on_sparse_data":
        "seeding consumes randomness differently (sklearn xfails it for KMeans too)",
}


@pytest.mark.filterwarnings("ignore::UserWarning")  # "does not inherit from sklearn.base.BaseEstimator"
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.SkipTestWarning")
@pytest.mark.parametrize("est", [KMeans(n_clusters=2, n_init=2, max_iter=5),
                                 maxlik.MiniBatchKMeans(n_clusters=2, n_init=2, max_iter=5)],
                         ids=["KMeans", "MiniBatchKMeans"])
def test_check_estimator(est):
    from sklearn.utils.estimator_checks import check_estimator

    results = check_estimator(est, on_fail=None, expected_failed_checks=EXEMPT)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert failed == []


def test_get_feature_names_out_and_kmeans_plusplus_signature_match_sklearn():
    sk = pytest.importorskip("sklearn.cluster")
    import inspect

    X = np.random.default_rng(0).normal(size=(50, 3))
    ours = KMeans(4, n_init=1, random_state=0).fit(X)
    ref = sk.KMeans(4, n_init=1, random_state=0).fit(X)
    np.testing.assert_array_equal(ours.get_feature_names_out(), ref.get_feature_names_out())
    assert ours.get_feature_names_out().dtype == object
    np.testing.assert_array_equal(ours.get_feature_names_out(["a", "b", "c"]),
                                  ref.get_feature_names_out(["a", "b", "c"]))
    with pytest.raises(ValueError, match="input_features should have length equal to number of "
                                         r"features \(3\), got 2"):
        ours.get_feature_names_out(["a", "b"])
    with pytest.raises(maxlik.NotFittedError):
        KMeans(2).get_feature_names_out()
    assert list(inspect.signature(maxlik.kmeans_plusplus).parameters) == \
        list(inspect.signature(sk.kmeans_plusplus).parameters)
    c1, i1 = maxlik.kmeans_plusplus(X, 3, random_state=1)
    c2, i2 = maxlik.kmeans_plusplus(X, 3, random_state=1, x_squared_norms=(X**2).sum(1))
    np.testing.assert_array_equal(i1, i2)
    with pytest.raises(ValueError, match=r"x_squared_norms must have shape \(50,\)"):
        maxlik.kmeans_plusplus(X, 3, x_squared_norms=np.ones(3))


# ---- the register-blocked assignment micro-kernel (kmeans.hpp) ------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inertia_is_direct_not_dot_product_form(dtype):
    # scikit-learn-intelex issue 25: rows +-1 +- 1e-4. The dot-product form
    # ||x||^2 - 2 x.c + ||c||^2 used to find the labels cancels to exactly 0
    # here in float32; the inertia must be the direct sum of squared distances,
    # about 4.0e-8 (computed below in float64 from the fitted labels/centres).
    X = np.array([[-1.0001], [-0.9999], [0.9999], [1.0001]], dtype=dtype)
    km = KMeans(n_clusters=2, n_init=1, random_state=0).fit(X)
    np.testing.assert_array_equal(np.sort(km.cluster_centers_.ravel()), np.array([-1, 1], dtype))
    ref = float(((X.astype(np.float64) - km.cluster_centers_.astype(np.float64)[km.labels_]) ** 2).sum())
    assert 3.9e-8 < ref < 4.1e-8
    np.testing.assert_allclose(km.inertia_, ref, rtol=1e-6)
    np.testing.assert_allclose(-km.score(X), ref, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n_clusters", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 17])
@pytest.mark.parametrize("n_features", [1, 3, 8, 17])
def test_kernel_labels_exact_on_integer_data(dtype, n_clusters, n_features, rng):
    # Small integers: x.c - ||c||^2/2 is exact in float32 and float64, so the
    # kernel's labels must be exactly the nearest centre with ties to the lowest
    # index, for every tile remainder (K mod 4), feature tail and row tail, and
    # with duplicated centres (exact ties across centre groups).
    from maxlik import _core

    n = 1000 + n_clusters  # not a multiple of any strip or sub-block
    X = rng.integers(-6, 7, size=(n, n_features)).astype(dtype)
    C = rng.integers(-6, 7, size=(n_clusters, n_features)).astype(dtype)
    if n_clusters >= 6:
        C[n_clusters - 1] = C[1]   # a duplicate in a later group
        C[5] = C[4]                # and one straddling the first group boundary
    labels = np.empty(n, dtype=np.int32)
    S, W, J = _core.kmeans_lloyd_step(X, np.zeros(n_features, dtype), C, None, labels, True)
    d2 = ((X.astype(np.float64)[:, None, :] - C.astype(np.float64)[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(labels, np.argmin(d2, axis=1))  # argmin: lowest index on ties
    np.testing.assert_array_equal(W, np.bincount(labels, minlength=n_clusters))
    ref_S = np.zeros((n_clusters, n_features))
    np.add.at(ref_S, labels, X.astype(np.float64))
    np.testing.assert_array_equal(S, ref_S)
    assert J == d2[np.arange(n), labels].sum()
