// Loss kernels with fused gradients: softmax cross-entropy (index and
// probability targets), binary cross-entropy with logits, Gaussian NLL, MSE.
//
// Notation: N rows (samples), C classes. Every kernel reads its inputs once
// per row block, writes the loss and the gradient in the same pass, and
// returns per-block partial sums (double) that the caller merges in block
// order, so results do not depend on the thread count.
//
// Cross-entropy with per-class coefficients a_c >= 0 on a row of logits z:
//   loss = sum_c a_c (-log p_c),           p = softmax(z)
//        = A log s + sum_c a_c (m - z_c),  m = max z, s = sum_c e^{z_c - m}, A = sum_c a_c
//   dloss/dz_k = A p_k - a_k
// Index target y, class weights w, label smoothing eps (torch semantics):
//   a_c = (1 - eps) w_y [c == y] + (eps / C) w_c
// Probability target t: a_c = w_c ((1 - eps) t_c + eps / C).
// Terms with a_c == 0 are skipped (0 log 0 := 0), so a logit of -inf in a
// class with zero coefficient contributes nothing instead of 0 * inf = NaN.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "maxlik/parallel.hpp"
#include "maxlik/simd.hpp"

namespace maxlik {
namespace losses {

// Elements per task for the elementwise kernels (BCE, Gaussian NLL, MSE).
inline constexpr std::size_t kElemBlock = 16384;

namespace detail {

template <class T> inline T row_max(const T* z, std::size_t C) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  V vm = simd::set1<T>(ninf);
  std::size_t c = 0;
  for (; c + L <= C; c += L) vm = simd::max<T>(vm, simd::load<T>(z + c));
  if (c < C) vm = simd::max<T>(vm, simd::load_partial<T>(z + c, int(C - c), ninf));
  return simd::hmax<T>(vm);
}

template <class T> inline bool row_has_nan(const T* z, std::size_t C) {
  for (std::size_t c = 0; c < C; ++c)
    if (z[c] != z[c]) return true;
  return false;
}

// e_c = exp(z_c - m) written to e (may alias nothing), returns s = sum_c e_c.
template <class T> inline T row_exp_sum(const T* z, std::size_t C, T m, T* e) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const V vm = simd::set1<T>(m);
  V acc{};
  std::size_t c = 0;
  for (; c + L <= C; c += L) {
    V ex = simd::exp<T>(simd::load<T>(z + c) - vm);
    simd::store<T>(e + c, ex);
    acc += ex;
  }
  if (c < C) {
    V ex = simd::exp<T>(simd::load_partial<T>(z + c, int(C - c), ninf) - vm);
    simd::store_partial<T>(e + c, ex, int(C - c));
    acc += ex;
  }
  return simd::hsum<T>(acc);
}

// sum_c u_c (m - z_c), skipping u_c == 0; u == nullptr means u_c = 1.
template <class T> inline T row_weighted_gap(const T* z, std::size_t C, T m, const T* u) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  const V vm = simd::set1<T>(m);
  const V zero{};
  V acc{};
  std::size_t c = 0;
  if (u == nullptr) {
    for (; c + L <= C; c += L) acc += vm - simd::load<T>(z + c);
    T r = simd::hsum<T>(acc);
    for (; c < C; ++c) r += m - z[c];
    return r;
  }
  for (; c + L <= C; c += L) {
    V uc = simd::load<T>(u + c);
    V t = uc * (vm - simd::load<T>(z + c));
    acc += uc == zero ? zero : t;
  }
  T r = simd::hsum<T>(acc);
  for (; c < C; ++c)
    if (u[c] != T(0)) r += u[c] * (m - z[c]);
  return r;
}

// g_k = gs * (A e_k / s - a_k) with a_k = base * u_k (+ extra at index y);
// e is read from g (it was stored there by row_exp_sum).
template <class T>
inline void row_grad(T* g, std::size_t C, T As, T gs, const T* u, T base, std::int64_t y, T extra) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  const V vA = simd::set1<T>(As * gs);
  const V vb = simd::set1<T>(base * gs);
  std::size_t c = 0;
  if (u == nullptr) {
    for (; c + L <= C; c += L) simd::store<T>(g + c, simd::load<T>(g + c) * vA - vb);
    for (; c < C; ++c) g[c] = g[c] * (As * gs) - base * gs;
  } else {
    for (; c + L <= C; c += L)
      simd::store<T>(g + c, simd::load<T>(g + c) * vA - vb * simd::load<T>(u + c));
    for (; c < C; ++c) g[c] = g[c] * (As * gs) - base * gs * u[c];
  }
  if (y >= 0) g[y] -= extra * gs;
}

template <class T> inline void fill(T* g, std::size_t C, T v) { std::fill(g, g + C, v); }

