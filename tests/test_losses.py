"""Loss kernels: torch semantics (autograd), finite differences, identities, bad input.

The torch comparisons go through the ``torch_ref`` fixture (tests/_torch_ref.py): live
when torch is installed, else against torch outputs recorded in tests/data/torch_refs.npz
(regenerate with scripts/record_torch_refs.py). Each builds torch's result in a local
``build(torch, **inputs)`` and feeds maxlik the inputs ``torch_ref.call`` hands back.
"""
import math

import numpy as np
import pytest

import maxlik
from maxlik import (
    binary_cross_entropy_with_logits,
    gaussian_nll,
    mse,
    softmax_cross_entropy,
)
from _torch_ref import torch_ref  # noqa: F401  (fixture)


def _t(torch, a, grad=False):
    return torch.tensor(np.asarray(a), dtype=torch.float64, requires_grad=grad)


def _fd_grad(f, x, h=1e-6):
    """Central finite differences of scalar f at x (float64)."""
    g = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"])
    for _ in it:
        i = it.multi_index
        xp = x.copy()
        xm = x.copy()
        xp[i] += h
        xm[i] -= h
        g[i] = (f(xp) - f(xm)) / (2 * h)
    return g


def _rel(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)) if a.size else 0.0


# ---------------------------------------------------------------- softmax CE vs torch
# Sizes: torch's outputs for these comparisons are recorded in tests/data for runs without
# torch, so each array is as small as the property under test allows. Weights, label
# smoothing, ignore_index and the reduction are per-row arithmetic plus one final scale,
# checked within one row block (kRowBlock = 512 rows); the row-block split is checked in
# float64 with every option on (test_ce_index_row_blocks_match_torch; float32 runs the same
# template) and for the probability-target kernel (two blocks).
def _check_ce_index_vs_torch(torch_ref, rng, N, reduction, smoothing, weighted):
    C = 9
    z = rng.normal(size=(N, C)) * 4
    y = rng.integers(0, C, N)
    y[::7] = -100
    w = rng.uniform(0.2, 3.0, C) if weighted else None

    def build(torch, z, y, w):
        zt = _t(torch, z, grad=True)
        ref = torch.nn.functional.cross_entropy(
            zt, torch.tensor(y), weight=None if w is None else _t(torch, w),
            label_smoothing=smoothing, reduction=reduction)
        ref.sum().backward()
        return {"loss": ref, "grad": zt.grad}

    inp, ref = torch_ref.call("ce", build, z=z, y=y, w=w)
    loss, grad = softmax_cross_entropy(inp.z, inp.y, weight=inp.w, label_smoothing=smoothing,
                                       reduction=reduction, return_grad=True)
    assert _rel(loss, ref.loss) < 1e-6
    np.testing.assert_allclose(grad, ref.grad, rtol=1e-6, atol=1e-12)
    assert np.all(grad[inp.y == -100] == 0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("smoothing", [0.0, 0.15])
@pytest.mark.parametrize("weighted", [False, True])
def test_ce_index_matches_torch(torch_ref, rng, reduction, smoothing, weighted):
    _check_ce_index_vs_torch(torch_ref, rng, 200, reduction, smoothing, weighted)


def test_ce_index_row_blocks_match_torch(torch_ref, rng):
    # three row blocks (512 + 512 + 76): per-block sums merged, then scaled by the weights
    _check_ce_index_vs_torch(torch_ref, rng, 1100, "mean", 0.15, True)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ce_prob_targets_match_torch(torch_ref, rng, reduction):
    N, C = 520, 6  # two row blocks (512 + 8)
    z = rng.normal(size=(N, C)) * 3
    t = rng.dirichlet(np.ones(C), N)
    t[0] = 0.0
    t[0, 2] = 1.0  # a one-hot row among the soft rows
    w = rng.uniform(0.5, 2.0, C)
    for key, weight, ls in [("plain", None, 0.0), ("weighted_smoothed", w, 0.2)]:
        def build(torch, z, t, weight):
            zt = _t(torch, z, grad=True)
            ref = torch.nn.functional.cross_entropy(
                zt, _t(torch, t), weight=None if weight is None else _t(torch, weight),
                label_smoothing=ls, reduction=reduction)
            ref.sum().backward()
            return {"loss": ref, "grad": zt.grad}

        inp, ref = torch_ref.call(key, build, z=z, t=t, weight=weight)
        loss, grad = softmax_cross_entropy(inp.z, inp.t, weight=inp.weight, label_smoothing=ls,
                                           reduction=reduction, return_grad=True)
        assert _rel(loss, ref.loss) < 1e-6
        np.testing.assert_allclose(grad, ref.grad, rtol=1e-6, atol=1e-12)


def test_ce_float32_matches_torch(torch_ref, rng):
    N, C = 300, 37  # 37 classes: SIMD body and tail in float32
    z = (rng.normal(size=(N, C)) * 5).astype(np.float32)
    y = rng.integers(0, C, N)

    def build(torch, z, y):
        zt = torch.tensor(z, requires_grad=True)
        ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
        ref.backward()
        return {"loss": ref, "grad": zt.grad}

    inp, ref = torch_ref.call("ce", build, z=z, y=y)
    assert ref.loss.dtype == np.float32 and ref.grad.dtype == np.float32
    loss, grad = softmax_cross_entropy(inp.z, inp.y, return_grad=True)
    assert loss.dtype == np.float32 and grad.dtype == np.float32
    assert abs(float(loss) - float(ref.loss)) < 1e-5 * abs(float(ref.loss))
    np.testing.assert_allclose(grad, ref.grad, rtol=1e-4, atol=1e-9)


def _torch_ce_mean(torch, z, y):
    """torch's mean cross-entropy of float64 logits z and index targets y, and its gradient."""
    zt = _t(torch, z, grad=True)
    ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y))
    ref.backward()
    return {"loss": ref, "grad": zt.grad}


