"""The one input-validation layer of maxlik.

Every public function and estimator converts and checks its inputs here, so
that every message has the same shape: it names the argument, says what was
expected and what came.

dtype policy (``as_float_array``):
  bool / integer  -> float64
  float16         -> float32
  float32/float64 -> kept
  longdouble      -> float64 (the kernels are float32/float64 only)
  object, complex, str, datetime, ... -> TypeError
"""
from __future__ import annotations

import math
import numbers
import operator
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = [
    "as_float_array",
    "result_float_dtype",
    "check_finite",
    "check_axis",
    "check_int",
    "check_float",
    "check_option",
    "check_bool",
    "check_sample_weight",
    "check_random_state",
    "check_same_dtype",
    "check_dense",
    "check_output_size",
    "FloatRangeError",
    "max_abs",
    "scale_exponent",
    "check_X",
    "check_X_layout",
    "check_n_features",
    "check_y",
    "check_weight_block",
    "complex_error",
    "all_zero_weights_error",
]


def _describe(x) -> str:
    if isinstance(x, np.ndarray):
        return f"array of dtype {x.dtype} and shape {x.shape}"
    return f"{type(x).__name__} {x!r}" if np.isscalar(x) else type(x).__name__


def result_float_dtype(dtype) -> np.dtype:
    """The float dtype maxlik computes in for an input of `dtype` (see module doc)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype.kind == "f":
        if dtype.itemsize <= 2:
            return np.dtype(np.float32)
        if dtype.itemsize == 4:
            return np.dtype(np.float32)
        return np.dtype(np.float64)
    raise TypeError(f"unsupported dtype {dtype}")


def as_float_array(
    x,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype=None,
    finite: bool = False,
    order: str | None = "C",
    min_rows: int = 0,
    copy: bool = False,
) -> np.ndarray:
    """Convert `x` to a float32/float64 numpy array, or raise naming `name`.

    Parameters
    ----------
    x : array_like
    name : str
        The argument's name, used in error messages.
    ndim : int or sequence of int, optional
        Allowed numbers of dimensions.
    dtype : {None, np.float32, np.float64}
        Force this dtype; by default the dtype policy of this module applies.
    finite : bool
        If True, NaN / inf raise ValueError naming the first bad row.
    order : {"C", None}
        "C" returns a C-contiguous array (copying when needed); None keeps
        the memory layout.
    min_rows : int
        Minimum size of the first axis.
    copy : bool
        Always return a fresh array.
    """
    if isinstance(x, (str, bytes)):
        raise TypeError(f"{name} must be a numeric array, got {_describe(x)}")
    if hasattr(x, "__array_namespace__") and not isinstance(x, np.ndarray):
        # dask / torch / cupy arrays: only numpy is handled here.
        mod = type(x).__module__.split(".")[0]
        if mod == "dask":
            raise TypeError(
                f"{name} is a dask array; this function needs a numpy array "
                "(call .compute() first, or use an estimator's dask support)"
            )
    try:
        arr = np.asarray(x)
    except Exception as exc:  # ragged lists, bad objects
        raise TypeError(f"{name} must be a numeric array, got {_describe(x)}: {exc}") from None
    kind = arr.dtype.kind
    if kind not in "biuf":
        what = {"c": "complex", "O": "object", "U": "string", "S": "bytes", "M": "datetime",
                "m": "timedelta", "V": "structured"}.get(kind, str(arr.dtype))
        raise TypeError(
            f"{name} must have a real numeric dtype (bool, int or float); got {what} dtype "
            f"{arr.dtype}"
        )
    target = np.dtype(dtype) if dtype is not None else result_float_dtype(arr.dtype)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            exp = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be {exp}; got a {arr.ndim}-D array of shape {arr.shape}")
    if min_rows and (arr.ndim == 0 or arr.shape[0] < min_rows):
        got = arr.shape[0] if arr.ndim else 0
        raise ValueError(f"{name} needs at least {min_rows} row(s); got {got} (shape {arr.shape})")
    source = arr
    if copy or arr.dtype != target or (order == "C" and not arr.flags.c_contiguous):
        # A conversion copy of a broadcast view (zero strides) can be far larger
        # than the memory behind the input: refuse it before allocating.
        check_output_size(arr.shape, target.itemsize, f"a {target} C-contiguous copy of {name}")
    if order == "C":
        # np.asarray keeps 0-d input 0-d (np.ascontiguousarray would make it 1-d)
        arr = np.asarray(arr, dtype=target, order="C")
    else:
        arr = arr.astype(target, copy=False)
    if copy and np.may_share_memory(arr, source):
        arr = arr.copy()
    if finite:
        check_finite(arr, name)
    return arr


def check_finite(arr: np.ndarray, name: str, row_offset: int = 0, allow_nan: bool = False
                 ) -> None:
    """Raise ValueError naming `name` and the first row holding NaN or inf.

    `row_offset` is added to the row reported (for blocks of a larger array).
    `allow_nan`: only infinities are errors (NaN marks a missing entry)."""
    if arr.size == 0:
        return
    # np.isfinite(arr.sum()) is one cheap pass; only on failure find the row.
    with np.errstate(all="ignore"):
        total = arr.sum(dtype=np.float64)
    if np.isfinite(total):
        return
    bad = np.isinf(arr) if allow_nan else ~np.isfinite(arr)
    if not bad.any():
        return  # the sum overflowed (or is NaN from allowed NaN) but nothing is bad
    if arr.ndim == 0:
        raise ValueError(f"{name} must be finite; got {arr[()]}")
    rows = bad.reshape(arr.shape[0], -1).any(axis=1)
    i = int(np.argmax(rows))
    what = "NaN" if not allow_nan and np.isnan(arr[i]).any() else "infinity"
    # "Input X contains NaN" is scikit-learn's wording (its tests match it)
    raise ValueError(
        f"Input {name} contains {what} (first at row {i + row_offset}); remove or impute such "
        "rows first"
    )


def check_axis(axis, ndim: int, name: str = "axis") -> tuple[int, ...]:
    """Normalise `axis` (None, int or tuple of int) to a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    items = axis if isinstance(axis, tuple) else (axis,)
    if isinstance(axis, list):
        raise TypeError(f"{name} must be None, an int or a tuple of ints; got a list {axis!r}")
    out = []
    for ax in items:
        if isinstance(ax, (bool, np.bool_)):
            raise TypeError(f"{name} must be None, an int or a tuple of ints; got {ax!r}")
        try:
            ax = operator.index(ax)
        except TypeError:
            raise TypeError(
                f"{name} must be None, an int or a tuple of ints; got {_describe(ax)}"
            ) from None
        if not -ndim <= ax < ndim:
            raise ValueError(
                f"{name}={ax} is out of range for an array with {ndim} dimension(s)"
            )
        out.append(ax % ndim if ndim else ax)
    if len(set(out)) != len(out):
        raise ValueError(f"{name} contains a repeated axis: {axis!r}")
    return tuple(sorted(out))