// A row whose maximum is +inf (and that holds no NaN): the limit of logits
// z_c = L for the n_inf classes c in M = {c : z_c = +inf}, L -> inf, the other
// logits fixed. softmax -> p_c = [c in M] / n_inf, so with coefficients
//   a_c = base * u_c (u == nullptr: u_c = 1) + extra [c == y],  A = sum_c a_c,
//   loss = sum_{c in M} a_c log(n_inf) + sum_{c not in M, a_c != 0} a_c * inf
//          (+inf as soon as a class outside M has positive coefficient),
//   dloss/dz_k = A [k in M] / n_inf - a_k            (always finite).
// Returns the loss; writes gs * gradient to g if g != nullptr.
template <class T>
inline T row_pos_inf_limit(const T* z, std::size_t C, const T* u, T base, std::int64_t y, T extra,
                           T gs, T* g) {
  constexpr T inf = std::numeric_limits<T>::infinity();
  std::size_t n_inf = 0;
  T A = 0, A_in = 0, out = 0;
  for (std::size_t c = 0; c < C; ++c) {
    const T a = base * (u ? u[c] : T(1)) + (static_cast<std::int64_t>(c) == y ? extra : T(0));
    A += a;
    if (z[c] == inf) {
      ++n_inf;
      A_in += a;
    } else if (a != T(0)) {
      out += a * inf;  // -log p_c = +inf for a class the limit gives probability 0
    }
  }
  const T inv = T(1) / T(n_inf);
  if (g) {
    for (std::size_t c = 0; c < C; ++c) {
      const T a = base * (u ? u[c] : T(1)) + (static_cast<std::int64_t>(c) == y ? extra : T(0));
      g[c] = gs * ((z[c] == inf ? A * inv : T(0)) - a);
    }
  }
  const T in_part = n_inf > 1 ? A_in * std::log(T(n_inf)) : T(0);
  return out + in_part;
}

}  // namespace detail

// ---------------------------------------------------------------------------
// Softmax cross-entropy, integer targets.
//   logits (N, C) row-major; target (N,) int64
//   class_w (C,) or nullptr; row_w (N,) or nullptr (sample weights, used by
//   the linear models; multiplies every coefficient of the row)
//   grad (N, C) or nullptr: receives grad_scale * dloss_i/dz_i
//   row_loss (N,) or nullptr: per-row loss (unscaled)
//   block_sum (n_blocks(N),): per-block sum of the row losses (double)
// Rows with target == ignore_index get loss 0 and a zero gradient.
// A row of all -inf logits (and no NaN) is the limit of equal logits, since
// softmax is shift invariant: p = 1/C, loss = A log C, finite gradient.
// A row holding +inf logits (and no NaN) is the limit of those logits going
// to +inf together: p uniform over the +inf classes (row_pos_inf_limit).
// A NaN logit makes that row's loss and whole gradient row NaN.
// Labels are validated by the caller (softmax_ce_index_check).
template <class T>
void softmax_ce_index(const T* logits, std::size_t N, std::size_t C, const std::int64_t* target,
                      const T* class_w, const T* row_w, std::int64_t ignore_index, T eps,
                      T grad_scale, T* grad, T* row_loss, double* block_sum) {
  const T sum_w = [&] {
    if (!class_w) return T(C);
    double s = 0;
    for (std::size_t c = 0; c < C; ++c) s += class_w[c];
    return T(s);
  }();
  const T eps_c = eps / T(C);
  const T logC = std::log(T(C));
  parallel_for_blocks(N, kRowBlock, [&](std::size_t b, std::size_t r0, std::size_t r1) {
    // Scratch row for the exponentials when the caller wants no gradient.
    std::vector<T> scratch(grad ? 0 : C);
    // loss_i = A_i log(s_i) + rest_i: the logs of a block's row sums are taken
    // together, one vectorised log per lanes rows (rows without one keep
    // A = 0, s = 1), then the losses are summed in row order.
    T sv[kRowBlock], Av[kRowBlock], rest[kRowBlock];
    for (std::size_t i = r0; i < r1; ++i) {
      const std::size_t j = i - r0;
      sv[j] = T(1);
      Av[j] = T(0);
      rest[j] = T(0);
      const T* z = logits + i * C;
      T* g = grad ? grad + i * C : scratch.data();
      const std::int64_t y = target[i];
      if (y == ignore_index) {
        if (grad) detail::fill(g, C, T(0));
        continue;
      }
      const T r = row_w ? row_w[i] : T(1);
      const T wy = class_w ? class_w[y] : T(1);
      const T a_y = (T(1) - eps) * wy * r;  // the one-hot part of a_y
      const T base = eps_c * r;               // a_c = base * w_c (+ a_y at y)
      const T A = a_y + base * sum_w;
      T m = detail::row_max(z, C);
      if (m == -std::numeric_limits<T>::infinity() && !detail::row_has_nan(z, C)) {
        rest[j] = A * logC;
        if (grad) {
          detail::fill(g, C, T(1));
          detail::row_grad(g, C, A / T(C), grad_scale, class_w, base, y, a_y);
        }
      } else if (m == std::numeric_limits<T>::infinity() && !detail::row_has_nan(z, C)) {
        rest[j] = detail::row_pos_inf_limit(z, C, class_w, base, y, a_y, grad_scale,
                                            grad ? g : nullptr);
      } else {
        const T s = detail::row_exp_sum(z, C, m, g);
        sv[j] = s;
        Av[j] = A;
        T t = T(0);
        if (a_y != T(0)) t += a_y * (m - z[y]);
        if (base != T(0)) t += base * detail::row_weighted_gap(z, C, m, class_w);
        rest[j] = t;
        if (grad) detail::row_grad(g, C, A / s, grad_scale, class_w, base, y, a_y);
      }
    }
    constexpr int L = simd::lanes<T>;
    const std::size_t n = r1 - r0;
    for (std::size_t j = 0; j < n; j += L) {
      const int cnt = static_cast<int>(std::min<std::size_t>(L, n - j));
      const simd::vec<T> l = simd::log<T>(simd::load_partial<T>(sv + j, cnt, T(1)));
      simd::store_partial<T>(sv + j, l, cnt);
    }
    double acc = 0;
    for (std::size_t j = 0; j < n; ++j) {
      const T loss = Av[j] == T(0) ? rest[j] : Av[j] * sv[j] + rest[j];
      if (row_loss) row_loss[r0 + j] = loss;
      acc += double(loss);
    }
    block_sum[b] = acc;
  });
}

