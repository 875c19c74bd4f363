"""``maxlik bench``: maxlik against the installed peers, same data, same process.

Every case builds its data once, warms every implementation up once (thread
pools, first-touch allocations, JAX compilation), then times them in
interleaved rounds (maxlik, peer 1, peer 2, ..., maxlik, peer 1, ...) so that
all of them see the same machine load, and reports the median. The ratio
column is peer median / maxlik median (> 1 means maxlik is faster); the
strongest anchor of a case is its fastest peer.

Every maxlik row also reports the fraction of its floor that it reaches. The
floors are measured by the benchmark itself, in the same process: a streaming
read of a large array with numpy (GB/s) and numpy matmul in float64 and float32
(DGEMM / SGEMM GFLOP/s) with the same thread count. A case declares the bytes it
must move and the FLOPs it must do; its floor time is the larger of
bytes / bandwidth and FLOPs / GEMM rate, and the fraction is floor time /
maxlik time (1.0 = at the floor).

Peers, each used when installed and otherwise skipped with a note: scipy,
scikit-learn, scikit-learn-intelex (``sklearnex``), torch, jax, faiss-cpu and
pomegranate (``pip install 'maxlik[bench]'``).
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import time
import warnings
from dataclasses import dataclass, field
from functools import partial
from importlib import util
from collections.abc import Callable
from typing import Any

import numpy as np

# Problem sizes per area. "small" keeps the whole `maxlik bench` under a minute
# on a 2-core machine; "full" is the table of issue 16 (benchmarks/ratios.py).
SIZES: dict[str, dict[str, tuple[int, ...]]] = {
    "logsumexp": {"small": (100_000, 16), "medium": (1_000_000, 16), "large": (4_000_000, 16),
                  "full": (1_000_000, 16)},
    "softmax": {"small": (1024, 1024), "medium": (4096, 4096), "large": (8192, 4096),
                "full": (4096, 4096)},
    "gaussian": {"small": (20_000, 16), "medium": (200_000, 16), "large": (1_000_000, 16),
                 "full": (200_000, 16)},
    "gmm": {"small": (20_000, 8, 8), "medium": (200_000, 16, 16), "large": (1_000_000, 16, 16),
            "full": (200_000, 16, 16)},
    "kmeans": {"small": (20_000, 16, 16), "medium": (200_000, 16, 16),
               "large": (1_000_000, 16, 16), "full": (200_000, 16, 16)},
    "cross-entropy": {"small": (20_000, 128), "medium": (262_144, 128),
                      "large": (1_000_000, 128), "full": (262_144, 128)},
    "logistic": {"small": (5_000, 20, 3), "medium": (50_000, 50, 5), "large": (200_000, 50, 10),
                 "full": (100_000, 100, 10)},
}
GMM_ITERS = 10
KMEANS_ITERS = 20
PEERS = {  # import name -> distribution name (for the skip notes)
    "scipy": "scipy", "sklearn": "scikit-learn", "sklearnex": "scikit-learn-intelex",
    "torch": "torch", "jax": "jax[cpu]", "faiss": "faiss-cpu", "pomegranate": "pomegranate",
}


def _have(module: str) -> bool:
    try:
        return util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


@dataclass
class Case:
    """One benchmark row: what it costs at least (bytes, flops), who runs it."""

    label: str
    impls: list[tuple[str, Callable[[], Any]]]
    bytes: float = 0.0          # memory traffic the kernel cannot avoid
    flops: float = 0.0          # arithmetic it cannot avoid
    dtype: str = "float64"      # which GEMM rate bounds the flops
    skipped: list[str] = field(default_factory=list)  # "peer: reason" notes
    note: str = ""


def _skip_note(mod: str) -> str:
    return f"{mod} not installed (pip install {PEERS.get(mod, mod)})"


def _threads() -> int:
    import maxlik

    return maxlik.get_num_threads()


def _torch():
    import torch

    torch.set_num_threads(_threads())  # same core budget as maxlik
    return torch


def _jax():
    import jax

    jax.config.update("jax_enable_x64", True)  # float64 rows need it (JAX defaults to float32)
    return jax


def _faiss():
    import faiss

    faiss.omp_set_num_threads(_threads())
    return faiss


def _blobs(n, d, k, seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    centers = rng.uniform(-10, 10, size=(k, d))
    labels = rng.integers(0, k, size=n)
    X = centers[labels] + rng.normal(size=(n, d))
    return X.astype(dtype), labels


def _peers(case: Case, wanted: list[str]) -> list[str]:
    """The peers of `wanted` that are installed; notes for the others."""
    have = []
    for mod in wanted:
        if _have(mod):
            have.append(mod)
        else:
            case.skipped.append(_skip_note(mod))
    return have


# ---- the cases -------------------------------------------------------------------------------
# Each returns (skip_reason, cases).

def _case_logsumexp(size):
    import maxlik

    n, c = SIZES["logsumexp"][size]
    a = np.random.default_rng(0).normal(size=(n, c)) * 5
    b = np.ascontiguousarray(a.T)
    cases = []
    for axis, x, shape in ((1, a, f"{n}x{c}"), (0, b, f"{c}x{n}")):
        case = Case(f"logsumexp axis={axis}, {shape} float64",
                    [("maxlik", partial(maxlik.logsumexp, x, axis=axis))],
                    bytes=x.nbytes, note="one read of the input")
        _logsumexp_peers(case, x, axis)
        cases.append(case)
    return None, cases


def _logsumexp_peers(case, x, axis):
    have = _peers(case, ["scipy", "torch", "jax"])
    if "scipy" in have:
        from scipy.special import logsumexp

        case.impls.append(("scipy", partial(logsumexp, x, axis=axis)))
    if "torch" in have:
        torch = _torch()
        case.impls.append(("torch", partial(torch.logsumexp, torch.from_numpy(x), dim=axis)))
    if "jax" in have:
        jax = _jax()
        f = jax.jit(jax.nn.logsumexp, static_argnames="axis")
        jx = jax.device_put(x)
        case.impls.append(("jax", lambda: f(jx, axis=axis).block_until_ready()))


def _case_softmax(size):
    import maxlik

    n, c = SIZES["softmax"][size]
    x = np.random.default_rng(0).normal(size=(n, c)).astype(np.float32)
    case = Case(f"softmax axis=1, {n}x{c} float32", [("maxlik", lambda: maxlik.softmax(x, axis=1))],
                bytes=2 * x.nbytes, dtype="float32", note="read + write")
    have = _peers(case, ["scipy", "torch", "jax"])
    if "scipy" in have:
        from scipy.special import softmax

        case.impls.append(("scipy", lambda: softmax(x, axis=1)))
    if "torch" in have:
        torch = _torch()
        t = torch.from_numpy(x)
        case.impls.append(("torch", lambda: torch.softmax(t, dim=1)))
    if "jax" in have:
        jax = _jax()
        f = jax.jit(lambda v: jax.nn.softmax(v, axis=1))
        jx = jax.device_put(x)
        case.impls.append(("jax", lambda: f(jx).block_until_ready()))
    return None, [case]


def _case_gaussian(size):
    import maxlik

    n, d = SIZES["gaussian"][size]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    A = rng.normal(size=(d, d))
    cov = A @ A.T / d + np.eye(d)
    mean = rng.normal(size=d)
    case = Case(f"gaussian_logpdf, one full Gaussian, N={n} D={d} float64",
                [("maxlik", lambda: maxlik.gaussian_logpdf(X, mean, cov))],
                bytes=X.nbytes, flops=float(n) * d * d, note="one read + a triangular solve per row")
    have = _peers(case, ["scipy", "torch"])
    if "scipy" in have:
        from scipy.stats import multivariate_normal

        frozen = multivariate_normal(mean, cov)
        case.impls.append(("scipy", lambda: frozen.logpdf(X)))
    if "torch" in have:
        torch = _torch()
        tX, tm, tc = (torch.from_numpy(v) for v in (X, mean, cov))
        mvn = torch.distributions.MultivariateNormal(tm, covariance_matrix=tc)
        case.impls.append(("torch", lambda: mvn.log_prob(tX)))
    return None, [case]


def _case_cross_entropy(size):
    import maxlik

    n, c = SIZES["cross-entropy"][size]
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(n, c)).astype(np.float32)
    target = rng.integers(0, c, size=n)
    case = Case(f"softmax cross-entropy loss + gradient, N={n} C={c} float32",
                [("maxlik", lambda: maxlik.softmax_cross_entropy(logits, target, return_grad=True))],
                bytes=2 * logits.nbytes, dtype="float32", note="read logits + write gradient")
    have = _peers(case, ["torch", "jax"])
    if "torch" in have:
        torch = _torch()
        tl = torch.from_numpy(logits.copy()).requires_grad_(True)
        tt = torch.from_numpy(target)

        def torch_fwd_bwd():
            tl.grad = None
            loss = torch.nn.functional.cross_entropy(tl, tt)
            loss.backward()
            return loss

        case.impls.append(("torch", torch_fwd_bwd))
    if "jax" in have:
        jax = _jax()
        jnp = jax.numpy

        def loss(z, t):
            return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z, axis=1), t[:, None],
                                                 axis=1))

        vg = jax.jit(jax.value_and_grad(loss))
        jl, jt = jax.device_put(logits), jax.device_put(target.astype(np.int32))
        case.impls.append(("jax", lambda: jax.block_until_ready(vg(jl, jt))))
    return None, [case]


def _case_gmm(size):
    import maxlik

    n, d, k = SIZES["gmm"][size]
    X, _ = _blobs(n, d, k)
    rng = np.random.default_rng(1)
    means = X[rng.choice(n, k, replace=False)]
    weights = np.full(k, 1.0 / k)
    cases = []
    # FLOPs per EM iteration: full: E-step triangular solves K N D^2, M-step
    # sum g x x^T K N D (D + 1) (about 1.7 GFLOP at 2e5 x 16, K = 16); diag:
    # two GEMM-shaped E-step products and two M-step ones, 8 N K D.
    flops = {"full": GMM_ITERS * k * n * (d * d + d * (d + 1)), "diag": GMM_ITERS * 8 * n * k * d}
    for ctype in ("full", "diag"):
        prec = {"full": np.broadcast_to(np.eye(d), (k, d, d)).copy(),
                "diag": np.ones((k, d))}[ctype]
        kw = dict(n_components=k, covariance_type=ctype, tol=0.0, max_iter=GMM_ITERS,
                  init_params="random", weights_init=weights, means_init=means,
                  precisions_init=prec, random_state=0)

        def run(cls, kw=kw):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # tol=0: "did not converge" by design
                return cls(**kw).fit(X)

        case = Case(f"GaussianMixture {ctype}, N={n} D={d} K={k}, {GMM_ITERS} EM iterations",
                    [("maxlik", lambda run=run: run(maxlik.GaussianMixture))],
                    flops=float(flops[ctype]), bytes=2.0 * GMM_ITERS * X.nbytes,
                    note="GEMM-shaped E and M steps")
        have = _peers(case, ["sklearn", "pomegranate"])
        if "sklearn" in have:
            from sklearn.mixture import GaussianMixture as SK

            case.impls.append(("sklearn", lambda run=run, SK=SK: run(SK)))
        if "pomegranate" in have:
            case.impls.append(("pomegranate", _pomegranate_gmm(X, k, ctype)))
        cases.append(case)
    return None, cases


def _pomegranate_gmm(X, k, ctype):
    """pomegranate 1.x GeneralMixtureModel, GMM_ITERS EM iterations (its own k-means init)."""
    torch = _torch()
    from pomegranate.distributions import Normal
    from pomegranate.gmm import GeneralMixtureModel

    tX = torch.from_numpy(X)

    def fit():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = GeneralMixtureModel([Normal(covariance_type=ctype) for _ in range(k)],
                                    max_iter=GMM_ITERS, tol=0.0, random_state=0)
            return m.fit(tX)

    return fit


def _case_kmeans(size):
    import maxlik

    n, d, k = SIZES["kmeans"][size]
    X64, _ = _blobs(n, d, k)
    init64 = X64[np.random.default_rng(1).choice(n, k, replace=False)]
    cases = []
    ours = {}
    for dtype in ("float64", "float32"):
        X = X64.astype(dtype)
        init = init64.astype(dtype)
        kw = dict(n_clusters=k, init=init, n_init=1, tol=0.0, max_iter=KMEANS_ITERS)
        ours[dtype] = (lambda kw=kw, X=X: maxlik.KMeans(**kw).fit(X))
        # 2 N K D FLOPs per iteration for the distances (the GEMM part), and one
        # read of X per iteration.
        case = Case(f"KMeans Lloyd, N={n} D={d} K={k}, {KMEANS_ITERS} iterations, same init, "
                    f"{dtype}", [("maxlik", ours[dtype])],
                    flops=float(KMEANS_ITERS) * 2 * n * k * d, bytes=float(KMEANS_ITERS) * X.nbytes,
                    dtype=dtype, note="distances as a GEMM")
        have = _peers(case, ["sklearn", "sklearnex", "faiss"])
        if "sklearn" in have:
            from sklearn.cluster import KMeans as SK

            case.impls.append(("sklearn", lambda kw=kw, X=X, SK=SK: SK(**kw).fit(X)))
        if "sklearnex" in have:
            from sklearnex.cluster import KMeans as SKX

            case.impls.append(("sklearnex", lambda kw=kw, X=X, SKX=SKX: SKX(**kw).fit(X)))
        if "faiss" in have:
            faiss = _faiss()
            X32 = np.ascontiguousarray(X, dtype=np.float32)
            i32 = np.ascontiguousarray(init, dtype=np.float32)

            def faiss_fit(X32=X32, i32=i32, faiss=faiss):
                # faiss.Kmeans runs in float32 only; same init, no early stop
                km = faiss.Kmeans(d, k, niter=KMEANS_ITERS, nredo=1, seed=0,
                                  max_points_per_centroid=n, verbose=False)
                km.train(X32, init_centroids=i32)
                return km

            case.impls.append(("faiss", faiss_fit))
        cases.append(case)
    cases.append(Case(f"KMeans float32 vs our float64 (same fit, N={n} D={d} K={k})",
                      [("maxlik", ours["float32"]), ("maxlik-f64", ours["float64"])],
                      flops=float(KMEANS_ITERS) * 2 * n * k * d, dtype="float32",
                      bytes=float(KMEANS_ITERS) * n * d * 4))
    return None, cases


def _case_logistic(size):
    import maxlik

    n, d, k = SIZES["logistic"][size]
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, d))
    W = rng.normal(size=(d, k)) / np.sqrt(d)
    y = np.argmax(X @ W + rng.gumbel(size=(n, k)), axis=1)
    kw = dict(C=1.0, max_iter=1000, tol=1e-6)

    def fit(cls):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls(**kw).fit(X, y)

    # Each objective + gradient evaluation is two N x D x C products (4 N D C
    # FLOPs); the row counts the evaluations of maxlik's own fit (>= n_iter_).
    n_iter = max(1, int(getattr(fit(maxlik.LogisticRegression), "n_iter_", np.array([1])).max()))
    case = Case(f"LogisticRegression fit (L-BFGS, tol 1e-6), N={n} D={d} classes={k}",
                [("maxlik", lambda: fit(maxlik.LogisticRegression))],
                flops=4.0 * n * d * k * n_iter, bytes=2.0 * X.nbytes * n_iter,
                note=f"{n_iter} iterations x 2 GEMMs (a lower bound: line-search evaluations "
                     "are not counted)")
    have = _peers(case, ["sklearn", "sklearnex"])
    if "sklearn" in have:
        from sklearn.linear_model import LogisticRegression as SK

        case.impls.append(("sklearn", lambda SK=SK: fit(SK)))
    if "sklearnex" in have:
        from sklearnex.linear_model import LogisticRegression as SKX

        case.impls.append(("sklearnex", lambda SKX=SKX: fit(SKX)))
    return None, [case]


CASES: dict[str, Callable[[str], tuple[str | None, list[Case]]]] = {
    "logsumexp": _case_logsumexp,
    "softmax": _case_softmax,
    "gaussian": _case_gaussian,
    "cross-entropy": _case_cross_entropy,
    "gmm": _case_gmm,
    "kmeans": _case_kmeans,
    "logistic": _case_logistic,
}


# ---- floors -----------------------------------------------------------------------------------

def measure_floors(threads: int | None = None, quick: bool = False) -> dict[str, float]:
    """This machine's peaks, measured now in this process.

    read_GBps: streaming read of a 256 MB float64 array (64 MB with `quick`)
    by numpy's sum (one thread: numpy reductions are serial), best of 5.
    dgemm_GFLOPs / sgemm_GFLOPs: numpy matmul of two 2048 x 2048 matrices
    with the BLAS limited to `threads` (default maxlik.get_num_threads()),
    best of 5.
    """
    threads = threads or _threads()
    n = (8 if quick else 32) * 2**20
    a = np.ones(n)
    a.sum()

    def best(fn, reps=5):
        ts = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        return min(ts)

    bw = a.nbytes / best(a.sum) / 1e9
    del a
    m = 1024 if quick else 2048
    rng = np.random.default_rng(0)
    out = {"read_GBps": bw}
    try:
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits(threads, user_api="blas")
    except ImportError:  # the BLAS's own default thread count
        limit = None
    try:
        for name, dt in (("dgemm_GFLOPs", np.float64), ("sgemm_GFLOPs", np.float32)):
            x = rng.normal(size=(m, m)).astype(dt)
            y = rng.normal(size=(m, m)).astype(dt)
            x @ y
            out[name] = 2.0 * m**3 / best(lambda x=x, y=y: x @ y) / 1e9
    finally:
        if limit is not None:
            limit.restore_original_limits()
    return out


def floor_report(case: Case, seconds: float, floors: dict[str, float]) -> dict[str, Any]:
    """Fraction of the floor a maxlik time reaches, and the achieved rate that binds."""
    gemm = floors["sgemm_GFLOPs" if case.dtype == "float32" else "dgemm_GFLOPs"]
    t_mem = case.bytes / (floors["read_GBps"] * 1e9) if case.bytes else 0.0
    t_flop = case.flops / (gemm * 1e9) if case.flops else 0.0
    if not (t_mem or t_flop):
        return {}
    if t_flop >= t_mem:
        achieved, unit, peak = case.flops / seconds / 1e9, "GFLOP/s", gemm
    else:
        achieved, unit, peak = case.bytes / seconds / 1e9, "GB/s", floors["read_GBps"]
    return {"floor_s": max(t_mem, t_flop), "floor_fraction": max(t_mem, t_flop) / seconds,
            "achieved": achieved, "unit": unit, "peak": peak}


# ---- timing -----------------------------------------------------------------------------------

def time_interleaved(impls, repeat: int, rounds: int, budget_s: float):
    """Median seconds per implementation: a warm-up call each, then `rounds` rounds
    that run every implementation in turn (so all see the same load). An
    implementation whose warm-up took longer than budget_s / (rounds * repeat)
    runs fewer times per round (at least once). Returns {name: (median, runs)}."""
    warm = {}
    for name, fn in impls:
        t0 = time.perf_counter()
        fn()
        warm[name] = time.perf_counter() - t0
    samples: dict[str, list[float]] = {name: [] for name, _ in impls}
    for _ in range(rounds):
        for name, fn in impls:
            reps = max(1, min(repeat, int(budget_s / max(warm[name], 1e-9) / rounds)))
            for _ in range(reps):
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(ts), len(ts)) for name, ts in samples.items()}


def measure(areas: list[str], size: str = "small", repeat: int | None = None,
            rounds: int | None = None, out=None) -> dict[str, Any]:
    """Run the cases of `areas`; print progress lines to `out` (None: silent).

    Returns {"size", "version", "isa", "threads", "repeat", "rounds", "floors",
    "loadavg", "results", "skipped"}: one result per (case, implementation)
    with its median seconds, runs and speed-up (peer time / maxlik time); the
    maxlik rows also carry floor_fraction, achieved, unit, peak and
    strongest_anchor (the fastest peer of the case, None without peers).
    """
    import maxlik

    repeat = repeat or (3 if size == "small" else 5)
    rounds = rounds or (2 if size == "small" else 3)
    budget = {"small": 1.0, "medium": 6.0, "large": 20.0, "full": 6.0}[size]
    info = maxlik.build_info()
    floors = measure_floors(info["num_threads"], quick=size == "small")

    def say(msg):
        if out is not None:
            print(msg, file=out, flush=True)

    say(f"maxlik bench: size {size}, maxlik {info['version']} ({info['isa']}), "
        f"{info['num_threads']} thread(s); median of interleaved runs ({rounds} rounds of up "
        f"to {repeat}) after a warm-up; speed-up = peer time / maxlik time\n"
        f"floors measured now: streaming read {floors['read_GBps']:.1f} GB/s, "
        f"DGEMM {floors['dgemm_GFLOPs']:.1f} GFLOP/s, SGEMM {floors['sgemm_GFLOPs']:.1f} "
        f"GFLOP/s (numpy, {info['num_threads']} thread(s)); load average {_loadavg()}")
    say(f"{'area':<14s} {'impl':<12s} {'median ms':>10s} {'runs':>5s} {'speed-up':>9s}")
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    for name in areas:
        try:
            reason, cases = CASES[name](size)
        except ImportError as exc:  # a peer that is installed but broken
            reason, cases = f"import failed: {exc}", []
        if reason:
            skipped.append({"area": name, "reason": reason})
            say(f"{name:<14s} skipped: {reason}")
            continue
        for case in cases:
            say(f"{name:<14s} {case.label}")
            for note in case.skipped:
                say(f"{'':<14s} skipped: {note}")
                skipped.append({"area": name, "case": case.label, "reason": note})
            times = time_interleaved(case.impls, repeat, rounds, budget)
            base = times["maxlik"][0]
            # anchors only: "maxlik-f64" (our own float64 in the float32 row) is no anchor
            peers = {k: v[0] for k, v in times.items() if not k.startswith("maxlik")}
            strongest = min(peers, key=peers.__getitem__) if peers else None
            for impl, _ in case.impls:
                med, runs = times[impl]
                row: dict[str, Any] = {"area": name, "case": case.label, "impl": impl,
                                       "median_s": med, "runs": runs,
                                       "speedup_vs_maxlik": med / base}
                extra = ""
                if impl == "maxlik":
                    row.update(floor_report(case, med, floors))
                    row["strongest_anchor"] = strongest
                    row["floor_note"] = case.note
                    if "floor_fraction" in row:
                        extra = (f"   {row['achieved']:.1f} {row['unit']} = "
                                 f"{100 * row['floor_fraction']:.0f}% of the floor")
                elif impl == strongest:
                    extra = "   <- strongest anchor"
                results.append(row)
                say(f"{'':<14s} {impl:<12s} {med * 1e3:10.3f} {runs:5d} {med / base:8.2f}x{extra}")
    return {"size": size, "version": info["version"], "isa": info["isa"],
            "threads": info["num_threads"], "repeat": repeat, "rounds": rounds,
            "floors": floors, "loadavg": _loadavg(), "results": results, "skipped": skipped}


def run(area: str = "all", size: str = "small", as_json: bool = False,
        repeat: int | None = None, rounds: int | None = None, out=None) -> int:
    """``maxlik bench``: measure `area` (or all) and print the table or JSON; returns 0."""
    out = out or sys.stdout
    areas = list(CASES) if area == "all" else [area]
    d = measure(areas, size, repeat, rounds, None if as_json else out)
    if as_json:
        print(json.dumps(d, indent=2), file=out)
    return 0


def _loadavg() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"
