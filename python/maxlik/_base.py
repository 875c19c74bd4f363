"""Estimator plumbing shared by maxlik's models: the scikit-learn contract
(get_params / set_params / clone / repr / tags) without importing scikit-learn
at run time."""
from __future__ import annotations

import copy
import functools
import inspect
from typing import TYPE_CHECKING, Any

import numpy as np

from . import exceptions

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["BaseEstimator", "check_is_fitted"]


def __getattr__(name):
    # the classes live in maxlik.exceptions, made on first use (see there)
    if name in exceptions.__all__:
        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def check_is_fitted(estimator: object, attribute: str) -> None:
    if not hasattr(estimator, attribute):
        raise exceptions.NotFittedError(
            f"This {type(estimator).__name__} instance is not fitted yet. Call 'fit' with "
            "appropriate arguments before using this estimator."
        )


def _transactional(method):
    """Restore ``self.__dict__`` if `method` raises (any exception, incl. KeyboardInterrupt).

    A shallow snapshot suffices because the fits assign new objects to their
    attributes instead of mutating fitted arrays in place.
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        snapshot = dict(self.__dict__)
        try:
            return method(self, *args, **kwargs)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(snapshot)
            raise

    wrapper._maxlik_transactional = True
    return wrapper


class BaseEstimator:
    """get_params / set_params / repr following scikit-learn's conventions.

    Subclasses list their hyper-parameters as keyword arguments of
    ``__init__``, which only stores them.
    """

    _estimator_type: str | None = None

    # Methods that learn state. Each is wrapped (see __init_subclass__) so that
    # it is all-or-nothing: if it raises -- a bad input, a collapsed component,
    # or KeyboardInterrupt from Ctrl-C in the middle of an EM / Lloyd / L-BFGS
    # loop -- the instance is put back exactly as it was before the call
    # (unfitted, or at its previous fit), never half-updated.
    _TRANSACTIONAL = ("fit", "fit_predict", "fit_transform", "partial_fit")

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        for name in cls._TRANSACTIONAL:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "_maxlik_transactional", False):
                setattr(cls, name, _transactional(method))

    @classmethod
    def _get_param_names(cls) -> list[str]:
        init = cls.__init__
        if init is object.__init__:
            return []
        sig = inspect.signature(init)
        return sorted(p.name for p in sig.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        out = {}
        for name in self._get_param_names():
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                for k, v in value.get_params().items():
                    out[f"{name}__{k}"] = v
            out[name] = value
        return out

    def set_params(self, **params: Any) -> Self:
        if not params:
            return self
        valid = self.get_params(deep=True)
        nested: dict[str, dict[str, Any]] = {}
        for key, value in params.items():
            name, delim, sub = key.partition("__")
            if name not in valid:
                raise ValueError(
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. "
                    f"Valid parameters are: {sorted(self._get_param_names())!r}."
                )
            if delim:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self) -> str:
        sig = inspect.signature(type(self).__init__)
        parts = []
        for name in self._get_param_names():
            default = sig.parameters[name].default
            value = getattr(self, name, None)
            same = False
            try:
                same = value is default or (not isinstance(value, np.ndarray) and value == default)
            except Exception:
                same = False
            if not same:
                parts.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

    def __getstate__(self):
        return copy.copy(self.__dict__)

    def __setstate__(self, state):
        self.__dict__.update(state)

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so importing it here is safe.
        from sklearn.utils import Tags, TargetTags, InputTags, ClassifierTags, RegressorTags, TransformerTags

        kind = self._estimator_type
        tags = Tags(
            estimator_type=kind,
            target_tags=TargetTags(required=kind in ("classifier", "regressor")),
            transformer_tags=TransformerTags() if hasattr(self, "transform") else None,
            classifier_tags=ClassifierTags() if kind == "classifier" else None,
            regressor_tags=RegressorTags() if kind == "regressor" else None,
            input_tags=InputTags(),
        )
        return tags
