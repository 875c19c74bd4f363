"""Exceptions and warnings raised by maxlik's estimators.

=========================  ===============================================
``NotFittedError``         an estimator used before ``fit`` (a ValueError
                           and an AttributeError, as in scikit-learn)
``ConvergenceWarning``     an iterative fit stopped before its tolerance
``DataConversionWarning``  input converted with a loss the user should know of
                           (e.g. a column-vector ``y``)
=========================  ===============================================

When scikit-learn is installed each class subclasses scikit-learn's class of
the same name, so ``except sklearn.exceptions.NotFittedError`` and
``pytest.warns(sklearn.exceptions.ConvergenceWarning)`` see maxlik's too, and
maxlik estimators pass scikit-learn's ``check_estimator``. scikit-learn is not
a run-time dependency, and importing it costs more than a second, so the
classes are made on first use (the first attribute access, ``raise`` or
warning), not when maxlik is imported; each is made once, so identity and
pickling are stable.
"""
from __future__ import annotations

__all__ = ["NotFittedError", "ConvergenceWarning", "DataConversionWarning"]

_SPECS = {
    "NotFittedError": (
        (ValueError, AttributeError),
        "Raised when an estimator is used before ``fit``.\n\n"
        "A ValueError and an AttributeError (so ``hasattr`` is False on unfitted\n"
        "estimators' fitted attributes), and sklearn.exceptions.NotFittedError\n"
        "when scikit-learn is installed."),
    "ConvergenceWarning": (
        (UserWarning,),
        "An iterative fit (EM, Lloyd, L-BFGS) stopped before reaching its tolerance.\n\n"
        "sklearn.exceptions.ConvergenceWarning when scikit-learn is installed."),
    "DataConversionWarning": (
        (UserWarning,),
        "Input was converted in a way the caller should know of (e.g. a column-vector y).\n\n"
        "sklearn.exceptions.DataConversionWarning when scikit-learn is installed."),
}
_made: dict[str, type] = {}


def _make(name: str) -> type:
    bases, doc = _SPECS[name]
    try:
        import sklearn.exceptions as _ske
    except ImportError:
        pass
    else:
        peer = getattr(_ske, name, None)
        if isinstance(peer, type) and all(issubclass(peer, b) for b in bases):
            bases = (peer,)
    return type(name, bases, {"__doc__": doc, "__module__": __name__,
                              "__qualname__": name})


def __getattr__(name: str) -> type:
    if name not in _SPECS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    cls = _made.get(name)
    if cls is None:
        cls = _made.setdefault(name, _make(name))
        globals()[name] = cls  # later look-ups skip this function
    return cls


def __dir__():
    return sorted(set(globals()) | set(_SPECS))
