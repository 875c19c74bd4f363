import os

import numpy as np
import pytest

import maxlik


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