// Validates labels and returns sum over non-ignored rows of row_w[i] * class_w[y_i]
// (the 'mean' denominator, torch semantics). Throws invalid_argument naming `target`.
template <class T>
double softmax_ce_index_check(const std::int64_t* target, std::size_t N, std::size_t C,
                              const T* class_w, const T* row_w, std::int64_t ignore_index) {
  double d = 0;
  for (std::size_t i = 0; i < N; ++i) {
    const std::int64_t y = target[i];
    if (y == ignore_index) continue;
    if (y < 0 || y >= static_cast<std::int64_t>(C))
      throw std::invalid_argument("target must hold class indices in [0, " + std::to_string(C) +
                                  ") or ignore_index=" + std::to_string(ignore_index) + "; got " +
                                  std::to_string(y) + " at row " + std::to_string(i));
    d += double(class_w ? class_w[y] : T(1)) * double(row_w ? row_w[i] : T(1));
  }
  return d;
}

// ---------------------------------------------------------------------------
// Softmax cross-entropy, probability targets t (N, C); 'mean' divides by N
// (torch). Each target row must be non-negative and sum to 1 within tol;
// the first bad row (in row order) is reported through bad_row (else -1)
// and its kind through bad_kind (1: negative/NaN entry, 2: sum != 1).
template <class T>
void softmax_ce_prob(const T* logits, std::size_t N, std::size_t C, const T* target,
                     const T* class_w, T eps, T tol, T grad_scale, T* grad, T* row_loss,
                     double* block_sum, std::int64_t* bad_row, int* bad_kind) {
  const T eps_c = eps / T(C);
  const T logC = std::log(T(C));
  const std::size_t nb = n_blocks(N);
  std::vector<std::int64_t> block_bad(nb, -1);
  std::vector<int> block_kind(nb, 0);
  parallel_for_blocks(N, kRowBlock, [&](std::size_t b, std::size_t r0, std::size_t r1) {
    std::vector<T> scratch(grad ? C : 2 * C);
    T* u = scratch.data();  // per-class coefficients a_c of the row
    double acc = 0;
    for (std::size_t i = r0; i < r1; ++i) {
      const T* z = logits + i * C;
      const T* t = target + i * C;
      T* g = grad ? grad + i * C : scratch.data() + C;
      T tsum = 0, A = 0;
      bool neg = false;
      for (std::size_t c = 0; c < C; ++c) {
        const T tc = t[c];
        neg |= !(tc >= T(0));
        tsum += tc;
        const T a = (class_w ? class_w[c] : T(1)) * ((T(1) - eps) * tc + eps_c);
        u[c] = a;
        A += a;
      }
      if (neg || !(std::fabs(tsum - T(1)) <= tol)) {
        if (block_bad[b] < 0) {
          block_bad[b] = std::int64_t(i);
          block_kind[b] = neg ? 1 : 2;
        }
        block_sum[b] = 0;
        return;
      }
      T m = detail::row_max(z, C);
      T loss;
      if (m == -std::numeric_limits<T>::infinity() && !detail::row_has_nan(z, C)) {
        loss = A * logC;
        if (grad) {
          detail::fill(g, C, T(1));
          detail::row_grad<T>(g, C, A / T(C), grad_scale, u, T(1), -1, T(0));
        }
      } else if (m == std::numeric_limits<T>::infinity() && !detail::row_has_nan(z, C)) {
        loss = detail::row_pos_inf_limit<T>(z, C, u, T(1), -1, T(0), grad_scale,
                                            grad ? g : nullptr);
      } else {
        const T s = detail::row_exp_sum(z, C, m, g);
        loss = A * std::log(s) + detail::row_weighted_gap(z, C, m, u);
        if (grad) detail::row_grad<T>(g, C, A / s, grad_scale, u, T(1), -1, T(0));
      }
      if (row_loss) row_loss[i] = loss;
      acc += double(loss);
    }
    block_sum[b] = acc;
  });
  *bad_row = -1;
  for (std::size_t b = 0; b < nb; ++b)
    if (block_bad[b] >= 0) {
      *bad_row = block_bad[b];
      *bad_kind = block_kind[b];
      break;
    }
}

