"""In-house L-BFGS (maxlik._optimize.minimize_lbfgs) vs scipy's L-BFGS-B, on
LogisticRegression's own objective, at equal final objective.

    python benchmarks/lbfgs_vs_scipy.py [--repeats 5]

Both optimisers minimise the same callable: the objective maxlik's
LogisticRegression builds (fused C++ cross-entropy + gradient, L2 penalty), taken
from a real ``fit`` by swapping the engine's optimiser. For each problem:

* "to f*(1+1e-k)": each optimiser runs to a tight tolerance (gtol 1e-10, no f
  test, at most 1000 iterations) while
  every evaluation is timed; the cost to reach an objective within a relative
  1e-4 / 1e-6 / 1e-10 of f* (the best objective either reached) is read off the trace.
  That compares the optimisers at equal objective, whatever their stopping rules.
* "default tol": the fit as LogisticRegression runs it (gtol = tol = 1e-4),
  with the final objectives side by side.

Times are medians over interleaved runs (maxlik, scipy, maxlik, scipy, ...);
the ratio scipy / maxlik > 1 means maxlik is faster. "scipy-1blas" is scipy with
BLAS limited to one thread (needs threadpoolctl), which isolates the algorithms
from the BLAS-thread contention on a machine with few cores. Absolute times on a shared
machine are noise; the ratios and evaluation counts are the result.
"""
from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.optimize

import maxlik
from maxlik import _engine
from maxlik._optimize import LbfgsResult, minimize_lbfgs

Objective = Callable[[np.ndarray], tuple[float, np.ndarray]]


def scipy_lbfgs(fun: Objective, x0: np.ndarray, *, max_iter: int = 100, gtol: float = 1e-5,
                ftol: float | None = None) -> LbfgsResult:
    """scipy's L-BFGS-B behind minimize_lbfgs's interface (same m=10 memory, same gtol test)."""
    opts: dict[str, Any] = {"maxiter": max_iter, "gtol": gtol, "maxcor": 10}
    if ftol is not None:
        opts["ftol"] = ftol
    r = scipy.optimize.minimize(fun, x0, jac=True, method="L-BFGS-B", options=opts)
    return LbfgsResult(r.x, float(r.fun), r.jac, int(r.nit), int(r.nfev), bool(r.success),
                       str(r.message))


def capture_objective(X: np.ndarray, y: np.ndarray, C: float) -> tuple[Objective, int]:
    """The exact callable LogisticRegression(C).fit(X, y) hands its optimiser."""
    got: dict[str, Any] = {}

    def spy(fun, x0, **kw):
        got["fun"], got["n"] = fun, len(x0)
        return minimize_lbfgs(fun, x0, **kw)

    orig = _engine.minimize_lbfgs
    _engine.minimize_lbfgs = spy
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=1: only the objective is wanted
            maxlik.LogisticRegression(C=C, max_iter=1).fit(X, y)
    finally:
        _engine.minimize_lbfgs = orig
    return got["fun"], got["n"]


def traced(fun: Objective) -> tuple[Objective, list[tuple[float, float]]]:
    trace: list[tuple[float, float]] = []
    t0 = time.perf_counter()

    def f(x):
        v, g = fun(x)
        trace.append((time.perf_counter() - t0, float(v)))
        return v, g
    return f, trace


def problems(rng: np.random.Generator):
    def logistic(N, D, K, scales, C, name):
        X = rng.standard_normal((N, D)) @ (np.eye(D) + 0.3 * rng.standard_normal((D, D)) / np.sqrt(D))
        X *= scales
        W = rng.standard_normal((K, D)) / np.sqrt(D) / scales
        logits = X @ W.T + rng.gumbel(size=(N, K)) * 1.5
        y = logits.argmax(1) if K > 1 else (logits[:, 0] > 0).astype(int)
        return name, X, y, C
    yield logistic(200_000, 20, 1, 1.0, 1.0, "binary 200000x20, C=1")
    yield logistic(100_000, 30, 10, 1.0, 1.0, "10 classes 100000x30, C=1")
    yield logistic(20_000, 20, 1, np.logspace(-2, 2, 20), 100.0,
                   "binary 20000x20, columns scaled 1e-2..1e2, C=100")
    yield logistic(20_000, 100, 5, 1.0, 1e4, "5 classes 20000x100, C=1e4 (weak penalty)")


