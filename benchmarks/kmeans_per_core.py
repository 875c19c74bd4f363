"""Per-core KMeans cost: CPU time per Lloyd iteration, maxlik vs scikit-learn, 1 thread.

Run:  python benchmarks/kmeans_per_core.py [threads]
On a shared machine wall-clock ratios with 2 threads mostly measure how each
library copes with contention; process CPU time with one thread measures the
work per iteration. Same data and init as bench_kmeans.py (min of 7 runs,
interleaved).
"""
import sys
import time

import numpy as np
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs
from threadpoolctl import threadpool_limits

import maxlik

N, D, K = 200_000, 16, 16
X, _ = make_blobs(N, D, centers=K, random_state=0)
init = X[np.random.default_rng(0).choice(N, K, replace=False)]
nth = int(sys.argv[1]) if len(sys.argv) > 1 else 1
maxlik.set_num_threads(nth)
with threadpool_limits(nth):
    for dt in ("float64", "float32"):
        Xd, ini = X.astype(dt), init.astype(dt)
        cpu = {"maxlik": [], "sklearn": []}
        n_iter = {}
        for _ in range(7):
            for name, cls in (("maxlik", maxlik.KMeans), ("sklearn", SKKMeans)):
                t0 = time.process_time()
                km = cls(K, init=ini, n_init=1, tol=0.0, max_iter=20).fit(Xd)
                cpu[name].append(time.process_time() - t0)
                n_iter[name] = km.n_iter_
        ms = {k: min(v) / n_iter[k] * 1e3 for k, v in cpu.items()}
        print(f"{dt}: {nth} thread(s), CPU ms per iteration: maxlik {ms['maxlik']:.2f}, "
              f"sklearn {ms['sklearn']:.2f}, ratio {ms['sklearn'] / ms['maxlik']:.2f}x")