// ---------------------------------------------------------------------------
// Binary cross-entropy with logits, elementwise over n values (torch):
//   p = pos_weight (1 if absent), lw = (1 - t) + p t = 1 + (p - 1) t
//   loss = w [ (1 - t) x - lw log sigmoid(x) ]
//        = w [ (1 - t) max(x, 0) + p t max(-x, 0) + lw log1p(e^{-|x|}) ]
//   dloss/dx = w [ (1 - t) - lw (1 - sigmoid(x)) ] = w [ lw sigmoid(x) - p t ]
// The second form of the loss has no cancellation, and at x = +-inf it is the
// limit: a term whose coefficient ((1 - t), p t or w) is zero is absent, so
// x = +inf with t = 1 gives 0 (not 0 * inf), x = -inf with p t > 0 gives +inf,
// x = +inf with t < 1 gives +inf. The gradient is finite there:
// w (1 - t) at +inf and -w p t at -inf. NaN in x or t gives NaN.
// e^{-|x|} never overflows.
// weight / pos_weight: full-size arrays or nullptr.
template <class T>
void bce_with_logits(const T* x, const T* t, std::size_t n, const T* weight, const T* pos_weight,
                     T grad_scale, T* grad, T* elem_loss, double* block_sum) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  parallel_for_blocks(n, kElemBlock, [&](std::size_t b, std::size_t i0, std::size_t i1) {
    const V one = simd::set1<T>(T(1));
    const V zero{};
    const V gs = simd::set1<T>(grad_scale);
    V acc{};
    double tail = 0;
    auto step = [&](std::size_t i, int cnt) {
      const bool full = cnt == L;
      auto ld = [&](const T* p, T fill) {
        return full ? simd::load<T>(p + i) : simd::load_partial<T>(p + i, cnt, fill);
      };
      const V xv = ld(x, T(0));
      const V tv = ld(t, T(0));
      const V e = simd::exp<T>(-simd::abs<T>(xv));
      const V l1p = simd::log1p<T>(e);
      const V sig_pos = one / (one + e);                  // sigmoid(|x|)
      const V one_m_sig = xv >= zero ? e * sig_pos : sig_pos;  // 1 - sigmoid(x)
      const V q = one - tv;                               // coefficient of the negative term
      const V pt = pos_weight ? ld(pos_weight, T(1)) * tv : tv;  // of the positive term
      const V lw = pos_weight ? q + pt : one;
      const V xpos = xv > zero ? xv : zero, xneg = xv < zero ? -xv : zero;
      V loss = (q == zero ? zero : q * xpos) + (pt == zero ? zero : pt * xneg) + lw * l1p;
      loss = xv != xv ? xv : loss;                        // NaN logit: NaN (xpos/xneg drop it)
      V g = q - lw * one_m_sig;
      if (weight) {
        const V wv = ld(weight, T(0));
        loss = wv == zero ? zero : wv * loss;             // weight 0 masks, even an infinite loss
        g = wv * g;
      }
      if (elem_loss) {
        if (full) simd::store<T>(elem_loss + i, loss);
        else simd::store_partial<T>(elem_loss + i, loss, cnt);
      }
      if (grad) {
        if (full) simd::store<T>(grad + i, g * gs);
        else simd::store_partial<T>(grad + i, g * gs, cnt);
      }
      if (full) acc += loss;
      else
        for (int k = 0; k < cnt; ++k) tail += double(loss[k]);
    };
    std::size_t i = i0;
    for (; i + L <= i1; i += L) step(i, L);
    if (i < i1) step(i, int(i1 - i));
    block_sum[b] = double(simd::hsum<T>(acc)) + tail;
  });
}

