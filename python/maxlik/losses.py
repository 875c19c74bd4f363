"""Losses with fused gradients: the negative log-likelihoods of the usual models.

Fitting a classifier by maximum likelihood minimises the cross-entropy between
the labels and the model's class probabilities (``softmax_cross_entropy``,
``binary_cross_entropy_with_logits``); fitting a regression under Gaussian
noise minimises the Gaussian negative log-likelihood (``gaussian_nll``), which
for a fixed variance is least squares (``mse``).

Every function follows the semantics of its ``torch.nn.functional``
counterpart and can return the gradient computed in the same pass
(``return_grad=True``), optionally into a buffer the caller owns
(``grad_out=``). The kernels are C++, threaded over fixed row blocks (results
do not depend on the thread count) and release the GIL.

``grad_out`` is written all-or-nothing: the kernel fills a private buffer that
is copied into the caller's array only when the whole call has succeeded, so a
call interrupted by Ctrl-C (the kernels stop between row blocks) or failing
part-way (a bad target row found mid-pass, MemoryError) leaves ``grad_out``
bit-identical to before. This costs one extra gradient-sized buffer and copy
per call; a fresh gradient (``return_grad=True`` alone) is written in place.

Infinite logits give the limits of the loss and its gradient (a loss of
``+inf`` where the model gives probability 0 to an observed outcome, finite
gradients everywhere); NaN appears only where an input is NaN. See the Notes
of each function.
"""
from __future__ import annotations

import math

from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from . import _buffers, _core
from ._tensors import numpy_view
from ._validation import (
    as_float_array,
    check_bool,
    check_float,
    check_int,
    check_option,
    check_output_size,
)

