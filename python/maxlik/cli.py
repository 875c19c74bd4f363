"""The ``maxlik`` command line (also ``python -m maxlik``).

    maxlik                      fit a 2-component Gaussian mixture to the bundled
                                Old Faithful data and print the summary
    maxlik fit [DATA] [...]     fit gmm | kmeans | gaussian to a CSV/.npy/.npz/Parquet file
    maxlik bench [AREA] [...]   time maxlik against the installed peers
    maxlik info                 version, compiler, flags, ISA, threads, optional deps

Exit codes: 0 success, 1 data error (one line on stderr, no traceback),
2 usage error (argparse).

This module holds the commands and the argument parser; the file readers are
in ``_readers.py`` and the plots in ``_plots.py``.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import cast

import numpy as np

from ._plots import _plot, _require_matplotlib
from ._readers import DataError, load_data

__all__ = ["main", "build_parser", "load_data", "DataError"]

EXIT_OK, EXIT_DATA, EXIT_USAGE = 0, 1, 2
COMMANDS = ("fit", "bench", "info")
BENCH_AREAS = ("logsumexp", "softmax", "gaussian", "cross-entropy", "gmm", "kmeans", "logistic")


# ----------------------------------------------------------------------------- arguments
def _parse_columns(spec):
    if spec is None:
        return None
    items = [s.strip() for s in spec.split(",")]
    if not items or any(s == "" for s in items):
        raise argparse.ArgumentTypeError(f"--columns expects names or 0-based indices "
                                         f"separated by commas, e.g. a,b or 0,2; got {spec!r}")
    return items


# ----------------------------------------------------------------------------- models
def _progress(total, desc):
    """A tqdm bar if tqdm is installed and stdout is a terminal, else None.

    The bar appears only once a fit has run for about a second (tqdm's delay).
    """
    if not sys.stdout.isatty():
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    import shutil

    # Some pseudo-terminals report a 0 x 0 size, which makes tqdm draw nothing.
    size = shutil.get_terminal_size((80, 24))
    return tqdm(total=total, desc=desc, delay=1.0, leave=False, file=sys.stdout,
                ncols=size.columns or 80, nrows=size.lines or 24)


def _full_covariances(cov, ctype, K, D):
    cov = np.asarray(cov, dtype=np.float64)
    if ctype == "full":
        return cov
    if ctype == "tied":
        return np.broadcast_to(cov, (K, D, D)).copy()
    if ctype == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(D) * c for c in np.atleast_1d(cov)])


def _n_free_parameters(covariance_type, K, D):
    """Free parameters of a K-component mixture in D dimensions (for BIC and AIC)."""
    cov = {"full": K * D * (D + 1) // 2, "diag": K * D, "tied": D * (D + 1) // 2,
           "spherical": K}[covariance_type]
    return cov + K * D + K - 1


def _stopping(args):
    """The stopping options the user gave (--max-iter, --tol) as estimator keywords."""
    return {k: v for k, v in (("max_iter", args.max_iter), ("tol", args.tol)) if v is not None}


def _fit_gmm(X, K, args, show_progress=True):
    import maxlik

    params = dict(n_components=K, covariance_type=args.covariance, random_state=args.seed,
                  n_init=args.n_init)
    params.update(_stopping(args))
    history = []
    bar = _progress(params.get("max_iter", 100), f"EM K={K}") if show_progress else None

    def callback(iteration, lower_bound):
        history.append(float(lower_bound))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(lower_bound=f"{lower_bound:.6g}")

    model = maxlik.GaussianMixture(callback=callback, **params)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            model.fit(X)
        except ValueError as exc:
            raise DataError(str(exc).splitlines()[0]) from None
        finally:
            if bar is not None:
                bar.close()
    notes = [str(w.message).splitlines()[0] for w in caught
             if "Converge" in type(w.message).__name__]
    return _gmm_summary(model, X, history, notes)


def _gmm_summary(model, X, history, notes):
    """The fit command's result dict for a fitted GaussianMixture."""
    if not history:
        history = [float(v) for v in getattr(model, "lower_bounds_", [model.lower_bound_])]
    n = X.shape[0]
    D = X.shape[1]
    K = model.n_components
    ctype = model.covariance_type
    loglik = float(model.score(X)) * n
    n_params = _n_free_parameters(ctype, K, D)
    return {
        "model": "gmm",
        "estimator": f"{type(model).__module__.split('.')[0]}.{type(model).__name__}",
        "n_components": K,
        "covariance_type": ctype,
        "weights": model.weights_,
        "means": model.means_,
        "covariances": model.covariances_,
        "log_likelihood": loglik,
        "mean_log_likelihood": loglik / n,
        # from the one score pass: model.bic / model.aic would each score X again
        "bic": -2 * loglik + n_params * math.log(n),
        "aic": -2 * loglik + 2 * n_params,
        "n_iter": int(model.n_iter_),
        "converged": bool(model.converged_),
        "lower_bounds": history,
        "_model": model,  # labels (for --plot only) by model.predict(X), when needed
        "_full_cov": _full_covariances(model.covariances_, ctype, K, D),
        "_notes": notes,
    }


def _select_gmm(X, args):
    """--select-k: maxlik.select_mixture over the K range and covariance type(s), by BIC.

    Returns (the best fit's result dict, the table rows)."""
    import maxlik

    for K in args.select_k:
        if K > X.shape[0]:
            raise DataError(f"--select-k: K={K} exceeds the number of rows ({X.shape[0]})")
    types = (("full", "tied", "diag", "spherical") if args.covariance == "all"
             else (args.covariance,))
    params = {}
    params.update(_stopping(args))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            sel = maxlik.select_mixture(X, n_components=args.select_k, covariance_types=types,
                                        n_init=args.n_init, criterion="bic",
                                        random_state=args.seed, **params)
        except ValueError as exc:
            raise DataError(str(exc).splitlines()[0]) from None
    notes = [str(w.message).splitlines()[0] for w in caught
             if "Converge" in type(w.message).__name__]
    return _gmm_summary(sel.best_, X, [], notes), sel.table


def _fit_kmeans(X, K, args):
    import maxlik

    params = dict(n_clusters=K, random_state=args.seed, n_init=args.n_init)
    params.update(_stopping(args))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            km = maxlik.KMeans(**params).fit(X)
        except ValueError as exc:
            raise DataError(str(exc).splitlines()[0]) from None
    notes = [str(w.message).splitlines()[0] for w in caught]
    sizes = np.bincount(km.labels_, minlength=K)
    return {
        "model": "kmeans",
        "estimator": "maxlik.KMeans",
        "n_clusters": K,
        "centers": km.cluster_centers_,
        "sizes": sizes,
        "inertia": float(km.inertia_),
        "n_iter": int(km.n_iter_),
        "_labels": km.labels_,
        "_notes": notes,
    }


def _fit_gaussian(X, args):
    import maxlik

    fit_gaussian = getattr(maxlik, "fit_gaussian", None)
    if fit_gaussian is None:
        raise DataError("--model gaussian needs maxlik.fit_gaussian, which this build lacks")
    ctype = "full" if args.covariance == "tied" else args.covariance
    try:
        res = fit_gaussian(X, covariance_type=ctype)
    except ValueError as exc:
        raise DataError(str(exc).splitlines()[0]) from None
    D = X.shape[1]
    cov = _full_covariances(np.asarray(res.covariance)[None] if ctype == "full" else
                            np.asarray(res.covariance).reshape(1, -1) if ctype == "diag" else
                            np.asarray([res.covariance]), ctype, 1, D)
    return {
        "model": "gaussian",
        "estimator": "maxlik.fit_gaussian",
        "covariance_type": ctype,
        "mean": np.asarray(res.mean),
        "covariance": np.asarray(res.covariance),
        "log_likelihood": float(res.log_likelihood),
        "mean_log_likelihood": float(res.log_likelihood) / X.shape[0],
        "bic": float(res.bic),
        "aic": float(res.aic),
        "_labels": None,  # one component: every row
        "_full_cov": cov,
        "_means": np.asarray(res.mean).reshape(1, -1),
        "_notes": [],
    }


# ----------------------------------------------------------------------------- output
def _fmt(a, precision=4):
    return np.array2string(np.asarray(a, dtype=np.float64), precision=precision,
                           suppress_small=True, separator=", ", max_line_width=100)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items() if not k.startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _print_summary(res, X, names, source):
    n, d = X.shape
    out = sys.stdout
    print(f"data: {source}: {n} rows x {d} columns ({', '.join(names)})", file=out)
    model = res["model"]
    if model == "gmm":
        print(f"model: Gaussian mixture, {res['n_components']} components, "
              f"{res['covariance_type']} covariance ({res['estimator']})", file=out)
        conv = "yes" if res["converged"] else "NO"
        print(f"converged: {conv} after {res['n_iter']} EM iterations", file=out)
        print(f"log-likelihood: {res['log_likelihood']:.6g}  "
              f"(per row {res['mean_log_likelihood']:.6g})", file=out)
        print(f"BIC: {res['bic']:.6g}   AIC: {res['aic']:.6g}", file=out)
        for k in range(res["n_components"]):
            print(f"\ncomponent {k}: weight {res['weights'][k]:.4f}", file=out)
            print(f"  mean: {_fmt(res['means'][k])}", file=out)
            cov = res["_full_cov"][k]
            lines = _fmt(cov).splitlines()
            print(f"  covariance: {lines[0]}", file=out)
            for line in lines[1:]:
                print(f"              {line}", file=out)
    elif model == "kmeans":
        print(f"model: k-means, {res['n_clusters']} clusters ({res['estimator']})", file=out)
        print(f"iterations: {res['n_iter']}", file=out)
        print(f"inertia (sum of squared distances): {res['inertia']:.6g}", file=out)
        for k in range(res["n_clusters"]):
            print(f"\ncluster {k}: {res['sizes'][k]} rows", file=out)
            print(f"  center: {_fmt(res['centers'][k])}", file=out)
    else:
        print(f"model: one Gaussian, {res['covariance_type']} covariance "
              f"({res['estimator']}, maximum likelihood)", file=out)
        print(f"log-likelihood: {res['log_likelihood']:.6g}  "
              f"(per row {res['mean_log_likelihood']:.6g})", file=out)
        print(f"BIC: {res['bic']:.6g}   AIC: {res['aic']:.6g}", file=out)
        print(f"mean: {_fmt(res['mean'])}", file=out)
        lines = _fmt(res["_full_cov"][0]).splitlines()
        print(f"covariance: {lines[0]}", file=out)
        for line in lines[1:]:
            print(f"            {line}", file=out)


# ----------------------------------------------------------------------------- plot# ----------------------------------------------------------------------------- commands
def _parse_k_range(spec):
    try:
        if ".." in spec:
            lo, hi = spec.split("..", 1)
            ks = list(range(int(lo), int(hi) + 1))
        else:
            ks = sorted({int(s) for s in spec.split(",")})
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a range like 1..8 or a list like 1,2,4; "
                                         f"got {spec!r}") from None
    if not ks or ks[0] < 1:
        raise argparse.ArgumentTypeError(f"needs numbers of components >= 1; got {spec!r}")
    return ks