def test_ce_all_ignored_mean_is_nan_like_torch(torch_ref):
    z = np.array([[1.0, 2.0, 3.0], [0.0, 1.0, 2.0]])
    y = np.array([-100, -100])

    inp, ref = torch_ref.call("ce", _torch_ce_mean, z=z, y=y)
    loss, grad = softmax_cross_entropy(inp.z, inp.y, return_grad=True)
    assert math.isnan(loss) and math.isnan(float(ref.loss))
    np.testing.assert_array_equal(grad, ref.grad)  # zeros
    assert softmax_cross_entropy(inp.z, inp.y, reduction="sum") == 0


def test_ce_custom_ignore_index(rng):
    z = rng.normal(size=(5, 4))
    y = np.array([0, 3, 2, 3, 1])
    loss, grad = softmax_cross_entropy(z, y, ignore_index=3, reduction="none", return_grad=True)
    assert loss[1] == 0 and loss[3] == 0
    assert np.all(grad[[1, 3]] == 0)
    ref = softmax_cross_entropy(z[[0, 2, 4]], y[[0, 2, 4]])
    assert softmax_cross_entropy(z, y, ignore_index=3) == pytest.approx(float(ref), rel=1e-14)


# ---------------------------------------------------------------- finite differences
@pytest.mark.parametrize("kind", ["index", "prob"])
def test_ce_gradient_finite_differences(rng, kind):
    N, C = 6, 5
    z = rng.normal(size=(N, C))
    w = rng.uniform(0.5, 2.0, C)
    if kind == "index":
        t = rng.integers(0, C, N)
        t[2] = -100
    else:
        t = rng.dirichlet(np.ones(C), N)
    f = lambda zz: float(softmax_cross_entropy(zz, t, weight=w, label_smoothing=0.1))
    _, g = softmax_cross_entropy(z, t, weight=w, label_smoothing=0.1, return_grad=True)
    np.testing.assert_allclose(g, _fd_grad(f, z), rtol=1e-6, atol=1e-9)


def test_ce_identity_cross_entropy_is_entropy_plus_kl(rng):
    z = rng.normal(size=(50, 8)) * 2
    t = rng.dirichlet(np.ones(8), 50)
    logp = z - z.max(1, keepdims=True)
    logp -= np.log(np.exp(logp).sum(1, keepdims=True))
    H = -(t * np.log(t)).sum(1)
    KL = (t * (np.log(t) - logp)).sum(1)
    np.testing.assert_allclose(softmax_cross_entropy(z, t, reduction="none"), H + KL, rtol=1e-12)


def test_ce_large_logits_stable(rng):
    z = np.array([[1000.0, 0.0, -1000.0], [-1e4, 1e4, 0.0]])
    loss, grad = softmax_cross_entropy(z, np.array([1, 1]), reduction="none", return_grad=True)
    np.testing.assert_allclose(loss, [1000.0, 0.0], rtol=1e-15, atol=1e-300)
    np.testing.assert_allclose(grad, [[1.0, -1.0, 0.0], [0.0, 0.0, 0.0]], atol=1e-300)


