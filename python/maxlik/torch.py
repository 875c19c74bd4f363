"""maxlik's fused C++ losses as PyTorch autograd functions (CPU tensors).

Drop-ins for their ``torch.nn.functional`` namesakes, with the same
signatures and semantics::

    import maxlik.torch as mt
    loss = mt.cross_entropy(logits, labels)   # instead of F.cross_entropy
    loss.backward()

- ``cross_entropy``, ``binary_cross_entropy_with_logits`` and
  ``gaussian_nll_loss`` compute the loss and its gradient in one pass over
  the input (the forward pass keeps the gradient; backward only scales it by
  the incoming gradient), so a training step reads the logits once instead
  of the three or four passes of log-softmax, NLL and their backwards.
- ``logsumexp`` and ``log_softmax`` run the one-pass C++ reductions forward;
  their backward is the usual closed form (softmax times the incoming
  gradient) on the saved result.

Tensors are handed to the kernels without a copy: a contiguous CPU tensor's
``.numpy()`` shares its memory, and the results are wrapped back with
``torch.from_numpy``. A non-contiguous tensor is copied to a contiguous one
first. float32 and float64 are supported; other floating dtypes (float16,
bfloat16) and tensors on another device (CUDA, MPS, meta) raise a
``TypeError`` saying what to do. Integer class targets may have any integer
dtype.

Gradients flow to the tensors torch differentiates in practice: the input
(logits / predicted means) everywhere, and also ``target`` and ``var`` for
``gaussian_nll_loss``. A tensor that requires grad where maxlik has no
gradient (a class ``weight``, ``pos_weight``, probability targets) raises a
``ValueError`` instead of silently getting none. The functions are
differentiable once: backward through a gradient (``create_graph=True``,
double backward) raises a ``RuntimeError``.

Importing ``maxlik`` never imports torch; importing ``maxlik.torch`` does,
and without torch installed raises an ``ImportError`` with the install
command.
"""
from __future__ import annotations

try:
    import torch
except ImportError as exc:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "maxlik.torch needs PyTorch, which is not installed: pip install torch "
        "(the rest of maxlik works without it)"
    ) from exc

import functools

import numpy as np

from . import losses as _losses
from . import special as _special

__all__ = [
    "cross_entropy",
    "binary_cross_entropy_with_logits",
    "gaussian_nll_loss",
    "logsumexp",
    "log_softmax",
]

_FLOATS = (torch.float32, torch.float64)


# ----------------------------------------------------------------------------- tensors
def _tensor(x, name, *, floating=True):
    """A CPU tensor for the kernels (a contiguous copy only if `x` is not contiguous)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    if x.device.type != "cpu":
        raise TypeError(
            f"{name} is on device {x.device}; maxlik.torch runs on CPU tensors only. Move it "
            f"with {name}.cpu(), or use torch.nn.functional on {x.device.type}"
        )
    if x.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor; got layout {x.layout}")
    if floating and x.dtype not in _FLOATS:
        if x.is_floating_point() or x.is_complex():
            raise TypeError(
                f"{name} has dtype {x.dtype}; maxlik.torch supports torch.float32 and "
                f"torch.float64 (convert with {name}.float())"
            )
        raise TypeError(f"{name} must be a floating-point tensor; got dtype {x.dtype}")
    return x if x.is_contiguous() else x.contiguous()


def _np(x):
    """The numpy view of a CPU tensor: shares its memory (no copy)."""
    return x.detach().resolve_conj().resolve_neg().numpy()


def _torch(a, dtype):
    """A numpy result as a tensor of `dtype` (zero-copy for arrays)."""
    if isinstance(a, np.ndarray):
        return torch.from_numpy(a) if a.flags.writeable else torch.from_numpy(a.copy())
    return torch.tensor(float(a), dtype=dtype)


def _no_grad_wanted(x, name, func):
    if isinstance(x, torch.Tensor) and x.requires_grad:
        raise ValueError(
            f"{func}: {name} requires grad, but maxlik.torch differentiates only with respect "
            f"to the input; detach {name} (or use torch.nn.functional.{func})"
        )


def _reduction(size_average, reduce, reduction):
    """torch's legacy size_average / reduce arguments, mapped as torch maps them."""
    if size_average is None and reduce is None:
        return reduction
    size_average = True if size_average is None else size_average
    reduce = True if reduce is None else reduce
    if not reduce:
        return "none"
    return "mean" if size_average else "sum"


