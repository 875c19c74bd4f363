"""logsumexp: maxlik vs scipy.special.logsumexp vs torch.logsumexp, same data, same process.

    python -m pytest benchmarks/bench_special.py --benchmark-only --benchmark-group-by=param:case

Compare medians within a group (one group per shape/axis/dtype).
"""
import numpy as np
import pytest

import maxlik

scipy_special = pytest.importorskip("scipy.special")

SHAPES = [(1_000_000, 16), (10_000, 1_000)]
CASES = [(s, ax, dt) for s in SHAPES for ax in (-1, 0) for dt in ("float64", "float32")]
IDS = [f"{s[0]}x{s[1]}-axis{ax}-{dt}" for s, ax, dt in CASES]


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return {s: rng.normal(size=s) for s in SHAPES}


def _array(data, shape, dtype):
    return data[shape].astype(dtype)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_maxlik(benchmark, data, case):
    shape, axis, dtype = case
    x = _array(data, shape, dtype)
    benchmark.group = f"logsumexp {shape} axis={axis} {dtype}"
    benchmark(maxlik.logsumexp, x, axis=axis)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_scipy(benchmark, data, case):
    shape, axis, dtype = case
    x = _array(data, shape, dtype)
    benchmark.group = f"logsumexp {shape} axis={axis} {dtype}"
    benchmark.pedantic(scipy_special.logsumexp, args=(x,), kwargs={"axis": axis}, rounds=5, iterations=1)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_torch(benchmark, data, case):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(maxlik.get_num_threads())
    shape, axis, dtype = case
    x = torch.from_numpy(_array(data, shape, dtype))
    benchmark.group = f"logsumexp {shape} axis={axis} {dtype}"
    benchmark(torch.logsumexp, x, axis)
