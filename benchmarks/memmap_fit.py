"""Out-of-core fit of a large float32 memmap with bounded memory.

Creates an N x D float32 file drawn from a K-component mixture (written in
small chunks, never as one array), then in a fresh child process opens it
with ``np.load(..., mmap_mode="r")``, fits GaussianMixture and KMeans on the
memmap, and prints the child's peak resident set size
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``). The file is deleted after.

    python benchmarks/memmap_fit.py                    # N=20_000_000, D=16: a 1.28 GB file
    python benchmarks/memmap_fit.py --n 2000000 --max-iter 3   # quick

Not a pytest file: it is a demonstration of the memory bound (see README).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings


def _rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def write_data(path, n, d, k, seed=0, chunk=262_144):
    import numpy as np

    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    with open(path, "wb") as f:
        # .npy header, then the rows in chunks: never the whole array in memory
        np.lib.format.write_array_header_1_0(
            f, {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)),
                "fortran_order": False, "shape": (n, d)})
        for r0 in range(0, n, chunk):
            m = min(chunk, n - r0)
            z = rng.integers(0, k, size=m)
            block = centres[z] + rng.standard_normal((m, d))
            block.astype(np.float32).tofile(f)


def child(path, k, max_iter, which):
    import numpy as np

    import maxlik

    out = {"rss_after_import_mb": _rss_mb()}
    X = np.load(path, mmap_mode="r")
    out["shape"] = list(X.shape)
    out["file_gb"] = os.path.getsize(path) / 1e9
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter is capped on purpose
        if which in ("gmm", "both"):
            gm = maxlik.GaussianMixture(k, covariance_type="full", max_iter=max_iter,
                                        random_state=0)
            t = time.perf_counter()
            gm.fit(X)
            dt = time.perf_counter() - t
            out["gmm"] = {"seconds": dt, "n_iter": gm.n_iter_,
                          "seconds_per_iter": dt / max(gm.n_iter_, 1),
                          "lower_bound": gm.lower_bound_,
                          "peak_rss_mb_so_far": _rss_mb()}
        if which in ("kmeans", "both"):
            km = maxlik.KMeans(k, max_iter=max_iter, random_state=0)
            t = time.perf_counter()
            km.fit(X)
            dt = time.perf_counter() - t
            out["kmeans"] = {"seconds": dt, "n_iter": km.n_iter_,
                             "seconds_per_iter": dt / max(km.n_iter_, 1),
                             "inertia": km.inertia_, "labels_mb": km.labels_.nbytes / 2**20,
                             "peak_rss_mb_so_far": _rss_mb()}
    out["peak_rss_mb"] = _rss_mb()
    print(json.dumps(out))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=20_000_000)
    p.add_argument("--d", type=int, default=16)
    p.add_argument("--k", type=int, default=8)
    p.add_argument("--max-iter", type=int, default=5)
    p.add_argument("--estimator", choices=["gmm", "kmeans", "both"], default="both")
    p.add_argument("--tmpdir", default=None, help="where to write the file (default: $TMPDIR)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.child:
        child(a.child, a.k, a.max_iter, a.estimator)
        return 0
    with tempfile.TemporaryDirectory(dir=a.tmpdir) as tmp:
        path = os.path.join(tmp, "X.npy")
        t = time.perf_counter()
        write_data(path, a.n, a.d, a.k)
        print(f"wrote {a.n} x {a.d} float32 ({os.path.getsize(path) / 1e9:.2f} GB) in "
              f"{time.perf_counter() - t:.1f} s to {path}")
        res = subprocess.run([sys.executable, os.path.abspath(__file__), "--child", path,
                              "--k", str(a.k), "--max-iter", str(a.max_iter),
                              "--estimator", a.estimator],
                             check=True, capture_output=True, text=True)
        out = json.loads(res.stdout.strip().splitlines()[-1])
    print(json.dumps(out, indent=2))
    print(f"peak RSS of the fitting process: {out['peak_rss_mb']:.0f} MB "
          f"(after imports: {out['rss_after_import_mb']:.0f} MB) for a "
          f"{out['file_gb']:.2f} GB memmap")
    return 0


if __name__ == "__main__":
    sys.exit(main())
