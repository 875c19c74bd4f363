r"""Asymptotic standard errors of a Gaussian mixture from the observed information.

The observed-data log-likelihood is ``ℓ(θ) = Σ_i w_i log Σ_k exp(ℓ_ik)`` with
``ℓ_ik = log π_k + log N(x_i | μ_k, Σ_k)``. Its exact Hessian is, per row
(the derivative of a log-sum-exp; Louis 1982 writes the same identity as the
complete-data information minus the missing information),

.. math:: \nabla^2 \log \sum_k e^{\ell_{ik}} = \sum_k r_{ik}\,(\nabla^2\ell_{ik}
          + g_{ik} g_{ik}^\top) - s_i s_i^\top,\qquad
          g_{ik} = \nabla\ell_{ik},\; s_i = \sum_k r_{ik} g_{ik},

with r_ik the responsibilities. This is the observed information itself, not
its outer-product-of-scores (empirical information) approximation, which
keeps only Σ_i s_i s_iᵀ. The covariance of the estimates is the inverse of
``-∇²ℓ`` at the fitted parameters, and the standard errors are the square
roots of its diagonal: asymptotic (large-n) standard errors, valid when the
fit is an interior maximum of the likelihood.

Free parametrisation θ (the Hessian is taken in these coordinates):

* weights: π_1 … π_{K-1} (the first K - 1 components' weights); the last is
  π_K = 1 - Σ_{k<K} π_k, and its standard error is the delta-method one,
  sqrt(1ᵀ V_ππ 1);
* means: every entry of μ_k;
* covariances: the unique entries of each symmetric Σ_k, i.e. σ_ab for
  a <= b ("full"; one shared matrix for "tied"), the D variances ("diag"),
  the one variance ("spherical"). σ_ab with a != b is one parameter that sets
  both (a, b) and (b, a), and its standard error is reported at both.

Per-row quantities: u = Σ⁻¹(x − μ). The derivatives of log N used are
∂/∂μ = u, ∂²/∂μ² = −Σ⁻¹, ∂/∂Σ[E] = ½(uᵀEu − tr Σ⁻¹E), ∂²/∂μ∂Σ[E] = −Σ⁻¹Eu,
∂²/∂Σ²[E, F] = ½ tr(Σ⁻¹EΣ⁻¹F) − uᵀEΣ⁻¹Fu, for basis directions E, F of the
covariance parameters; the terms Σ_i r_ik ∇²ℓ_ik need only Σ r, Σ r u and
Σ r u uᵀ per component. Rows are visited in blocks through a data source, so
memmap / Dask data are read once and X is never materialised.
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from ._validation import check_output_size

__all__ = ["mixture_stderr"]

_CHUNK_VALUES = 1 << 21  # rows x parameters per chunk of per-row scores


class _Layout:
    """Where each component's parameters sit in θ, and the covariance basis."""

    def __init__(self, ctype: str, K: int, D: int):
        self.ctype, self.K, self.D = ctype, K, D
        self.nw = K - 1
        self.mean0 = self.nw
        if ctype in ("full", "tied"):
            a, b = np.triu_indices(D)
        elif ctype == "diag":
            a = b = np.arange(D)
        else:
            a = b = np.zeros(1, dtype=np.intp)
        self.a, self.b = a, b
        self.m = a.shape[0]
        # basis matrices E_l of the covariance parameters
        E = np.zeros((self.m, D, D))
        if ctype == "spherical":
            E[0] = np.eye(D)
        else:
            E[np.arange(self.m), a, b] = 1.0
            E[np.arange(self.m), b, a] = 1.0
        self.E = E
        self.cov0 = self.mean0 + K * D
        n_cov = self.m if ctype == "tied" else K * self.m
        self.P = self.cov0 + n_cov

    def mean_idx(self, k):
        return self.mean0 + k * self.D + np.arange(self.D)

    def cov_idx(self, k):
        off = 0 if self.ctype == "tied" else k * self.m
        return self.cov0 + off + np.arange(self.m)

    def local_idx(self, k):
        """Global indices of [free weights, μ_k, Σ_k parameters]."""
        return np.concatenate([np.arange(self.nw), self.mean_idx(k), self.cov_idx(k)])


