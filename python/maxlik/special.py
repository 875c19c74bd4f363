"""log-sum-exp, softmax and log-softmax: drop-ins for ``scipy.special``.

The reductions run in C++ in one pass over memory (online max rescaling),
multi-threaded, in float32 or float64.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from . import _buffers, _core
from ._tensors import numpy_view
from ._validation import (
    as_float_array,
    check_axis,
    check_bool,
    check_output_size,
    result_float_dtype,
)

__all__ = ["logsumexp", "softmax", "log_softmax"]


def _real_array(x, name):
    """Convert to a real numeric numpy array (layout kept), with maxlik's messages."""
    return as_float_array(x, name, order=None)


def _collapse(shape, strides_list):
    """Merge adjacent dimensions that are contiguous with each other in every
    array of `strides_list` (all of the same `shape`).

    Returns (sizes, [strides per array]) with size-1 dims dropped.
    """
    sizes: list[int] = []
    out: list[list[int]] = [[] for _ in strides_list]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        if sizes and all(o[-1] == st[d] * n for o, st in zip(out, strides_list)):
            sizes[-1] *= n
            for o, st in zip(out, strides_list):
                o[-1] = st[d]
        else:
            sizes.append(n)
            for o, st in zip(out, strides_list):
                o.append(st[d])
    return sizes, out


def _view3(arrays, axes: tuple[int, ...]):
    """(batch, outputs, reduced) strided views of same-shape `arrays`, or None.

    The reduced axes go last. Dimensions are merged only where every array
    allows it, so all views have the same 3-D shape and address exactly the
    elements of their array.
    """
    x0 = arrays[0]
    nd = x0.ndim
    k = len(axes)
    dest = tuple(range(nd - k, nd))
    moved = [np.moveaxis(x, axes, dest) for x in arrays]
    shape = moved[0].shape
    kept_n, kept_s = _collapse(shape[: nd - k], [m.strides[: nd - k] for m in moved])
    red_n, red_s = _collapse(shape[nd - k:], [m.strides[nd - k:] for m in moved])
    if len(kept_n) > 2 or len(red_n) > 1:
        return None
    if len(kept_n) == 2 and red_n and red_s[0][0] != x0.itemsize \
            and kept_s[0][0] == x0.itemsize and kept_s[0][1] != x0.itemsize:
        # The unit-stride kept group is the outer one (e.g. Fortran order):
        # make it the output axis so the column kernel applies. Outputs then
        # come out in (o, b) order; see _kept_order.
        kept_n = kept_n[::-1]
        kept_s = [ks[::-1] for ks in kept_s]
        swapped = True
    else:
        swapped = False
    views = []
    for i, (m, x) in enumerate(zip(moved, arrays)):
        item = x.itemsize
        L, si = (red_n[0], red_s[i][0]) if red_n else (1, item)
        if len(kept_n) == 2:
            nb, no = kept_n
            sb, so = kept_s[i]
        elif len(kept_n) == 1:
            nb, sb = 1, 0
            no, so = kept_n[0], kept_s[i][0]
        else:
            nb, sb, no, so = 1, 0, 1, item
        if L == 1:
            si = item
        if no == 1:
            so = item
        v = np.lib.stride_tricks.as_strided(m, shape=(nb, no, L), strides=(sb, so, si), writeable=False)
        views.append(_View3(v, swapped))
    return views


class _View3(np.ndarray):
    """A 3-D view that remembers whether its two kept groups were swapped."""

    def __new__(cls, arr, swapped):
        obj = arr.view(cls)
        obj._maxlik_swapped = swapped
        return obj


def _contiguous3(x: np.ndarray, axes):
    """Copy `x` with the reduced axes last, C-contiguous, as a (1, outputs, L) array."""
    nd = x.ndim
    k = len(axes)
    # x may be a broadcast view far larger than its memory: refuse an impossible copy
    check_output_size(x.shape, x.itemsize, "a contiguous copy of the input")
    moved = np.ascontiguousarray(np.moveaxis(x, axes, tuple(range(nd - k, nd))))
    L = int(np.prod(moved.shape[nd - k:], dtype=np.int64))
    return moved.reshape(1, -1, L)


def _kept_order(flat, v3, kept_shape):
    """Reshape the kernel's flat (b, o)-ordered output to the kept shape.

    When _view3 swapped the two kept groups (marked on the view), the flat
    index is g2 * P1 + g1 instead of g1 * P2 + g2: transpose it back.
    """
    if getattr(v3, "_maxlik_swapped", False):
        nb, no = v3.shape[0], v3.shape[1]
        return flat.reshape(nb, no).T.reshape(kept_shape)
    return flat.reshape(kept_shape)