__all__ = [
    "softmax_cross_entropy",
    "binary_cross_entropy_with_logits",
    "gaussian_nll",
    "mse",
    "vae_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _stage(grad_out, g):
    """The kernels' `stage` argument: a caller's grad_out is written all-or-nothing
    through a private buffer (reused memory when large, _buffers); a fresh `g`
    is written in place."""
    if grad_out is None or g is None:
        return False
    return _buffers.empty(g.size, g.dtype)


def _grad_buffer(grad_out, shape, dtype, name="grad_out"):
    """A fresh gradient array (reused memory when large: _buffers), or the caller's
    buffer after checking it."""
    if grad_out is None:
        return _buffers.empty(shape, dtype)
    if not isinstance(grad_out, np.ndarray):
        raise TypeError(f"{name} must be a numpy array; got {type(grad_out).__name__}")
    if grad_out.dtype != dtype or grad_out.shape != tuple(shape):
        raise ValueError(
            f"{name} must have dtype {np.dtype(dtype)} and shape {tuple(shape)}; got dtype "
            f"{grad_out.dtype} and shape {grad_out.shape}"
        )
    if not grad_out.flags.c_contiguous or not grad_out.flags.writeable:
        raise ValueError(f"{name} must be a writeable C-contiguous array")
    return grad_out


def _scalar(value, dtype):
    return dtype.type(value)


def _check_outputs(n, dtype, func, *, per_element=0, grad=False, rows=0):
    """MemoryError before the kernel runs if its outputs cannot fit: `per_element`
    arrays of `n` values (the elementwise losses of reduction="none"), the
    gradient (n values; a caller's grad_out costs the same again, for the
    all-or-nothing staging buffer) and `rows` further values."""
    k = per_element + (1 if grad else 0)
    if k or rows:
        check_output_size(n, np.dtype(dtype).itemsize * k,
                          f"{func} outputs ({k} array(s) of the input's size: per-element "
                          "losses of reduction='none', gradients, broadcast copies)",
                          extra_bytes=rows * np.dtype(dtype).itemsize)


def softmax_cross_entropy(logits: npt.ArrayLike, target: npt.ArrayLike, *, weight: npt.ArrayLike | None = None,
                          ignore_index: int = -100, label_smoothing: float = 0.0,
                          reduction: Literal["mean", "sum", "none"] = "mean", return_grad: bool = False,
                          grad_out: np.ndarray | None = None) -> Any:
    r"""Cross-entropy between targets and ``softmax(logits)``, with its gradient.

    The same function as ``torch.nn.functional.cross_entropy`` for 2-D input:
    the negative log-likelihood of a categorical model whose log-probabilities
    are ``log_softmax(logits)``.

    Parameters
    ----------
    logits : array_like, shape (N, C), (C,) or (N, C, d1, ..., dk)
        Unnormalised log-probabilities, classes along axis 1 (torch's
        layouts; the unbatched and K-dimensional ones are moved to (rows, C)
        by a copy). float32 is kept, other dtypes follow maxlik's dtype
        policy (integers -> float64).
    target : array_like
        Either integer class indices of shape (N,) (or (), (N, d1, ..., dk))
        in ``[0, C)`` or equal to `ignore_index`, or class probabilities of
        the shape of `logits` (a float array; non-negative, summing to 1
        over the classes).
    weight : array_like, shape (C,), optional
        A weight per class (torch's ``weight``).
    ignore_index : int, default -100
        Index targets equal to this contribute neither loss nor gradient, and
        are left out of the 'mean' denominator. Not used with probability
        targets.
    label_smoothing : float in [0, 1], default 0
        Mixes the target with the uniform distribution:
        ``(1 - label_smoothing) * target + label_smoothing / C``.
    reduction : {"mean", "sum", "none"}
        ``"none"``: the loss of each row, shape (N,). ``"sum"``: their sum.
        ``"mean"``: for index targets the sum divided by the total weight
        ``sum_i weight[target_i]`` of the non-ignored rows (torch semantics;
        NaN if every row is ignored); for probability targets the sum
        divided by N.
    return_grad : bool, default False
        Also return the gradient of the (reduced) loss with respect to
        `logits`. For ``reduction="none"`` it is the gradient of the sum of
        the row losses (row i holds the gradient of loss i).
    grad_out : ndarray, optional
        A C-contiguous array of the dtype and shape of `logits` to write the
        gradient into. Implies ``return_grad=True``. Written all-or-nothing
        (see the module documentation): an interrupted or failing call leaves
        it unchanged.

    Returns
    -------
    loss : float32/float64 scalar, or ndarray of shape (N,) for "none"
    grad : ndarray, shape (N, C)
        Only with `return_grad` or `grad_out`.

    Raises
    ------
    ValueError
        A label outside ``[0, C)`` that is not `ignore_index`; probability
        targets with a negative entry or a row not summing to 1 (tolerance
        1e-4 in float32, ``1e-6 * max(1, C / 10)`` in float64, so that
        probabilities computed in float32 pass); mismatched shapes.
    TypeError
        Non-numeric input.
    MemoryError
        If the gradient (N, C) (or the per-row losses) cannot fit in memory;
        raised before allocating.

    Notes
    -----
    One pass per row computes the maximum, the sum of exponentials, the loss
    and the gradient ``A * softmax(z) - a`` (``a`` the per-class target
    coefficients, ``A`` their sum).

    Edge cases, compared with torch:

    - A NaN logit makes that row's loss NaN and its whole gradient row NaN
      (as torch). Other rows are unaffected, and the reduced loss is then NaN.
    - A row holding ``+inf`` logits (and no NaN) gives the limit of those
      logits growing together: softmax tends to the uniform distribution over
      the m ``+inf`` classes M, so the loss is ``sum_{c in M} a_c log m`` if
      every class outside M has zero coefficient ``a_c``, else ``+inf``, and
      the gradient is ``A [c in M] / m - a_c`` (finite; ``softmax - target``
      for plain index targets). So ``+inf`` at the target alone gives loss 0
      and gradient 0, two ``+inf`` with the target among them ``log 2``, and
      ``+inf`` elsewhere (or any label smoothing) an infinite loss. torch
      returns NaN for every such row.
    - A row whose logits are all ``-inf`` is treated as the limit of equal
      logits (softmax is shift invariant): probabilities ``1/C``, loss
      ``A * log(C)`` (``log C`` without weights or smoothing), finite
      gradient. torch returns NaN loss and NaN gradient for such a row.
    - A ``-inf`` logit whose class has zero target coefficient (zero class
      weight, or zero target probability) contributes nothing (``0 log 0 =
      0``); torch gives NaN there. A ``-inf`` logit at the target class
      gives an infinite loss and a finite gradient, as torch.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import softmax_cross_entropy
    >>> z = np.array([[2.0, 0.5, -1.0], [0.0, 0.0, 0.0]])
    >>> y = np.array([0, 2])
    >>> loss, grad = softmax_cross_entropy(z, y, return_grad=True)
    >>> round(float(loss), 6)
    0.669962
    >>> np.allclose(grad.sum(axis=1), 0)
    True
    """
    logits = numpy_view(logits, "logits")
    target = numpy_view(target, "target")
    weight = numpy_view(weight, "weight")
    grad_out = numpy_view(grad_out, "grad_out")
    z = as_float_array(logits, "logits")
    if np.ndim(logits) == 0:  # as_float_array (ascontiguousarray) turns 0-d into 1-d
        raise ValueError("logits must have a class axis: (C,), (N, C) or (N, C, d1, ...); "
                         "got a scalar")
    if z.ndim != 2:
        return _softmax_ce_nd(z, target, weight=weight, ignore_index=ignore_index,
                              label_smoothing=label_smoothing, reduction=reduction,
                              return_grad=return_grad, grad_out=grad_out)
    N, C = z.shape
    if C < 1:
        raise ValueError(f"logits must have at least one class column; got shape {z.shape}")
    reduction = check_option(reduction, "reduction", _REDUCTIONS)
    return_grad = check_bool(return_grad, "return_grad") or grad_out is not None
    eps = check_float(label_smoothing, "label_smoothing", min=0.0, max=1.0)
    ignore_index = check_int(ignore_index, "ignore_index")
    dtype = z.dtype
    w = None
    if weight is not None:
        w = as_float_array(weight, "weight", ndim=1, dtype=dtype, finite=True)
        if w.shape[0] != C:
            raise ValueError(f"weight must have shape ({C},) (one per class); got {w.shape}")
    t = np.asarray(target)
    if t.dtype.kind in "iu":
        if t.shape != (N,):
            raise ValueError(
                f"target holding class indices must have shape ({N},) to match logits "
                f"{z.shape}; got shape {t.shape}"
            )
        t = np.ascontiguousarray(t, dtype=np.int64)
        prob = False
    elif t.dtype.kind == "f":
        if t.shape != (N, C):
            raise ValueError(
                f"target must be integer class indices of shape ({N},) or class probabilities "
                f"of shape {(N, C)}; got a float array of shape {t.shape}"
            )
        t = as_float_array(t, "target", dtype=dtype)
        prob = True
    else:
        raise TypeError(
            f"target must be integer class indices or float class probabilities; got dtype {t.dtype}"
        )
    mean = reduction == "mean"
    rows = reduction == "none"
    _check_outputs(N * C, dtype, "softmax_cross_entropy", grad=return_grad, rows=N if rows else 0)
    g = _grad_buffer(grad_out, (N, C), dtype) if return_grad else None
    if prob:
        total, denom, row_loss = _core._softmax_ce_prob(z, t, w, eps, mean, rows, g,
                                                        _stage(grad_out, g))
    else:
        total, denom, row_loss = _core._softmax_ce_index(z, t, w, None, ignore_index, eps, mean,
                                                         rows, g, _stage(grad_out, g))
    if rows:
        loss = row_loss
    elif mean:
        loss = _scalar(total / denom if denom != 0 else math.nan, dtype)
    else:
        loss = _scalar(total, dtype)
    return (loss, g) if return_grad else loss


def _softmax_ce_nd(z, target, *, grad_out, return_grad, reduction, **kw):
    """torch's other layouts: unbatched (C,) and K-dimensional (N, C, d1, ..., dk).

    Moved to the (rows, C) layout of the kernel (a copy), then back.
    """
    if z.ndim == 0:
        raise ValueError("logits must have a class axis: (C,), (N, C) or (N, C, d1, ...); got a 0-d array")
    t = np.asarray(target)
    is_prob = t.dtype.kind == "f"
    if z.ndim == 1:
        C = z.shape[0]
        if is_prob:
            if t.shape != (C,):
                raise ValueError(f"target must have shape ({C},) for unbatched logits; got {t.shape}")
            t2 = t[None, :]
        else:
            if t.ndim != 0:
                raise ValueError(
                    f"target must be one class index for unbatched logits of shape ({C},); got "
                    f"shape {t.shape}")
            t2 = t.reshape(1)
        want = bool(return_grad) or grad_out is not None
        res = softmax_cross_entropy(z[None, :], t2, reduction=reduction, return_grad=want, **kw)
        loss, g = (res if want else (res, None))
        if reduction == "none":
            loss = loss[0]
        if g is None:
            return loss
        g = g[0]
    else:
        N, C = z.shape[:2]
        spatial = z.shape[2:]
        z2 = np.moveaxis(z, 1, -1).reshape(-1, C)
        if is_prob:
            if t.shape != z.shape:
                raise ValueError(
                    f"target holding class probabilities must have the shape of logits {z.shape}; "
                    f"got {t.shape}")
            t2 = np.moveaxis(t, 1, -1).reshape(-1, C)
        else:
            if t.shape != (N,) + spatial:
                raise ValueError(
                    f"target holding class indices must have shape {(N,) + spatial} for logits "
                    f"of shape {z.shape}; got {t.shape}")
            t2 = t.reshape(-1)
        res = softmax_cross_entropy(z2, t2, reduction=reduction, return_grad=return_grad or
                                    grad_out is not None, **kw)
        loss, g = (res if (return_grad or grad_out is not None) else (res, None))
        if reduction == "none":
            loss = loss.reshape((N,) + spatial)
        if g is None:
            return loss
        g = np.moveaxis(g.reshape((N,) + spatial + (C,)), -1, 1)
    if grad_out is not None:
        out = _grad_buffer(grad_out, z.shape, z.dtype)
        out[...] = g
        g = out
    else:
        g = np.ascontiguousarray(g)
    return loss, g


def _broadcast_full(a, shape, name, dtype):
    """`a` broadcast to `shape` as a C-contiguous array, or a ValueError naming `name`."""
    a = as_float_array(a, name, dtype=dtype, order=None)
    try:
        b = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {a.shape} cannot be broadcast to the logits' shape {shape}"
        ) from None
    if not b.flags.c_contiguous:
        check_output_size(shape, b.itemsize, f"{name} broadcast to the logits' shape")
    return np.ascontiguousarray(b)


