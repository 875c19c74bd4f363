"""maxlik: maximum-likelihood kernels with a C++ core.

Every estimator here maximises the average log-likelihood, which is the same as
minimising the cross-entropy from the data to the model, and the same as
minimising KL(data || model).
"""
from __future__ import annotations

import typing as _typing

__version__ = "0.1.0"

import sys as _sys

from . import _cpu, _isa

# Run-time dispatch (maxlik._isa): the best compiled level this CPU supports, or
# MAXLIK_ISA. Registered as maxlik._core, so every module's ``from . import
# _core`` gets it; only one level is ever loaded in a process.
_isa_level, _core = _isa.load_core(__name__)
_sys.modules[f"{__name__}._core"] = _core

from ._threads import get_num_threads, set_num_threads  # noqa: E402
from .special import *  # noqa: E402,F403
from .stats import *  # noqa: E402,F403
from .mle import *  # noqa: E402,F403
from .divergences import *  # noqa: E402,F403
from .losses import *  # noqa: E402,F403
from .mixture import *  # noqa: E402,F403
from .cluster import *  # noqa: E402,F403
from .linear_model import *  # noqa: E402,F403
from .selection import *  # noqa: E402,F403
from . import special, stats, mle, divergences, losses, mixture, cluster, linear_model  # noqa: E402


from . import exceptions  # noqa: E402


def __getattr__(name):
    # maxlik.NotFittedError etc.: made on first use (maxlik.exceptions explains why)
    if name in exceptions.__all__:
        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_info() -> dict[str, _typing.Any]:
    """Facts about this build and the code in use.

    Returns
    -------
    dict
        ``version``; ``isa``, the instruction-set level in use (chosen at
        import: the best this CPU supports, or ``MAXLIK_ISA``);
        ``isas_available``, the compiled levels this CPU can run (each can be
        forced with ``MAXLIK_ISA``); ``isas_compiled``, every level in the
        build; ``host_isa``, the CPU's highest level; ``simd_bytes``, the SIMD
        register width of the code in use (64 on AVX-512, or when forced with
        ``MAXLIK_VEC_BYTES``); ``compiler``; ``compile_flags`` of the level in
        use; ``num_threads``.

    Examples
    --------
    >>> info = build_info()
    >>> info["isa"] in info["isas_available"]
    True
    """
    compiled = [lv for lv in _isa.LEVELS if lv in _cpu.isas_compiled]
    return {
        "version": __version__,
        "isa": _isa_level,
        "isas_available": [lv for lv in compiled if _cpu.supports(lv)],
        "isas_compiled": compiled,
        "host_isa": _cpu.host_isa(),
        "simd_bytes": int(_core.simd_bytes),
        "compiler": _cpu.compiler,
        "compile_flags": str(_core.compile_flags).strip(),
        "num_threads": get_num_threads(),
    }
