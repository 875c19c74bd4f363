"""Run-time instruction-set dispatch: which compiled level ``maxlik._core`` is.

The C++ core is compiled once per x86-64 micro-architecture level into one
extension module per level (``_core_v2``, ``_core_v3``, ``_core_v4``; a non-x86
build has only ``_core_baseline``). :func:`load_core` imports the best level
the running CPU supports, or the one named by the ``MAXLIK_ISA`` environment
variable. The check runs in ``maxlik._cpu``, which is compiled with baseline
flags, so a level the CPU lacks is refused before any of its code is loaded:
never an illegal-instruction crash.
"""
from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Sequence
from types import ModuleType

#: Every level a build can contain, lowest first.
LEVELS: tuple[str, ...] = ("baseline", "x86-64-v2", "x86-64-v3", "x86-64-v4")

#: Environment variable that forces one level (for testing each level).
ENV_VAR = "MAXLIK_ISA"


def module_name(level: str) -> str:
    """Name of the extension module holding ``level``'s code: ``x86-64-v3`` → ``_core_v3``."""
    return "_core_" + level.replace("x86-64-", "")


def choose_level(compiled: Sequence[str], supports: Callable[[str], bool], host: str,
                 requested: str | None) -> str:
    """The level to load.

    Parameters
    ----------
    compiled : sequence of str
        Levels this build contains.
    supports : callable
        ``supports(level)`` is True when the running CPU can execute ``level``.
    host : str
        The running CPU's highest level (for error messages).
    requested : str or None
        The value of ``MAXLIK_ISA``; None, ``""`` or ``"auto"`` means the best
        compiled level the CPU supports.

    Raises
    ------
    ImportError
        If ``requested`` is not a level, is not in this build, or needs
        instructions this CPU lacks; or if no compiled level runs here.
    """
    compiled = [lv for lv in LEVELS if lv in compiled]
    req = (requested or "").strip()
    if req in ("", "auto"):
        runnable = [lv for lv in compiled if supports(lv)]
        if not runnable:
            raise ImportError(
                f"maxlik: this build contains code for {', '.join(compiled) or 'no level'}, but this "
                f"CPU supports only {host!r}. Rebuild for it: pip install --no-binary maxlik "
                "maxlik -Ccmake.define.MAXLIK_ISAS=baseline")
        return runnable[-1]
    if req not in LEVELS:
        raise ImportError(
            f"{ENV_VAR}={req!r} is not an instruction-set level; expected one of "
            f"{', '.join(LEVELS[1:])} (or baseline, or auto / unset for the best this CPU supports)")
    if req not in compiled:
        raise ImportError(
            f"{ENV_VAR}={req}: this build of maxlik has no {req} code (it contains "
            f"{', '.join(compiled)}); unset {ENV_VAR} or choose one of those")
    if not supports(req):
        raise ImportError(
            f"{ENV_VAR}={req}: this CPU cannot run {req} code (it supports up to {host}); "
            f"unset {ENV_VAR} to use the best level it supports")
    return req


def load_core(package: str) -> tuple[str, ModuleType]:
    """Import the chosen level's module of ``package``; returns ``(level, module)``."""
    from . import _cpu

    level = choose_level(_cpu.isas_compiled, _cpu.supports, _cpu.host_isa(),
                         os.environ.get(ENV_VAR))
    return level, importlib.import_module(f"{package}.{module_name(level)}")