def _cmd_fit(args, parser):
    if args.select_k is not None and args.model != "gmm":
        parser.error("--select-k needs --model gmm (it compares BIC across K)")
    if args.covariance == "all" and not args.select_k:
        parser.error("--covariance all needs --select-k (it compares every covariance type)")
    if args.plot:
        _require_matplotlib()
    X, names, source = load_data(args.data, columns=args.columns, key=args.key,
                                 drop_na=args.drop_na)
    t0 = time.perf_counter()
    table = None
    if args.model == "gmm":
        if args.select_k:
            res, table = _select_gmm(X, args)
        else:
            res = _fit_gmm(X, args.components, args)
    elif args.model == "kmeans":
        res = _fit_kmeans(X, args.components, args)
    else:
        res = _fit_gaussian(X, args)
    elapsed = time.perf_counter() - t0
    if args.plot:
        _plot(args.plot, X, names, res)
    if args.json:
        payload = {"data": {"source": source, "n_samples": X.shape[0], "columns": names}}
        payload.update(_jsonable(res))
        payload["seconds"] = elapsed
        if table is not None:
            payload["select_k"] = {"criterion": "bic", "table": _jsonable(table),
                                   "best_n_components": res["n_components"],
                                   "best_covariance_type": res["covariance_type"]}
        if args.plot:
            payload["plot"] = args.plot
        print(json.dumps(payload, indent=2))
    else:
        import maxlik

        info = maxlik.build_info()
        print(f"maxlik {info['version']} (instruction set {info['isa']}, "
              f"{info['num_threads']} threads)\n")
        if table is not None:
            print("K   covariance  log-likelihood          BIC          AIC          ICL  "
                  "iter  converged")
            for row in table:
                best = (row["n_components"], row["covariance_type"]) == (
                    res["n_components"], res["covariance_type"])
                mark = "  <- best BIC" if best else ""
                print(f"{row['n_components']:<3d} {row['covariance_type']:<10s} "
                      f"{row['log_likelihood']:15.6g} {row['bic']:12.6g} {row['aic']:12.6g} "
                      f"{row['icl']:12.6g} {row['n_iter']:5d}  "
                      f"{'yes' if row['converged'] else 'no':>9s}{mark}")
            print()
        _print_summary(res, X, names, source)
        print(f"\ntime: {elapsed:.3g} s")
        if args.plot:
            print(f"plot: {args.plot}")
    for note in res.get("_notes", []):
        print(f"maxlik: note: {note}", file=sys.stderr)
    return EXIT_OK