// ---------------------------------------------------------------------------
// Gaussian negative log-likelihood (torch.nn.functional.gaussian_nll_loss):
//   v = max(var, eps)   (torch clamps under no_grad: the gradient is taken at
//                        the clamped value and still flows to var)
//   loss = 0.5 (log v + (mu - t)^2 / v) [+ 0.5 log 2 pi]
//   dloss/dmu = (mu - t) / v,  dloss/dvar = 0.5 (1/v - (mu - t)^2 / v^2)
// Data is R rows of K values; var is per element (var_per_row = false) or
// one value per row (var_per_row = true, grad_var then has R entries).
template <class T>
void gaussian_nll(const T* mu, const T* t, const T* var, std::size_t R, std::size_t K,
                  bool var_per_row, T eps, bool full, T grad_scale, T* grad_mu, T* grad_var,
                  T* elem_loss, double* block_sum) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  const T half_log2pi = full ? T(0.91893853320467274178) : T(0);
  // Row blocks sized so a task holds about kElemBlock values.
  const std::size_t rows_per_block = std::max<std::size_t>(1, kElemBlock / std::max<std::size_t>(K, 1));
  const std::size_t n = R * K;
  auto elem = [&](std::size_t i0, std::size_t i1, const T* vp, bool vscalar, T* gvp,
                  double& racc) {
    // values i0..i1 share either per-element var (vp indexed by i) or one var vp[0]
    const V half = simd::set1<T>(T(0.5));
    const V veps = simd::set1<T>(eps);
    const V gs = simd::set1<T>(grad_scale);
    const V c0 = simd::set1<T>(half_log2pi);
    V acc{}, gacc{};
    double tail = 0, gtail = 0;
    auto step = [&](std::size_t i, int cnt) {
      const bool f = cnt == L;
      auto ld = [&](const T* p, T fill) {
        return f ? simd::load<T>(p + i) : simd::load_partial<T>(p + i, cnt, fill);
      };
      V vv = vscalar ? simd::set1<T>(vp[0]) : ld(vp, T(1));
      vv = vv < veps ? veps : vv;  // NaN stays NaN
      const V d = ld(mu, T(0)) - ld(t, T(0));
      const V inv = simd::set1<T>(T(1)) / vv;
      const V d2v = d * d * inv;
      const V loss = half * (simd::log<T>(vv) + d2v) + c0;
      const V gm = d * inv * gs;
      const V gv = half * inv * (simd::set1<T>(T(1)) - d2v) * gs;
      if (elem_loss) {
        if (f) simd::store<T>(elem_loss + i, loss);
        else simd::store_partial<T>(elem_loss + i, loss, cnt);
      }
      if (grad_mu) {
        if (f) simd::store<T>(grad_mu + i, gm);
        else simd::store_partial<T>(grad_mu + i, gm, cnt);
      }
      if (f) acc += loss;
      else
        for (int k = 0; k < cnt; ++k) tail += double(loss[k]);
      if (gvp) {
        if (vscalar) {
          if (f) gacc += gv;
          else
            for (int k = 0; k < cnt; ++k) gtail += double(gv[k]);
        } else if (f) {
          simd::store<T>(gvp + i, gv);
        } else {
          simd::store_partial<T>(gvp + i, gv, cnt);
        }
      }
    };
    std::size_t i = i0;
    for (; i + L <= i1; i += L) step(i, L);
    if (i < i1) step(i, int(i1 - i));
    racc += double(simd::hsum<T>(acc)) + tail;
    if (gvp && vscalar) gvp[0] = T(double(simd::hsum<T>(gacc)) + gtail);
  };
  if (!var_per_row) {
    parallel_for_blocks(n, kElemBlock, [&](std::size_t b, std::size_t i0, std::size_t i1) {
      double racc = 0;
      elem(i0, i1, var, false, grad_var, racc);
      block_sum[b] = racc;
    });
  } else {
    parallel_for_blocks(R, rows_per_block, [&](std::size_t b, std::size_t r0, std::size_t r1) {
      double racc = 0;
      for (std::size_t r = r0; r < r1; ++r)
        elem(r * K, (r + 1) * K, var + r, true, grad_var ? grad_var + r : nullptr, racc);
      block_sum[b] = racc;
    });
  }
}

inline std::size_t gaussian_nll_blocks(std::size_t R, std::size_t K, bool var_per_row) {
  if (!var_per_row) return n_blocks(R * K, kElemBlock);
  const std::size_t rows_per_block = std::max<std::size_t>(1, kElemBlock / std::max<std::size_t>(K, 1));
  return n_blocks(R, rows_per_block);
}

// ---------------------------------------------------------------------------
// Mean squared error, elementwise: loss = (x - t)^2, dloss/dx = 2 (x - t).
template <class T>
void mse(const T* x, const T* t, std::size_t n, T grad_scale, T* grad, T* elem_loss,
         double* block_sum) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  parallel_for_blocks(n, kElemBlock, [&](std::size_t b, std::size_t i0, std::size_t i1) {
    const V g2 = simd::set1<T>(T(2) * grad_scale);
    V acc{};
    double tail = 0;
    std::size_t i = i0;
    for (; i + L <= i1; i += L) {
      const V d = simd::load<T>(x + i) - simd::load<T>(t + i);
      const V l = d * d;
      if (elem_loss) simd::store<T>(elem_loss + i, l);
      if (grad) simd::store<T>(grad + i, d * g2);
      acc += l;
    }
    for (; i < i1; ++i) {
      const T d = x[i] - t[i];
      if (elem_loss) elem_loss[i] = d * d;
      if (grad) grad[i] = T(2) * grad_scale * d;
      tail += double(d * d);
    }
    block_sum[b] = double(simd::hsum<T>(acc)) + tail;
  });
}

// ---------------------------------------------------------------------------
// Fused linear model + cross-entropy (the objective of LogisticRegression).
// X (N, D) row-major; W (K, D) row-major; b (K) or nullptr; y (N) class codes
// in [0, K) (binary: 0/1 with K = 1); sw (N) row weights.
//   softmax (K >= 2):  z = W x + b, loss_i = sw_i (logsumexp(z) - z_y),
//                      dloss_i/dz_k = sw_i (p_k - [k == y])
//   binary  (K == 1):  z = w.x + b, loss_i = sw_i (softplus(z) - t z),
//                      dloss_i/dz = sw_i (sigmoid(z) - t)
// grad_W = sum_i dloss_i/dz x_i^T, grad_b = sum_i dloss_i/dz.
// One read of X per evaluation: each row's dot products and its gradient
// contribution are done while the row is in L1. Per-block gradients go to
// slot[block] (K * (D + 1) values) and per-block losses to block_sum; the
// caller merges both in block order.
namespace detail {
// Z[r, k0..k0+KB) = X[r] . W[k] + b[k] for the rows of one block; RB rows at a
// time share each load of W (register tile RB x KB vectors).
template <class T, int RB, int KB>
inline void logits_tile(const T* X, std::size_t D, std::size_t r, const T* W, const T* b,
                        std::size_t k0, std::size_t K, T* Z /* block-local row r */) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  V a[RB][KB];
  for (int q = 0; q < RB; ++q)
    for (int j = 0; j < KB; ++j) a[q][j] = V{};
  std::size_t d = 0;
  for (; d + L <= D; d += L) {
    V u[RB];
    for (int q = 0; q < RB; ++q) u[q] = simd::load<T>(X + (r + q) * D + d);
    for (int j = 0; j < KB; ++j) {
      const V w = simd::load<T>(W + (k0 + j) * D + d);
      for (int q = 0; q < RB; ++q) a[q][j] += u[q] * w;
    }
  }
  for (int q = 0; q < RB; ++q)
    for (int j = 0; j < KB; ++j) {
      T v = simd::hsum<T>(a[q][j]);
      for (std::size_t e = d; e < D; ++e) v += X[(r + q) * D + e] * W[(k0 + j) * D + e];
      Z[q * K + k0 + j] = v + (b ? b[k0 + j] : T(0));
    }
}