def binary_cross_entropy_with_logits(logits: npt.ArrayLike, target: npt.ArrayLike, *, weight: npt.ArrayLike | None = None,
                                     pos_weight: npt.ArrayLike | None = None, reduction: Literal["mean", "sum", "none"] = "mean",
                                     return_grad: bool = False,
                                     grad_out: np.ndarray | None = None) -> Any:
    r"""Binary cross-entropy of ``sigmoid(logits)`` against `target`, with its gradient.

    The same function as ``torch.nn.functional.binary_cross_entropy_with_logits``:
    elementwise

    .. math:: \ell = -w\,[\,p\,t \log \sigma(x) + (1 - t) \log(1 - \sigma(x))\,],

    with ``p = pos_weight``, computed without cancellation as
    ``w [(1 - t) max(x, 0) + p t max(-x, 0) + (1 - t + p t) log1p(exp(-|x|))]``,
    which is exact for any finite logit. The gradient is
    ``w [(1 - t + p t) sigmoid(x) - p t]``.

    Parameters
    ----------
    logits : array_like
        Any shape.
    target : array_like
        Same shape as `logits`; usually in [0, 1] (not checked, as torch).
    weight : array_like, optional
        Broadcastable to `logits`; multiplies each element's loss.
    pos_weight : array_like, optional
        Broadcastable to `logits` (typically shape (C,) for the last axis);
        weight of the positive term.
    reduction : {"mean", "sum", "none"}
        "mean" divides the sum by the number of elements.
    return_grad : bool
        Also return the gradient with respect to `logits`.
    grad_out : ndarray, optional
        Buffer of the logits' dtype and shape for the gradient (implies
        `return_grad`); written all-or-nothing (see the module documentation).

    Returns
    -------
    loss : scalar, or ndarray of the logits' shape for "none"
    grad : ndarray of the logits' shape (only with `return_grad`)

    Raises
    ------
    ValueError
        `target` not of the logits' shape; weights not broadcastable.
    MemoryError
        If the outputs (losses of "none", gradient, broadcast copies of the
        weights) cannot fit in memory; raised before allocating.

    Notes
    -----
    Infinite logits give the limits (torch gives NaN for several of them,
    torch issue #135359). A term whose coefficient is zero is absent, so
    that ``0 * inf`` never arises:

    =========  ==========================================  =================
    logit x    loss                                        gradient
    =========  ==========================================  =================
    ``+inf``   ``+inf`` if ``w (1 - t) > 0``, else 0       ``w (1 - t)``
    ``-inf``   ``+inf`` if ``w p t > 0``, else 0           ``-w p t``
    =========  ==========================================  =================

    so ``x = +inf, t = 1`` gives loss 0 and gradient 0, ``x = -inf, t = 1``
    and ``x = +inf, t = 0`` an infinite loss with gradient -p and 1, and a
    fractional target an infinite loss at either end. A zero `weight`
    masks its element (loss and gradient 0) even where the loss would be
    infinite. NaN logits, targets or weights give NaN loss and gradient in
    those elements; no other input gives NaN (infinite weights aside).

    Examples
    --------
    >>> from maxlik import binary_cross_entropy_with_logits
    >>> round(float(binary_cross_entropy_with_logits([0.0, 2.0], [1.0, 0.0])), 6)
    1.410038
    """
    logits = numpy_view(logits, "logits")
    target = numpy_view(target, "target")
    weight = numpy_view(weight, "weight")
    pos_weight = numpy_view(pos_weight, "pos_weight")
    grad_out = numpy_view(grad_out, "grad_out")
    x = as_float_array(logits, "logits")
    dtype = x.dtype
    t = as_float_array(target, "target", dtype=dtype)
    if t.shape != x.shape:
        raise ValueError(
            f"target must have the shape of logits {x.shape}; got shape {t.shape}"
        )
    reduction = check_option(reduction, "reduction", _REDUCTIONS)
    return_grad = check_bool(return_grad, "return_grad") or grad_out is not None
    w = None if weight is None else _broadcast_full(weight, x.shape, "weight", dtype)
    pw = None if pos_weight is None else _broadcast_full(pos_weight, x.shape, "pos_weight", dtype)
    n = x.size
    mean = reduction == "mean"
    scale = 1.0 / n if (mean and n) else 1.0
    _check_outputs(n, dtype, "binary_cross_entropy_with_logits",
                   per_element=int(reduction == "none"), grad=return_grad)
    g = _grad_buffer(grad_out, x.shape, dtype) if return_grad else None
    total, elems = _core._bce_with_logits(x, t, w, pw, scale, reduction == "none", g,
                                          _stage(grad_out, g))
    if reduction == "none":
        loss = elems.reshape(x.shape)
    elif mean:
        loss = _scalar(total / n if n else math.nan, dtype)
    else:
        loss = _scalar(total, dtype)
    return (loss, g) if return_grad else loss


