"""maxlik.torch against torch.nn.functional: values, gradients, layouts, errors.

The whole module needs torch (one skip without it); that importing maxlik never
imports torch, and the message without torch, are in test_torch_import.py.
"""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

import torch.nn.functional as F  # noqa: E402

import maxlik  # noqa: E402
import maxlik.torch as mt  # noqa: E402

TOL = {torch.float32: dict(rtol=2e-5, atol=2e-6), torch.float64: dict(rtol=1e-11, atol=1e-13)}
DTYPES = [torch.float32, torch.float64]


def both(fn_ours, fn_torch, inputs, *args, grad_seed=0, **kwargs):
    """(ours, torch's) results and gradients for the inputs that require grad."""
    out = []
    for fn in (fn_ours, fn_torch):
        leaves = [x.detach().clone().requires_grad_(x.requires_grad) for x in inputs]
        res = fn(*leaves, *args, **kwargs)
        gen = torch.Generator().manual_seed(grad_seed)
        go = torch.randn(res.shape, generator=gen, dtype=res.dtype)
        res.backward(go)
        out.append((res.detach(), [x.grad for x in leaves if x.requires_grad]))
    return out


def assert_same(a, b, dtype):
    (va, ga), (vb, gb) = a, b
    assert va.dtype == vb.dtype and va.shape == vb.shape
    torch.testing.assert_close(va, vb, **TOL[dtype])
    assert len(ga) == len(gb)
    for x, y in zip(ga, gb):
        assert x.shape == y.shape and x.dtype == y.dtype
        torch.testing.assert_close(x, y, **TOL[dtype])


def randn(*shape, dtype=torch.float64, seed=0, grad=True, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(*shape, generator=g, dtype=dtype) * scale).requires_grad_(grad)


# ---- cross_entropy ------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", [
    {}, {"weight": True}, {"label_smoothing": 0.2}, {"ignore_index": 2},
    {"weight": True, "ignore_index": 1, "label_smoothing": 0.05},
])
def test_cross_entropy_index_targets(dtype, reduction, extra):
    x = randn(257, 11, dtype=dtype)
    y = torch.randint(0, 11, (257,), generator=torch.Generator().manual_seed(1))
    kw = dict(extra, reduction=reduction)
    if kw.pop("weight", False):
        kw["weight"] = torch.rand(11, dtype=dtype, generator=torch.Generator().manual_seed(2))
    a, b = both(lambda z: mt.cross_entropy(z, y, **kw), lambda z: F.cross_entropy(z, y, **kw),
                [x])
    assert_same(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_probabilities_and_other_layouts(dtype, reduction):
    x = randn(40, 7, dtype=dtype)
    p = torch.softmax(randn(40, 7, dtype=dtype, seed=3, grad=False), dim=1)
    w = torch.rand(7, dtype=dtype)
    for kw in ({}, {"weight": w, "label_smoothing": 0.1}):
        a, b = both(lambda z, kw=kw: mt.cross_entropy(z, p, reduction=reduction, **kw),
                    lambda z, kw=kw: F.cross_entropy(z, p, reduction=reduction, **kw), [x])
        assert_same(a, b, dtype)
    # (N, C, d1, d2) with index targets, and unbatched (C,)
    x4 = randn(3, 5, 4, 2, dtype=dtype)
    y4 = torch.randint(0, 5, (3, 4, 2))
    a, b = both(lambda z: mt.cross_entropy(z, y4, reduction=reduction),
                lambda z: F.cross_entropy(z, y4, reduction=reduction), [x4])
    assert_same(a, b, dtype)
    x1 = randn(6, dtype=dtype)
    y1 = torch.tensor(4)
    a, b = both(lambda z: mt.cross_entropy(z, y1, reduction=reduction),
                lambda z: F.cross_entropy(z, y1, reduction=reduction), [x1])
    assert_same(a, b, dtype)


def test_cross_entropy_legacy_reduction_arguments_and_int32_targets():
    x = randn(20, 4)
    y = torch.randint(0, 4, (20,))
    for kw in ({"size_average": False}, {"reduce": False}, {"size_average": True}):
        with pytest.warns(UserWarning):  # torch warns that the legacy arguments are deprecated
            ref = F.cross_entropy(x, y, **kw)
        torch.testing.assert_close(mt.cross_entropy(x, y, **kw), ref)
    torch.testing.assert_close(mt.cross_entropy(x, y.int()), F.cross_entropy(x, y))


# ---- binary_cross_entropy_with_logits -----------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_with_logits(dtype, reduction):
    x = randn(33, 6, dtype=dtype)
    t = torch.rand(33, 6, dtype=dtype, generator=torch.Generator().manual_seed(4))
    w = torch.rand(33, 1, dtype=dtype)
    pw = torch.rand(6, dtype=dtype) * 3
    for kw in ({}, {"weight": w}, {"pos_weight": pw}, {"weight": w, "pos_weight": pw}):
        a, b = both(lambda z, kw=kw: mt.binary_cross_entropy_with_logits(z, t, reduction=reduction, **kw),
                    lambda z, kw=kw: F.binary_cross_entropy_with_logits(z, t, reduction=reduction,
                                                                         **kw),
                    [x])
        assert_same(a, b, dtype)


# ---- gaussian_nll_loss --------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("var_shape", ["same", "last axis 1", "last axis missing",
                                       "middle axis 1"])