// gW[k0..k0+KB) += sum over rows r..r+RB of G[row, k] X[row]: RB rows stay in
// L1 while each gW vector is loaded and stored once per RB rows.
template <class T, int RB, int KB>
inline void grad_tile(const T* Xb, std::size_t r, std::size_t D, const T* G, std::size_t K,
                      std::size_t k0, T* gW) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  T g[RB][KB];
  for (int q = 0; q < RB; ++q)
    for (int j = 0; j < KB; ++j) g[q][j] = G[(r + q) * K + k0 + j];
  std::size_t d = 0;
  for (; d + L <= D; d += L) {
    V x[RB];
    for (int q = 0; q < RB; ++q) x[q] = simd::load<T>(Xb + (r + q) * D + d);
    for (int j = 0; j < KB; ++j) {
      T* o = gW + (k0 + j) * D + d;
      V acc = simd::load<T>(o);
      for (int q = 0; q < RB; ++q) acc += g[q][j] * x[q];
      simd::store<T>(o, acc);
    }
  }
  for (; d < D; ++d)
    for (int j = 0; j < KB; ++j) {
      T acc = gW[(k0 + j) * D + d];
      for (int q = 0; q < RB; ++q) acc += g[q][j] * Xb[(r + q) * D + d];
      gW[(k0 + j) * D + d] = acc;
    }
}

template <class T> inline void exp_inplace(T* a, std::size_t n) {
  constexpr int L = simd::lanes<T>;
  std::size_t i = 0;
  for (; i + L <= n; i += L) simd::store<T>(a + i, simd::exp<T>(simd::load<T>(a + i)));
  if (i < n) simd::store_partial<T>(a + i, simd::exp<T>(simd::load_partial<T>(a + i, int(n - i), T(0))), int(n - i));
}
template <class T> inline void log_inplace(T* a, std::size_t n) {
  constexpr int L = simd::lanes<T>;
  std::size_t i = 0;
  for (; i + L <= n; i += L) simd::store<T>(a + i, simd::log<T>(simd::load<T>(a + i)));
  if (i < n) simd::store_partial<T>(a + i, simd::log<T>(simd::load_partial<T>(a + i, int(n - i), T(1))), int(n - i));
}

// Outer-product (GEMM micro-kernel) forms for K >= 2 classes. The weights are
// held transposed and padded, Wt (D, ldz) with ldz = K rounded up to whole
// vectors, so a tile of RB rows x KV class vectors accumulates in registers
// with one broadcast of x per row and feature: no horizontal sums, and each
// logit z[r, k] = b_k + sum_d x[r, d] W[k, d] is summed in feature order.
template <class T, int RB, int KV>
inline void logits_outer(const T* Xr, std::size_t D, const T* Wt, std::size_t ldz, std::size_t c0,
                         const T* bpad, T* Zr) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  V a[RB][KV];
  for (int j = 0; j < KV; ++j) {
    const V b = simd::load<T>(bpad + c0 + j * L);
    for (int q = 0; q < RB; ++q) a[q][j] = b;
  }
  // The tile two ahead, RB D contiguous values, is prefetched over this tile's
  // D steps: X streams from memory once per evaluation and the FMA chains
  // otherwise wait on it (one thread, N=1e5 D=100 K=10: 26 -> 19 ms of CPU time).
  const T* ahead = Xr + 2 * RB * D;
  for (std::size_t d = 0; d < D; ++d) {
    if (c0 == 0) __builtin_prefetch(ahead + d * RB);
    V w[KV];
    for (int j = 0; j < KV; ++j) w[j] = simd::load<T>(Wt + d * ldz + c0 + j * L);
    for (int q = 0; q < RB; ++q) {
      const V x = simd::set1<T>(Xr[q * D + d]);
      for (int j = 0; j < KV; ++j) a[q][j] += x * w[j];
    }
  }
  for (int q = 0; q < RB; ++q)
    for (int j = 0; j < KV; ++j) simd::store<T>(Zr + q * ldz + c0 + j * L, a[q][j]);
}

template <class T, int RB>
inline void logits_rows_outer(const T* Xr, std::size_t D, const T* Wt, std::size_t ldz,
                              const T* bpad, T* Zr) {
  constexpr int L = simd::lanes<T>;
  const std::size_t nv = ldz / L;
  std::size_t v = 0;
  for (; v + 3 <= nv; v += 3) logits_outer<T, RB, 3>(Xr, D, Wt, ldz, v * L, bpad, Zr);
  if (nv - v == 2) logits_outer<T, RB, 2>(Xr, D, Wt, ldz, v * L, bpad, Zr);
  if (nv - v == 1) logits_outer<T, RB, 1>(Xr, D, Wt, ldz, v * L, bpad, Zr);
}