def _threads():
    import maxlik

    return maxlik.get_num_threads()


_OPTIONAL = (
    ("scipy", "scipy", "peer for bench"),
    ("scikit-learn", "sklearn", "peer for bench"),
    ("torch", "torch", "maxlik.torch; peer for bench"),
    ("scikit-learn-intelex", "sklearnex", "peer for bench (pip install 'maxlik[bench]')"),
    ("jax", "jax", "peer for bench"),
    ("faiss-cpu", "faiss", "peer for bench"),
    ("pomegranate", "pomegranate", "peer for bench"),
    ("matplotlib", "matplotlib", "maxlik fit --plot (pip install 'maxlik[plot]')"),
    ("tqdm", "tqdm", "progress bars"),
    ("pyarrow", "pyarrow", "Parquet input, faster CSV input"),
    ("dask", "dask", "distributed fits (pip install 'maxlik[dask]')"),
)


def _optional_deps():
    from importlib import metadata, util

    out = {}
    for dist, module, purpose in _OPTIONAL:
        found = util.find_spec(module) is not None
        version = None
        if found:
            try:
                version = metadata.version(dist)
            except metadata.PackageNotFoundError:
                version = "?"
        out[dist] = {"found": found, "version": version, "for": purpose}
    return out


def _cmd_info(args, parser):
    import platform

    import maxlik

    info = maxlik.build_info()
    deps = _optional_deps()
    if args.json:
        payload = dict(info)
        payload["python"] = platform.python_version()
        payload["numpy"] = np.__version__
        payload["optional"] = deps
        print(json.dumps(payload, indent=2))
        return EXIT_OK
    print(f"maxlik {info['version']}")
    print(f"compiler: {info['compiler']}")
    print(f"flags: {info['compile_flags']}")
    print(f"instruction set: {info['isa']} (this CPU supports {info['host_isa']}), "
          f"SIMD registers of {info['simd_bytes']} bytes")
    print(f"threads: {info['num_threads']} (set MAXLIK_NUM_THREADS or maxlik.set_num_threads)")
    print(f"python {platform.python_version()}, numpy {np.__version__}")
    print("optional dependencies:")
    for name, d in deps.items():
        state = f"{d['version']}" if d["found"] else "not found"
        print(f"  {name:<13s} {state:<12s} {d['for']}")
    return EXIT_OK


