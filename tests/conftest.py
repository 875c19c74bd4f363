import os

import numpy as np
import pytest

import maxlik

try:
    from hypothesis import settings as _hyp_settings
except ImportError:  # pragma: no cover - hypothesis is in the test extras
    _hyp_settings = None

if _hyp_settings is not None:
    # CI runs the property tests with a fixed seed so a run is reproducible and a
    # red run is a real failure, not a rare draw; MAXLIK_HYPOTHESIS=random explores
    # fresh examples (what a developer does before changing a kernel).
    _hyp_settings.register_profile("ci", derandomize=True, print_blob=True)
    _hyp_settings.register_profile("random", derandomize=False, print_blob=True)
    _hyp_settings.load_profile(os.environ.get("MAXLIK_HYPOTHESIS", "ci"))


@pytest.fixture
def threads():
    """Run a body under a given thread count and restore the previous one."""
    old = maxlik.get_num_threads()

    class _T:
        def __call__(self, n):
            maxlik.set_num_threads(n)
            return self

    yield _T()
    maxlik.set_num_threads(old)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
