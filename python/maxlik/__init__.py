"""maxlik: maximum-likelihood kernels with a C++ core.

Every estimator here maximises the average log-likelihood, which is the same as
minimising the cross-entropy from the data to the model, and the same as
minimising KL(data || model).
"""
from __future__ import annotations

__version__ = "0.1.0"

from . import _cpu

if not _cpu.supports(_cpu.build_isa):  # pragma: no cover - needs a different CPU
    raise ImportError(
        f"maxlik was compiled for the {_cpu.build_isa!r} instruction set, but this CPU "
        f"supports only {_cpu.host_isa()!r}. Reinstall maxlik on this machine "
        "(pip install --no-binary maxlik --force-reinstall maxlik), or build a portable "
        "copy with: pip install . -Ccmake.define.MAXLIK_ARCH=baseline"
    )

from . import _core  # noqa: E402
from ._threads import get_num_threads, set_num_threads  # noqa: E402
from .special import *  # noqa: E402,F401,F403
from .stats import *  # noqa: E402,F401,F403
from .mle import *  # noqa: E402,F401,F403
from .divergences import *  # noqa: E402,F401,F403
from .losses import *  # noqa: E402,F401,F403
from .mixture import *  # noqa: E402,F401,F403
from .cluster import *  # noqa: E402,F401,F403
from .linear_model import *  # noqa: E402,F401,F403
from . import special, stats, mle, divergences, losses, mixture, cluster, linear_model  # noqa: E402


from . import exceptions  # noqa: E402


def __getattr__(name):
    # maxlik.NotFittedError etc.: made on first use (maxlik.exceptions explains why)
    if name in exceptions.__all__:
        return getattr(exceptions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def build_info() -> dict:
    """Version, instruction set, SIMD register width, compiler and thread count of this build."""
    return {
        "version": __version__,
        "isa": _cpu.build_isa,
        "host_isa": _cpu.host_isa(),
        "simd_bytes": int(_core.simd_bytes),
        "compiler": _cpu.compiler,
        "compile_flags": _cpu.compile_flags.strip(),
        "num_threads": get_num_threads(),
    }
