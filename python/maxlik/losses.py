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
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import as_float_array, check_bool, check_float, check_int, check_option

__all__ = [
    "softmax_cross_entropy",
    "binary_cross_entropy_with_logits",
    "gaussian_nll",
    "mse",
]

_REDUCTIONS = ("mean", "sum", "none")


def _grad_buffer(grad_out, shape, dtype, name="grad_out"):
    """A fresh gradient array, or the caller's buffer after checking it."""
    if grad_out is None:
        return np.empty(shape, dtype=dtype)
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


def softmax_cross_entropy(logits, target, *, weight=None, ignore_index=-100,
                          label_smoothing=0.0, reduction="mean", return_grad=False,
                          grad_out=None):
    r"""Cross-entropy between targets and ``softmax(logits)``, with its gradient.

    The same function as ``torch.nn.functional.cross_entropy`` for 2-D input:
    the negative log-likelihood of a categorical model whose log-probabilities
    are ``log_softmax(logits)``.

    Parameters
    ----------
    logits : array_like, shape (N, C)
        Unnormalised log-probabilities; float32 is kept, other dtypes follow
        maxlik's dtype policy (integers -> float64).
    target : array_like
        Either integer class indices of shape (N,) in ``[0, C)`` (or equal to
        `ignore_index`), or class probabilities of shape (N, C) (a float
        array; non-negative rows summing to 1).
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
        gradient into (saves an allocation in training loops). Implies
        ``return_grad=True``.

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
        ``4 * sqrt(machine epsilon)`` of the dtype); mismatched shapes.
    TypeError
        Non-numeric input.

    Notes
    -----
    One pass per row computes the maximum, the sum of exponentials, the loss
    and the gradient ``A * softmax(z) - a`` (``a`` the per-class target
    coefficients, ``A`` their sum).

    Edge cases, compared with torch:

    - A NaN logit makes that row's loss NaN and its whole gradient row NaN
      (as torch); a ``+inf`` logit does the same (as torch). Other rows are
      unaffected, and the reduced loss is then NaN.
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
    z = as_float_array(logits, "logits")
    if z.ndim != 2:
        raise ValueError(
            f"logits must be 2-D (N, C) with the classes along axis 1; got a {z.ndim}-D "
            f"array of shape {z.shape}"
        )
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
    g = _grad_buffer(grad_out, (N, C), dtype) if return_grad else None
    mean = reduction == "mean"
    rows = reduction == "none"
    if prob:
        total, denom, row_loss = _core._softmax_ce_prob(z, t, w, eps, mean, rows, g)
    else:
        total, denom, row_loss = _core._softmax_ce_index(z, t, w, None, ignore_index, eps, mean,
                                                         rows, g)
    if rows:
        loss = row_loss
    elif mean:
        loss = _scalar(total / denom if denom != 0 else math.nan, dtype)
    else:
        loss = _scalar(total, dtype)
    return (loss, g) if return_grad else loss


def _broadcast_full(a, shape, name, dtype):
    """`a` broadcast to `shape` as a C-contiguous array, or a ValueError naming `name`."""
    a = as_float_array(a, name, dtype=dtype, order=None)
    try:
        b = np.broadcast_to(a, shape)
    except ValueError:
        raise ValueError(
            f"{name} of shape {a.shape} cannot be broadcast to the logits' shape {shape}"
        ) from None
    return np.ascontiguousarray(b)


def binary_cross_entropy_with_logits(logits, target, *, weight=None, pos_weight=None,
                                     reduction="mean", return_grad=False, grad_out=None):
    r"""Binary cross-entropy of ``sigmoid(logits)`` against `target`, with its gradient.

    The same function as ``torch.nn.functional.binary_cross_entropy_with_logits``:
    elementwise

    .. math:: \ell = -w\,[\,p\,t \log \sigma(x) + (1 - t) \log(1 - \sigma(x))\,],

    with ``p = pos_weight``, computed as ``w [(1 - t) x - (1 + (p - 1) t) log sigma(x)]``
    and ``log sigma(x) = min(x, 0) - log1p(exp(-|x|))``, which is exact for
    any finite logit (tested up to ``|x| = 1e4``).

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
        `return_grad`).

    Returns
    -------
    loss : scalar, or ndarray of the logits' shape for "none"
    grad : ndarray of the logits' shape (only with `return_grad`)

    Raises
    ------
    ValueError
        `target` not of the logits' shape; weights not broadcastable.

    Notes
    -----
    NaN logits or targets give NaN loss and gradient in those elements.

    Examples
    --------
    >>> from maxlik import binary_cross_entropy_with_logits
    >>> round(float(binary_cross_entropy_with_logits([0.0, 2.0], [1.0, 0.0])), 6)
    1.410038
    """
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
    g = _grad_buffer(grad_out, x.shape, dtype) if return_grad else None
    total, elems = _core._bce_with_logits(x, t, w, pw, scale, reduction == "none", g)
    if reduction == "none":
        loss = elems.reshape(x.shape)
    elif mean:
        loss = _scalar(total / n if n else math.nan, dtype)
    else:
        loss = _scalar(total, dtype)
    return (loss, g) if return_grad else loss


def gaussian_nll(mean, target, var, *, full=False, eps=1e-6, reduction="mean",
                 return_grad=False):
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
    reduce_axes = None
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
    if per_row:
        vk = np.ascontiguousarray(v.reshape(R)) if R else np.zeros(0, dtype)
    elif v.shape == shape:
        vk = v
    else:
        vk = np.ascontiguousarray(np.broadcast_to(v, shape))
    if not per_row:
        R, K = n, 1  # elementwise mode: the grouping is irrelevant
    gm = np.empty(shape, dtype) if return_grad else None
    gv = (np.empty(vk.shape, dtype) if return_grad else None)
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
    if per_row:
        gv = gv.reshape(v.shape)
    elif reduce_axes == "all":
        gv = _scalar(gv.sum(dtype=np.float64), dtype)
    elif reduce_axes is not None:
        gv = gv.sum(axis=reduce_axes, keepdims=True)
    return loss, gm, gv


def mse(input, target, *, reduction="mean", return_grad=False, grad_out=None):
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
        `return_grad`).

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
    x = as_float_array(input, "input")
    dtype = x.dtype
    t = as_float_array(target, "target", dtype=dtype)
    if t.shape != x.shape:
        raise ValueError(f"target must have the shape of input {x.shape}; got shape {t.shape}")
    reduction = check_option(reduction, "reduction", _REDUCTIONS)
    return_grad = check_bool(return_grad, "return_grad") or grad_out is not None
    n = x.size
    scale = 1.0 / n if (reduction == "mean" and n) else 1.0
    g = _grad_buffer(grad_out, x.shape, dtype) if return_grad else None
    total, elems = _core._mse(x, t, scale, reduction == "none", g)
    if reduction == "none":
        loss = elems.reshape(x.shape)
    elif reduction == "mean":
        loss = _scalar(total / n if n else math.nan, dtype)
    else:
        loss = _scalar(total, dtype)
    return (loss, g) if return_grad else loss