def check_int(value, name: str, *, min: int | None = None, max: int | None = None) -> int:
    """An integer argument (bools rejected) within [min, max]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer; got {_describe(value)}")
    value = int(value)
    if min is not None and value < min:
        raise ValueError(f"{name} must be >= {min}; got {value}")
    if max is not None and value > max:
        raise ValueError(f"{name} must be <= {max}; got {value}")
    return value


def check_float(
    value,
    name: str,
    *,
    min: float | None = None,
    max: float | None = None,
    min_inclusive: bool = True,
    max_inclusive: bool = True,
) -> float:
    """A real scalar argument (finite) within the given bounds."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number; got {_describe(value)}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite; got {value}")
    if min is not None and (value < min or (not min_inclusive and value == min)):
        op = ">=" if min_inclusive else ">"
        raise ValueError(f"{name} must be {op} {min}; got {value}")
    if max is not None and (value > max or (not max_inclusive and value == max)):
        op = "<=" if max_inclusive else "<"
        raise ValueError(f"{name} must be {op} {max}; got {value}")
    return value


def check_option(value, name: str, options: Iterable[str]):
    """One of a fixed set of string options."""
    options = tuple(options)
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")
    return value


def check_bool(value, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {_describe(value)}")
    return bool(value)


def check_sample_weight(sample_weight, n_samples: int, dtype=np.float64,
                        name: str = "sample_weight") -> np.ndarray:
    """Per-row non-negative finite weights; None gives ones.

    Raises ValueError for a wrong length, negative / non-finite weights, or
    weights that sum to zero.
    """
    if sample_weight is None:
        return np.ones(n_samples, dtype=dtype)
    if np.isscalar(sample_weight) and not isinstance(sample_weight, (str, bytes)):
        w = np.full(n_samples, float(sample_weight), dtype=dtype)
    else:
        w = as_float_array(sample_weight, name, ndim=1, dtype=dtype)
    if w.shape[0] != n_samples:
        raise ValueError(f"{name} must have shape ({n_samples},) to match X; got shape {w.shape}")
    check_finite(w, name)
    if np.any(w < 0):
        i = int(np.argmax(w < 0))
        raise ValueError(f"{name} must be non-negative; got {w[i]} at index {i}")
    if n_samples and not np.any(w > 0):
        raise all_zero_weights_error(name)
    return w


def check_random_state(seed) -> np.random.RandomState:
    """None / int / RandomState / Generator -> a RandomState (scikit-learn convention)."""
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, (numbers.Integral, np.integer)) and not isinstance(seed, bool):
        return np.random.RandomState(int(seed))
    if isinstance(seed, np.random.RandomState):
        return seed
    if isinstance(seed, np.random.Generator):
        return np.random.RandomState(seed.integers(0, 2**31 - 1))
    raise TypeError(
        f"random_state must be None, an int, a numpy RandomState or Generator; got {_describe(seed)}"
    )


