"""maxlik.exceptions: scikit-learn's classes when it is installed, made lazily."""
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

import maxlik
from maxlik import exceptions


def test_import_maxlik_does_not_import_sklearn():
    code = "import sys, maxlik; print('sklearn' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_classes_are_sklearns_subclasses_and_exported():
    ske = pytest.importorskip("sklearn.exceptions")
    for name in exceptions.__all__:
        cls = getattr(maxlik, name)
        assert cls is getattr(exceptions, name) is getattr(maxlik._base, name)
        assert issubclass(cls, getattr(ske, name))
        assert cls.__module__ == "maxlik.exceptions" and cls.__doc__
    assert issubclass(maxlik.NotFittedError, ValueError)
    assert issubclass(maxlik.NotFittedError, AttributeError)
    assert issubclass(maxlik.ConvergenceWarning, UserWarning)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        exceptions.Nope  # noqa: B018


def test_without_sklearn_the_classes_still_work():
    # a fresh interpreter where importing scikit-learn fails
    code = """
import sys
sys.modules['sklearn'] = None
import maxlik
E = maxlik.NotFittedError
assert issubclass(E, ValueError) and issubclass(E, AttributeError)
assert issubclass(maxlik.ConvergenceWarning, UserWarning)
try:
    maxlik.KMeans().predict([[0.0]])
except AttributeError as e:
    assert type(e) is E
print('ok')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize("est", [maxlik.GaussianMixture(), maxlik.KMeans(),
                                 maxlik.LogisticRegression(), maxlik.LinearRegression()])
def test_unfitted_estimators_raise_sklearns_not_fitted_error(est):
    ske = pytest.importorskip("sklearn.exceptions")
    with pytest.raises(ske.NotFittedError, match="not fitted yet"):
        est.predict(np.zeros((2, 2)))


def test_convergence_warning_is_sklearns():
    ske = pytest.importorskip("sklearn.exceptions")
    X = np.random.default_rng(0).normal(size=(200, 2))
    with pytest.warns(ske.ConvergenceWarning):
        maxlik.GaussianMixture(n_components=3, max_iter=1, random_state=0).fit(X)


def test_pickle_roundtrip_keeps_the_class():
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        e = pickle.loads(pickle.dumps(cls("boom")))
        assert type(e) is cls and str(e) == "boom"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(maxlik.ConvergenceWarning):
            warnings.warn("x", maxlik.ConvergenceWarning)