def _kernel_layout(v) -> bool:
    """The C++ kernel reads rows (unit stride along the reduction) or columns
    (unit stride across outputs); anything else is copied first."""
    return v.strides[2] == v.itemsize or v.shape[1] <= 1 or v.strides[1] == v.itemsize


def _row_layout(v) -> bool:
    return v.strides[2] == v.itemsize


def _compatible_b(a3, b3) -> bool:
    if _row_layout(a3):
        return b3.strides[2] in (0, b3.itemsize)
    return a3.shape[1] <= 1 or b3.strides[1] == b3.itemsize


def logsumexp(a: npt.ArrayLike, axis: int | tuple[int, ...] | None = None, b: npt.ArrayLike | None = None,
              keepdims: bool = False, return_sign: bool = False) -> Any:
    """Compute ``log(sum(b * exp(a)))`` over the given axes, stably.

    A drop-in for :func:`scipy.special.logsumexp` with the same signature,
    defaults and results, computed in one pass in C++.

    Parameters
    ----------
    a : array_like
        Input array. bool and integer input is computed in float64; float16
        in float32; float32 and float64 are kept. Complex input (complex64,
        complex128) follows scipy: the imaginary part is a phase, and the
        result ``z`` with ``exp(z) = sum(b * exp(a))`` has ``Im z`` in
        ``(-pi, pi]``.
    axis : None or int or tuple of ints, optional
        Axis or axes to reduce. ``None`` (default) reduces all axes.
    b : array_like, optional
        Weights for ``exp(a)``, broadcastable with `a`. They may be negative
        (subtraction). A zero weight masks its element completely.
    keepdims : bool, optional
        Keep the reduced axes as size-one dimensions.
    return_sign : bool, optional
        If True, return ``(log|s|, sign(s))``; otherwise a negative sum gives
        NaN. For complex input ``sign(s)`` is the phase ``s / |s|`` (complex)
        and ``log|s|`` is real.

    Returns
    -------
    res : ndarray or scalar
        The log of the (absolute) weighted sum of exponentials.
    sgn : ndarray or scalar
        Only if `return_sign`: +1, 0 or -1 (NaN where the result is NaN).

    Raises
    ------
    TypeError
        For object or string input, or a bad `axis` type.
    ValueError
        If `b` does not broadcast with `a`, or `axis` is out of range or
        repeated.

    Notes
    -----
    The sum is accumulated as ``e^m (W + S)`` with ``m`` the maximum, ``W``
    the total weight at the maximum and ``S`` the rest, and the result is
    ``m + log|W| + log1p(S/W)`` (the algorithm of scipy >= 1.15), so one
    dominant term does not swamp tiny ones.

    Departures from scipy, on purpose:

    * A zero weight masks its element even when that element is ``+inf`` or
      NaN and the slice result is otherwise infinite; scipy returns NaN in
      that corner (``logsumexp([inf, inf], b=[0, 1])`` is ``inf`` here).
    * float16 input is computed and returned in float32.
    * Complex sums are accumulated in complex128 also for complex64 input,
      and ``log1p`` of the complex remainder keeps a tiny real part that
      ``log(1 + z)`` would round away.

    With infinite or NaN terms the complex result is ``log(sum(b * exp(a)))``
    with the C99 edge cases of ``cexp`` / ``clog`` (as numpy's).

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import logsumexp
    >>> float(logsumexp(np.arange(10)))
    9.45862974442671
    >>> float(logsumexp([0.0, -40.0]))
    4.248354255291589e-18
    >>> logsumexp([1, 2], b=[1, -1], return_sign=True)
    (np.float64(1.5413248546129181), np.float64(-1.0))
    """
    a, b = numpy_view(a, "a"), numpy_view(b, "b")
    keepdims = check_bool(keepdims, "keepdims")
    return_sign = check_bool(return_sign, "return_sign")
    if _is_complex(a) or (b is not None and _is_complex(b)):
        return _logsumexp_complex(a, b, axis, keepdims, return_sign)
    a_arr = _real_array(a, "a")
    b_arr = None
    if b is not None:
        b_arr = _real_array(b, "b")
        b_in = b if np.isscalar(b) and not isinstance(b, np.generic) else b_arr
        dtype = result_float_dtype(np.result_type(a_arr.dtype, b_in))
    else:
        dtype = result_float_dtype(a_arr.dtype)
    a_arr, b_arr, axes, kept_shape, keep_shape = _lse_operands(a_arr, b_arr, dtype, axis)

    if a_arr.size == 0:
        out = np.full(kept_shape, -np.inf, dtype=dtype)
        sgn = np.sign(out)  # scipy: sign(-inf) = -1 for empty input
    else:
        b3 = None
        if b is None:
            v = _view3([a_arr], axes)
            a3 = v[0] if v is not None else _contiguous3(a_arr, axes)
        else:
            v = _view3([a_arr, b_arr], axes)
            if v is not None and _compatible_b(v[0], v[1]):
                a3, b3 = v
            else:
                a3 = _contiguous3(a_arr, axes)
                b3 = _contiguous3(b_arr, axes)
        if not _kernel_layout(a3):
            a3 = _contiguous3(a_arr, axes)
            if b3 is not None:
                b3 = _contiguous3(b_arr, axes)
        n_out = int(np.prod(kept_shape, dtype=object)) if kept_shape else 1
        check_output_size(n_out, a3.itemsize * (2 if return_sign else 1), "logsumexp output")
        out, sgn = _core.logsumexp(a3, b3, return_sign)
        out = _kept_order(out, a3, kept_shape)
        if return_sign:
            sgn = _kept_order(sgn, a3, kept_shape)
    return _lse_result(out, sgn, keep_shape, keepdims, return_sign)