def check_same_dtype(*arrays: np.ndarray) -> np.dtype:
    """The common float dtype (float64 if any is float64), for kernels that need one."""
    dt = np.result_type(*[a.dtype for a in arrays])
    return np.dtype(np.float64) if dt != np.float32 else np.dtype(np.float32)


# ---- sparse input --------------------------------------------------------------------
def check_dense(x, name: str) -> None:
    """Reject scipy.sparse inputs with a message that says what to do.

    Without this, np.asarray(sparse) gives a 0-d object array and a confusing
    dtype error.
    """
    mod = type(x).__module__ or ""
    if mod.startswith("scipy.sparse") or (hasattr(x, "tocsr") and hasattr(x, "nnz")):
        raise TypeError(
            f"{name} is a scipy sparse {type(x).__name__}; sparse input is not supported, "
            f"pass a dense array ({name}.toarray())"
        )


# ---- memory guards before big allocations ---------------------------------------------
def _memory_limit_bytes() -> int | None:
    """The most memory one process could ever get: physical RAM, or a lower RLIMIT_AS."""
    limit = None
    try:
        import os

        limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # pragma: no cover - non-POSIX
        limit = None
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft not in (resource.RLIM_INFINITY, -1) and soft > 0:
            limit = soft if limit is None else min(limit, soft)
    except (ImportError, ValueError, OSError):  # pragma: no cover - non-POSIX
        pass
    return limit


def check_output_size(n_elements, itemsize: int, name: str, extra_bytes=0) -> None:
    """Raise MemoryError if an array of `n_elements` items can never fit in memory.

    Call it before allocating an output or a temporary whose size is a
    product of input sizes (N x K log-densities, a broadcast shape, K x D^2
    statistics per thread, n_categories, ...). Sizes are Python ints, so the
    product cannot overflow. Without the check, a request that numpy's
    allocator does not refuse (Linux overcommit) is killed by the OOM killer
    when the kernel first writes to it, instead of raising.

    Parameters
    ----------
    n_elements : int or tuple of int
        Number of elements, or the shape of the array.
    itemsize : int
        Bytes per element.
    name : str
        What is being allocated, for the message.
    extra_bytes : int or float, optional
        Further bytes the same call allocates besides this array (scratch
        buffers, other outputs); counted in the total and named in the message.

    Raises
    ------
    MemoryError
        If the request exceeds the physical memory of the machine (or the
        process's address-space limit).
    """
    shape = None
    if isinstance(n_elements, tuple):
        shape = tuple(int(s) for s in n_elements)
        n = 1
        for s in shape:
            n *= s
    else:
        n = int(n_elements)
    extra = int(math.ceil(extra_bytes)) if extra_bytes else 0
    nbytes = n * int(itemsize) + extra
    limit = _memory_limit_bytes()
    # An array larger than the address space numpy can index is never possible.
    hard = np.iinfo(np.intp).max
    if nbytes > hard or (limit is not None and nbytes > limit):
        what = f"{name} of shape {shape}" if shape is not None else f"{name} ({n} elements)"
        if extra:
            what += f" plus {extra} bytes of scratch memory"
        avail = f"{limit} bytes of memory" if limit is not None else "the address space"
        raise MemoryError(
            f"{what} would need {nbytes} bytes, more than the {avail} this process can use; "
            "reduce the problem size (fewer rows / components, or process the rows in blocks)"
        )


