"""Run-time instruction-set dispatch (maxlik._isa, MAXLIK_ISA) and cross-level agreement.

Documented tolerance (README "Design", instruction-set bullet): the levels
differ in FMA contraction (x86-64-v2 has no FMA) and in SIMD width (64-byte
registers on x86-64-v4, hence another summation order), so results agree to
rounding, not bit for bit:
  * float64 closed-form kernels (logsumexp, softmax, densities, losses, KL,
    moments): rtol 1e-12;
  * float32 kernels: rtol 1e-5 (atol 1e-6 near zero);
  * iterative fits run to convergence (EM, Lloyd, L-BFGS): rtol 1e-6 on the
    fitted parameters, identical k-means labels.
Within one level the thread count never changes a result (test_determinism).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import maxlik
from maxlik import _cpu, _isa

INFO = maxlik.build_info()
AVAILABLE = INFO["isas_available"]


def _run(code: str, isa: str | None, check: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("MAXLIK_ISA", None)
    if isa is not None:
        env["MAXLIK_ISA"] = isa
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          check=check, timeout=600)


# ---- choose_level: the policy, without needing another CPU -----------------------

ALL = ("x86-64-v2", "x86-64-v3", "x86-64-v4")


def _cpu_up_to(level):
    return lambda lv: _isa.LEVELS.index(lv) <= _isa.LEVELS.index(level)


@pytest.mark.parametrize("host,want", [("x86-64-v2", "x86-64-v2"), ("x86-64-v3", "x86-64-v3"),
                                       ("x86-64-v4", "x86-64-v4")])
@pytest.mark.parametrize("requested", [None, "", "auto", " auto "])
def test_best_supported_level_is_chosen(host, want, requested):
    assert _isa.choose_level(ALL, _cpu_up_to(host), host, requested) == want


def test_best_level_ignores_build_order_and_missing_levels():
    assert _isa.choose_level(("x86-64-v3", "x86-64-v2"), _cpu_up_to("x86-64-v4"), "x86-64-v4",
                             None) == "x86-64-v3"


@pytest.mark.parametrize("level", ALL)
def test_forced_level_is_used(level):
    assert _isa.choose_level(ALL, _cpu_up_to("x86-64-v4"), "x86-64-v4", level) == level


def test_forced_level_the_cpu_lacks_names_both_levels():
    with pytest.raises(ImportError, match=r"MAXLIK_ISA=x86-64-v4: this CPU cannot run x86-64-v4 "
                                          r"code \(it supports up to x86-64-v3\)"):
        _isa.choose_level(ALL, _cpu_up_to("x86-64-v3"), "x86-64-v3", "x86-64-v4")


def test_forced_level_not_in_the_build():
    with pytest.raises(ImportError, match=r"has no x86-64-v2 code \(it contains x86-64-v3\)"):
        _isa.choose_level(("x86-64-v3",), _cpu_up_to("x86-64-v4"), "x86-64-v4", "x86-64-v2")


@pytest.mark.parametrize("bad", ["avx2", "v3", "x86-64-v5", "X86-64-V3", "native"])
def test_unknown_level_lists_the_valid_ones(bad):
    with pytest.raises(ImportError, match=r"is not an instruction-set level; expected one of "
                                          r"x86-64-v2, x86-64-v3, x86-64-v4"):
        _isa.choose_level(ALL, _cpu_up_to("x86-64-v4"), "x86-64-v4", bad)


def test_no_runnable_level_is_an_import_error_not_a_crash():
    with pytest.raises(ImportError, match=r"supports only 'baseline'.*MAXLIK_ISAS=baseline"):
        _isa.choose_level(ALL, _cpu_up_to("baseline"), "baseline", None)


def test_module_names():
    assert [_isa.module_name(lv) for lv in _isa.LEVELS] == [
        "_core_baseline", "_core_v2", "_core_v3", "_core_v4"]


# ---- the installed build ----------------------------------------------------------

def test_build_info_reports_dispatch():
    assert INFO["isa"] in AVAILABLE
    assert set(AVAILABLE) <= set(INFO["isas_compiled"])
    assert AVAILABLE == [lv for lv in INFO["isas_compiled"] if _cpu.supports(lv)]
    # the default is the best level available here
    assert INFO["isa"] == AVAILABLE[-1] or os.environ.get("MAXLIK_ISA")
    assert maxlik._core.build_isa == INFO["isa"]
    assert sys.modules["maxlik._core"] is maxlik._core
    if INFO["isa"] != "baseline":
        assert f"-march={INFO['isa']}" in INFO["compile_flags"]


def test_a_default_x86_build_has_all_three_levels():
    if not any(lv.startswith("x86-64") for lv in INFO["isas_compiled"]):
        pytest.skip("portable (non-x86) build")
    if len(INFO["isas_compiled"]) == 1:
        pytest.skip("a single-level build (-Ccmake.define.MAXLIK_ISAS=...), e.g. CI's lane-layout one")
    assert INFO["isas_compiled"] == list(ALL)


CODE_INFO = "import json, maxlik; print(json.dumps(maxlik.build_info()))"


@pytest.mark.parametrize("level", AVAILABLE)
def test_maxlik_isa_forces_each_available_level(level):
    info = json.loads(_run(CODE_INFO, level).stdout)
    assert info["isa"] == level
    assert info["isas_available"] == AVAILABLE


def test_maxlik_isa_the_cpu_lacks_fails_at_import_naming_both_levels():
    missing = [lv for lv in INFO["isas_compiled"] if lv not in AVAILABLE]
    if not missing:
        pytest.skip("this CPU runs every compiled level")
    r = _run("import maxlik", missing[-1], check=False)
    assert r.returncode != 0
    assert "ImportError" in r.stderr
    assert f"MAXLIK_ISA={missing[-1]}: this CPU cannot run" in r.stderr
    assert INFO["host_isa"] in r.stderr


def test_maxlik_isa_garbage_fails_at_import():
    r = _run("import maxlik", "avx9000", check=False)
    assert r.returncode != 0 and "is not an instruction-set level" in r.stderr


# ---- every available level computes the same numbers (within the tolerance above) ----

CODE_RESULTS = r"""
import sys, numpy as np, maxlik
rng = np.random.default_rng(17)
out = {}
for dt in (np.float64, np.float32):
    t = np.dtype(dt).name
    a = (rng.standard_normal((300, 37)) * 5).astype(dt)
    out[f"lse_{t}"] = maxlik.logsumexp(a, axis=1)
    out[f"lse0_{t}"] = maxlik.logsumexp(a, axis=0)
    out[f"softmax_{t}"] = maxlik.softmax(a, axis=1)
    out[f"logsoftmax_{t}"] = maxlik.log_softmax(a, axis=1)
    X = rng.standard_normal((500, 5)).astype(dt)
    means = rng.standard_normal((3, 5)).astype(dt)
    covs = np.stack([np.eye(5, dtype=dt) * (1 + k) + 0.3 for k in range(3)])
    out[f"logpdf_{t}"] = maxlik.gaussian_logpdf(X, means, covs)
    y = rng.integers(0, 37, 300)
    out[f"ce_{t}"] = np.asarray(maxlik.softmax_cross_entropy(a, y, reduction="none"))
    p = maxlik.softmax(a, axis=1); q = maxlik.softmax(a[::-1].copy(), axis=1)
    out[f"kl_{t}"] = np.asarray(maxlik.kl_divergence(p, q))
    out[f"ent_{t}"] = np.asarray(maxlik.entropy(p))