def _lse_operands(a_arr, b_arr, dtype, axis):
    """a (and b) in `dtype`, at least 1-D, broadcast together; the reduced axes and the
    result's shapes (without / with the reduced axes kept)."""
    a_arr = a_arr.astype(dtype, copy=False)
    if a_arr.ndim == 0:
        a_arr = a_arr.reshape(1)
    if b_arr is not None:
        b_arr = b_arr.astype(dtype, copy=False)
        try:
            shape = np.broadcast_shapes(a_arr.shape, b_arr.shape)
        except ValueError:
            raise ValueError(
                f"b must broadcast with a: shapes {b_arr.shape} and {a_arr.shape} are incompatible"
            ) from None
        a_arr = np.broadcast_to(a_arr, shape)
        b_arr = np.broadcast_to(b_arr, shape)
    axes = check_axis(axis, a_arr.ndim)
    kept_shape = tuple(n for d, n in enumerate(a_arr.shape) if d not in axes)
    keep_shape = tuple(1 if d in axes else n for d, n in enumerate(a_arr.shape))
    return a_arr, b_arr, axes, kept_shape, keep_shape


def _lse_result(out, sgn, keep_shape, keepdims, return_sign):
    """keepdims and numpy's 0-d -> scalar convention, as scipy returns them."""
    if keepdims:
        out = out.reshape(keep_shape)
        if return_sign:
            sgn = sgn.reshape(keep_shape)
    out = out[()] if out.ndim == 0 else out
    if return_sign:
        sgn = sgn[()] if sgn.ndim == 0 else sgn
        return out, sgn
    return out


def _is_complex(x) -> bool:
    if isinstance(x, (complex, np.complexfloating)):
        return True
    dt = getattr(x, "dtype", None)
    if dt is None and isinstance(x, (list, tuple)):
        try:
            dt = np.asarray(x).dtype
        except (TypeError, ValueError):  # ragged etc.: the real path names the problem
            return False
    return dt is not None and np.dtype(dt).kind == "c"


def _complex_array(x, name):
    """x as a numpy array of a real or complex number kind, with maxlik's messages."""
    if not _is_complex(x):
        return _real_array(x, name)
    arr = np.asarray(x)
    if arr.dtype.kind != "c":  # pragma: no cover - _is_complex said complex
        raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}")
    return arr


def _logsumexp_complex(a, b, axis, keepdims, return_sign):
    """logsumexp for complex `a` or `b`: scipy's semantics (see logsumexp_complex.hpp)."""
    a_arr = _complex_array(a, "a")
    b_arr = None if b is None else _complex_array(b, "b")
    if b_arr is None:
        cdtype = np.result_type(a_arr.dtype, np.complex64)
    else:
        b_in = b if np.isscalar(b) and not isinstance(b, np.generic) else b_arr
        a_in = a if np.isscalar(a) and not isinstance(a, np.generic) else a_arr
        cdtype = np.result_type(a_in, b_in, np.complex64)
    if cdtype.kind != "c" or cdtype.itemsize > 16:  # complex256 / float128: computed in complex128
        cdtype = np.dtype(np.complex128)
    a_arr, b_arr, axes, kept_shape, keep_shape = _lse_operands(a_arr, b_arr, cdtype, axis)
    nd = a_arr.ndim
    real_dtype = np.finfo(cdtype).dtype
    if a_arr.size == 0:
        # scipy: -inf (complex) and, with return_sign, a NaN phase for an empty sum
        out = np.full(kept_shape, complex(-np.inf, 0.0), dtype=cdtype)
        sgn = np.full(kept_shape, complex(np.nan, np.nan), dtype=cdtype)
    else:
        k = len(axes)
        last = tuple(range(nd - k, nd))
        L = int(np.prod([a_arr.shape[d] for d in axes], dtype=np.int64))
        n_rows = a_arr.size // L
        check_output_size(a_arr.shape, a_arr.itemsize * (1 if b_arr is None else 2),
                          "contiguous complex copy of a (and b) for logsumexp")

        def rows(x):
            return np.ascontiguousarray(np.moveaxis(x, axes, last)).reshape(n_rows, L)

        out, sgn = _core.logsumexp_complex(rows(a_arr), None if b_arr is None else rows(b_arr),
                                           return_sign)
        out = out.reshape(kept_shape)
        if return_sign:
            out = out.real.astype(real_dtype)  # a copy, not a view into the complex result
            sgn = sgn.reshape(kept_shape)
    return _lse_result(out, sgn, keep_shape, keepdims, return_sign)


