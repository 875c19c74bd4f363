"""Thread-count control for the C++ kernels (one pool, shared by all kernels)."""
from __future__ import annotations

import os
import warnings
import operator

from . import _core

__all__ = ["get_num_threads", "set_num_threads"]


def get_num_threads() -> int:
    """Number of threads the C++ kernels use.

    The default is the number of CPUs this process may run on, or the value of
    the ``MAXLIK_NUM_THREADS`` environment variable at import time.
    Results never depend on it: work is split into fixed-size row blocks whose
    partial results are merged in block order.
    """
    return int(_core.get_num_threads())


def set_num_threads(n: int) -> None:
    """Set the number of threads the C++ kernels use.

    Parameters
    ----------
    n : int
        A positive number of threads.

    Raises
    ------
    TypeError
        If `n` is not an integer.
    ValueError
        If `n` < 1.
    """
    if isinstance(n, bool):
        raise TypeError(f"set_num_threads: n must be an integer, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"set_num_threads: n must be an integer, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"set_num_threads: n must be >= 1, got {n}")
    _core.set_num_threads(n)


def _init_from_env() -> None:
    value = os.environ.get("MAXLIK_NUM_THREADS")
    if value is None or value.strip() == "":
        return
    try:
        n = int(value)
        if n < 1:
            raise ValueError
    except ValueError:
        warnings.warn(
            f"ignoring MAXLIK_NUM_THREADS={value!r}: expected a positive integer",
            RuntimeWarning,
            stacklevel=3,
        )
        return
    _core.set_num_threads(n)


_init_from_env()
