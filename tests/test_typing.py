"""The package is typed (PEP 561) and the compiled modules' stubs match them.

mypy and ruff themselves run in CI (.ci/run step 2, configured in pyproject.toml).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import maxlik

PKG = Path(maxlik.__file__).parent


def _stub(name: str) -> tuple[dict[str, list[str]], set[str]]:
    """(function name -> parameter names, attribute names) declared in maxlik/<name>.pyi."""
    tree = ast.parse((PKG / f"{name}.pyi").read_text())
    funcs, attrs = {}, set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            a = node.args
            funcs[node.name] = [p.arg for p in a.posonlyargs + a.args + a.kwonlyargs]
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            attrs.add(node.target.id)
    return funcs, attrs


def _split_top(sig: str) -> list[str]:
    """Split a pybind11 parameter list at the commas outside brackets."""
    parts, depth, cur = [], 0, ""
    for ch in sig:
        if ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [p.strip() for p in parts + [cur]]


def _runtime(mod) -> tuple[dict[str, list[str] | None], set[str]]:
    """(function name -> parameter names from pybind11's signature, or None if unnamed, attributes)."""
    funcs, attrs = {}, set()
    for n in dir(mod):
        if n.startswith("__"):
            continue
        obj = getattr(mod, n)
        if callable(obj):
            doc = obj.__doc__ or ""
            m = re.search(rf"^(?:1\. )?{re.escape(n)}\((.*?)\) ->", doc, re.M)
            params = [p.split(":")[0].strip() for p in _split_top(m.group(1))] if m and m.group(1) else []
            funcs[n] = None if any(re.fullmatch(r"arg\d+", p) for p in params) else params
        else:
            attrs.add(n)
    return funcs, attrs


def test_py_typed_marker_is_installed():
    assert (PKG / "py.typed").is_file()


@pytest.mark.parametrize("name", ["_core", "_cpu"])
def test_stub_declares_exactly_what_the_compiled_module_has(name):
    mod = getattr(maxlik, name)
    s_funcs, s_attrs = _stub(name)
    r_funcs, r_attrs = _runtime(mod)
    assert sorted(s_funcs) == sorted(r_funcs), (
        f"maxlik/{name}.pyi is out of date (declare each binding there): missing {sorted(set(r_funcs) - set(s_funcs))}, "
        f"extra {sorted(set(s_funcs) - set(r_funcs))}")
    assert s_attrs == r_attrs, f"maxlik/{name}.pyi attributes: {s_attrs} vs {r_attrs}"
    for fn, params in r_funcs.items():
        if params is not None:  # bindings that name their arguments: the stub uses the same names
            assert s_funcs[fn] == params, f"{name}.{fn}: stub {s_funcs[fn]} vs binding {params}"