def _cmd_bench(args, parser):
    from . import _bench

    return _bench.run(args.area, args.size, args.json, args.repeat, args.rounds)


# ----------------------------------------------------------------------------- parser
def _positive_int(s):
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def _nonneg_float(s):
    try:
        v = float(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
    if not (v >= 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {s!r}")
    return v


def build_parser() -> argparse.ArgumentParser:
    import maxlik

    p = argparse.ArgumentParser(
        prog="maxlik",
        description="Maximum-likelihood fits and benchmarks with a C++ core. "
                    "With no command, fits a Gaussian mixture to the bundled Old Faithful data.",
        epilog="exit codes: 0 ok, 1 data error, 2 usage error",
    )
    p.add_argument("--version", action="version", version=f"maxlik {maxlik.__version__}")
    sub = p.add_subparsers(dest="command", metavar="{fit,bench,info}")

    f = sub.add_parser("fit", help="fit a model to a data file (default: Old Faithful)",
                       description="Fit a Gaussian mixture (EM), k-means or one Gaussian by "
                                   "maximum likelihood and print a summary.")
    f.add_argument("data", nargs="?", metavar="DATA",
                   help="CSV (header detected), .npy, .npz (with --key) or .parquet "
                        "(needs pyarrow); default: the bundled Old Faithful data")
    f.add_argument("--model", choices=("gmm", "kmeans", "gaussian"), default="gmm",
                   help="model to fit (default gmm)")
    f.add_argument("--components", "-k", type=_positive_int, default=2, metavar="K",
                   help="mixture components / clusters (default 2)")
    f.add_argument("--covariance", choices=("full", "tied", "diag", "spherical", "all"),
                   default="full", help="covariance type (default full); 'all' with "
                                        "--select-k compares the four types")
    f.add_argument("--columns", type=_parse_columns, metavar="A,B",
                   help="columns to use, by name or 0-based index (default all)")
    f.add_argument("--key", help="array name inside an .npz file")
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    f.add_argument("--max-iter", type=_positive_int, metavar="N",
                   help="iteration limit (default: the estimator's)")
    f.add_argument("--tol", type=_nonneg_float, help="convergence tolerance "
                                                     "(default: the estimator's)")
    f.add_argument("--n-init", type=_positive_int, default=1, metavar="N",
                   help="initialisations; the best is kept (default 1)")
    f.add_argument("--select-k", type=_parse_k_range, metavar="1..8",
                   help="fit each K (and each covariance type with --covariance all) by "
                        "maxlik.select_mixture, print the BIC/AIC/ICL table and keep the "
                        "fit with the lowest BIC (gmm only)")
    f.add_argument("--drop-na", action="store_true",
                   help="drop rows with missing values instead of failing")
    f.add_argument("--plot", metavar="OUT.png",
                   help="save a plot: data by component, 1σ/2σ ellipses, log-likelihood "
                        "per iteration (needs matplotlib)")
    f.add_argument("--json", action="store_true", help="machine-readable output")
    f.set_defaults(func=_cmd_fit)

    b = sub.add_parser("bench", help="time maxlik against the installed peers",
                       description="Time maxlik and the installed peers (scipy, scikit-learn, "
                                   "scikit-learn-intelex, torch, jax, faiss-cpu, pomegranate; "
                                   "pip install 'maxlik[bench]') on the same data in this "
                                   "process, interleaved; prints median times, ratios and the "
                                   "fraction of the machine's floor (streaming-read GB/s or "
                                   "GEMM GFLOP/s, measured in the same run) each maxlik case "
                                   "reaches.")
    b.add_argument("area", nargs="?", default="all", choices=BENCH_AREAS + ("all",),
                   help="what to time (default all)")
    b.add_argument("--size", choices=("small", "medium", "large", "full"), default="small",
                   help="problem size (small finishes in under a minute; full: issue 16's "
                        "table, as benchmarks/ratios.py)")
    b.add_argument("--repeat", type=_positive_int, default=None, metavar="N",
                   help="timed runs per implementation and round (default 3 small, 5 otherwise)")
    b.add_argument("--rounds", type=_positive_int, default=None, metavar="N",
                   help="interleaved rounds (default 2 small, 3 otherwise)")
    b.add_argument("--json", action="store_true", help="machine-readable output")
    b.set_defaults(func=_cmd_bench)

    i = sub.add_parser("info", help="version, compiler, flags, ISA, threads, optional deps")
    i.add_argument("--json", action="store_true", help="machine-readable output")
    i.set_defaults(func=_cmd_info)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``maxlik`` console script; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `maxlik`, `maxlik data.csv` and `maxlik --components 3` all mean `maxlik fit ...`.
    parser = build_parser()
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-") \
            and not os.path.exists(argv[0]) and not any(c in argv[0] for c in "./\\"):
        # A mistyped command rather than a data file.
        try:
            parser.error(f"unknown command {argv[0]!r} (choose from {', '.join(COMMANDS)}), "
                         "and no data file of that name")
        except SystemExit as exc:
            return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["fit"] + argv
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: 0 for --help/--version, 2 for usage errors
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    sub = {a.dest: a for a in parser._actions}.get("command")
    # the subparsers action's choices: a dict {command: parser} (typed Iterable | None)
    sub_parser = (cast("dict[str, argparse.ArgumentParser]", sub.choices)[args.command]
                  if sub is not None else parser)
    try:
        return args.func(args, sub_parser)
    except SystemExit as exc:  # parser.error() inside a command
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    except DataError as exc:
        print(f"maxlik: error: {exc}", file=sys.stderr)
        return EXIT_DATA
    except KeyboardInterrupt:
        print("maxlik: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `maxlik fit | head`
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")
        return EXIT_OK


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
