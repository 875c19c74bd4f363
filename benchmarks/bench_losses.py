"""Loss kernels vs torch CPU (and a numpy reference), same data, same thread count.

Run:  python -m pytest benchmarks/bench_losses.py --benchmark-only
Compare medians within a group.
"""
import numpy as np
import pytest

import maxlik

N, C = 262_144, 128


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(N, C)).astype(np.float32) * 3
    y = rng.integers(0, C, N)
    return z, y


@pytest.mark.benchmark(group="softmax_ce_262144x128_f32_loss+grad")
def test_maxlik_softmax_ce(benchmark, data):
    z, y = data
    benchmark.pedantic(lambda: maxlik.softmax_cross_entropy(z, y, return_grad=True),
                       rounds=15, warmup_rounds=2)


@pytest.mark.benchmark(group="softmax_ce_262144x128_f32_loss+grad")
def test_maxlik_softmax_ce_grad_out(benchmark, data):
    z, y = data
    g = np.empty_like(z)
    benchmark.pedantic(lambda: maxlik.softmax_cross_entropy(z, y, grad_out=g),
                       rounds=15, warmup_rounds=2)


@pytest.mark.benchmark(group="softmax_ce_262144x128_f32_loss+grad")
def test_torch_cross_entropy_fwd_bwd(benchmark, data):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(maxlik.get_num_threads())
    z, y = data
    zt = torch.from_numpy(z)
    yt = torch.from_numpy(y)

    def run():
        x = zt.detach().requires_grad_()
        loss = torch.nn.functional.cross_entropy(x, yt)
        loss.backward()
        return loss.item(), x.grad

    benchmark.pedantic(run, rounds=9, warmup_rounds=1)


@pytest.mark.benchmark(group="softmax_ce_262144x128_f32_loss+grad")
def test_numpy_reference(benchmark, data):
    z, y = data

    def run():
        m = z.max(axis=1, keepdims=True)
        e = np.exp(z - m)
        s = e.sum(axis=1, keepdims=True)
        loss = np.mean(np.log(s[:, 0]) + m[:, 0] - z[np.arange(N), y])
        g = e / s
        g[np.arange(N), y] -= 1
        g /= N
        return loss, g

    benchmark.pedantic(run, rounds=5, warmup_rounds=1)


@pytest.fixture(scope="module")
def bce_data():
    rng = np.random.default_rng(1)
    x = (rng.normal(size=(N, 32)) * 4).astype(np.float32)
    t = rng.uniform(size=(N, 32)).astype(np.float32)
    return x, t


@pytest.mark.benchmark(group="bce_with_logits_262144x32_f32_loss+grad")
def test_maxlik_bce(benchmark, bce_data):
    x, t = bce_data
    benchmark.pedantic(lambda: maxlik.binary_cross_entropy_with_logits(x, t, return_grad=True),
                       rounds=15, warmup_rounds=2)


@pytest.mark.benchmark(group="bce_with_logits_262144x32_f32_loss+grad")
def test_torch_bce(benchmark, bce_data):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(maxlik.get_num_threads())
    x, t = bce_data
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)

    def run():
        a = xt.detach().requires_grad_()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(a, tt)
        loss.backward()
        return loss.item(), a.grad

    benchmark.pedantic(run, rounds=9, warmup_rounds=1)