def _scaled(g, grad_output):
    """The saved gradient of the (reduced) loss times the incoming gradient."""
    if grad_output.dim() == 0:
        if bool(grad_output == 1):
            return g
        return g * grad_output
    return g * grad_output


class _Once(torch.autograd.Function):
    """The identity on a gradient, whose own gradient is refused (double backward)."""

    @staticmethod
    def forward(ctx, grad, anchor, name):
        ctx.name = name
        return grad.clone()

    @staticmethod
    def backward(ctx, *grad_outputs):
        raise RuntimeError(
            f"maxlik.torch.{ctx.name} is differentiable once: its backward has no backward "
            f"(double backward, e.g. a gradient penalty); use torch.nn.functional.{ctx.name} "
            "for higher derivatives"
        )


def _once(name):
    """Decorate a backward: computed without building a graph; under create_graph=True
    the gradients it returns raise a clear error when differentiated in turn."""
    def deco(backward):
        @functools.wraps(backward)
        def wrapper(ctx, *grad_outputs):
            create_graph = torch.is_grad_enabled()
            with torch.no_grad():
                grads = backward(ctx, *grad_outputs)
            if not create_graph:
                return grads
            anchor = next(t for t in ctx.saved_tensors if t.requires_grad)
            return tuple(_Once.apply(g, anchor, name) if isinstance(g, torch.Tensor) else g
                         for g in grads)
        return wrapper
    return deco


# ----------------------------------------------------------------------------- cross-entropy
class _CrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, ignore_index, reduction, label_smoothing):
        want = input.requires_grad
        res = _losses.softmax_cross_entropy(
            _np(input), _np(target), weight=None if weight is None else _np(weight),
            ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction,
            return_grad=want)
        loss, g = res if want else (res, None)
        ctx.reduction = reduction
        ctx.grad = None if g is None else torch.from_numpy(g)
        ctx.args = (target, weight, ignore_index, reduction, label_smoothing)
        ctx.save_for_backward(input)
        return _torch(loss, input.dtype)

    @staticmethod
    @_once("cross_entropy")
    def backward(ctx, grad_output):
        g = _take_grad(ctx, lambda inp: _CrossEntropy.forward_grad(inp, *ctx.args))
        if ctx.reduction == "none":
            go = grad_output.reshape(grad_output.shape[:1] + (1,) + grad_output.shape[1:]) \
                if g.dim() > 1 else grad_output
            g = g * go
        else:
            g = _scaled(g, grad_output)
        return g, None, None, None, None, None

    @staticmethod
    def forward_grad(input, target, weight, ignore_index, reduction, label_smoothing):
        _, g = _losses.softmax_cross_entropy(
            _np(input), _np(target), weight=None if weight is None else _np(weight),
            ignore_index=ignore_index, label_smoothing=label_smoothing, reduction=reduction,
            return_grad=True)
        return torch.from_numpy(g)


def _take_grad(ctx, recompute):
    """The gradient kept by forward, handed to autograd without a copy the first
    time; recomputed from the saved input by a second backward (retain_graph)."""
    (inp,) = ctx.saved_tensors
    g = ctx.grad
    if g is None:
        return recompute(inp)
    ctx.grad = None  # autograd may now take the buffer as .grad instead of cloning it
    return g