# ---------------------------------------------------------------- edge cases
def test_ce_all_neg_inf_row_is_uniform_limit():
    C = 4
    z = np.full((2, C), -np.inf)
    z[1] = [0.0, 1.0, 2.0, 3.0]
    loss, grad = softmax_cross_entropy(z, np.array([2, 0]), reduction="none", return_grad=True)
    assert loss[0] == pytest.approx(math.log(C), rel=1e-15)
    np.testing.assert_allclose(grad[0], [0.25, 0.25, -0.75, 0.25], rtol=1e-15)
    assert np.all(np.isfinite(grad))
    # the same answer as any row of equal finite logits (shift invariance)
    l_eq, g_eq = softmax_cross_entropy(np.zeros((1, C)), np.array([2]), reduction="none",
                                       return_grad=True)
    assert loss[0] == l_eq[0]
    np.testing.assert_array_equal(grad[0], g_eq[0])
    # with weights and smoothing the row stays finite
    l_w, g_w = softmax_cross_entropy(z[:1], np.array([1]), weight=[1.0, 2.0, 0.5, 1.0],
                                     label_smoothing=0.3, return_grad=True, reduction="sum")
    l_e, g_e = softmax_cross_entropy(np.zeros((1, C)), np.array([1]), weight=[1.0, 2.0, 0.5, 1.0],
                                     label_smoothing=0.3, return_grad=True, reduction="sum")
    assert l_w == pytest.approx(float(l_e), rel=1e-14)
    np.testing.assert_allclose(g_w, g_e, rtol=1e-14)


def test_ce_nan_logits_poison_only_their_row(torch_ref):
    z = np.array([[0.0, np.nan, 2.0], [1.0, 2.0, 3.0]])
    y = np.array([0, 2])

    def build(torch, z, y):
        zt = _t(torch, z, grad=True)
        ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y), reduction="none")
        ref.sum().backward()
        return {"loss": ref, "grad": zt.grad}

    inp, ref = torch_ref.call("ce", build, z=z, y=y)
    loss, grad = softmax_cross_entropy(inp.z, inp.y, reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.all(np.isnan(grad[0]))
    assert np.isnan(ref.loss[0]) and np.all(np.isnan(ref.grad[0]))
    np.testing.assert_allclose(loss[1], ref.loss[1], rtol=1e-14)
    np.testing.assert_allclose(grad[1], ref.grad[1], rtol=1e-14)
    assert np.isnan(softmax_cross_entropy(inp.z, inp.y))


def test_ce_neg_inf_at_target_is_infinite_loss_finite_grad(torch_ref):
    z = np.array([[-np.inf, 0.0, 1.0]])
    y = np.array([0])

    inp, ref = torch_ref.call("ce", _torch_ce_mean, z=z, y=y)
    loss, grad = softmax_cross_entropy(inp.z, inp.y, return_grad=True)
    assert loss == np.inf and ref.loss == np.inf
    assert np.all(np.isfinite(ref.grad))  # torch's limit gradient, not NaN
    np.testing.assert_allclose(grad, ref.grad, rtol=1e-14)


def test_ce_neg_inf_logit_with_zero_target_mass_is_ignored():
    z = np.array([[-np.inf, 0.0, 1.0]])
    t = np.array([[0.0, 0.5, 0.5]])
    loss, grad = softmax_cross_entropy(z, t, return_grad=True)
    p = np.exp([0.0, 1.0]) / np.exp([0.0, 1.0]).sum()
    assert loss == pytest.approx(-0.5 * np.log(p).sum(), rel=1e-14)
    np.testing.assert_allclose(grad, [[0.0, p[0] - 0.5, p[1] - 0.5]], rtol=1e-14)
    # zero class weight on a -inf logit, with smoothing
    l2 = softmax_cross_entropy(z, np.array([2]), weight=[0.0, 1.0, 1.0], label_smoothing=0.1)
    assert np.isfinite(l2)


def test_ce_thread_count_independent(threads, rng):
    z = rng.normal(size=(5000, 33)).astype(np.float32)
    y = rng.integers(0, 33, 5000)
    threads(1)
    l1, g1 = softmax_cross_entropy(z, y, label_smoothing=0.1, return_grad=True)
    threads(2)
    l2, g2 = softmax_cross_entropy(z, y, label_smoothing=0.1, return_grad=True)
    assert l1 == l2
    np.testing.assert_array_equal(g1, g2)
    x = rng.normal(size=40000)
    t = rng.uniform(size=40000)
    threads(1)
    b1 = binary_cross_entropy_with_logits(x, t, return_grad=True)
    n1 = gaussian_nll(x, t, t + 0.1, return_grad=True)
    threads(2)
    b2 = binary_cross_entropy_with_logits(x, t, return_grad=True)
    n2 = gaussian_nll(x, t, t + 0.1, return_grad=True)
    assert b1[0] == b2[0] and n1[0] == n2[0]
    np.testing.assert_array_equal(b1[1], b2[1])
    np.testing.assert_array_equal(n1[2], n2[2])


def test_ce_grad_out_buffer_is_used(rng):
    z = rng.normal(size=(40, 5)).astype(np.float32)
    y = rng.integers(0, 5, 40)
    buf = np.full_like(z, 7.0)
    loss, g = softmax_cross_entropy(z, y, grad_out=buf)
    assert g is buf
    _, ref = softmax_cross_entropy(z, y, return_grad=True)
    np.testing.assert_array_equal(buf, ref)
    with pytest.raises(ValueError, match="grad_out"):
        softmax_cross_entropy(z, y, grad_out=np.empty((40, 5)))  # float64 for float32 logits
    with pytest.raises(ValueError, match="grad_out"):
        softmax_cross_entropy(z, y, grad_out=np.empty((5, 40), np.float32).T)
    with pytest.raises(TypeError, match="grad_out"):
        softmax_cross_entropy(z, y, grad_out=[0.0])


def test_ce_empty_and_one_class():
    loss = softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int))
    assert math.isnan(loss)
    assert softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=int), reduction="sum") == 0
    l1, g1 = softmax_cross_entropy(np.array([[3.0], [-1.0]]), np.array([0, 0]), return_grad=True)
    assert l1 == 0 and np.all(g1 == 0)