def gaussian_nll(mean: npt.ArrayLike, target: npt.ArrayLike, var: npt.ArrayLike, *, full: bool = False, eps: float = 1e-6,
                 reduction: Literal["mean", "sum", "none"] = "mean", return_grad: bool = False) -> Any:
    r"""Gaussian negative log-likelihood, with gradients for the mean and the variance.

    The same function as ``torch.nn.functional.gaussian_nll_loss``:

    .. math:: \ell = \tfrac12\left(\log v + \frac{(\mu - y)^2}{v}\right)
              \;[+\ \tfrac12 \log 2\pi \text{ if full}],\qquad v = \max(\mathrm{var}, \epsilon).

    Parameters
    ----------
    mean : array_like
        Predicted means (torch's ``input``).
    target : array_like
        Observations, same shape as `mean`.
    var : array_like or float
        Predicted variances, non-negative. Shapes as torch: the shape of
        `mean`; or the shape of `mean` without its last axis, or with the
        last axis of size 1 (one variance per row, "homoscedastic"); or the
        shape of `mean` with exactly one other axis of size 1; or a scalar.
    full : bool, default False
        Add the constant ``0.5 * log(2 pi)``.
    eps : float, default 1e-6
        Variances below `eps` are clamped to `eps` for stability. As in
        torch (which clamps in place under ``no_grad``), the gradient with
        respect to `var` is then the derivative evaluated at ``eps``; it is
        not zeroed.
    reduction : {"mean", "sum", "none"}
        "mean" divides by the number of elements of `mean`.
    return_grad : bool
        Also return the gradients with respect to `mean` and `var` (the
        latter has the shape of `var`: broadcast axes are summed).

    Returns
    -------
    loss : scalar, or ndarray of the shape of `mean` for "none"
    grad_mean, grad_var : ndarray (only with `return_grad`)

    Raises
    ------
    ValueError
        A negative variance; `target` not of the shape of `mean`; `var` of
        a shape not listed above.

    Examples
    --------
    >>> from maxlik import gaussian_nll
    >>> round(float(gaussian_nll([0.0, 1.0], [0.5, 1.0], [1.0, 2.0])), 6)
    0.235787
    """
    mean = numpy_view(mean, "mean")
    target = numpy_view(target, "target")
    var = numpy_view(var, "var")
    mu = as_float_array(mean, "mean")
    dtype = mu.dtype
    t = as_float_array(target, "target", dtype=dtype)
    if t.shape != mu.shape:
        raise ValueError(f"target must have the shape of mean {mu.shape}; got shape {t.shape}")
    v = as_float_array(var, "var", dtype=dtype, order=None)  # keeps a 0-d var 0-d
    full = check_bool(full, "full")
    eps = check_float(eps, "eps", min=0.0)
    reduction = check_option(reduction, "reduction", _REDUCTIONS)
    return_grad = check_bool(return_grad, "return_grad")
    if np.any(v < 0):
        i = int(np.argmax((v < 0).ravel()))
        raise ValueError(
            f"var must be non-negative; got {v.ravel()[i]} at flat index {i}"
        )
    shape = mu.shape
    per_row = False
    reduce_axes: int | str | None = None  # the axis of var broadcast along, or "all"
    if v.ndim == 0:
        reduce_axes = "all"
    elif v.shape == shape:
        pass
    elif mu.ndim >= 1 and v.shape == shape[:-1]:
        per_row = True
    elif (v.ndim == mu.ndim and mu.ndim >= 1
          and sum(vs for ms, vs in zip(shape, v.shape) if ms != vs) == 1):
        ax = next(i for i, (ms, vs) in enumerate(zip(shape, v.shape)) if ms != vs)
        if ax == mu.ndim - 1:
            per_row = True
        else:
            reduce_axes = ax
    else:
        raise ValueError(
            f"var must have the shape of mean {shape}, or that shape without its last axis, "
            f"or with one axis of size 1; got shape {v.shape}"
        )
    n = mu.size
    K = shape[-1] if mu.ndim else 1
    R = n // K if K else 0
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    # losses of reduction="none", the two gradients and a broadcast copy of var
    # have (up to) the shape of mean: refuse before allocating what cannot fit
    full_var = not per_row and v.shape != shape
    _check_outputs(n, dtype, "gaussian_nll",
                   per_element=int(reduction == "none") + int(full_var) + int(return_grad),
                   grad=return_grad)
    if per_row:
        vk = np.ascontiguousarray(v.reshape(R)) if R else np.zeros(0, dtype)
    elif v.shape == shape:
        vk = v
    else:
        vk = np.ascontiguousarray(np.broadcast_to(v, shape))
    if not per_row:
        R, K = n, 1  # elementwise mode: the grouping is irrelevant
    gm = _buffers.empty(shape, dtype) if return_grad else None
    gv = (_buffers.empty(vk.shape, dtype) if return_grad else None)
    total, elems = _core._gaussian_nll(mu, t, vk, R, K, per_row, eps, full, scale,
                                       reduction == "none", gm, gv)
    if reduction == "none":
        loss = elems.reshape(shape)
    elif reduction == "mean":
        loss = _scalar(total / n if n else math.nan, dtype)
    else:
        loss = _scalar(total, dtype)
    if not return_grad:
        return loss
    assert gm is not None and gv is not None
    if per_row:
        gv = gv.reshape(v.shape)
    elif reduce_axes == "all":
        gv = _scalar(gv.sum(dtype=np.float64), dtype)
    elif isinstance(reduce_axes, int):
        gv = gv.sum(axis=reduce_axes, keepdims=True)
    return loss, gm, gv


