"""EM for Gaussian mixtures: maxlik against sklearn.mixture.GaussianMixture.

One EM iteration = E-step + M-step from the same parameters on the same data:
maxlik ``mixture_update(mixture_statistics(X, params))`` vs scikit-learn's
``_e_step`` + ``_m_step`` (the body of its fit loop).

    python -m pytest benchmarks/bench_mixture.py --benchmark-only
    python benchmarks/bench_mixture.py          # interleaved ratio table + peak RSS
"""
import subprocess
import sys
import textwrap
import time
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import mixture_update
from maxlik._kernels import _statistics

skm = pytest.importorskip("sklearn.mixture")
datasets = pytest.importorskip("sklearn.datasets")

TYPES = ("full", "tied", "diag", "spherical")
_CACHE = {}


def _setup(ctype, N=200_000, D=16, K=16, dtype=np.float64):
    key = (ctype, N, D, K, np.dtype(dtype).name)
    if key not in _CACHE:
        X, _ = datasets.make_blobs(N, D, centers=K, random_state=0)
        X = X.astype(dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm = maxlik.GaussianMixture(K, covariance_type=ctype, max_iter=2, tol=0,
                                        init_params="random_from_data", random_state=0).fit(X)
        params = gm.parameters()
        sk = skm.GaussianMixture(K, covariance_type=ctype, reg_covar=gm.reg_covar)
        sk.weights_, sk.means_ = gm.weights_.copy(), gm.means_.copy()
        sk.covariances_ = gm.covariances_.copy()
        sk.precisions_cholesky_ = gm.precisions_cholesky_.copy()
        _CACHE[key] = (X, params, sk)
    return _CACHE[key]


def maxlik_iteration(X, params, reg_covar=1e-6):
    # the body of GaussianMixture.fit's loop (X validated once before the loop)
    return mixture_update(_statistics(X, params, None), reg_covar)


def sklearn_iteration(X, sk):
    _, log_resp = sk._e_step(X)
    sk._m_step(X, log_resp)


@pytest.mark.parametrize("ctype", TYPES)
def test_em_iteration_maxlik(benchmark, ctype):
    benchmark.group = f"em-iter-{ctype}-N200k-D16-K16"
    X, params, _ = _setup(ctype)
    benchmark(maxlik_iteration, X, params)


@pytest.mark.parametrize("ctype", TYPES)
def test_em_iteration_sklearn(benchmark, ctype):
    benchmark.group = f"em-iter-{ctype}-N200k-D16-K16"
    X, _, sk = _setup(ctype)
    benchmark(sklearn_iteration, X, sk)


@pytest.mark.benchmark(group="em-iter-full-N200k-D64-K8")
def test_em_d64_maxlik(benchmark):
    X, params, _ = _setup("full", D=64, K=8)
    benchmark(maxlik_iteration, X, params)


@pytest.mark.benchmark(group="em-iter-full-N200k-D64-K8")
def test_em_d64_sklearn(benchmark):
    X, _, sk = _setup("full", D=64, K=8)
    benchmark(sklearn_iteration, X, sk)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_em_full_dtype_maxlik(benchmark, dtype):
    benchmark.group = "em-iter-full-float32-vs-float64"
    X, params, _ = _setup("full", dtype=dtype)
    benchmark(maxlik_iteration, X, params)


_RSS_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    N, D, K, which, init = int(sys.argv[1]), 16, 16, sys.argv[2], sys.argv[3]
    rng = np.random.default_rng(0)
    centers = rng.uniform(-10, 10, size=(K, D))
    X = rng.normal(size=(N, D))
    X += centers[rng.integers(0, K, size=N)]
    import maxlik, sklearn.mixture

    def hwm_kb():
        for line in open("/proc/self/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1])

    kw = {}
    if init == "given":
        kw = dict(means_init=centers, weights_init=np.full(K, 1.0 / K),
                  precisions_init=np.repeat(np.eye(D)[None], K, axis=0))
    # Reset the peak-RSS counter to the current RSS (Linux), so the growth is the fit's.
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    base = hwm_kb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if which == "maxlik":
            maxlik.GaussianMixture(K, max_iter=5, tol=0, random_state=0, **kw).fit(X)
        else:
            sklearn.mixture.GaussianMixture(K, max_iter=5, tol=0, random_state=0, **kw).fit(X)
    print((hwm_kb() - base) / 1024)
""")


def peak_rss_growth_mb(which="maxlik", N=1_000_000, init="given"):
    """Peak-RSS growth (MB) of a 5-iteration full fit beyond the loaded input (fresh process)."""
    out = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, str(N), which, init],
                         capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def test_peak_rss_maxlik(benchmark):
    benchmark.group = "em-peak-rss-N1e6-D16-K16"
    growth = benchmark.pedantic(peak_rss_growth_mb, rounds=1, iterations=1)
    benchmark.extra_info["peak_rss_growth_mb"] = growth


def _interleaved(a, b, repeat):
    ta, tb = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t)
    return float(np.median(ta)), float(np.median(tb))


def main(repeat=5):
    print("one EM iteration, make_blobs(200_000, 16, centers=16), K=16, float64, "
          f"{maxlik.get_num_threads()} threads; median of {repeat} interleaved runs")
    for ctype in TYPES:
        X, params, sk = _setup(ctype)
        maxlik_iteration(X, params), sklearn_iteration(X, sk)
        a, b = _interleaved(lambda: maxlik_iteration(X, params), lambda: sklearn_iteration(X, sk),
                            repeat)
        print(f"  {ctype:9s} maxlik {a * 1e3:8.1f} ms  sklearn {b * 1e3:8.1f} ms  "
              f"ratio {b / a:5.1f}x", flush=True)
    X, params, sk = _setup("full", D=64, K=8)
    a, b = _interleaved(lambda: maxlik_iteration(X, params), lambda: sklearn_iteration(X, sk),
                        repeat)
    print(f"  full D=64 K=8 maxlik {a * 1e3:8.1f} ms  sklearn {b * 1e3:8.1f} ms  "
          f"ratio {b / a:5.1f}x", flush=True)
    X64, p64, _ = _setup("full")
    X32, p32, _ = _setup("full", dtype=np.float32)
    a, b = _interleaved(lambda: maxlik_iteration(X32, p32), lambda: maxlik_iteration(X64, p64),
                        repeat)
    print(f"  full float32 {a * 1e3:8.1f} ms  float64 {b * 1e3:8.1f} ms  ratio {b / a:5.2f}x",
          flush=True)
    for init in ("given", "kmeans"):
        print(f"  peak RSS growth, full fit N=1e6 D=16 K=16 (init {init}): maxlik "
              f"{peak_rss_growth_mb('maxlik', init=init):.0f} MB", flush=True)
    print(f"  peak RSS growth, sklearn (init given): {peak_rss_growth_mb('sklearn'):.0f} MB")


def per_core(repeat=3):
    """CPU time of one EM iteration, 1 thread each (maxlik threads=1, sklearn's BLAS
    limited to 1 thread): a comparison that survives a shared, loaded machine."""
    from threadpoolctl import threadpool_limits

    def cpu(fn):
        ts = []
        for _ in range(repeat):
            t = time.process_time()
            fn()
            ts.append(time.process_time() - t)
        return float(np.median(ts))

    old = maxlik.get_num_threads()
    maxlik.set_num_threads(1)
    print(f"per core: CPU seconds of one EM iteration, 1 thread each, median of {repeat}")
    try:
        with threadpool_limits(limits=1):
            cases = [(c, dict()) for c in TYPES] + [("full", dict(D=64, K=8)),
                                                    ("full", dict(dtype=np.float32))]
            for ctype, kw in cases:
                X, params, sk = _setup(ctype, **kw)
                a = cpu(lambda: maxlik_iteration(X, params))
                b = cpu(lambda: sklearn_iteration(X, sk))
                print(f"  {ctype:9s} {kw!s:28s} maxlik {a * 1e3:8.1f} ms  sklearn "
                      f"{b * 1e3:8.1f} ms  ratio {b / a:5.1f}x", flush=True)
    finally:
        maxlik.set_num_threads(old)


if __name__ == "__main__":
    if "--per-core" in sys.argv:
        per_core()
    else:
        main()