def scipy_lbfgs_1blas(fun: Objective, x0: np.ndarray, **kw: Any) -> LbfgsResult:
    """scipy's L-BFGS-B with BLAS limited to one thread (threadpoolctl): without it,
    OpenBLAS threads woken by the optimiser's own BLAS calls spin and compete with
    maxlik's kernel threads for the cores (3-4x the time per evaluation here)."""
    import threadpoolctl

    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        return scipy_lbfgs(fun, x0, **kw)


OPTIMISERS = {"maxlik": minimize_lbfgs, "scipy": scipy_lbfgs, "scipy-1blas": scipy_lbfgs_1blas}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    print(f"maxlik {maxlik.__version__} ({maxlik.build_info()['isa']}, "
          f"{maxlik.get_num_threads()} threads), scipy {scipy.__version__}")
    rng = np.random.default_rng(0)
    for name, X, y, C in problems(rng):
        fun, n = capture_objective(X, y, C)
        x0 = np.zeros(n)
        runs: dict[str, list[tuple[list[tuple[float, float]], LbfgsResult]]] = {k: [] for k in OPTIMISERS}
        dflt: dict[str, list[tuple[float, LbfgsResult]]] = {k: [] for k in OPTIMISERS}
        for _ in range(args.repeats):  # interleaved
            for key, opt in OPTIMISERS.items():
                f, trace = traced(fun)
                res = opt(f, x0, max_iter=1000, gtol=1e-10, ftol=0.0)  # run to the end
                runs[key].append((trace, res))
                t = time.perf_counter()
                res = opt(fun, x0, max_iter=100, gtol=1e-4)
                dflt[key].append((time.perf_counter() - t, res))
        fstar = min(min(v for _, v in tr) for rs in runs.values() for tr, _ in rs)
        print(f"\n{name}: {n} parameters, f* = {fstar:.15g}")
        for key, rs in runs.items():
            tr, res = rs[-1]
            print(f"  tight run, {key}: {res.n_fev} fev, {tr[-1][0] * 1e3:.0f} ms, f-f* "
                  f"{res.fun - fstar:.1e}, max|g| {np.max(np.abs(res.grad)):.1e}: {res.message}")
        for k in (4, 6, 10):
            target = fstar + 10.0**-k * abs(fstar)
            cost = {}
            for key, rs in runs.items():
                hits = [next(((t, i + 1) for i, (t, v) in enumerate(tr) if v <= target), None)
                        for tr, _ in rs]
                if any(h is None for h in hits):
                    cost[key] = None
                    continue
                cost[key] = (float(np.median([h[0] for h in hits])), int(np.median([h[1] for h in hits])))
            row = "  ".join(f"{key} {c[0] * 1e3:8.1f} ms {c[1]:4d} fev" if c else f"{key} never reached"
                            for key, c in cost.items())
            ratio = "".join(f"   {key}/maxlik time {cost[key][0] / cost['maxlik'][0]:.2f}"
                            for key in ("scipy", "scipy-1blas") if cost["maxlik"] and cost[key])
            print(f"  to f*(1+1e-{k:<2d}): {row}{ratio}")
        med = {key: float(np.median([t for t, _ in v])) for key, v in dflt.items()}
        last = {key: v[-1][1] for key, v in dflt.items()}
        print("  default tol 1e-4: " + "  ".join(
            f"{key} {med[key] * 1e3:8.1f} ms {last[key].n_fev:4d} fev, f-f* {last[key].fun - fstar:.1e}"
            for key in OPTIMISERS) + "".join(f"   {key}/maxlik time {med[key] / med['maxlik']:.2f}"
                                             for key in ("scipy", "scipy-1blas")))


if __name__ == "__main__":
    main()