# ---------------------------------------------------------------- bad input
def test_ce_bad_input(rng):
    z = rng.normal(size=(4, 3))
    with pytest.raises(ValueError, match="target.*got 3 at row 1"):
        softmax_cross_entropy(z, np.array([0, 3, 1, 1]))
    with pytest.raises(ValueError, match="target.*got -1 at row 2"):
        softmax_cross_entropy(z, np.array([0, 1, -1, 1]))
    with pytest.raises(ValueError, match="target"):
        softmax_cross_entropy(z, np.array([0, 1, 1]))  # wrong length
    t = np.full((4, 3), 1 / 3)
    t[2] = [1.2, -0.2, 0.0]
    with pytest.raises(ValueError, match="target.*non-negative.*row 2"):
        softmax_cross_entropy(z, t)
    t[2] = [0.5, 0.2, 0.2]
    with pytest.raises(ValueError, match="target.*sum to 1; row 2"):
        softmax_cross_entropy(z, t)
    with pytest.raises(ValueError, match="target"):
        softmax_cross_entropy(z, np.full((4, 2), 0.5))
    with pytest.raises(ValueError, match="target"):
        softmax_cross_entropy(z, np.zeros(4))  # float 1-D labels
    with pytest.raises(ValueError, match="weight"):
        softmax_cross_entropy(z, np.array([0, 1, 1, 1]), weight=[1.0, 2.0])
    with pytest.raises(ValueError, match="logits"):
        softmax_cross_entropy(z.ravel(), np.array([0]))
    with pytest.raises(ValueError, match="label_smoothing"):
        softmax_cross_entropy(z, np.array([0, 1, 1, 1]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        softmax_cross_entropy(z, np.array([0, 1, 1, 1]), reduction="avg")
    with pytest.raises(TypeError, match="logits"):
        softmax_cross_entropy(z.astype(complex), np.array([0, 1, 1, 1]))
    with pytest.raises(TypeError, match="target"):
        softmax_cross_entropy(z, np.array(["a", "b", "c", "d"]))


# ---------------------------------------------------------------- BCE
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_bce_matches_torch(torch_ref, rng, reduction):
    x = rng.normal(size=(100, 4)) * 10  # elementwise: all in one block (kElemBlock)
    x[0] = [1e4, -1e4, 5e3, -5e3]
    t = rng.uniform(size=(100, 4))
    t[0] = [0.0, 1.0, 1.0, 0.0]

    def build(torch, x, t, w, pw):
        xt = _t(torch, x, grad=True)
        ref = torch.nn.functional.binary_cross_entropy_with_logits(
            xt, _t(torch, t), weight=None if w is None else _t(torch, w),
            pos_weight=None if pw is None else _t(torch, pw), reduction=reduction)
        ref.sum().backward()
        return {"loss": ref, "grad": xt.grad}

    for key, w, pw in [("plain", None, None),
                       ("row_weight_pos_weight", rng.uniform(0.1, 2, (100, 1)),
                        rng.uniform(0.5, 3, 4)),
                       ("elementwise_weight", rng.uniform(0.1, 2, (100, 4)), None)]:
        inp, ref = torch_ref.call(key, build, x=x, t=t, w=w, pw=pw)
        loss, grad = binary_cross_entropy_with_logits(inp.x, inp.t, weight=inp.w,
                                                      pos_weight=inp.pw, reduction=reduction,
                                                      return_grad=True)
        assert np.all(np.isfinite(loss))
        assert _rel(loss, ref.loss) < 1e-6
        np.testing.assert_allclose(grad, ref.grad, rtol=1e-6, atol=1e-15)


def test_bce_extreme_logits_exact():
    x = np.array([1e4, -1e4, 800.0, -800.0])
    t = np.array([0.0, 1.0, 1.0, 0.0])
    loss, grad = binary_cross_entropy_with_logits(x, t, reduction="none", return_grad=True)
    np.testing.assert_array_equal(loss, [1e4, 1e4, 0.0, 0.0])
    np.testing.assert_array_equal(grad, [1.0, -1.0, 0.0, 0.0])
    x32 = x.astype(np.float32)
    l32 = binary_cross_entropy_with_logits(x32, t.astype(np.float32), reduction="none")
    assert l32.dtype == np.float32
    np.testing.assert_array_equal(l32, [1e4, 1e4, 0.0, 0.0])


def test_bce_gradient_finite_differences(rng):
    x = rng.normal(size=(5, 3)) * 3
    t = rng.uniform(size=(5, 3))
    w = rng.uniform(0.5, 2, (5, 3))
    pw = rng.uniform(0.5, 2, 3)
    f = lambda xx: float(binary_cross_entropy_with_logits(xx, t, weight=w, pos_weight=pw))
    _, g = binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw, return_grad=True)
    np.testing.assert_allclose(g, _fd_grad(f, x), rtol=1e-6, atol=1e-10)


def test_bce_mpmath_reference():
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    xs = [-700.0, -35.0, -1e-8, 0.0, 3e-5, 17.0, 40.0, 710.0]
    t = 0.3
    got = binary_cross_entropy_with_logits(np.array(xs), np.full(len(xs), t), reduction="none")
    for x, g in zip(xs, got):
        s = 1 / (1 + mpmath.e ** (-mpmath.mpf(x)))
        ref = -(t * mpmath.log(s) + (1 - t) * mpmath.log(1 - s))
        assert abs(g - float(ref)) <= 4e-16 * max(1.0, abs(float(ref)))


def test_bce_bad_input():
    with pytest.raises(ValueError, match="target"):
        binary_cross_entropy_with_logits(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="pos_weight"):
        binary_cross_entropy_with_logits(np.zeros((3, 2)), np.zeros((3, 2)), pos_weight=[1, 2, 3])
    with pytest.raises(ValueError, match="weight"):
        binary_cross_entropy_with_logits(np.zeros((3, 2)), np.zeros((3, 2)), weight=np.ones(3))


def test_bce_nan_propagates_elementwise():
    loss, g = binary_cross_entropy_with_logits(np.array([np.nan, 1.0]), np.array([1.0, 1.0]),
                                               reduction="none", return_grad=True)
    assert np.isnan(loss[0]) and np.isnan(g[0]) and np.isfinite(loss[1]) and np.isfinite(g[1])


# ---------------------------------------------------------------- Gaussian NLL
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("full", [False, True])
@pytest.mark.parametrize("var_shape", ["same", "drop_last", "last_1", "middle_1"])
def test_gaussian_nll_matches_torch(torch_ref, rng, reduction, full, var_shape):
    shape = (20, 3, 5)
    mu = rng.normal(size=shape)
    y = rng.normal(size=shape)
    vshape = {"same": shape, "drop_last": (20, 3), "last_1": (20, 3, 1),
              "middle_1": (20, 1, 5)}[var_shape]
    var = rng.uniform(0.01, 2.0, vshape)
    var.ravel()[:3] = [0.0, 1e-9, 5e-7]  # below eps: clamped

    def build(torch, mu, y, var):
        mt, vt = _t(torch, mu, grad=True), _t(torch, var, grad=True)
        ref = torch.nn.functional.gaussian_nll_loss(mt, _t(torch, y), vt, full=full, eps=1e-6,
                                                    reduction=reduction)
        ref.sum().backward()
        return {"loss": ref, "grad_mu": mt.grad, "grad_var": vt.grad}

    inp, ref = torch_ref.call("nll", build, mu=mu, y=y, var=var)
    loss, gm, gv = gaussian_nll(inp.mu, inp.y, inp.var, full=full, reduction=reduction,
                                return_grad=True)
    assert _rel(loss, ref.loss) < 1e-6
    np.testing.assert_allclose(gm, ref.grad_mu, rtol=1e-6, atol=1e-12)
    assert gv.shape == inp.var.shape
    np.testing.assert_allclose(gv, ref.grad_var, rtol=1e-6, atol=1e-12)


def test_gaussian_nll_clamped_variance_gradient_like_torch():
    # torch clamps under no_grad, so d/dvar is the derivative at eps, not zero.
    eps = 1e-3
    _, _, gv = gaussian_nll(np.array([0.0]), np.array([0.0]), np.array([0.0]), eps=eps,
                            return_grad=True)
    assert gv[0] == pytest.approx(0.5 / eps, rel=1e-12)


def test_gaussian_nll_gradient_finite_differences(rng):
    mu = rng.normal(size=(4, 3))
    y = rng.normal(size=(4, 3))
    var = rng.uniform(0.5, 2.0, 4)
    _, gm, gv = gaussian_nll(mu, y, var, full=True, return_grad=True)
    np.testing.assert_allclose(gm, _fd_grad(lambda m: float(gaussian_nll(m, y, var, full=True)), mu),
                               rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(gv, _fd_grad(lambda v: float(gaussian_nll(mu, y, v, full=True)), var),
                               rtol=1e-6, atol=1e-10)


def test_gaussian_nll_scalar_var_and_float32(rng):
    mu = rng.normal(size=10).astype(np.float32)
    y = rng.normal(size=10).astype(np.float32)
    loss, gm, gv = gaussian_nll(mu, y, 0.5, return_grad=True)
    assert loss.dtype == np.float32 and gm.dtype == np.float32
    d = mu.astype(np.float64) - y
    assert float(loss) == pytest.approx(np.mean(0.5 * (np.log(0.5) + d * d / 0.5)), rel=1e-6)
    assert float(gv) == pytest.approx(np.mean(0.5 * (1 / 0.5 - d * d / 0.25)), rel=1e-5)


def test_gaussian_nll_is_scipy_logpdf():
    scipy_stats = pytest.importorskip("scipy.stats")
    mu, y, var = np.array([0.3, -1.0]), np.array([1.0, 2.0]), np.array([0.7, 3.0])
    ref = -scipy_stats.norm.logpdf(y, mu, np.sqrt(var))
    np.testing.assert_allclose(gaussian_nll(mu, y, var, full=True, reduction="none"), ref,
                               rtol=1e-14)


def test_gaussian_nll_bad_input():
    with pytest.raises(ValueError, match="var must be non-negative"):
        gaussian_nll(np.zeros(3), np.zeros(3), np.array([1.0, -0.1, 1.0]))
    with pytest.raises(ValueError, match="var"):
        gaussian_nll(np.zeros((3, 4)), np.zeros((3, 4)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="target"):
        gaussian_nll(np.zeros((3, 4)), np.zeros((3, 3)), np.ones((3, 4)))


# ---------------------------------------------------------------- MSE
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_torch(torch_ref, rng, reduction):
    x, y = rng.normal(size=(30, 7)), rng.normal(size=(30, 7))

    def build(torch, x, y):
        xt = _t(torch, x, grad=True)
        ref = torch.nn.functional.mse_loss(xt, _t(torch, y), reduction=reduction)
        ref.sum().backward()
        return {"loss": ref, "grad": xt.grad}

    inp, ref = torch_ref.call("mse", build, x=x, y=y)
    loss, g = mse(inp.x, inp.y, reduction=reduction, return_grad=True)
    assert _rel(loss, ref.loss) < 1e-12
    np.testing.assert_allclose(g, ref.grad, rtol=1e-12)
    with pytest.raises(ValueError, match="target"):
        mse(inp.x, inp.y[:, :3])


def test_losses_exported():
    for name in ["softmax_cross_entropy", "binary_cross_entropy_with_logits", "gaussian_nll", "mse",
                 "vae_loss"]:
        assert getattr(maxlik, name) is getattr(maxlik.losses, name)


# ---------------------------------------------------------------- VAE loss
def _kl_reference(mu, logvar, return_grad=False):
    """Closed-form KL(N(mu, e^logvar) || N(0, I)) per row (Kingma & Welling, app. B)."""
    mu = np.asarray(mu, dtype=np.float64)
    logvar = np.asarray(logvar, dtype=np.float64)
    kl = 0.5 * np.sum(mu**2 + np.expm1(logvar) - logvar, axis=-1)
    if return_grad:
        return kl, mu.copy(), 0.5 * np.expm1(logvar)
    return kl


@pytest.fixture
def kl_available(monkeypatch):
    """Use maxlik.divergences.kl_to_standard_normal once it has landed; until then a
    numpy reference of the same contract, so vae_loss's own code is still tested."""
    if not hasattr(maxlik.divergences, "kl_to_standard_normal"):
        monkeypatch.setattr(maxlik.divergences, "kl_to_standard_normal", _kl_reference,
                            raising=False)
    return maxlik.divergences.kl_to_standard_normal


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_vae_loss_matches_torch(torch_ref, rng, kl_available, reduction):
    N = 7
    x = rng.normal(size=(N, 2, 5))
    rec = rng.normal(size=(N, 2, 5))
    mu = rng.normal(size=(N, 3))
    lv = rng.normal(size=(N, 3))
    beta = 0.7

    def build(torch, x, rec, mu, lv):
        rt, mt, lt = _t(torch, rec, True), _t(torch, mu, True), _t(torch, lv, True)
        nll = torch.nn.functional.gaussian_nll_loss(
            rt, _t(torch, x), torch.full_like(rt, 0.5), full=True,
            reduction="none").reshape(len(x), -1).sum(1)
        kl = 0.5 * (mt**2 + lt.exp() - 1 - lt).sum(1)
        per = nll + beta * kl
        ref = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
        ref.sum().backward()
        return {"loss": ref, "grad_rec": rt.grad, "grad_mu": mt.grad, "grad_logvar": lt.grad}

    inp, ref = torch_ref.call("vae", build, x=x, rec=rec, mu=mu, lv=lv)
    loss, g_rec, g_mu, g_lv = maxlik.vae_loss(inp.x, inp.rec, inp.mu, inp.lv, recon_var=0.5,
                                              beta=beta, reduction=reduction, return_grad=True)
    assert _rel(loss, ref.loss) < 1e-10
    np.testing.assert_allclose(g_rec, ref.grad_rec, rtol=1e-10)
    np.testing.assert_allclose(g_mu, ref.grad_mu, rtol=1e-10)
    np.testing.assert_allclose(g_lv, ref.grad_logvar, rtol=1e-10, atol=1e-15)


def test_vae_loss_finite_differences_and_bad_input(rng, kl_available):
    x = rng.normal(size=(4, 6))
    rec = rng.normal(size=(4, 6))
    mu = rng.normal(size=(4, 2))
    lv = rng.normal(size=(4, 2)) * 0.5
    _, g_rec, g_mu, g_lv = maxlik.vae_loss(x, rec, mu, lv, return_grad=True)
    np.testing.assert_allclose(g_rec, _fd_grad(lambda r: float(maxlik.vae_loss(x, r, mu, lv)), rec),
                               rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(g_mu, _fd_grad(lambda m: float(maxlik.vae_loss(x, rec, m, lv)), mu),
                               rtol=1e-6, atol=1e-10)
    np.testing.assert_allclose(g_lv, _fd_grad(lambda v: float(maxlik.vae_loss(x, rec, mu, v)), lv),
                               rtol=1e-6, atol=1e-10)
    with pytest.raises(ValueError, match="reconstruction"):
        maxlik.vae_loss(x, rec[:, :3], mu, lv)
    with pytest.raises(ValueError, match="mu"):
        maxlik.vae_loss(x, rec, mu[:3], lv[:3])
    with pytest.raises(ValueError, match="logvar"):
        maxlik.vae_loss(x, rec, mu, lv[:, :1])
    with pytest.raises(ValueError, match="recon_var"):
        maxlik.vae_loss(x, rec, mu, lv, recon_var=0.0)


def test_vae_loss_with_landed_kl_to_standard_normal(rng):
    if not hasattr(maxlik.divergences, "kl_to_standard_normal"):
        pytest.skip("maxlik.divergences.kl_to_standard_normal has not landed yet")
    mu = rng.normal(size=(5, 3))
    lv = rng.normal(size=(5, 3))
    x = rng.normal(size=(5, 4))
    loss = maxlik.vae_loss(x, x, mu, lv, full=False, reduction="none")
    np.testing.assert_allclose(loss, _kl_reference(mu, lv), rtol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ce_kdim_and_unbatched_layouts_match_torch(torch_ref, rng, reduction):
    z = rng.normal(size=(3, 5, 4, 2))  # (N, C, d1, d2)
    y = rng.integers(0, 5, (3, 4, 2))
    y[0, 1, 1] = -100
    w = rng.uniform(0.5, 2, 5)

    def build_index(torch, z, y, w):
        zt = _t(torch, z, grad=True)
        ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y), weight=_t(torch, w),
                                                label_smoothing=0.1, reduction=reduction)
        ref.sum().backward()
        return {"loss": ref, "grad": zt.grad}

    inp, ref = torch_ref.call("index", build_index, z=z, y=y, w=w)
    loss, g = softmax_cross_entropy(inp.z, inp.y, weight=inp.w, label_smoothing=0.1,
                                    reduction=reduction, return_grad=True)
    assert np.shape(loss) == ref.loss.shape
    assert _rel(loss, ref.loss) < 1e-10
    assert g.shape == inp.z.shape and g.flags.c_contiguous
    np.testing.assert_allclose(g, ref.grad, rtol=1e-10, atol=1e-15)
    # probability targets in the K-dim layout (a transposed, non-contiguous view)
    t_last = rng.dirichlet(np.ones(5), (3, 4, 2))  # classes last; moved to axis 1 below

    def build_prob(torch, z, t_last):
        zt = _t(torch, z, grad=True)
        ref = torch.nn.functional.cross_entropy(zt, _t(torch, t_last.transpose(0, 3, 1, 2)),
                                                reduction=reduction)
        ref.sum().backward()
        return {"loss": ref, "grad": zt.grad}

    inp, ref = torch_ref.call("prob", build_prob, z=z, t_last=t_last)
    loss, g = softmax_cross_entropy(inp.z, inp.t_last.transpose(0, 3, 1, 2), reduction=reduction,
                                    return_grad=True)
    assert _rel(loss, ref.loss) < 1e-10
    np.testing.assert_allclose(g, ref.grad, rtol=1e-10, atol=1e-15)
    # unbatched (C,) with a scalar index target
    z1 = rng.normal(size=5)

    def build_unbatched(torch, z1, y1):
        zt = _t(torch, z1, grad=True)
        ref = torch.nn.functional.cross_entropy(zt, torch.tensor(y1), reduction=reduction)
        ref.sum().backward()
        return {"loss": ref, "grad": zt.grad}

    inp1, ref = torch_ref.call("unbatched", build_unbatched, z1=z1, y1=np.int64(3))
    assert isinstance(inp1.y1, np.int64)
    buf = np.empty(5)
    loss, g = softmax_cross_entropy(inp1.z1, inp1.y1, reduction=reduction, grad_out=buf)
    assert g is buf and np.shape(loss) == ()
    assert _rel(loss, ref.loss) < 1e-12
    np.testing.assert_allclose(g, ref.grad, rtol=1e-12)
    with pytest.raises(ValueError, match="target"):
        softmax_cross_entropy(inp.z, y[:, :2])
    with pytest.raises(ValueError, match="logits"):
        softmax_cross_entropy(np.float64(1.0), np.int64(0))


def test_ce_one_hot_probabilities_equal_index_targets(rng):
    z = rng.normal(size=(300, 6)) * 2
    y = rng.integers(0, 6, 300)
    w = rng.uniform(0.5, 2, 6)
    for ls in (0.0, 0.25):
        a, ga = softmax_cross_entropy(z, y, weight=w, label_smoothing=ls, reduction="sum",
                                      return_grad=True)
        b, gb = softmax_cross_entropy(z, np.eye(6)[y], weight=w, label_smoothing=ls,
                                      reduction="sum", return_grad=True)
        assert a == pytest.approx(float(b), rel=1e-13)
        np.testing.assert_allclose(ga, gb, rtol=1e-12, atol=1e-15)


def test_ce_prob_targets_tolerance(rng):
    z = rng.normal(size=(50, 128))
    t32 = rng.dirichlet(np.ones(128), 50).astype(np.float32)  # rounding of float32 rows
    softmax_cross_entropy(z, t32.astype(np.float64))  # accepted
    t = t32.astype(np.float64)
    t[7] *= 1.001
    with pytest.raises(ValueError, match="row 7"):
        softmax_cross_entropy(z, t)


def _ce_reference(z, y, w, ls, ignore):
    """torch.nn.functional.cross_entropy (index targets) written out in numpy."""
    N, C = z.shape
    logp = z - np.logaddexp.reduce(z, axis=1, keepdims=True)
    w = np.ones(C) if w is None else w
    keep = y != ignore
    yk = np.where(keep, y, 0)
    nll = -w[yk] * logp[np.arange(N), yk] * keep
    smooth = -(logp * w).sum(1) * keep
    rows = (1 - ls) * nll + ls / C * smooth
    denom = np.sum(w[yk] * keep)
    return rows, denom


def test_ce_property_against_numpy_reference():
    hypothesis = pytest.importorskip("hypothesis")
    st = pytest.importorskip("hypothesis.strategies")

    @hypothesis.settings(max_examples=40, deadline=None)
    @hypothesis.given(N=st.integers(1, 1100), C=st.integers(1, 40), seed=st.integers(0, 2**31),
                      ls=st.sampled_from([0.0, 0.05, 0.5, 1.0]), weighted=st.booleans(),
                      scale=st.sampled_from([1e-3, 1.0, 30.0]))
    def check(N, C, seed, ls, weighted, scale):
        r = np.random.default_rng(seed)
        z = r.normal(size=(N, C)) * scale
        y = r.integers(0, C, N)
        y[r.uniform(size=N) < 0.1] = -100
        w = r.uniform(0.1, 3.0, C) if weighted else None
        rows, denom = _ce_reference(z, y, w, ls, -100)
        got = softmax_cross_entropy(z, y, weight=w, label_smoothing=ls, reduction="none")
        np.testing.assert_allclose(got, rows, rtol=1e-11, atol=1e-13)
        mean = softmax_cross_entropy(z, y, weight=w, label_smoothing=ls)
        if denom > 0:
            assert mean == pytest.approx(rows.sum() / denom, rel=1e-11, abs=1e-13)
        else:
            assert np.isnan(mean)

    check()