def _precisions(params):
    """Σ_k⁻¹ as (K, D, D) and log det Σ_k⁻¹ (K,), from the precision Cholesky factors."""
    ctype = params.covariance_type
    Pc = np.asarray(params.precisions_cholesky, dtype=np.float64)
    K, D = params.means.shape
    if ctype == "full":
        Lam = Pc @ np.swapaxes(Pc, 1, 2)
        logdet = 2.0 * np.sum(np.log(np.diagonal(Pc, axis1=1, axis2=2)), axis=1)
    elif ctype == "tied":
        Lam = np.broadcast_to(Pc @ Pc.T, (K, D, D))
        logdet = np.full(K, 2.0 * np.sum(np.log(np.diag(Pc))))
    elif ctype == "diag":
        Lam = np.zeros((K, D, D))
        Lam[:, np.arange(D), np.arange(D)] = Pc**2
        logdet = 2.0 * np.sum(np.log(Pc), axis=1)
    else:
        Lam = (Pc**2)[:, None, None] * np.eye(D)
        logdet = 2.0 * D * np.log(Pc)
    return np.ascontiguousarray(Lam), logdet


def _weight_score(lay: _Layout, weights):
    """∂ log π_k / ∂(π_1..π_{K-1}) (K, K-1) and ∂² log π_k (K, K-1, K-1)."""
    K = lay.K
    g = np.zeros((K, lay.nw))
    h = np.zeros((K, lay.nw, lay.nw))
    for k in range(lay.nw):
        g[k, k] = 1.0 / weights[k]
        h[k, k, k] = -1.0 / weights[k] ** 2
    if K > 1:
        g[K - 1, :] = -1.0 / weights[K - 1]
        h[K - 1] = -1.0 / weights[K - 1] ** 2
    return g, h


