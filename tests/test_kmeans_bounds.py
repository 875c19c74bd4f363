"""Hamerly bounds in the Lloyd kernel (kmeans.hpp): rows the bounds settle are not
scored, and the pass must still give the same bits as a pass that scores every row.

The references are the kernel's own unbounded pass (bit-identity), an extended
precision brute force (the bounds must really bound), and the out-of-core fit,
which keeps no bounds.
"""
import numpy as np
import pytest

import maxlik
from maxlik import _core
from maxlik._sources import ArraySource, BlockSource


def _data(rng, n, d, k, sep, dtype, integer=False):
    centres = rng.normal(size=(k, d)) * sep
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d))
    if integer:
        X = np.round(X)  # exact ties between centres and rows
    return np.ascontiguousarray(X, dtype=dtype)


def _run_both(X, C0, iters, w=None, scale=1.0):
    """Lloyd iterations with and without bounds from the same start; every pass compared."""
    n = X.shape[0]
    Ca = C0.copy()
    la, lb = np.empty(n, np.int32), np.empty(n, np.int32)
    up, lo = np.empty(n), np.empty(n)
    moved = None
    for it in range(iters):
        Sa, Wa, Ja = _core.kmeans_lloyd_step(X, np.zeros(X.shape[1], X.dtype), Ca, w, la, True, scale)
        Sb, Wb, Jb = _core.kmeans_lloyd_step(X, np.zeros(X.shape[1], X.dtype), Ca, w, lb, True, scale,
                                            up, lo, moved)
        np.testing.assert_array_equal(la, lb, err_msg=f"labels differ at pass {it}")
        assert Ja == Jb
        np.testing.assert_array_equal(Sa, Sb)
        np.testing.assert_array_equal(Wa, Wb)
        new = np.where(Wa[:, None] > 0, Sa / np.where(Wa > 0, Wa, 1)[:, None], Ca).astype(X.dtype)
        moved = np.sqrt(((new.astype(np.float64) - Ca) ** 2).sum(1))
        Ca = new
    return la, up, lo, Ca


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", range(12))
def test_bounded_pass_same_bits_as_plain(dtype, case):
    rng = np.random.default_rng(100 + case)
    d = [1, 2, 3, 5, 8, 16, 17, 33][case % 8]
    k = [1, 2, 3, 7, 16, 5][case % 6]
    sep = [0.2, 1.0, 4.0, 30.0][case % 4]
    n = 1500 + 97 * case  # not a multiple of any block or lane count
    X = _data(rng, n, d, k, sep, dtype, integer=case % 3 == 0)
    C0 = X[rng.choice(n, k, replace=False)].copy()
    w = rng.uniform(0.5, 2.0, n).astype(dtype) if case % 4 == 1 else None
    scale = 0.25 if case % 5 == 2 else 1.0  # the kernels' power-of-two range scaling
    _run_both(X, C0, 10, w=w, scale=scale)


