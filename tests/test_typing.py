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


# ---- annotations on the public Python API ------------------------------------------------
# The modules whose public names are maxlik's (star-imported by maxlik/__init__.py), plus
# the other public modules; maxlik.dask / maxlik.torch only where their dependency is there.
_PUBLIC_MODULES = ["special", "stats", "mle", "divergences", "losses", "mixture", "cluster",
                   "linear_model", "_base", "cli", "dask", "torch"]


def _public_callables(module_name: str) -> list[tuple[str, object]]:
    """(qualified name, function) for every public function of the module's ``__all__``,
    and every public method (and ``__init__``) of its classes, inherited ones from maxlik
    included (BaseEstimator.get_params / set_params)."""
    import importlib
    import inspect

    try:
        mod = importlib.import_module(f"maxlik.{module_name}")
    except ImportError:  # the optional dependency of maxlik.dask / maxlik.torch is missing
        return []
    out: list[tuple[str, object]] = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if inspect.isfunction(obj):
            out.append((f"{module_name}.{name}", obj))
        elif inspect.isclass(obj) and obj.__module__.startswith("maxlik"):
            for klass in obj.__mro__:
                if not klass.__module__.startswith("maxlik"):
                    continue
                for attr, value in vars(klass).items():
                    if attr.startswith("_") and attr != "__init__":
                        continue
                    if isinstance(value, (staticmethod, classmethod)):
                        value = value.__func__
                    elif isinstance(value, property):
                        value = value.fget
                    if inspect.isfunction(value):
                        out.append((f"{module_name}.{name}.{attr}", value))
    return out


def _unannotated_in_source(module_name: str) -> list[str]:
    """The same check on the source (ast) of the module-level functions in ``__all__``:
    covers maxlik.torch / maxlik.dask also where their dependency is not installed."""
    tree = ast.parse((PKG / f"{module_name}.py").read_text())
    public: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__"
                                                for t in node.targets):
            public = set(ast.literal_eval(node.value))
    missing = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name in public:
            a = node.args
            params = a.posonlyargs + a.args + a.kwonlyargs + [p for p in (a.vararg, a.kwarg) if p]
            bare = [p.arg for p in params if p.annotation is None]
            if bare:
                missing.append(f"{module_name}.{node.name}: parameter(s) {', '.join(bare)}")
            if node.returns is None:
                missing.append(f"{module_name}.{node.name}: return type")
    return missing


@pytest.mark.parametrize("module_name", _PUBLIC_MODULES)
def test_public_functions_and_methods_are_annotated(module_name):
    import inspect

    missing = _unannotated_in_source(module_name)
    for qualname, fn in _public_callables(module_name):
        sig = inspect.signature(fn)  # follows functools.wraps (the all-or-nothing fits)
        params = [p for i, p in enumerate(sig.parameters.values())
                  if not (i == 0 and p.name in ("self", "cls"))]
        bare = [p.name for p in params if p.annotation is inspect.Parameter.empty]
        if bare:
            missing.append(f"{qualname}: parameter(s) {', '.join(bare)}")
        if sig.return_annotation is inspect.Signature.empty:
            missing.append(f"{qualname}: return type")
    assert not missing, "unannotated public API:\n  " + "\n  ".join(missing)


def test_maxlik_top_level_functions_are_annotated():
    import inspect

    for name in ("build_info", "get_num_threads", "set_num_threads"):
        sig = inspect.signature(getattr(maxlik, name))
        assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values()), name
        assert sig.return_annotation is not inspect.Signature.empty, name