def _hessian_block(xb, wb, params, lay: _Layout):
    """(Σ_i w_i Σ_k r_ik (g gᵀ), −Σ_i w_i s sᵀ, N_k, Σ w r u, Σ w r u uᵀ) of one block."""
    K, D, P = lay.K, lay.D, lay.P
    means = np.asarray(params.means, dtype=np.float64)
    weights = np.asarray(params.weights, dtype=np.float64)
    Lam, logdet = _precisions(params)
    gw, _ = _weight_score(lay, weights)
    with np.errstate(divide="ignore"):
        log_w = np.log(weights)
    trLE = 0.5 * np.einsum("kab,lba->kl", Lam, lay.E)  # ½ tr(Σ⁻¹ E_l), (K, m)
    mult = np.where(lay.a == lay.b, 1.0, 2.0)
    outer = np.zeros((P, P))
    Nk = np.zeros(K)
    su = np.zeros((K, D))
    Muu = np.zeros((K, D, D))
    n = xb.shape[0]
    step = max(1, _CHUNK_VALUES // max(P + K * D, 1))
    for r0 in range(0, n, step):
        r1 = min(n, r0 + step)
        x = np.asarray(xb[r0:r1], dtype=np.float64)
        w = np.ones(r1 - r0) if wb is None else np.asarray(wb[r0:r1], dtype=np.float64)
        dev = x[:, None, :] - means[None, :, :]                 # (c, K, D)
        u = np.einsum("kab,ckb->cka", Lam, dev)                 # Σ⁻¹ (x − μ)
        quad = np.einsum("cka,cka->ck", dev, u)
        logp = log_w + 0.5 * logdet - 0.5 * D * math.log(2 * math.pi) - 0.5 * quad
        logp -= logp.max(axis=1, keepdims=True)
        r = np.exp(logp)
        r /= r.sum(axis=1, keepdims=True)
        wr = w[:, None] * r                                     # (c, K)
        Nk += wr.sum(axis=0)
        su += np.einsum("ck,cka->ka", wr, u)
        Muu += np.einsum("ck,cka,ckb->kab", wr, u, u)
        S = np.zeros((r1 - r0, P))                              # Σ_k r_ik g_ik
        for k in range(K):
            uk = u[:, k, :]
            if lay.ctype == "spherical":
                gc = 0.5 * np.sum(uk * uk, axis=1, keepdims=True) - trLE[k]
            else:
                gc = 0.5 * mult * uk[:, lay.a] * uk[:, lay.b] - trLE[k]
            G = np.concatenate([np.broadcast_to(gw[k], (r1 - r0, lay.nw)), uk, gc], axis=1)
            idx = lay.local_idx(k)
            outer[np.ix_(idx, idx)] += G.T @ (G * wr[:, k:k + 1])
            S[:, idx] += G * r[:, k:k + 1]
        outer -= S.T @ (S * w[:, None])
    return outer, Nk, su, Muu


def _merge(p, q):
    return tuple(a + b for a, b in zip(p, q))


def observed_information(source, params):
    """−∇²ℓ (P, P) in the free parametrisation (one pass over the source) and its layout."""
    K, D = params.means.shape
    lay = _Layout(params.covariance_type, K, D)
    # the (P, P) information, its per-block copies, and the inverse with its factor
    check_output_size((lay.P, lay.P), 8, f"observed information ({lay.P} x {lay.P}: one row "
                      "and column per free parameter)", extra_bytes=4 * lay.P * lay.P * 8)
    outer, Nk, su, Muu = source.map_reduce(_hessian_block, params, lay, merge=_merge)
    H = outer.copy()
    weights = np.asarray(params.weights, dtype=np.float64)
    Lam, _ = _precisions(params)
    _, hw = _weight_score(lay, weights)
    wi = np.arange(lay.nw)
    for k in range(K):
        H[np.ix_(wi, wi)] += Nk[k] * hw[k]
        mi, ci = lay.mean_idx(k), lay.cov_idx(k)
        H[np.ix_(mi, mi)] -= Nk[k] * Lam[k]
        A = np.einsum("ab,lbc->lac", Lam[k], lay.E)                       # Σ⁻¹ E_l
        mc = -np.einsum("lab,b->al", A, su[k])                            # −Σ⁻¹ E_l Σ r u
        H[np.ix_(mi, ci)] += mc
        H[np.ix_(ci, mi)] += mc.T
        B = np.einsum("lab,bc->lac", A, Muu[k])                           # Σ⁻¹ E_l M
        cc = (0.5 * Nk[k] * np.einsum("jab,lba->jl", A, A)
              - np.einsum("jab,lba->jl", lay.E, B))                       # ½N tr(ΛEΛF) − tr(EΛFM)
        H[np.ix_(ci, ci)] += 0.5 * (cc + cc.T)
    return -H, lay


def mixture_stderr(source, params) -> dict[str, np.ndarray]:
    """{"weights", "means", "covariances"}: standard errors shaped like the parameters."""
    info, lay = observed_information(source, params)
    K, D = lay.K, lay.D
    try:
        if not np.all(np.isfinite(info)):
            raise np.linalg.LinAlgError("non-finite information")
        L = np.linalg.cholesky(0.5 * (info + info.T))
        Linv = np.linalg.solve(L, np.eye(lay.P))
        V = Linv.T @ Linv
    except np.linalg.LinAlgError:
        warnings.warn("GaussianMixture.stderr: the observed information is not positive "
                      "definite (the parameters are not an interior maximum of the likelihood "
                      "of this X: a collapsed component, too few rows, or a fit on other "
                      "data); the standard errors are NaN", UserWarning, stacklevel=3)
        V = np.full((lay.P, lay.P), np.nan)
    var = np.diag(V)
    se_w = np.zeros(K)
    if K > 1:
        se_w[:K - 1] = np.sqrt(var[:K - 1])
        se_w[K - 1] = math.sqrt(float(np.sum(V[:K - 1, :K - 1])))
    se_m = np.sqrt(var[lay.mean0:lay.cov0]).reshape(K, D)
    se_c = np.sqrt(var[lay.cov0:])
    ctype = lay.ctype
    if ctype in ("full", "tied"):
        per = se_c.reshape(-1, lay.m)
        out = np.zeros((per.shape[0], D, D))
        out[:, lay.a, lay.b] = per
        out[:, lay.b, lay.a] = per
        cov = out[0] if ctype == "tied" else out
    elif ctype == "diag":
        cov = se_c.reshape(K, D)
    else:
        cov = se_c
    return {"weights": se_w, "means": se_m, "covariances": cov}