// gWt[d0..d0+DB, class vectors] += sum over the R rows of x[r, d] G[r, :]:
// DB features x KV class vectors stay in registers for the whole block.
template <class T, int DB, int KV>
inline void grad_outer(const T* Xb, std::size_t R, std::size_t D, std::size_t d0, const T* G,
                       std::size_t ldz, std::size_t c0, T* gWt) {
  using V = simd::vec<T>;
  constexpr int L = simd::lanes<T>;
  V a[DB][KV];
  for (int i = 0; i < DB; ++i)
    for (int j = 0; j < KV; ++j) a[i][j] = simd::load<T>(gWt + (d0 + i) * ldz + c0 + j * L);
  for (std::size_t r = 0; r < R; ++r) {
    V g[KV];
    for (int j = 0; j < KV; ++j) g[j] = simd::load<T>(G + r * ldz + c0 + j * L);
    for (int i = 0; i < DB; ++i) {
      const V x = simd::set1<T>(Xb[r * D + d0 + i]);
      for (int j = 0; j < KV; ++j) a[i][j] += x * g[j];
    }
  }
  for (int i = 0; i < DB; ++i)
    for (int j = 0; j < KV; ++j) simd::store<T>(gWt + (d0 + i) * ldz + c0 + j * L, a[i][j]);
}

template <class T, int DB>
inline void grad_cols_outer(const T* Xb, std::size_t R, std::size_t D, std::size_t d0, const T* G,
                            std::size_t ldz, T* gWt) {
  constexpr int L = simd::lanes<T>;
  const std::size_t nv = ldz / L;
  std::size_t v = 0;
  for (; v + 3 <= nv; v += 3) grad_outer<T, DB, 3>(Xb, R, D, d0, G, ldz, v * L, gWt);
  if (nv - v == 2) grad_outer<T, DB, 2>(Xb, R, D, d0, G, ldz, v * L, gWt);
  if (nv - v == 1) grad_outer<T, DB, 1>(Xb, R, D, d0, G, ldz, v * L, gWt);
}

// Binary rows (K == 1), logits z[r] in place -> dloss/dz; returns sum_r loss_r
// and adds sum_r dloss/dz to *gb.
template <class T>
inline double sigmoid_ce_rows(T* Z, std::size_t R, const std::int64_t* y, const T* sw, T* gb) {
  double acc = 0;
  for (std::size_t r = 0; r < R; ++r) {
    const T wi = sw[r];
    const T zz = Z[r], t = T(y[r]);
    const T ea = simd::exp1<T>(-std::fabs(zz));
    const T sp = std::max(zz, T(0)) + simd::log1p1<T>(ea);  // softplus(z)
    const T sig = zz >= 0 ? T(1) / (T(1) + ea) : ea / (T(1) + ea);
    acc += double(wi * (sp - t * zz));
    Z[r] = wi * (sig - t);
    gb[0] += Z[r];
  }
  return acc;
}

// Softmax rows (K >= 2), row r at Z + r * ldz, logits in place -> dloss/dz;
// returns sum_r loss_r and adds the rows' dloss/dz to gb (K). Whole-block
// softmax: shift each row by its max, one vectorised exp sweep over the
// R * ldz entries (padding entries are finite and never read), one log sweep
// over the R row sums. The logits are finite here (X and W are).
// aux: 2 R scratch values.
template <class T>
inline double softmax_ce_rows(T* Z, std::size_t ldz, std::size_t R, std::size_t K,
                              const std::int64_t* y, const T* sw, T* aux, T* gb) {
  T* zy = aux;        // z_y - max, per row
  T* srow = aux + R;  // sum of exponentials, then its log
  for (std::size_t r = 0; r < R; ++r) {
    T* z = Z + r * ldz;
    T m = z[0];
    for (std::size_t k = 1; k < K; ++k) m = z[k] > m ? z[k] : m;
    for (std::size_t k = 0; k < K; ++k) z[k] -= m;
    zy[r] = z[y[r]];
  }
  exp_inplace(Z, (R - 1) * ldz + K);
  for (std::size_t r = 0; r < R; ++r) {
    const T* z = Z + r * ldz;
    T sum = 0;
    for (std::size_t k = 0; k < K; ++k) sum += z[k];
    srow[r] = sum;
  }
  for (std::size_t r = 0; r < R; ++r) {
    T* z = Z + r * ldz;
    const T wi = sw[r];
    const T c = wi / srow[r];
    for (std::size_t k = 0; k < K; ++k) z[k] *= c;
    z[y[r]] -= wi;
    for (std::size_t k = 0; k < K; ++k) gb[k] += z[k];
  }
  log_inplace(srow, R);
  double acc = 0;
  for (std::size_t r = 0; r < R; ++r) acc += double(sw[r] * (srow[r] - zy[r]));
  return acc;
}