def _softmax_impl(x, axis, log: bool):
    x = numpy_view(x, "x")
    x_arr = _real_array(x, "x")
    x_arr = x_arr.astype(result_float_dtype(x_arr.dtype), copy=False)
    scalar = x_arr.ndim == 0
    if scalar:
        x_arr = x_arr.reshape(1)
    axes = check_axis(axis, x_arr.ndim)
    if x_arr.size == 0:
        out = np.empty(x_arr.shape, dtype=x_arr.dtype)
    else:
        # the output has the (possibly broadcast) input's shape; a strided input
        # may also need a contiguous copy
        contiguous = x_arr.flags.c_contiguous or x_arr.flags.f_contiguous
        check_output_size(x_arr.shape, x_arr.itemsize, f"{'log_' if log else ''}softmax output",
                          extra_bytes=0 if contiguous else x_arr.size * x_arr.itemsize)
        if not (x_arr.flags.c_contiguous or x_arr.flags.f_contiguous):
            x_arr = np.ascontiguousarray(x_arr)
        out = _buffers.empty_like(x_arr)  # reused memory when large (_buffers)
        v = _view3([x_arr, out], axes)
        if v is None or v[0].strides != v[1].strides or not _kernel_layout(v[0]):
            x_arr = np.ascontiguousarray(x_arr)
            out = _buffers.empty_like(x_arr)
            v = _view3([x_arr, out], axes)
            if v is None:  # reduced axes not adjacent: move them last
                nd, k = x_arr.ndim, len(axes)
                moved = np.ascontiguousarray(np.moveaxis(x_arr, axes, tuple(range(nd - k, nd))))
                res = _softmax_impl(moved, tuple(range(nd - k, nd)), log)
                return np.moveaxis(res, tuple(range(nd - k, nd)), axes)
        x3, o3 = v
        o3 = np.lib.stride_tricks.as_strided(out, shape=o3.shape, strides=o3.strides, writeable=True)
        _core.softmax(x3, o3, log)
    if scalar:
        return out.reshape(())[()]
    return out


def softmax(x: npt.ArrayLike, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Softmax ``exp(x) / sum(exp(x))`` along `axis`; a drop-in for scipy.special.softmax.

    Parameters
    ----------
    x : array_like
        Input array (bool/int -> float64, float16 -> float32).
    axis : None or int or tuple of ints, optional
        Axes that sum to one. Default None: the whole array.

    Returns
    -------
    ndarray
        Same shape as `x`.

    Raises
    ------
    TypeError
        Complex, object or string input.
    ValueError
        `axis` out of range or repeated.

    Notes
    -----
    Slices whose maximum is not finite (all ``-inf``, any ``+inf``, any NaN)
    give NaN everywhere in the slice, as in scipy. Empty input returns an
    empty array (scipy raises).

    Examples
    --------
    >>> from maxlik import softmax
    >>> softmax([1.0, 1.0, 1.0, 1.0]).tolist()
    [0.25, 0.25, 0.25, 0.25]
    """
    return _softmax_impl(x, axis, False)


def log_softmax(x: npt.ArrayLike, axis: int | tuple[int, ...] | None = None) -> np.ndarray:
    """``x - logsumexp(x)`` along `axis`; a drop-in for scipy.special.log_softmax.

    Parameters
    ----------
    x : array_like
        Input array (bool/int -> float64, float16 -> float32).
    axis : None or int or tuple of ints, optional
        Axes over which the exponentials sum to one. Default None.

    Returns
    -------
    ndarray or scalar
        Same shape as `x`.

    Raises
    ------
    TypeError
        Complex, object or string input.
    ValueError
        `axis` out of range or repeated.

    Notes
    -----
    Non-finite slices follow scipy: a non-finite maximum is replaced by 0 and
    the result is ``x - log(sum(exp(x)))`` (so an all ``-inf`` slice gives
    NaN, and ``[inf, 1]`` gives ``[nan, -inf]``).

    Examples
    --------
    >>> from maxlik import log_softmax
    >>> [round(v, 6) for v in log_softmax([0.0, 0.0]).tolist()]
    [-0.693147, -0.693147]
    """
    return _softmax_impl(x, axis, True)