def cross_entropy(input: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                  size_average: bool | None = None, ignore_index: int = -100,
                  reduce: bool | None = None, reduction: str = "mean",
                  label_smoothing: float = 0.0) -> torch.Tensor:
    """``torch.nn.functional.cross_entropy`` computed by maxlik's fused kernel.

    Same arguments and results: `input` of shape (C,), (N, C) or
    (N, C, d1, ..., dk) (float32/float64, CPU); `target` class indices (any
    integer dtype) or class probabilities of the input's shape; `weight` per
    class; `ignore_index`; `label_smoothing`; `reduction`; the legacy
    `size_average` / `reduce`. The loss and its gradient with respect to
    `input` come from one pass of the C++ kernel (see
    :func:`maxlik.softmax_cross_entropy`, whose notes on infinite logits
    apply: maxlik gives the limits where torch gives NaN).

    Raises
    ------
    TypeError
        A tensor on a device other than CPU, or of an unsupported dtype.
    ValueError
        A target class outside ``[0, C)`` that is not `ignore_index`; shapes
        that do not match; `weight` or probability targets that require grad.
    """
    reduction = _reduction(size_average, reduce, reduction)
    input = _tensor(input, "input")
    target = _tensor(target, "target", floating=False)
    if target.is_floating_point():
        target = _tensor(target, "target")
        _no_grad_wanted(target, "target", "cross_entropy")
    elif target.dtype == torch.bool or target.is_complex():
        raise TypeError(f"target must hold class indices (integers) or class probabilities "
                        f"(floats); got dtype {target.dtype}")
    if weight is not None:
        weight = _tensor(weight, "weight")
        _no_grad_wanted(weight, "weight", "cross_entropy")
    return _CrossEntropy.apply(input, target, weight, int(ignore_index), reduction,
                               float(label_smoothing))


# ----------------------------------------------------------------------------- binary CE
class _BCEWithLogits(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, weight, pos_weight, reduction):
        want = input.requires_grad
        res = _BCEWithLogits.compute(input, target, weight, pos_weight, reduction, want)
        loss, g = res if want else (res, None)
        ctx.reduction = reduction
        ctx.grad = None if g is None else torch.from_numpy(g)
        ctx.args = (target, weight, pos_weight, reduction)
        ctx.save_for_backward(input)
        return _torch(loss, input.dtype)

    @staticmethod
    def compute(input, target, weight, pos_weight, reduction, want):
        return _losses.binary_cross_entropy_with_logits(
            _np(input), _np(target), weight=None if weight is None else _np(weight),
            pos_weight=None if pos_weight is None else _np(pos_weight), reduction=reduction,
            return_grad=want)

    @staticmethod
    @_once("binary_cross_entropy_with_logits")
    def backward(ctx, grad_output):
        g = _take_grad(ctx, lambda inp: torch.from_numpy(
            _BCEWithLogits.compute(inp, *ctx.args, True)[1]))
        g = g * grad_output if ctx.reduction == "none" else _scaled(g, grad_output)
        return g, None, None, None, None


