"""Reused memory for large outputs (gradients, softmax results).

A fresh large numpy array is fresh pages from the kernel: on first write every
page faults and is zeroed by the kernel, which for a 128 MB gradient cost about
as much as the whole cross-entropy kernel (``clear_page_erms`` was 41% of the
samples of a loss-and-gradient loop). A training loop asks for an output of
the same size every step, and drops the previous one, so this module keeps
the memory of large outputs and hands it out again once nothing refers to it:

* :func:`empty` returns a view of a cached byte slab. The view (and anything
  derived from it) references the slab, so a slab is reused only when its
  reference count says no array of the caller's still uses it.
* Only outputs of at least ``MIN_BYTES`` go through the cache; smaller ones are
  plain ``np.empty`` (numpy's allocator and the C library handle those well).
* The slabs nobody uses are kept up to ``MAXLIK_BUFFER_CACHE_MB`` megabytes in
  total (default 256, and at most a sixteenth of physical memory); 0 turns the
  cache off. The limit is applied whenever a large output is requested (slabs
  in use do not count), so after a burst of large outputs more may be kept
  until the next request; :func:`clear` releases every unused slab at once.

The arrays behave as ``np.empty`` results (uninitialised, writeable, C or F
order as asked); their ``base`` is the slab.
"""
from __future__ import annotations

import os
import sys
import threading

import numpy as np

MIN_BYTES = 8 << 20

_lock = threading.Lock()
_slabs: list[np.ndarray] = []  # most recently used last


def _limit_bytes() -> int:
    env = os.environ.get("MAXLIK_BUFFER_CACHE_MB")
    try:
        mb = float(env) if env is not None else 256.0
    except ValueError:
        mb = 256.0
    limit = int(max(mb, 0.0) * (1 << 20))
    try:
        phys = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        limit = min(limit, phys // 16)
    except (ValueError, OSError, AttributeError):
        pass
    return limit


def _count(lst, i: int) -> int:
    return sys.getrefcount(lst[i])


# What _count reports for an object referenced by its list alone, measured on
# this interpreter rather than assumed (CPython versions differ in the
# temporary references they hold).
_ALONE = _count([object()], 0)


def _free(i: int) -> bool:
    """Slab i is referenced by ``_slabs`` alone: no view of it (no array handed out)
    is alive."""
    return _count(_slabs, i) <= _ALONE


def empty(shape, dtype, order="C") -> np.ndarray:
    """``np.empty(shape, dtype, order)``, from reused memory when it is large."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in (shape if isinstance(shape, (tuple, list)) else (shape,)))
    nbytes = dtype.itemsize
    for s in shape:
        nbytes *= s
    limit = _limit_bytes()
    if nbytes < MIN_BYTES or nbytes > limit:
        return np.empty(shape, dtype=dtype, order=order)
    with _lock:
        slab = None
        for i in range(len(_slabs)):
            # a free slab of the right size class (not more than twice the request)
            if nbytes <= _slabs[i].nbytes <= 2 * nbytes and _free(i):
                slab = _slabs.pop(i)
                break
        if slab is None:
            slab = np.empty(nbytes, dtype=np.uint8)
        _slabs.append(slab)
        _trim(limit)
        flat = slab[:nbytes].view(dtype)
    if order == "F" and len(shape) > 1:
        return flat.reshape(shape[::-1]).T
    return flat.reshape(shape)


def empty_like(a: np.ndarray) -> np.ndarray:
    """``np.empty_like(a)`` for a C- or F-contiguous `a` (F order kept)."""
    order = "F" if (a.flags.f_contiguous and not a.flags.c_contiguous) else "C"
    return empty(a.shape, a.dtype, order)


def _trim(limit: int) -> None:
    """Drop the least recently used free slabs beyond `limit` bytes (lock held)."""
    free_bytes = sum(_slabs[i].nbytes for i in range(len(_slabs)) if _free(i))
    i = 0
    while free_bytes > limit and i < len(_slabs):
        if _free(i):
            free_bytes -= _slabs[i].nbytes
            del _slabs[i]
        else:
            i += 1


def clear() -> None:
    """Release the cached slabs that no array uses."""
    with _lock:
        keep = [i for i in range(len(_slabs)) if not _free(i)]
        _slabs[:] = [_slabs[i] for i in keep]


def cached_bytes() -> int:
    """Bytes held by slabs that no array uses (what :func:`clear` would release)."""
    with _lock:
        return sum(_slabs[i].nbytes for i in range(len(_slabs)) if _free(i))
