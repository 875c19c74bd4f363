"""Run the installed peers' own test files against maxlik, with only the import swapped.

    python scripts/peer_tests.py                 # every suite below
    python scripts/peer_tests.py scipy-logsumexp # one suite
    python scripts/peer_tests.py SUITE -- -k gh22601 -x   # extra pytest arguments
    python scripts/peer_tests.py sklearn-kmeans -- --junitxml=/tmp/km.xml  # per-test results

The test files are run where the peers installed them (site-packages); nothing
is copied into this repository. Before pytest imports them, a small plugin
replaces the peer's public names (e.g. ``scipy.special.logsumexp``) with
maxlik's, so ``from scipy.special import logsumexp`` inside the peer's test
file gets maxlik's function. Tests that exercise the peer's private helpers
fail for that reason alone; the summary line counts passed / failed / skipped.

Not part of the default test run: it measures drop-in compatibility, it does not
gate CI.
"""
from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

# suite -> (peer package, test file inside it, [(module, name, maxlik name)])
SUITES = {
    "scipy-logsumexp": ("scipy", "special/tests/test_logsumexp.py", [
        ("scipy.special", "logsumexp", "logsumexp"),
        ("scipy.special", "softmax", "softmax"),
        ("scipy.special", "log_softmax", "log_softmax"),
    ]),
    "sklearn-gaussian-mixture": ("sklearn", "mixture/tests/test_gaussian_mixture.py", [
        ("sklearn.mixture", "GaussianMixture", "GaussianMixture"),
    ]),
    # KMeans and MiniBatchKMeans share sklearn's test file: both are swapped
    "sklearn-kmeans": ("sklearn", "cluster/tests/test_k_means.py", [
        ("sklearn.cluster", "KMeans", "KMeans"),
        ("sklearn.cluster", "MiniBatchKMeans", "MiniBatchKMeans"),
    ]),
    "sklearn-logistic": ("sklearn", "linear_model/tests/test_logistic.py", [
        ("sklearn.linear_model", "LogisticRegression", "LogisticRegression"),
    ]),
}

_PLUGIN = "_maxlik_peer_swap"


def _plugin_source(swaps):
    lines = ["import importlib, maxlik"]
    for mod, name, ours in swaps:
        lines += [
            f"_m = importlib.import_module({mod!r})",
            f"_peer, _ours = getattr(_m, {name!r}), getattr(maxlik, {ours!r})",
            f"setattr(_m, {name!r}, _ours)",
        ]
        if mod.startswith("scipy."):
            # scipy's test decorators look functions up in its array-API capability
            # table; give maxlik's function the peer's entry
            lines += [
                "from scipy._lib import _array_api as _xa",
                "if _peer in _xa.xp_capabilities_table:",
                "    _xa.xp_capabilities_table[_ours] = _xa.xp_capabilities_table[_peer]",
            ]
    return "\n".join(lines) + "\n"


def run(suite: str, extra: list[str]) -> int:
    pkg, rel, swaps = SUITES[suite]
    root = Path(importlib.import_module(pkg).__file__).parent
    path = root / rel
    if not path.exists():
        print(f"{suite}: {path} not found (peer version without this test file)")
        return 0
    plugdir = Path(os.environ.get("TMPDIR", "/tmp")) / "maxlik_peer_tests"
    plugdir.mkdir(parents=True, exist_ok=True)
    (plugdir / f"{_PLUGIN}.py").write_text(_plugin_source(swaps))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(plugdir), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "pytest", str(path), "-p", _PLUGIN, "-q", "-p", "no:cacheprovider",
           "--rootdir", str(root), "-o", "addopts=", "-W", "ignore::DeprecationWarning", *extra]
    print(f"== {suite}: {' '.join(cmd)}", flush=True)
    return subprocess.call(cmd, env=env)


def main(argv: list[str]) -> int:
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    suites = argv or list(SUITES)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        print(f"unknown suite(s) {unknown}; choose from {sorted(SUITES)}", file=sys.stderr)
        return 2
    rc = 0
    for s in suites:
        rc = max(rc, run(s, extra))
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
