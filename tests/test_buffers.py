"""Reused memory for large outputs (maxlik._buffers): an array handed out is never
handed out again while anything still refers to it."""
import threading

import numpy as np
import pytest

import maxlik
from maxlik import _buffers

BIG = (1024, 4096)  # 16 MB of float32: above MIN_BYTES


def _addr(a):
    return a.__array_interface__["data"][0]


@pytest.fixture(autouse=True)
def _fresh_cache(monkeypatch):
    monkeypatch.delenv("MAXLIK_BUFFER_CACHE_MB", raising=False)
    _buffers.clear()
    yield
    _buffers.clear()


def test_memory_reused_only_after_the_array_is_gone():
    a = _buffers.empty(BIG, np.float32)
    assert a.shape == BIG and a.dtype == np.float32 and a.flags.c_contiguous and a.flags.writeable
    b = _buffers.empty(BIG, np.float32)
    assert not np.shares_memory(a, b)  # a is alive
    p = _addr(a)
    del a
    c = _buffers.empty(BIG, np.float32)
    assert _addr(c) == p  # a's memory, now unused, comes back
    view = c[::3]
    del c
    d = _buffers.empty(BIG, np.float32)
    assert not np.shares_memory(view, d)  # a view keeps the memory reserved
    del b, d, view


def test_held_gradients_are_never_overwritten():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(40000, 128)).astype(np.float32)  # 20 MB gradient
    y = rng.integers(0, 128, 40000)
    _, g1 = maxlik.softmax_cross_entropy(z, y, return_grad=True)
    keep = g1.copy()
    kept_rows = g1[5:10]  # a view only
    _, g2 = maxlik.softmax_cross_entropy(z + 1.0, y, return_grad=True)
    np.testing.assert_array_equal(g1, keep)
    assert not np.shares_memory(g1, g2)
    del g1
    _, g3 = maxlik.softmax_cross_entropy(z * 2.0, y, return_grad=True)
    np.testing.assert_array_equal(kept_rows, keep[5:10])  # still reserved through the view
    assert not np.shares_memory(kept_rows, g3)
    s1 = maxlik.softmax(z, axis=1)
    ref = np.exp(z - z.max(1, keepdims=True))
    ref /= ref.sum(1, keepdims=True)
    np.testing.assert_allclose(s1, ref, rtol=1e-5, atol=1e-7)


def test_small_outputs_and_disabled_cache_are_plain_arrays(monkeypatch):
    small = _buffers.empty((10, 10), np.float64)
    assert small.base is None
    monkeypatch.setenv("MAXLIK_BUFFER_CACHE_MB", "0")
    big = _buffers.empty(BIG, np.float32)
    assert big.base is None and _buffers.cached_bytes() == 0


def test_fortran_order_and_clear():
    x = np.asfortranarray(np.zeros((3000, 1000)))
    out = _buffers.empty_like(x)
    assert out.shape == x.shape and out.flags.f_contiguous
    del out
    assert _buffers.cached_bytes() >= x.nbytes
    _buffers.clear()
    assert _buffers.cached_bytes() == 0


def test_cache_limit_respected(monkeypatch):
    monkeypatch.setenv("MAXLIK_BUFFER_CACHE_MB", "40")
    arrays = [_buffers.empty(BIG, np.float32) for _ in range(4)]  # 4 x 16 MB in use
    del arrays  # 64 MB unused now; the next request trims to the limit
    a = _buffers.empty(BIG, np.float32)
    assert _buffers.cached_bytes() <= 40 << 20
    del a


def test_threads_get_distinct_buffers():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(40000, 128)).astype(np.float32)
    ref = maxlik.softmax(z, axis=1).copy()
    outs, errors = [], []

    def work():
        try:
            for _ in range(5):
                outs.append(maxlik.softmax(z, axis=1))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for o in outs:  # all alive at once: pairwise distinct memory, all correct
        np.testing.assert_array_equal(o, ref)
    addrs = {_addr(o) for o in outs}
    assert len(addrs) == len(outs)