def test_duplicate_centres_and_exact_ties_are_scored_not_skipped():
    # Two identical centres: every row of theirs ties, gap 0, so no row may be
    # skipped on the bounds; ties must keep going to the lower index.
    rng = np.random.default_rng(5)
    X = np.round(rng.normal(size=(800, 3)) * 3)
    C0 = np.array([[0.0, 0, 0], [0.0, 0, 0], [5.0, 5, 5]])
    n = X.shape[0]
    lab, up, lo = np.empty(n, np.int32), np.empty(n), np.empty(n)
    shift = np.zeros(3)
    _core.kmeans_lloyd_step(X, shift, C0, None, lab, False, 1.0, up, lo, None)
    assert not np.any(lab == 1)  # the tie goes to centre 0
    for _ in range(3):  # centres unchanged: the tied rows still carry lower == upper
        _core.kmeans_lloyd_step(X, shift, C0, None, lab, False, 1.0, up, lo, np.zeros(3))
        assert not np.any(lab == 1)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_bounds_bound_the_true_distances(dtype):
    # After each pass: upper >= ||x - c_label|| and lower <= ||x - c_k|| for every
    # other k, with the distances computed in extended precision from the exact
    # values the kernel saw.
    rng = np.random.default_rng(11)
    X = _data(rng, 1200, 6, 5, 3.0, dtype)
    C0 = X[:5].copy()
    _, _, _, C = _run_both(X, C0, 6)  # centres after a few Lloyd steps
    n = X.shape[0]
    lab, up, lo = np.empty(n, np.int32), np.empty(n), np.empty(n)
    shift = np.zeros(6, dtype)
    _core.kmeans_lloyd_step(X, shift, C, None, lab, False, 1.0, up, lo, None)
    for _ in range(3):  # small random moves of the centres: most rows are skipped
        Cn = (C.astype(np.float64) + rng.normal(scale=0.01, size=C.shape)).astype(dtype)
        moved = np.sqrt(((Cn.astype(np.float64) - C) ** 2).sum(1))
        _core.kmeans_lloyd_step(X, shift, Cn, None, lab, False, 1.0, up, lo, moved)
        C = Cn
        dist = np.sqrt(((X.astype(np.longdouble)[:, None, :] - C.astype(np.longdouble)[None]) ** 2)
                       .sum(-1))
        rows = np.arange(n)
        assert np.all(up >= dist[rows, lab].astype(np.float64) * (1 - 1e-15))
        other = dist.copy()
        other[rows, lab] = np.inf
        assert np.all(lo <= other.min(1).astype(np.float64) * (1 + 1e-15))
        np.testing.assert_array_equal(lab, dist.argmin(1))


def test_argument_checks():
    X = np.zeros((10, 2))
    C = np.ones((2, 2))
    lab = np.zeros(10, np.int32)
    up, lo = np.empty(10), np.empty(10)
    s = np.zeros(2)
    with pytest.raises(ValueError, match="together"):
        _core.kmeans_lloyd_step(X, s, C, None, lab, False, 1.0, up, None, None)
    with pytest.raises(ValueError, match="moved needs"):
        _core.kmeans_lloyd_step(X, s, C, None, lab, False, 1.0, None, None, np.zeros(2))
    with pytest.raises(ValueError, match="upper must be a writeable C-contiguous float64"):
        _core.kmeans_lloyd_step(X, s, C, None, lab, False, 1.0, up.astype(np.float32), lo, None)
    with pytest.raises(ValueError, match="lower must be"):
        _core.kmeans_lloyd_step(X, s, C, None, lab, False, 1.0, up, np.empty(9), None)
    with pytest.raises(ValueError, match="moved must have shape"):
        _core.kmeans_lloyd_step(X, s, C, None, lab, False, 1.0, up, lo, np.zeros(3))
    _core.kmeans_lloyd_step(X, s, C, None, lab, True, 1.0, up, lo, None)
    bad = lab.copy()
    bad[3] = 5
    with pytest.raises(ValueError, match="delta=True needs labels from the previous pass"):
        _core.kmeans_lloyd_step(X, s, C, None, bad, True, 1.0, up, lo, np.zeros(2), False, True)
    # out-of-range labels with bounds are rescored, never used as an index
    _core.kmeans_lloyd_step(X, s, C, None, lab, False, 1.0, up, lo, None)
    lab[:] = 7
    _core.kmeans_lloyd_step(X, s, C, None, lab, False, 1.0, up, lo, np.zeros(2))
    assert np.all(lab == 0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_fit_with_bounds_equals_fit_without(monkeypatch, dtype, weighted):
    # The in-memory fit keeps bounds (and, unweighted, updates its sums by the rows
    # whose label changed); with them switched off (as for out-of-core and Dask
    # sources) the fit must give the same labels, and the same centres and inertia
    # to rounding (bit for bit when weighted: then every pass sums every row).
    assert ArraySource.in_memory and not getattr(BlockSource, "in_memory", False)
    rng = np.random.default_rng(3)
    X = _data(rng, 5000, 4, 6, 2.0, dtype)
    w = rng.uniform(0.5, 2.0, X.shape[0]) if weighted else None
    kw = dict(n_clusters=6, n_init=2, random_state=0, tol=0.0, max_iter=40)
    a = maxlik.KMeans(**kw).fit(X, sample_weight=w)
    monkeypatch.setattr(ArraySource, "in_memory", False)
    b = maxlik.KMeans(**kw).fit(X, sample_weight=w)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    assert a.n_iter_ == b.n_iter_
    if weighted:
        np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)
        assert a.inertia_ == b.inertia_
    else:
        rtol = 1e-12 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(a.inertia_, b.inertia_, rtol=rtol)