def mse(input: npt.ArrayLike, target: npt.ArrayLike, *, reduction: Literal["mean", "sum", "none"] = "mean", return_grad: bool = False,
        grad_out: np.ndarray | None = None) -> Any:
    """Mean squared error, ``torch.nn.functional.mse_loss``, with its gradient.

    With a fixed noise variance this is the Gaussian negative log-likelihood
    up to an affine map, so least squares is maximum likelihood.

    Parameters
    ----------
    input, target : array_like
        Same shape.
    reduction : {"mean", "sum", "none"}
    return_grad : bool
        Also return the gradient with respect to `input`.
    grad_out : ndarray, optional
        Buffer of the input's dtype and shape for the gradient (implies
        `return_grad`); written all-or-nothing (see the module documentation).

    Returns
    -------
    loss : scalar, or ndarray for "none"
    grad : ndarray (only with `return_grad`)

    Raises
    ------
    ValueError
        `target` not of the shape of `input`.

    Examples
    --------
    >>> from maxlik import mse
    >>> float(mse([1.0, 2.0], [0.0, 0.0]))
    2.5
    """
    input = numpy_view(input, "input")
    target = numpy_view(target, "target")
    grad_out = numpy_view(grad_out, "grad_out")
    x = as_float_array(input, "input")
    dtype = x.dtype
    t = as_float_array(target, "target", dtype=dtype)
    if t.shape != x.shape:
        raise ValueError(f"target must have the shape of input {x.shape}; got shape {t.shape}")
    reduction = check_option(reduction, "reduction", _REDUCTIONS)
    return_grad = check_bool(return_grad, "return_grad") or grad_out is not None
    n = x.size
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    _check_outputs(n, dtype, "mse", per_element=int(reduction == "none"), grad=return_grad)
    g = _grad_buffer(grad_out, x.shape, dtype) if return_grad else None
    total, elems = _core._mse(x, t, scale, reduction == "none", g, _stage(grad_out, g))
    if reduction == "none":
        loss = elems.reshape(x.shape)
    elif reduction == "mean":
        loss = _scalar(total / n if n else math.nan, dtype)
    else:
        loss = _scalar(total, dtype)
    return (loss, g) if return_grad else loss