# ---- data near the float limits --------------------------------------------------------
# Largest magnitudes outside [2**lo, 2**hi] are "extreme" for a dtype: squares (and
# sums of squares) of such data overflow or underflow. Estimators that can work in
# the coordinates x * 2**-e (a power of two: exact) do so with max |x| 2**-e in
# [1, 2); |e| is capped so that 2**-e itself is representable in the dtype.
_SAFE_RANGE = {np.dtype(np.float64): (-400, 400, 1000), np.dtype(np.float32): (-30, 40, 100)}


class FloatRangeError(ValueError):
    """A result of finite input that float64 (or float32) cannot represent.

    A ValueError, so callers see the usual type; estimators that use another
    estimator internally (the mixture's k-means initialisation) catch it to
    report the problem in their own terms."""


def max_abs(*arrays, axis=None):
    """Largest magnitude over `arrays` (or per column with axis=0), without an |x| temporary."""
    out = 0.0 if axis is None else None
    for a in arrays:
        if a.size == 0:
            continue
        m = np.maximum(np.abs(np.max(a, axis=axis)), np.abs(np.min(a, axis=axis)))
        m = m.astype(np.float64)
        out = m if out is None else np.maximum(out, m)
    return float(out) if axis is None else out


def scale_exponent(amax, dtype=np.float64):
    """The e of the rescaling x -> x * 2**-e for data of largest magnitude `amax`.

    0 for data of ordinary range (or all zero), so that callers change nothing
    for them; `amax` may be an array (one exponent per column).
    """
    lo, hi, cap = _SAFE_RANGE[np.dtype(dtype)]
    a = np.asarray(amax, dtype=np.float64)
    e = np.clip(np.frexp(a)[1].astype(np.int64) - 1, -cap, cap)
    e = np.where((a == 0) | ((a >= 2.0**lo) & (a <= 2.0**hi)) | ~np.isfinite(a), 0, e)
    return int(e) if e.ndim == 0 else e


# ---- the estimators' data checks (X, y, sample_weight) -----------------------------
# Every estimator and every data source (in-memory, out-of-core, Dask) goes through
# these, so one bad input gets one exception type and one message everywhere.
# Where scikit-learn has a convention its wording is used (complex X: ValueError,
# as check_estimator's check_complex_data expects; "Found array with 0 sample(s)").

def complex_error(dtype, name: str = "X") -> ValueError:
    return ValueError(f"Complex data not supported: {name} has dtype {dtype}; {name} must be "
                      "real (take .real or np.abs first)")