def test_gaussian_nll_loss(dtype, reduction, var_shape):
    mu = randn(9, 4, 5, dtype=dtype)
    y = randn(9, 4, 5, dtype=dtype, seed=5)
    shape = {"same": (9, 4, 5), "last axis 1": (9, 4, 1), "last axis missing": (9, 4),
             "middle axis 1": (9, 1, 5)}[var_shape]
    var = (torch.rand(shape, dtype=dtype, generator=torch.Generator().manual_seed(6)) + 0.05)
    var.requires_grad_(True)
    for kw in ({}, {"full": True}, {"eps": 0.3}):  # eps=0.3 clamps some variances
        a, b = both(lambda m, t, v, kw=kw: mt.gaussian_nll_loss(m, t, v, reduction=reduction, **kw),
                    lambda m, t, v, kw=kw: F.gaussian_nll_loss(m, t, v, reduction=reduction, **kw),
                    [mu, y, var])
        assert_same(a, b, dtype)


def test_gaussian_nll_loss_float_variance_and_negative_variance():
    mu, y = randn(10, 3), randn(10, 3, seed=1, grad=False)
    a, b = both(lambda m: mt.gaussian_nll_loss(m, y, 0.7), lambda m: F.gaussian_nll_loss(m, y, 0.7),
                [mu])
    assert_same(a, b, torch.float64)
    with pytest.raises(ValueError, match="non-negative"):
        mt.gaussian_nll_loss(mu, y, -torch.ones(10, 3, dtype=torch.float64))


# ---- logsumexp, log_softmax ---------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim,keepdim", [(1, False), (-1, True), (0, False), ((0, 2), False),
                                         ((0, 1, 2), False), ((0, 1, 2), True),
                                         ((1, 2), True)])
def test_logsumexp(dtype, dim, keepdim):
    x = randn(6, 7, 8, dtype=dtype, scale=20)
    a, b = both(lambda z: mt.logsumexp(z, dim, keepdim=keepdim),
                lambda z: torch.logsumexp(z, dim, keepdim=keepdim), [x])
    assert_same(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1, 2])
def test_log_softmax(dtype, dim):
    x = randn(5, 9, 4, dtype=dtype, scale=10)
    a, b = both(lambda z: mt.log_softmax(z, dim=dim), lambda z: F.log_softmax(z, dim=dim), [x])
    assert_same(a, b, dtype)
    x32 = randn(5, 9, dtype=torch.float32)
    torch.testing.assert_close(mt.log_softmax(x32, 1, dtype=torch.float64),
                               F.log_softmax(x32, 1, dtype=torch.float64))


# ---- memory: zero-copy, non-contiguous, devices, dtypes -----------------------------------

def test_contiguous_tensors_reach_the_kernel_without_a_copy(monkeypatch):
    seen = {}
    real = maxlik._core._softmax_ce_index

    def spy(z, t, *args):
        seen["z"] = z.ctypes.data
        if args[-2] is not None:
            seen["g"] = args[-2].ctypes.data
        return real(z, t, *args)

    monkeypatch.setattr(maxlik._core, "_softmax_ce_index", spy)
    x = randn(64, 10, dtype=torch.float32)
    y = torch.randint(0, 10, (64,))
    loss = mt.cross_entropy(x, y)
    assert seen["z"] == x.data_ptr()
    loss.backward()
    # the gradient the kernel wrote is the one autograd received: no copy either way
    assert x.grad is not None and seen["g"] == x.grad.data_ptr()
    # the numpy-facing function takes tensors (requiring grad or not) without a copy
    seen.clear()
    loss_np = maxlik.softmax_cross_entropy(x, y)
    assert seen["z"] == x.data_ptr()
    assert isinstance(loss_np, np.floating)
    np.testing.assert_allclose(loss_np, loss.item(), rtol=1e-6)


def test_numpy_functions_accept_cpu_tensors(monkeypatch):
    x = randn(8, 5)
    np.testing.assert_allclose(maxlik.logsumexp(x, axis=1),
                               torch.logsumexp(x, 1).detach().numpy(), rtol=1e-13)
    np.testing.assert_allclose(maxlik.log_softmax(x, axis=0),
                               F.log_softmax(x, 0).detach().numpy(), rtol=1e-13)
    t = torch.rand(8, 5, dtype=torch.float64)
    np.testing.assert_allclose(maxlik.binary_cross_entropy_with_logits(x, t),
                               F.binary_cross_entropy_with_logits(x, t).item(), rtol=1e-13)
    with pytest.raises(TypeError, match="meta"):
        maxlik.logsumexp(torch.empty(3, device="meta"))
    with pytest.raises(TypeError, match="bfloat16"):
        maxlik.logsumexp(torch.ones(3, dtype=torch.bfloat16))