def binary_cross_entropy_with_logits(input: torch.Tensor, target: torch.Tensor,
                                     weight: torch.Tensor | None = None,
                                     size_average: bool | None = None,
                                     reduce: bool | None = None, reduction: str = "mean",
                                     pos_weight: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.binary_cross_entropy_with_logits`` by maxlik's fused kernel.

    Same arguments and results: `target` of the input's shape; `weight` and
    `pos_weight` broadcast against the input (``pos_weight`` along the last,
    class, axis as in torch); `reduction` and the legacy `size_average` /
    `reduce`. One C++ pass gives the loss and its gradient (see
    :func:`maxlik.binary_cross_entropy_with_logits` for the limits at
    infinite logits). Gradients flow to `input` only: a `target`, `weight` or
    `pos_weight` that requires grad raises ValueError.
    """
    reduction = _reduction(size_average, reduce, reduction)
    input = _tensor(input, "input")
    target = _tensor(target, "target")
    _no_grad_wanted(target, "target", "binary_cross_entropy_with_logits")
    if target.shape != input.shape:
        raise ValueError(f"target size ({tuple(target.shape)}) must be the same as input size "
                         f"({tuple(input.shape)})")
    if weight is not None:
        weight = _tensor(weight, "weight")
        _no_grad_wanted(weight, "weight", "binary_cross_entropy_with_logits")
    if pos_weight is not None:
        pos_weight = _tensor(pos_weight, "pos_weight")
        _no_grad_wanted(pos_weight, "pos_weight", "binary_cross_entropy_with_logits")
    return _BCEWithLogits.apply(input, target, weight, pos_weight, reduction)


# ----------------------------------------------------------------------------- Gaussian NLL
class _GaussianNLL(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, target, var, full, eps, reduction, var_shape):
        want = input.requires_grad or target.requires_grad or var.requires_grad
        v = _np(var)
        if want and reduction == "none" and tuple(var.shape) != tuple(input.shape):
            # per-element derivatives, reduced to var's shape in backward
            v = np.ascontiguousarray(np.broadcast_to(v.reshape(var_shape), input.shape))
        res = _losses.gaussian_nll(_np(input), _np(target), v, full=full, eps=eps,
                                   reduction=reduction, return_grad=want)
        if want:
            loss, gm, gv = res
            ctx.grads = (torch.from_numpy(gm), _torch(gv, input.dtype))
        else:
            loss, ctx.grads = res, None
        ctx.reduction = reduction
        ctx.var_shape = tuple(var.shape)
        ctx.bshape = var_shape  # var_shape with the axes it broadcasts along, as size 1
        ctx.save_for_backward(input, target, var)
        return _torch(loss, input.dtype)

    @staticmethod
    @_once("gaussian_nll_loss")
    def backward(ctx, grad_output):
        if ctx.grads is None:
            raise RuntimeError("maxlik.torch.gaussian_nll_loss: backward called twice "
                               "(retain_graph=True) is not supported")
        gm, gv = ctx.grads
        ctx.grads = None
        if ctx.reduction == "none":
            gm = gm * grad_output
            gv = (gv * grad_output).sum_to_size(ctx.bshape).reshape(ctx.var_shape)
        else:
            gm = _scaled(gm, grad_output)
            gv = _scaled(gv, grad_output).reshape(ctx.var_shape)
        needs = ctx.needs_input_grad
        return (gm if needs[0] else None, -gm if needs[1] else None,
                gv if needs[2] else None, None, None, None, None)


def gaussian_nll_loss(input: torch.Tensor, target: torch.Tensor, var: torch.Tensor | float,
                      full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean") -> torch.Tensor:
    """``torch.nn.functional.gaussian_nll_loss`` by maxlik's fused kernel.

    Same arguments, shapes and results: `var` of the input's shape, or with
    one axis of size 1 (or the last axis missing) for a shared variance, or a
    float; `full` adds ``0.5 log(2 pi)``; variances are clamped at `eps` (the
    gradient with respect to `var` is then that at `eps`, as torch). One C++
    pass gives the loss and the gradients for `input`, `target` and `var`.

    Raises
    ------
    ValueError
        A negative variance, or shapes that do not match.
    """
    input = _tensor(input, "input")
    target = _tensor(target, "target")
    if isinstance(var, (int, float)):
        var = torch.full((), float(var), dtype=input.dtype)
    var = _tensor(var, "var")
    if target.dtype != input.dtype or var.dtype != input.dtype:
        raise TypeError(f"input, target and var must have one dtype; got {input.dtype}, "
                        f"{target.dtype} and {var.dtype}")
    if target.shape != input.shape:
        raise ValueError(f"target must have the shape of input {tuple(input.shape)}; got "
                         f"{tuple(target.shape)}")
    var_shape = tuple(var.shape)
    if var.dim() == input.dim() - 1 and input.dim() >= 1 \
            and var_shape == tuple(input.shape[:-1]):
        var_shape = var_shape + (1,)  # torch: one variance per row, the last axis missing
    reduction = _reduction(None, None, reduction)
    return _GaussianNLL.apply(input, target, var, bool(full), float(eps), reduction,
                              var_shape)


# ----------------------------------------------------------------------------- logsumexp
def _dims(dim, ndim, func):
    if dim is None:
        raise TypeError(f"{func}() missing required argument 'dim'")
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if ndim == 0:
        return ()
    for d in dims:
        if not -ndim <= d < ndim:
            raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, "
                             f"{ndim - 1}], but got {d})")
    if not dims:  # dim=(): every dimension, as torch.sum
        return tuple(range(ndim))
    return tuple(sorted({d % ndim for d in dims}))


class _LogSumExp(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, dims, keepdim):
        x = _np(input)
        if input.dim() == 0:
            out = x.copy()
        else:
            out = np.asarray(_special.logsumexp(x, axis=dims, keepdims=keepdim))
        ctx.dims, ctx.keepdim = dims, keepdim
        out = np.asarray(out, dtype=x.dtype)  # keeps 0-d (ascontiguousarray would not)
        if not (out.flags.c_contiguous and out.flags.writeable):
            out = out.copy()
        res = torch.from_numpy(out)
        ctx.save_for_backward(input, res)
        return res

    @staticmethod
    @_once("logsumexp")
    def backward(ctx, grad_output):
        inp, out = ctx.saved_tensors
        if not ctx.dims or inp.dim() == 0:
            return grad_output.clone(), None, None
        if not ctx.keepdim:
            for d in ctx.dims:
                out = out.unsqueeze(d)
                grad_output = grad_output.unsqueeze(d)
        return torch.sub(inp, out).exp_().mul_(grad_output), None, None


def logsumexp(input: torch.Tensor, dim: int | tuple[int, ...], keepdim: bool = False
              ) -> torch.Tensor:
    """``torch.logsumexp`` by maxlik's one-pass C++ reduction (online max rescaling).

    `dim` is an int or a tuple of ints (required, as in torch). The gradient
    is ``exp(input - result)`` times the incoming gradient.
    """
    input = _tensor(input, "input")
    return _LogSumExp.apply(input, _dims(dim, input.dim(), "logsumexp"), bool(keepdim))


class _LogSoftmax(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input, dim):
        x = _np(input)
        if input.dim() == 0:
            out = np.zeros_like(x)
        else:
            out = _special.log_softmax(x, axis=dim)
        res = torch.from_numpy(np.ascontiguousarray(out))
        ctx.dim = dim
        ctx.save_for_backward(input, res)
        return res

    @staticmethod
    @_once("log_softmax")
    def backward(ctx, grad_output):
        _, out = ctx.saved_tensors
        if out.dim() == 0:
            return torch.zeros_like(grad_output), None
        # d log_softmax: g - softmax * sum(g), by torch's fused backward kernel when it
        # has one (one pass), else from the closed form
        fused = getattr(torch, "_log_softmax_backward_data", None)
        if fused is not None:
            return fused(grad_output, out, ctx.dim, out.dtype), None
        total = grad_output.sum(dim=ctx.dim, keepdim=True)
        return grad_output - torch.exp(out) * total, None


def log_softmax(input: torch.Tensor, dim: int | None = None, _stacklevel: int = 3,
                dtype: torch.dtype | None = None) -> torch.Tensor:
    """``torch.nn.functional.log_softmax`` by maxlik's one-pass C++ kernel.

    `dim` as torch (``None`` picks torch's legacy implicit dimension, with
    its warning); `dtype` casts the input first. Finite input and ``-inf``
    entries give torch's results; an all ``-inf`` row gives NaN as in torch.
    A row holding ``+inf`` follows :func:`maxlik.log_softmax` (scipy's
    semantics): NaN at the ``+inf`` entries and ``-inf`` elsewhere, where
    torch gives NaN for the whole row.
    """
    input = _tensor(input, "input") if dtype is None else \
        _tensor(_tensor_checked(input).to(dtype), "input")
    if dim is None:
        import warnings

        warnings.warn("Implicit dimension choice for log_softmax has been deprecated. "
                      "Change the call to include dim=X as an argument.",
                      stacklevel=_stacklevel)
        dim = 0 if input.dim() in (0, 1, 3) else 1
    ndim = max(1, input.dim())
    if not -ndim <= dim < ndim:
        raise IndexError(f"Dimension out of range (expected to be in range of [{-ndim}, "
                         f"{ndim - 1}], but got {dim})")
    return _LogSoftmax.apply(input, dim % ndim)


def _tensor_checked(x):
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"input must be a torch.Tensor; got {type(x).__name__}")
    return x