def test_incremental_sums_match_full_sums():
    # delta=True: the kernel returns only the changes of the rows whose label
    # changed; added to the previous sums they give a full pass's sums.
    rng = np.random.default_rng(12)
    X = _data(rng, 4000, 5, 7, 1.5, np.float64)
    n, s = X.shape[0], np.zeros(5)
    C = X[:7].copy()
    la, lb = np.empty(n, np.int32), np.empty(n, np.int32)
    up, lo = np.empty(n), np.empty(n)
    Sb, Wb, _ = _core.kmeans_lloyd_step(X, s, C, None, lb, True, 1.0, up, lo, None, False, True)
    moved = None
    for it in range(8):
        Sa, Wa, _ = _core.kmeans_lloyd_step(X, s, C, None, la, True, 1.0)
        if it:
            dS, dW, J = _core.kmeans_lloyd_step(X, s, C, None, lb, True, 1.0, up, lo, moved, False, True)
            assert np.isnan(J)
            Sb, Wb = Sb + dS, Wb + dW
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(Wa, Wb)  # counts: exact
        np.testing.assert_allclose(Sb, Sa, rtol=1e-13, atol=1e-12)
        new = Sa / Wa[:, None]
        moved = np.sqrt(((new - C) ** 2).sum(1))
        C = new


def test_fit_in_memory_equals_out_of_core(tmp_path):
    rng = np.random.default_rng(4)
    X = _data(rng, 5000, 4, 6, 2.0, np.float64)
    np.save(tmp_path / "x.npy", X)
    Xm = np.load(tmp_path / "x.npy", mmap_mode="r")
    kw = dict(n_clusters=6, n_init=1, random_state=0, tol=0.0, max_iter=40)
    a, b = maxlik.KMeans(**kw).fit(X), maxlik.KMeans(**kw).fit(Xm)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.cluster_centers_, b.cluster_centers_, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_pass_without_inertia_same_sums_and_nan_inertia(dtype):
    # inertia=False: the rows the bounds settle are only summed; J is NaN, not 0.
    rng = np.random.default_rng(8)
    X = _data(rng, 3000, 7, 4, 3.0, dtype)
    C = X[:4].copy()
    n, s = X.shape[0], np.zeros(7, dtype)
    la, lb = np.empty(n, np.int32), np.empty(n, np.int32)
    up, lo = np.empty(n), np.empty(n)
    _core.kmeans_lloyd_step(X, s, C, None, lb, True, 1.0, up, lo, None)
    for _ in range(4):
        Sa, Wa, Ja = _core.kmeans_lloyd_step(X, s, C, None, la, True, 1.0)
        new = (Sa / Wa[:, None]).astype(dtype)
        moved = np.sqrt(((new.astype(np.float64) - C) ** 2).sum(1))
        C = new
        Sa, Wa, Ja = _core.kmeans_lloyd_step(X, s, C, None, la, True, 1.0)
        Sb, Wb, Jb = _core.kmeans_lloyd_step(X, s, C, None, lb, True, 1.0, up, lo, moved, False)
        np.testing.assert_array_equal(la, lb)
        np.testing.assert_array_equal(Sa, Sb)
        np.testing.assert_array_equal(Wa, Wb)
        assert np.isnan(Jb) and np.isfinite(Ja)


def test_verbose_fit_reports_each_iterations_inertia(capsys):
    # verbose asks the bounded passes for the inertia of every iteration
    rng = np.random.default_rng(2)
    X = _data(rng, 2000, 3, 3, 4.0, np.float64)
    km = maxlik.KMeans(3, init=X[:3].copy(), n_init=1, verbose=1).fit(X)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("Iteration")]
    assert len(lines) == km.n_iter_
    values = [float(ln.split("inertia ")[1].rstrip(".")) for ln in lines]
    assert all(np.isfinite(values)) and values[-1] == pytest.approx(km.inertia_, rel=1e-12)
