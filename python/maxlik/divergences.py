"""Entropy, cross-entropy and Kullback-Leibler divergences.

The identity behind every fit in maxlik::

    CE(p, q) = H(p) + KL(p || q)

so maximising the average log-likelihood of data under a model q (minimising
the cross-entropy from the empirical distribution p̂ to q) is the same as
minimising KL(p̂ || q).

Discrete divergences (:func:`entropy`, :func:`cross_entropy`,
:func:`kl_divergence`) reduce along one axis in a fused C++ pass that also
validates the inputs. Gaussian divergences (:func:`gaussian_kl`,
:func:`kl_to_standard_normal`) are closed forms.
"""
from __future__ import annotations

import math

import numpy as np

from . import _core
from ._validation import as_float_array, check_bool, check_option, check_same_dtype

__all__ = [
    "kl_to_standard_normal",
]


# --------------------------------------------------------------------------- #
# KL to the standard normal (VAE regulariser)
# --------------------------------------------------------------------------- #
def kl_to_standard_normal(mu, logvar, return_grad=False):
    r"""KL divergence from N(mu, diag(exp(logvar))) to N(0, I), per row.

    .. math::

        \mathrm{KL} = \tfrac12 \sum_j \left(\mu_j^2 + \sigma_j^2 - 1 - \log\sigma_j^2\right),
        \qquad \sigma_j^2 = e^{\mathrm{logvar}_j}

    the regularisation term of the VAE loss (Kingma & Welling 2014, app. B).
    Computed by a fused, multi-threaded C++ kernel; the term
    :math:`e^x - 1 - x` is evaluated without cancellation, so the result keeps
    full relative accuracy when the posterior is close to the prior.

    Parameters
    ----------
    mu : array_like, shape (..., D)
        Means of the diagonal Gaussians; the last axis is the latent dimension.
    logvar : array_like, shape (..., D)
        Log-variances, same shape as `mu`.
    return_grad : bool, default False
        Also return the exact gradients of each row's KL with respect to `mu`
        (which is ``mu``) and `logvar` (which is ``(exp(logvar) - 1) / 2``),
        computed in the same pass.

    Returns
    -------
    kl : ndarray, shape (...)
        One value per row (a 0-d array for 1-D inputs). float32 inputs give
        float32; anything else float64.
    grad_mu, grad_logvar : ndarray, shape (..., D)
        Only with ``return_grad=True``.

    Raises
    ------
    TypeError
        Non-numeric inputs, or `return_grad` not a bool.
    ValueError
        `mu` and `logvar` of different shapes, or 0-d inputs.

    Notes
    -----
    NaN and infinite inputs propagate (``logvar = ±inf`` gives ``kl = inf``),
    as in a training loop; they are not rejected.

    Examples
    --------
    >>> import numpy as np
    >>> import maxlik
    >>> maxlik.kl_to_standard_normal(np.zeros((2, 3)), np.zeros((2, 3)))
    array([0., 0.])
    >>> kl, g_mu, g_lv = maxlik.kl_to_standard_normal([[1.0, 0.0]], [[0.0, np.log(2.0)]],
    ...                                               return_grad=True)
    >>> np.round(kl, 6)  # 0.5 * (1 + (2 - 1 - log 2))
    array([0.653426])
    >>> g_lv
    array([[0. , 0.5]])
    """
    return_grad = check_bool(return_grad, "return_grad")
    mu_a = as_float_array(mu, "mu", order=None)
    lv_a = as_float_array(logvar, "logvar", order=None)
    if mu_a.ndim == 0:
        raise ValueError("mu must have at least 1 dimension (..., D); got a 0-d array")
    if lv_a.shape != mu_a.shape:
        raise ValueError(
            f"logvar must have the same shape as mu {mu_a.shape}; got shape {lv_a.shape}"
        )
    dtype = check_same_dtype(mu_a, lv_a)
    shape = mu_a.shape
    D = shape[-1]
    lead = shape[:-1]
    N = int(np.prod(lead, dtype=np.int64))
    mu2 = np.ascontiguousarray(mu_a, dtype=dtype).reshape(N, D)
    lv2 = np.ascontiguousarray(lv_a, dtype=dtype).reshape(N, D)
    res = _core.kl_to_standard_normal(mu2, lv2, return_grad)
    if return_grad:
        kl, g_mu, g_lv = res
        return kl.reshape(lead), g_mu.reshape(shape), g_lv.reshape(shape)
    return res.reshape(lead)
