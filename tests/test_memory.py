"""Requests whose output (or scratch memory) cannot fit raise MemoryError from
Python instead of crashing the process.

Each case runs in a child process whose address space is capped with
RLIMIT_AS, so that (a) a case that would really allocate tens of GB fails fast
instead of pushing the shared machine into the OOM killer, and (b) C++
allocations (std::bad_alloc inside the kernels, also on pool threads) are
exercised and must surface as MemoryError.
"""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from maxlik._validation import check_output_size

pytestmark = [
    pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS semantics"),
    pytest.mark.skipif("libasan" in os.environ.get("LD_PRELOAD", ""),
                       reason="ASan reserves terabytes of shadow memory: RLIMIT_AS cannot apply"),
]

LIMIT = 3 << 30  # bytes of address space for the child

_PRELUDE = """\
import resource, sys, warnings
import numpy as np
import maxlik
warnings.simplefilter("ignore")
resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))
bc = np.broadcast_to
try:
{body}
except MemoryError as e:
    print("MemoryError", str(e)[:200])
    sys.exit(0)
except BaseException as e:
    print("OTHER", type(e).__name__, str(e)[:300])
    sys.exit(3)
print("NO-ERROR")
sys.exit(4)
"""

CASES = {
    # N x K log-densities of 10^13 elements (X is a zero-stride broadcast view)
    "gaussian_logpdf_NxK": "maxlik.gaussian_logpdf(bc(np.zeros((1, 2)), (10**7, 2)), "
                           "np.zeros((10**6, 2)), np.ones(10**6), 'spherical')",
    # huge K with few rows: a 13 GB output that the allocator would grant on this
    # machine (and the kernel then fill): refused here by the 3 GB cap
    "gaussian_logpdf_huge_K": "maxlik.gaussian_logpdf(np.zeros((600, 1)), "
                                      "np.zeros((3 * 10**6, 1)), np.ones(3 * 10**6), 'spherical')",
    "softmax_broadcast": "maxlik.softmax(bc(np.zeros(1), (10**12,)))",
    "log_softmax_broadcast": "maxlik.log_softmax(bc(np.zeros((1, 1)), (10**6, 10**6)), axis=1)",
    "logsumexp_b_broadcast": "maxlik.logsumexp(np.zeros((10**6, 1)), b=np.zeros((1, 10**6)), axis=1)",
    "softmax_cross_entropy_broadcast": "maxlik.softmax_cross_entropy("
                                       "bc(np.zeros((1, 1)), (10**6, 10**6)), np.zeros(10**6, int))",
    "bce_broadcast": "maxlik.binary_cross_entropy_with_logits(bc(np.zeros((1, 1)), (10**6, 10**6)), "
                     "bc(np.zeros((1, 1)), (10**6, 10**6)))",
    "mse_broadcast": "maxlik.mse(bc(np.zeros((1, 1)), (10**6, 10**6)), bc(np.zeros((1, 1)), (10**6, 10**6)))",
    "gaussian_nll_broadcast": "z = bc(np.zeros((1, 1)), (10**6, 10**6)); maxlik.gaussian_nll(z, z, 1.0)",
    "kl_to_standard_normal_broadcast": "z = bc(np.zeros((1, 1)), (10**6, 10**6)); "
                                       "maxlik.kl_to_standard_normal(z, z)",
    "entropy_broadcast": "maxlik.entropy(bc(np.full((1, 1), 1.0), (10**6, 10**6)), normalize=True)",
    "fit_categorical_huge_n_categories": "maxlik.fit_categorical([0, 1], n_categories=10**13)",
    # K = 10^6 components: the E-step scratch is K x 512 doubles (4 GB) per task,
    # allocated in C++ on the pool threads: std::bad_alloc must reach Python
    "mixture_statistics_huge_K": "K = 10**6; p = maxlik.MixtureParameters('spherical', "
                                 "np.full(K, 1.0 / K), np.zeros((K, 1)), np.ones(K)); "
                                 "maxlik.mixture_statistics(np.zeros((2000, 1)), p)",
}
# Requests refused by validation before any allocation (ValueError is the better answer).
VALUE_ERROR_CASES = {
    "KMeans_huge_n_clusters": "maxlik.KMeans(10**12).fit(np.zeros((10, 2)))",
    "kmeans_plusplus_huge_n_clusters": "maxlik.kmeans_plusplus(np.zeros((10, 2)), 10**12)",
    "GaussianMixture_huge_n_components": "maxlik.GaussianMixture(10**12).fit(np.zeros((10, 2)))",
}


def _run(body: str):
    code = _PRELUDE.format(limit=LIMIT, body=textwrap.indent(body.replace("; ", "\n"), " " * 4))
    env = dict(os.environ, MAXLIK_NUM_THREADS="2")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)


@pytest.mark.parametrize("name", sorted(CASES))
def test_too_large_raises_memoryerror(name):
    res = _run(CASES[name])
    assert res.returncode == 0, (
        f"{name}: expected MemoryError, got exit code {res.returncode}: "
        f"{res.stdout[-500:]} {res.stderr[-2000:]}")
    assert res.stdout.startswith("MemoryError")


@pytest.mark.parametrize("name", sorted(VALUE_ERROR_CASES))
def test_impossible_sizes_are_refused_by_validation(name):
    res = _run(VALUE_ERROR_CASES[name])
    assert res.returncode == 3 and "OTHER ValueError" in res.stdout, (res.stdout, res.stderr[-2000:])


def test_check_output_size_helper():
    check_output_size((1000, 1000), 8, "out")
    with pytest.raises(MemoryError, match=r"responsibilities of shape \(10000000, 1000000\) would need "
                                          r"80000000000000 bytes"):
        check_output_size((10**7, 10**6), 8, "responsibilities")
    with pytest.raises(MemoryError):
        check_output_size(2**64, 1, "out")  # beyond the address space; no overflow
