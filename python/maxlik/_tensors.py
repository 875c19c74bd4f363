"""Array-likes of other libraries seen as numpy arrays without a copy.

The numpy-facing functions (``maxlik.losses``, ``maxlik.special``) accept
torch CPU tensors: ``tensor.detach().numpy()`` shares the tensor's memory, so
no data is copied, and a tensor that requires grad is read like any other
(the result is a numpy array, outside autograd; ``maxlik.torch`` has the
autograd versions). torch is never imported here: a tensor is recognised by
its type's module.
"""
from __future__ import annotations


def numpy_view(x, name: str):
    """`x` itself, or the numpy view of a torch tensor (TypeError off the CPU)."""
    if not type(x).__module__.startswith("torch") or not hasattr(x, "detach"):
        return x
    device = getattr(x, "device", None)
    if device is not None and device.type != "cpu":
        raise TypeError(
            f"{name} is a torch tensor on {device}; maxlik computes on CPU memory: pass "
            f"{name}.cpu(), or use torch's own function on {device.type}"
        )
    try:
        return x.detach().resolve_conj().resolve_neg().numpy()
    except (TypeError, RuntimeError) as exc:  # e.g. bfloat16, which numpy lacks
        raise TypeError(
            f"{name} is a torch tensor of dtype {x.dtype} that numpy cannot view ({exc}); "
            f"convert it with {name}.float()"
        ) from None