def check_X_layout(shape, dtype, name: str = "X", *, min_samples: int = 1) -> None:
    """The checks of :func:`check_X` that need only the shape and dtype.

    Used as is by the sources whose rows are not in memory (np.memmap, HDF5,
    zarr, Dask), which check finiteness block by block on their first pass.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise complex_error(dtype, name)
    if dtype.kind not in "biuf":
        what = {"O": "object", "U": "string", "S": "bytes", "M": "datetime",
                "m": "timedelta", "V": "structured"}.get(dtype.kind, str(dtype))
        raise TypeError(f"{name} must have a real numeric dtype (bool, int or float); got {what} "
                        f"dtype {dtype}")
    shape = tuple(shape)
    if len(shape) == 1:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got a 1-D array of shape "
                         f"{shape}. Reshape your data with {name}.reshape(-1, 1) if it has a "
                         f"single feature or {name}.reshape(1, -1) if it is a single sample.")
    if len(shape) != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got a {len(shape)}-D "
                         f"array of shape {shape}")
    if shape[0] < min_samples:
        raise ValueError(f"Found array with {shape[0]} sample(s) (shape={shape}) while a "
                         f"minimum of {min_samples} is required: {name} needs at least "
                         f"{min_samples} row(s).")
    if shape[1] < 1:
        raise ValueError(f"Found array with 0 feature(s) (shape={shape}) while a minimum of 1 "
                         f"is required: {name} needs at least 1 column.")


def check_X(X, name: str = "X", *, dtype=None, min_samples: int = 1, finite: bool = True
            ) -> np.ndarray:
    """The estimators' X: a C-contiguous float32/float64 (N, D) ndarray, or an exception.

    Raises
    ------
    TypeError
        Sparse input (with what to do), None, non-numeric data.
    ValueError
        Complex data (scikit-learn's convention), ragged lists, not 2-D,
        fewer than `min_samples` rows or no column, NaN / infinity (naming
        the first bad row).
    """
    check_dense(X, name)
    if X is None:
        raise TypeError(f"{name} must be an array of shape (n_samples, n_features); got None")
    if getattr(X, "dtype", None) is not None and np.dtype(X.dtype).kind == "c":
        raise complex_error(X.dtype, name)
    try:
        arr = np.asarray(X)
        if arr.dtype.kind == "O":
            arr = arr.astype(np.float64)  # numbers stored as objects; anything else raises
    except (TypeError, ValueError) as exc:  # ragged lists, non-numbers: name the argument
        raise type(exc)(f"{name} must be a numeric array of shape (n_samples, n_features): "
                        f"{exc}") from None
    if arr.dtype.kind in "US":
        raise TypeError(f"{name} must be a numeric array of shape (n_samples, n_features); got "
                        f"{_describe(X)}")
    check_X_layout(arr.shape, arr.dtype, name, min_samples=min_samples)
    return as_float_array(arr, name, dtype=dtype, finite=finite)


def check_n_features(estimator, n_features: int, reset: bool) -> None:
    """Set (reset) or check ``estimator.n_features_in_`` against X's columns."""
    if reset:
        estimator.n_features_in_ = int(n_features)
    elif n_features != estimator.n_features_in_:
        raise ValueError(f"X has {n_features} features, but {type(estimator).__name__} is "
                         f"expecting {estimator.n_features_in_} features as input.")


def check_y(y, n_samples: int, *, allow_2d: bool, estimator_name: str,
            stacklevel: int = 4) -> np.ndarray:
    """Targets with one row per sample of X (a column vector warns and is flattened).

    `stacklevel` of that warning: 4 names the caller of an estimator's fit
    that calls check_y directly (check_y <- fit <- its wrapper <- caller)."""
    if y is None:
        raise ValueError(f"{estimator_name} requires y to be passed, but the target y is None")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1 and not allow_2d:
        import warnings

        from . import exceptions

        warnings.warn(exceptions.DataConversionWarning(
            "A column-vector y was passed when a 1d array was expected. Please change the "
            "shape of y to (n_samples,), for example using ravel()."), stacklevel=stacklevel)
        y = y.ravel()
    if y.ndim not in ((1, 2) if allow_2d else (1,)):
        raise ValueError(f"y must be 1-D{' or 2-D' if allow_2d else ''}; got shape {y.shape}")
    if y.shape[0] != n_samples:
        raise ValueError("Found input variables with inconsistent numbers of samples: X has "
                         f"{n_samples}, y has {y.shape[0]}")
    return y


def check_weight_block(w, name: str = "sample_weight", where: str = "") -> None:
    """Finite and non-negative weights of one block of rows (sources' per-block check)."""
    w = np.asarray(w)
    if w.size and not np.all(np.isfinite(w)):
        i = int(np.argmax(~np.isfinite(w)))
        what = "NaN" if np.isnan(w[i]) else "infinity"
        raise ValueError(f"{name} contains {what} (first at row {i}{where})")
    if np.any(w < 0):
        i = int(np.argmax(w < 0))
        raise ValueError(f"{name} must be non-negative; got {w[i]} at index {i}{where}")


def all_zero_weights_error(name: str = "sample_weight") -> ValueError:
    return ValueError(f"{name} must have at least one positive weight; all weights are zero")