// Wt (D, ldz) = W^T zero-padded, bpad (ldz) = b zero-padded; ldz = K rounded up
// to whole vectors. Once per evaluation (K D values).
template <class T>
inline std::size_t pad_transposed(const T* W, const T* b, std::size_t K, std::size_t D,
                                  std::vector<T>& Wt, std::vector<T>& bpad) {
  constexpr std::size_t L = static_cast<std::size_t>(simd::lanes<T>);
  const std::size_t ldz = (K + L - 1) / L * L;
  Wt.assign(D * ldz, T(0));
  bpad.assign(ldz, T(0));
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t d = 0; d < D; ++d) Wt[d * ldz + k] = W[k * D + d];
  if (b)
    for (std::size_t k = 0; k < K; ++k) bpad[k] = b[k];
  return ldz;
}
}  // namespace detail

inline constexpr std::size_t kLinearBlock = 256;  // rows per sub-block (X tile in L2)
inline constexpr std::size_t kLinearMaxTasks = 64;

// Rows per task: a multiple of kLinearBlock chosen from N alone (never from the
// thread count), so that at most kLinearMaxTasks gradient slots of K (D + 1)
// values exist however large N is.
inline std::size_t linear_task_rows(std::size_t N) {
  const std::size_t sub = n_blocks(n_blocks(N, kLinearMaxTasks), kLinearBlock);
  return std::max<std::size_t>(1, sub) * kLinearBlock;
}

template <class T>
void linear_ce(const T* X, std::size_t N, std::size_t D, const T* W, const T* b, std::size_t K,
               const std::int64_t* y, const T* sw, T* slots, double* block_sum) {
  const std::size_t P = K * (D + 1);
  if (K == 1) {
    // Binary: one logit per row, a matrix-vector product; the dot-product tiles
    // keep every lane busy (the outer-product form would use one lane in L).
    parallel_for_blocks(N, linear_task_rows(N), [&](std::size_t blk, std::size_t t0, std::size_t t1) {
      T* gW = slots + blk * P;
      T* gb = gW + D;
      std::fill(gW, gW + P, T(0));
      std::vector<T> Zbuf(kLinearBlock);
      double acc = 0;
      for (std::size_t r0 = t0; r0 < t1; r0 += kLinearBlock) {
        const std::size_t R = std::min(t1, r0 + kLinearBlock) - r0;
        T* Z = Zbuf.data();
        const T* Xb = X + r0 * D;
        std::size_t r = 0;
        for (; r + 2 <= R; r += 2) detail::logits_tile<T, 2, 1>(Xb, D, r, W, b, 0, 1, Z + r);
        for (; r < R; ++r) detail::logits_tile<T, 1, 1>(Xb, D, r, W, b, 0, 1, Z + r);
        acc += detail::sigmoid_ce_rows<T>(Z, R, y + r0, sw + r0, gb);
        for (r = 0; r + 4 <= R; r += 4) detail::grad_tile<T, 4, 1>(Xb, r, D, Z, 1, 0, gW);
        for (; r < R; ++r) detail::grad_tile<T, 1, 1>(Xb, r, D, Z, 1, 0, gW);
      }
      block_sum[blk] = acc;
    });
    return;
  }
  std::vector<T> Wt, bpad;
  const std::size_t ldz = detail::pad_transposed<T>(W, b, K, D, Wt, bpad);
  parallel_for_blocks(N, linear_task_rows(N), [&](std::size_t blk, std::size_t t0, std::size_t t1) {
    T* gW = slots + blk * P;  // K rows of D, then K intercept entries
    T* gb = gW + K * D;
    std::fill(gW, gW + P, T(0));
    std::vector<T> Zbuf(kLinearBlock * ldz), gWt(D * ldz, T(0)), aux(2 * kLinearBlock);
    double acc = 0;
    for (std::size_t r0 = t0; r0 < t1; r0 += kLinearBlock) {
      const std::size_t R = std::min(t1, r0 + kLinearBlock) - r0;
      T* Z = Zbuf.data();  // logits, then overwritten by dloss/dlogits
      const T* Xb = X + r0 * D;
      std::size_t r = 0;
      for (; r + 4 <= R; r += 4)
        detail::logits_rows_outer<T, 4>(Xb + r * D, D, Wt.data(), ldz, bpad.data(), Z + r * ldz);
      for (; r < R; ++r)
        detail::logits_rows_outer<T, 1>(Xb + r * D, D, Wt.data(), ldz, bpad.data(), Z + r * ldz);
      acc += detail::softmax_ce_rows<T>(Z, ldz, R, K, y + r0, sw + r0, aux.data(), gb);
      // gWt += X_block^T G
      std::size_t d = 0;
      for (; d + 4 <= D; d += 4) detail::grad_cols_outer<T, 4>(Xb, R, D, d, Z, ldz, gWt.data());
      for (; d < D; ++d) detail::grad_cols_outer<T, 1>(Xb, R, D, d, Z, ldz, gWt.data());
    }
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t d = 0; d < D; ++d) gW[k * D + d] = gWt[d * ldz + k];
    block_sum[blk] = acc;
  });
}

// Merge per-block partial sums in block order (thread-count independent).
inline double merge_blocks(const double* s, std::size_t nb) {
  double acc = 0;
  for (std::size_t b = 0; b < nb; ++b) acc += s[b];
  return acc;
}

}  // namespace losses
}  // namespace maxlik
