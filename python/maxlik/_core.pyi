# Type stub for maxlik._core: the C++ kernels of the instruction-set level
# chosen at import (maxlik._core_v2 / _core_v3 / _core_v4 / _core_baseline are
# the same bindings compiled per level; maxlik/_isa.py picks one). Private:
# the public API is the maxlik package. tests/test_typing.py checks that this
# stub names exactly the functions and attributes the compiled module has.
#
# Arrays: the bindings take C-contiguous float64 or float32 arrays (one
# overload per dtype, chosen by the input's dtype; no silent casts), int64
# targets and int32 labels. Arguments typed ``_Opt`` accept an array or None.
from typing import Any

import numpy as np
import numpy.typing as npt

_F = npt.NDArray[np.floating[Any]]
_I = npt.NDArray[np.integer[Any]]
_Opt = npt.NDArray[Any] | None

build_isa: str
compile_flags: str
row_block: int
simd_bytes: int

def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

# special
def logsumexp(a: _F, b: _F | None, return_sign: bool) -> tuple[_F, Any]: ...  # (lse, sign or None)
def softmax(x: _F, out: _F, log: bool) -> None: ...
def logsumexp_complex(a: npt.NDArray[np.complexfloating[Any, Any]], b: _Opt,
                      return_sign: bool) -> tuple[npt.NDArray[np.complexfloating[Any, Any]], _Opt]: ...

# gaussian
def precision_cholesky(covariances: _F, sym_tol: float) -> tuple[_F, _I]: ...  # U, status per k
def gaussian_logpdf(X: _F, means: _F, prec: _F, log_weights: _Opt, center: _Opt,
                    cov_type: int) -> _F: ...
def gaussian_moments(X: _F, sample_weight: _Opt, full: bool) -> tuple[Any, ...]: ...
def _logpdf_scratch_bytes(itemsize: int, cov_type: int, D: int, K: int) -> float: ...

# mixture
def em_statistics(X: _F, sample_weight: _Opt, cov_type: int, shift: _F, means: _Opt,
                  prec: _Opt, log_weights: _Opt, resp: _Opt, labels: _Opt,
                  n_components: int) -> tuple[Any, ...]: ...
def _em_pass_bytes(itemsize: int, cov_type: int, N: int, D: int, K: int) -> float: ...

# cluster
def kmeans_lloyd_step(X: _F, shift: _F, centers: _F, sample_weight: _F | None, labels: _I,
                      update: bool, scale: float = 1.0) -> tuple[_F, _F, float]: ...
def kmeans_sq_distances(X: _F, shift: _F, centers: _F, scale: float = 1.0) -> _F: ...

# sparse (CSR: data, indices, indptr of n_rows + 1 offsets, n_features; indices int32 or int64)
def csr_kmeans_lloyd_step(data: _F, indices: _I, indptr: _I, n_features: int, shift: _F,
                          centers: _F, sample_weight: _F | None, labels: _I, update: bool,
                          scale: float = 1.0) -> tuple[_F, _F, float]: ...
def csr_kmeans_sq_distances(data: _F, indices: _I, indptr: _I, n_features: int, shift: _F,
                            centers: _F, scale: float = 1.0) -> _F: ...

# divergence
def discrete_divergence(kind: str, p: _F, q: _Opt = None) -> tuple[Any, ...]: ...
def kl_to_standard_normal(mu: _F, logvar: _F, return_grad: bool = False) -> Any: ...

# losses (fused loss + gradient; `grad` is an output array or None)
def _softmax_ce_index(logits: _F, target: _I, weight: _Opt, sample_weight: _Opt,
                      ignore_index: int, eps: float, mean: bool, want_rows: bool,
                      grad: _Opt, stage: bool = False) -> tuple[Any, ...]: ...
def _softmax_ce_prob(logits: _F, target: _F, weight: _Opt, eps: float, mean: bool,
                     want_rows: bool, grad: _Opt, stage: bool = False) -> tuple[Any, ...]: ...
def _bce_with_logits(logits: _F, target: _F, weight: _Opt, pos_weight: _Opt, scale: float,
                     want_elems: bool, grad: _Opt, stage: bool = False) -> tuple[Any, ...]: ...
def _gaussian_nll(mu: _F, target: _F, var: _F, R: int, K: int, per_row: bool, eps: float,
                  full: bool, scale: float, want_elems: bool, grad_mu: _Opt,
                  grad_var: _Opt, /) -> tuple[Any, ...]: ...
def _mse(input: _F, target: _F, scale: float, want_elems: bool, grad: _Opt,
         stage: bool = False) -> tuple[Any, ...]: ...
def _linear_ce(X: _F, W: _F, b: _Opt, codes: _I, sample_weight: _F, /) -> tuple[Any, ...]: ...
