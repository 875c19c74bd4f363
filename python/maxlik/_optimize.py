"""L-BFGS with a strong-Wolfe line search (private; used by LogisticRegression).

Pure numpy on O(n_params) vectors: the expensive part of each evaluation is
the caller's ``fun(x) -> (f, grad)``, which for the linear models is two BLAS
matrix products and the fused C++ loss+gradient kernel.

References: Nocedal & Wright, Numerical Optimization, 2nd ed.:
Algorithm 7.4 (two-loop recursion), (7.20) (initial Hessian scaling),
Algorithms 3.5 / 3.6 (line search for the strong Wolfe conditions, zoom).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["LbfgsResult", "minimize_lbfgs"]


@dataclass(frozen=True)
class LbfgsResult:
    x: np.ndarray
    fun: float
    grad: np.ndarray
    n_iter: int
    n_fev: int
    converged: bool
    message: str


def _cubic_min(a, fa, da, b, fb, db):
    """Minimiser of the cubic interpolating (a, fa, da), (b, fb, db); None if undefined.

    Nocedal & Wright (3.59).
    """
    d1 = da + db - 3.0 * (fa - fb) / (a - b)
    disc = d1 * d1 - da * db
    if not np.isfinite(disc) or disc < 0:
        return None
    d2 = np.sign(b - a) * np.sqrt(disc)
    denom = db - da + 2.0 * d2
    if denom == 0:
        return None
    t = b - (b - a) * (db + d2 - d1) / denom
    return t if np.isfinite(t) else None


def _line_search(fun, x, f0, g0, d, alpha1, c1, c2, max_ls, f_noise):
    """Step length satisfying the strong Wolfe conditions along `d`.

    Returns (alpha, f, g, n_fev) or None if `max_ls` evaluations did not find one.
    Nocedal & Wright Algorithms 3.5 (bracketing) and 3.6 (zoom).

    Near the minimum the decrease a step can achieve, O(|g|^2 / curvature),
    falls below the rounding error of ``f`` itself, and comparisons of ``f``
    values become coin tosses while the gradient is still accurate. A value
    within `f_noise` of ``f0`` is then judged by the directional derivative
    instead: it is accepted under the approximate Wolfe condition
    ``phi'(a) <= (2 c1 - 1) phi'(0)`` (Hager & Zhang, SIAM J. Optim. 16 (2005),
    eq. (4.1)), and the zoom brackets by the sign of ``phi'``.
    """
    dphi0 = float(g0 @ d)
    n_fev = 0

    def phi(a):
        nonlocal n_fev
        n_fev += 1
        f, g = fun(x + a * d)
        f = float(f)
        return f, g, (float(g @ d) if np.isfinite(f) else np.nan)

    def flat(f):
        return abs(f - f0) <= f_noise

    def sufficient(a, f, dp):  # Armijo, or its approximate form where f is noise
        if not np.isfinite(f):
            return False
        return f <= f0 + c1 * a * dphi0 or (flat(f) and dp <= (2.0 * c1 - 1.0) * dphi0)

    def higher(f, f_ref, slope_up):  # f above f_ref; by the slope where both are noise
        return slope_up if (flat(f) and flat(f_ref)) else f >= f_ref

    def zoom(lo, f_lo, d_lo, hi, f_hi, d_hi):
        while n_fev < max_ls:
            t = None
            if np.isfinite(f_hi) and np.isfinite(d_hi):
                t = _cubic_min(lo, f_lo, d_lo, hi, f_hi, d_hi)
            left, right = min(lo, hi), max(lo, hi)
            margin = 0.1 * (right - left)
            if t is None or not (left + margin <= t <= right - margin):
                t = 0.5 * (lo + hi)  # bisection safeguard
            f, g, dp = phi(t)
            if not sufficient(t, f, dp) or higher(f, f_lo, dp * (hi - lo) > 0):
                hi, f_hi, d_hi = t, f, dp
            else:
                if abs(dp) <= -c2 * dphi0:
                    return t, f, g
                if dp * (hi - lo) >= 0:
                    hi, f_hi, d_hi = lo, f_lo, d_lo
                lo, f_lo, d_lo = t, f, dp
                best[0] = (t, f, g)
            if abs(hi - lo) <= 1e-16 * max(1.0, abs(lo)):
                break
        return None

    best = [None]  # the best point satisfying sufficient decrease, for a failed search
    a_prev, f_prev, d_prev = 0.0, f0, dphi0
    a = alpha1
    for i in range(max_ls):
        f, g, dp = phi(a)
        if not sufficient(a, f, dp) or (i > 0 and higher(f, f_prev, dp > 0)):
            res = zoom(a_prev, f_prev, d_prev, a, f, dp)
            break
        if abs(dp) <= -c2 * dphi0:
            return a, f, g, n_fev
        if dp >= 0:
            res = zoom(a, f, dp, a_prev, f_prev, d_prev)
            break
        best[0] = (a, f, g)
        a_prev, f_prev, d_prev = a, f, dp
        a = 2.0 * a  # extrapolate
    else:
        res = None
    if res is not None:
        return res[0], res[1], res[2], n_fev
    if best[0] is not None:  # sufficient decrease without curvature: still progress
        a, f, g = best[0]
        return a, f, g, n_fev
    return None


_EPS = float(np.finfo(float).eps)


def minimize_lbfgs(fun: Callable[[np.ndarray], tuple[float, np.ndarray]], x0: npt.ArrayLike, *,
                   max_iter: int = 100, gtol: float = 1e-5, ftol: float = 64 * _EPS,
                   m: int = 10, max_ls: int = 50, c1: float = 1e-4, c2: float = 0.9,
                   f_noise_rtol: float = 1024 * _EPS) -> LbfgsResult:
    """Minimise ``fun`` (returning ``(f, grad)``) from `x0` by L-BFGS.

    Converged means one of:

    * ``max|grad| <= gtol``;
    * ``ftol > 0`` and the relative reduction
      ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol``

    (the tests of scipy's L-BFGS-B, so `gtol`, `ftol` and `max_iter` mean what
    they mean in scipy and scikit-learn). ``ftol=0`` switches the second test
    off: then only the gradient test can end the run as converged.

    Values of ``f`` closer than ``f_noise_rtol * |f|`` to each other are taken to
    be rounding noise; the line search then steers by the gradient (see
    `_line_search`), so progress continues below the resolution of ``f``.

    Not converged (``converged=False`` and a message saying why): `max_iter`
    iterations, a line search that finds no acceptable step even along the
    steepest descent, or a step too small to change ``x`` in floating point.
    """
    x = np.array(x0, dtype=np.float64)
    f, g = fun(x)
    f = float(f)
    n_fev = 1
    S: list[np.ndarray] = []  # steps s_k, gradient changes y_k, 1 / (s_k . y_k)
    Y: list[np.ndarray] = []
    RHO: list[float] = []
    n_iter = 0
    message = "max_iter reached before max|grad| <= gtol"
    converged = False
    if not np.isfinite(f):
        return LbfgsResult(x, f, g, 0, n_fev, False, "objective not finite at the start")
    eps = np.finfo(float).eps
    tmp = None
    while True:
        if np.max(np.abs(g), initial=0.0) <= gtol:
            converged, message = True, "gradient below gtol"
            break
        if n_iter >= max_iter:
            break
        # Two-loop recursion (N&W Algorithm 7.4): d = -H g.
        # In place through one scratch vector: for the many coefficients of sparse
        # text models (n_classes x vocabulary) a fresh temporary per update was
        # most of the optimiser's own time. Same operations, same rounding.
        q = g.copy()
        if tmp is None or tmp.shape != q.shape:
            tmp = np.empty_like(q)
        alphas = []
        for s, y, rho in zip(reversed(S), reversed(Y), reversed(RHO)):
            a = rho * (s @ q)
            alphas.append(a)
            np.multiply(a, y, out=tmp)
            q -= tmp
        if S:
            q *= (S[-1] @ Y[-1]) / (Y[-1] @ Y[-1])  # H0 = gamma I, N&W (7.20)
            alpha1 = 1.0
        else:
            alpha1 = min(1.0, 1.0 / max(float(np.linalg.norm(g)), 1e-300))
        for s, y, rho, a in zip(S, Y, RHO, reversed(alphas)):
            b = rho * (y @ q)
            np.multiply(a - b, s, out=tmp)
            q += tmp
        d = -q
        if not (g @ d < 0):  # not a descent direction: restart from steepest descent
            S, Y, RHO = [], [], []
            d = -g
            alpha1 = min(1.0, 1.0 / max(float(np.linalg.norm(g)), 1e-300))
        f_noise = f_noise_rtol * abs(f)
        ls = _line_search(fun, x, f, g, d, alpha1, c1, c2, max_ls, f_noise)
        if ls is None and S:
            S, Y, RHO = [], [], []  # drop the curvature history once and retry
            d = -g
            ls = _line_search(fun, x, f, g, d, min(1.0, 1.0 / np.linalg.norm(g)),
                              c1, c2, max_ls, f_noise)
        if ls is None:
            message = "line search failed to find an acceptable step (not converged)"
            break
        alpha, f_new, g_new, nf = ls
        n_fev += nf
        n_iter += 1
        s = alpha * d
        x_new = x + s
        if np.array_equal(x_new, x):
            message = "step too small to change x in floating point (not converged)"
            break
        y = g_new - g
        sy = float(s @ y)
        if sy > eps * float(y @ y):  # keep H positive definite
            S.append(s)
            Y.append(y)
            RHO.append(1.0 / sy)
            if len(S) > m:
                S.pop(0)
                Y.pop(0)
                RHO.pop(0)
        x = x_new
        f_old, f, g = f, f_new, g_new
        if ftol > 0 and (f_old - f) / max(abs(f_old), abs(f), 1.0) <= ftol:
            if np.max(np.abs(g), initial=0.0) <= gtol:
                message = "gradient below gtol"
            else:
                message = "relative reduction of the objective below ftol"
            converged = True
            break
    return LbfgsResult(x, f, g, n_iter, n_fev, converged, message)