def vae_loss(x: npt.ArrayLike, reconstruction: npt.ArrayLike, mu: npt.ArrayLike,
             logvar: npt.ArrayLike, *, recon_var: npt.ArrayLike = 1.0, full: bool = True,
             beta: float = 1.0, reduction: Literal["mean", "sum", "none"] = "mean",
             return_grad: bool = False) -> Any:
    r"""Negative evidence lower bound of a VAE with a Gaussian decoder, and its gradients.

    Per sample i (Kingma & Welling 2014, eq. 10 with a Gaussian decoder):

    .. math:: \ell_i = \sum_j \mathrm{NLL}\big(x_{ij} \mid \hat x_{ij}, \sigma^2\big)
              + \beta\, \mathrm{KL}\big(N(\mu_i, \mathrm{diag}\, e^{\mathrm{logvar}_i})
              \,\|\, N(0, I)\big),

    the Gaussian reconstruction negative log-likelihood (``gaussian_nll``,
    summed over the features of the sample) plus ``kl_to_standard_normal``.
    With ``beta=1`` and ``full=True`` it is exactly minus the ELBO.

    Parameters
    ----------
    x : array_like, shape (N, ...)
        Data; the first axis is the batch.
    reconstruction : array_like, shape of `x`
        Decoder means.
    mu, logvar : array_like, shape (N, D_latent)
        Encoder means and log-variances.
    recon_var : float or array_like, default 1.0
        Decoder variance sigma^2 (> 0): a scalar or an array of the shape of `x`.
    full : bool, default True
        Include the constant ``0.5 * log(2 pi)`` per feature.
    beta : float, default 1.0
        Weight of the KL term (beta-VAE).
    reduction : {"mean", "sum", "none"}
        "mean" averages over the N samples (not over features), "none"
        returns the N per-sample losses.
    return_grad : bool
        Also return the gradients with respect to `reconstruction`, `mu` and
        `logvar` (of the reduced loss; for "none", of the sum).

    Returns
    -------
    loss : scalar or ndarray of shape (N,)
    grad_reconstruction, grad_mu, grad_logvar : ndarray (only with `return_grad`)

    Raises
    ------
    ValueError
        Mismatched shapes (including a batch size of `mu` different from
        that of `x`), non-positive `recon_var`.

    Examples
    --------
    >>> import numpy as np
    >>> from maxlik import vae_loss
    >>> x = np.zeros((2, 3))
    >>> loss = vae_loss(x, x, np.zeros((2, 4)), np.zeros((2, 4)), full=False)
    >>> float(loss)  # perfect reconstruction with unit variance, posterior = prior
    0.0
    """
    x = numpy_view(x, "x")
    reconstruction = numpy_view(reconstruction, "reconstruction")
    mu = numpy_view(mu, "mu")
    logvar = numpy_view(logvar, "logvar")
    recon_var = numpy_view(recon_var, "recon_var")
    from .divergences import kl_to_standard_normal

    xa = as_float_array(x, "x")
    dtype = xa.dtype
    rec = as_float_array(reconstruction, "reconstruction", dtype=dtype)
    if rec.shape != xa.shape:
        raise ValueError(
            f"reconstruction must have the shape of x {xa.shape}; got shape {rec.shape}"
        )
    if xa.ndim < 1:
        raise ValueError("x must have a batch axis; got a 0-d array")
    m = as_float_array(mu, "mu", dtype=dtype)
    lv = as_float_array(logvar, "logvar", dtype=dtype)
    if m.ndim != 2 or m.shape[0] != xa.shape[0]:
        raise ValueError(
            f"mu must have shape (N, D_latent) with N = {xa.shape[0]} (the batch size of x); "
            f"got shape {m.shape}"
        )
    if lv.shape != m.shape:
        raise ValueError(f"logvar must have the shape of mu {m.shape}; got shape {lv.shape}")
    beta = check_float(beta, "beta", min=0.0)
    reduction = check_option(reduction, "reduction", _REDUCTIONS)
    return_grad = check_bool(return_grad, "return_grad")
    full = check_bool(full, "full")
    rv = as_float_array(recon_var, "recon_var", dtype=dtype, order=None)
    if rv.ndim != 0 and rv.shape != xa.shape:
        raise ValueError(
            f"recon_var must be a scalar or have the shape of x {xa.shape}; got shape {rv.shape}"
        )
    if not np.all(rv > 0):
        raise ValueError("recon_var must be positive (the decoder variance)")
    N = xa.shape[0]
    # reconstruction NLL summed over everything; gaussian_nll's "mean" divides by elements
    out: Any  # gaussian_nll's sum (and gradients with return_grad); None only if unused
    if reduction == "none":
        rec_rows = gaussian_nll(rec, xa, rv, full=full, eps=0.0, reduction="none")
        rec_rows = rec_rows.reshape(N, -1).sum(axis=1, dtype=np.float64)
        out = gaussian_nll(rec, xa, rv, full=full, eps=0.0, reduction="sum", return_grad=True) \
            if return_grad else None
    else:
        out = gaussian_nll(rec, xa, rv, full=full, eps=0.0, reduction="sum",
                           return_grad=return_grad)
    if return_grad:
        kl, g_mu, g_lv = kl_to_standard_normal(m, lv, return_grad=True)
    else:
        kl = kl_to_standard_normal(m, lv)
    kl = np.asarray(kl, dtype=np.float64).reshape(N)
    scale = 1.0 / N if (reduction == "mean" and N) else 1.0
    if reduction == "none":
        loss = (rec_rows + beta * kl).astype(dtype)
    else:
        rec_sum = float(out[0] if return_grad else out)
        total = rec_sum + beta * float(kl.sum())
        loss = _scalar(total * scale if N else (math.nan if reduction == "mean" else 0.0), dtype)
    if not return_grad:
        return loss
    g_rec = out[1]
    if scale != 1.0:
        g_rec *= dtype.type(scale)
    g_mu = np.asarray(g_mu, dtype=dtype) * dtype.type(beta * scale)
    g_lv = np.asarray(g_lv, dtype=dtype) * dtype.type(beta * scale)
    return loss, g_rec, g_mu, g_lv
