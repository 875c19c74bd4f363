"""scikit-learn's estimator checks and an EM property test for maxlik.GaussianMixture."""
import warnings

import numpy as np
import pytest

from maxlik import GaussianMixture

estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings, strategies as st  # noqa: E402

# Exempted checks, with the reason:
EXEMPT: dict[str, str] = {}


def test_check_estimator():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = estimator_checks.check_estimator(GaussianMixture(), on_fail=None)
    failed = {r["check_name"]: r["exception"] for r in results if r["status"] == "failed"}
    assert set(failed) <= set(EXEMPT), {k: repr(v) for k, v in failed.items() if k not in EXEMPT}
    passed = [r for r in results if r["status"] == "passed"]
    assert len(passed) >= 40


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(30, 80), d=st.integers(1, 4),
       k=st.integers(1, 4), ctype=st.sampled_from(["full", "tied", "diag", "spherical"]),
       init=st.sampled_from(["random", "random_from_data", "k-means++"]))
def test_lower_bound_never_decreases(seed, n, d, k, ctype, init):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) * rng.uniform(0.1, 3, size=d) + rng.integers(-3, 3, size=(n, 1))
    # reg_covar = 0: with a ridge on the covariances the update is no longer the
    # exact M-step and the likelihood may dip by ~reg_covar (scikit-learn too).
    gm = GaussianMixture(k, covariance_type=ctype, init_params=init, max_iter=30, tol=0.0,
                         reg_covar=0.0, random_state=seed % 1000)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            gm.fit(X)
        except ValueError as exc:  # a component collapsed: not a monotonicity question
            hypothesis.assume("reg_covar" not in str(exc))
            raise
    lb = np.asarray(gm.lower_bounds_)
    assert np.all(np.isfinite(lb))
    # EM with a reg_covar ridge is still monotone up to rounding
    assert np.all(np.diff(lb) >= -1e-9 * np.maximum(1.0, np.abs(lb[1:])))