X = np.concatenate([rng.normal(m, 0.5, (400, 3)) for m in (-4.0, 0.0, 4.0)])
gm = maxlik.GaussianMixture(3, random_state=0, tol=1e-12, max_iter=500).fit(X)
order = np.argsort(gm.means_[:, 0])
out["gmm_means"] = gm.means_[order]; out["gmm_cov"] = gm.covariances_[order]
out["gmm_weights"] = gm.weights_[order]
km = maxlik.KMeans(3, random_state=0, n_init=1).fit(X)
order = np.argsort(km.cluster_centers_[:, 0])
out["km_centers"] = km.cluster_centers_[order]
out["km_labels"] = np.argsort(order)[km.labels_].astype(np.float64)
yl = (X[:, 0] + 0.5 * rng.standard_normal(len(X)) > 0).astype(int)
lr = maxlik.LogisticRegression(tol=1e-10, max_iter=1000).fit(X, yl)
out["logreg_coef"] = np.r_[lr.coef_.ravel(), lr.intercept_.ravel()]
np.savez(sys.argv[1] if len(sys.argv) > 1 else OUTFILE, **out)
"""

ITERATIVE = ("gmm_", "km_", "logreg_")


@pytest.mark.slow
def test_every_available_level_agrees_within_the_documented_tolerance(tmp_path):
    if len(AVAILABLE) < 2:
        pytest.skip(f"only one level runs here ({AVAILABLE})")
    res = {}
    for lv in AVAILABLE:
        f = tmp_path / f"{lv}.npz"
        _run(CODE_RESULTS.replace("OUTFILE", repr(str(f))), lv)
        res[lv] = dict(np.load(f))
    ref_level = AVAILABLE[0]
    ref = res[ref_level]
    differs = False
    for lv in AVAILABLE[1:]:
        for key, want in ref.items():
            got = res[lv][key]
            assert got.dtype == want.dtype and got.shape == want.shape, key
            if key.startswith(ITERATIVE):
                rtol, atol = 1e-6, 1e-9
            elif key.endswith("float32"):
                rtol, atol = 1e-5, 1e-6
            else:
                rtol, atol = 1e-12, 1e-300
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol,
                                       err_msg=f"{key}: {lv} vs {ref_level}")
            differs |= not np.array_equal(got, want)
    # Not a requirement, but if every level gave bit-identical output the
    # "levels" would likely be one code path: FMA (v3) vs none (v2) must show.
    assert differs, f"levels {AVAILABLE} gave bit-identical results: is dispatch loading one module?"