def test_non_contiguous_input_is_copied_and_correct():
    base = randn(10, 24)
    x = base.detach()[:, ::2].t().requires_grad_(True)  # (12, 10), non-contiguous
    assert not x.is_contiguous()
    y = torch.randint(0, 10, (12,))
    a, b = both(lambda z: mt.cross_entropy(z.t().t(), y), lambda z: F.cross_entropy(z, y), [x])
    assert_same(a, b, torch.float64)
    loss = mt.cross_entropy(x, y)
    loss.backward()
    torch.testing.assert_close(x.grad, torch.autograd.grad(F.cross_entropy(x, y), x)[0])


def test_devices_and_dtypes_are_refused_clearly():
    meta = torch.empty(4, 3, device="meta")
    with pytest.raises(TypeError, match=r"device meta.*CPU tensors only.*\.cpu\(\)"):
        mt.cross_entropy(meta, torch.zeros(4, dtype=torch.long))
    with pytest.raises(TypeError, match=r"float16.*float32"):
        mt.log_softmax(torch.zeros(4, 3, dtype=torch.float16), 1)
    with pytest.raises(TypeError, match="floating-point"):
        mt.logsumexp(torch.zeros(4, 3, dtype=torch.int64), 1)
    with pytest.raises(TypeError, match="torch.Tensor"):
        mt.cross_entropy(np.zeros((4, 3)), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="weight requires grad"):
        mt.cross_entropy(randn(4, 3), torch.zeros(4, dtype=torch.long),
                         weight=torch.ones(3, dtype=torch.float64, requires_grad=True))
    with pytest.raises(ValueError, match=r"\[0, 3\)|outside|class"):
        mt.cross_entropy(randn(4, 3), torch.tensor([0, 1, 5, 2]))


# ---- autograd -------------------------------------------------------------------------------

def test_double_backward_raises():
    x = randn(6, 4)
    y = torch.randint(0, 4, (6,))
    t = torch.rand(6, 4, dtype=torch.float64)
    for loss in (mt.cross_entropy(x, y), mt.binary_cross_entropy_with_logits(x, t),
                 mt.gaussian_nll_loss(x, t, torch.ones(6, 4, dtype=torch.float64)),
                 mt.logsumexp(x, 1).sum(), mt.log_softmax(x, 1).sum()):
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        with pytest.raises(RuntimeError, match="differentiable once.*double backward"):
            g.sum().backward()


def test_backward_twice_with_retain_graph_gives_the_same_gradient():
    x = randn(30, 5)
    y = torch.randint(0, 5, (30,))
    t = torch.rand(30, 5, dtype=torch.float64)
    for f in (lambda z: mt.cross_entropy(z, y), lambda z: mt.binary_cross_entropy_with_logits(z, t)):
        loss = f(x)
        (g1,) = torch.autograd.grad(loss, x, retain_graph=True)
        (g2,) = torch.autograd.grad(loss, x)
        torch.testing.assert_close(g1, g2, rtol=0, atol=0)


def test_a_training_loop_follows_torchs():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(256, 20, generator=g)
    y = (X[:, :3].argmax(1) + (X[:, 3] > 1).long()) % 4
    params = {}
    for name, loss_fn in (("maxlik", mt.cross_entropy), ("torch", F.cross_entropy)):
        torch.manual_seed(1)
        model = torch.nn.Sequential(torch.nn.Linear(20, 32), torch.nn.ReLU(),
                                    torch.nn.Linear(32, 4))
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        for _ in range(20):
            opt.zero_grad()
            loss = loss_fn(model(X), y, label_smoothing=0.05)
            loss.backward()
            opt.step()
        params[name] = [p.detach() for p in model.parameters()]
    for a, b in zip(params["maxlik"], params["torch"]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_non_finite_rows():
    inf = float("inf")
    x = torch.tensor([[-inf, 1.0, 2.0], [-inf, -inf, -inf], [3.0, -inf, inf]], dtype=torch.float64)
    torch.testing.assert_close(mt.logsumexp(x, 1), torch.logsumexp(x, 1))
    ours, theirs = mt.log_softmax(x, 1), F.log_softmax(x, 1)
    torch.testing.assert_close(ours[:2], theirs[:2], equal_nan=True)
    # documented departure: a +inf row follows scipy (NaN at +inf, -inf elsewhere)
    assert torch.isnan(ours[2, 2]) and ours[2, 0] == -inf and ours[2, 1] == -inf
    # dim=() reduces every dimension; 0-d input is its own logsumexp
    y = randn(3, 4, grad=False)
    torch.testing.assert_close(mt.logsumexp(y, ()), torch.logsumexp(y.reshape(-1), 0))
    assert float(mt.logsumexp(torch.tensor(2.0, dtype=torch.float64), 0)) == 2.0
    with pytest.raises(IndexError, match="out of range"):
        mt.logsumexp(y, 2)
