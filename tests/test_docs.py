"""The README tour and every docstring example run as doctests."""
import doctest
import importlib
import pathlib

import numpy as np
import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
MODULES = ["special", "stats", "mle", "divergences", "losses", "mixture", "cluster",
           "linear_model", "results", "_validation", "_threads"]


@pytest.mark.skipif(not README.exists(), reason="README not shipped with this install")
def test_readme_examples():
    res = doctest.testfile(str(README), module_relative=False, optionflags=doctest.ELLIPSIS)
    assert res.failed == 0


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    mod = importlib.import_module(f"maxlik.{name}")
    with np.printoptions(legacy=False):
        res = doctest.testmod(mod, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert res.failed == 0
