// Divergence kernels: KL to the standard normal (the VAE regulariser) and the
// discrete entropy / cross-entropy / KL reductions along the last axis.
//
// Notation: N rows, D entries per row; every row is contiguous, rows are
// `row_stride` elements apart (0 = the same row broadcast to all N rows).
// Kernels work on one block of rows [r0, r1) and write into caller-owned
// memory; the bindings run the blocks on the thread pool (parallel.hpp).
// Within a row the summation order is fixed (vector lanes, then the pairwise
// hsum, then the scalar tail), so results do not depend on the thread count.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "maxlik/simd.hpp"

namespace maxlik {
namespace divergence {

namespace detail {

// Row sum of a contiguous buffer in the fixed order used everywhere here.
template <class T> inline T row_sum(const T* b, std::size_t D) {
  constexpr std::size_t L = simd::lanes<T>;
  std::size_t j = 0;
  T s = T(0);
  if (D >= L) {
    simd::vec<T> acc = simd::load<T>(b);
    for (j = L; j + L <= D; j += L) acc += simd::load<T>(b + j);
    s = simd::hsum<T>(acc);
  }
  for (; j < D; ++j) s += b[j];
  return s;
}

// Rows of one block are processed in chunks whose elementwise terms fit in a
// small buffer (L1/L2 resident), so small D still fills whole vectors.
inline constexpr std::size_t kChunkElems = 4096;

}  // namespace detail

// ---- KL(N(μ, diag σ²) ‖ N(0, I)) per row ---------------------------------------
// kl_r = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²),  σ² = exp(logvar)   (Kingma & Welling
// 2014, appendix B). Exact gradients: ∂kl/∂μ = μ, ∂kl/∂logvar = ½ (σ² − 1) =
// ½ expm1(logvar), computed as ½ (x + (e^x − 1 − x)) for |x| < 1 to stay
// accurate near 0.
// grad_mu / grad_logvar may be null (no gradient wanted).
template <class T>
void kl_to_standard_normal_rows(const T* mu, const T* logvar, std::size_t r0, std::size_t r1,
                                std::size_t D, T* kl, T* grad_mu, T* grad_logvar,
                                T* buf /* kChunkElems or D elements, whichever larger */) {
  constexpr std::size_t L = simd::lanes<T>;
  const std::size_t rows_per_chunk = std::max<std::size_t>(1, detail::kChunkElems / std::max<std::size_t>(D, 1));
  for (std::size_t c0 = r0; c0 < r1; c0 += rows_per_chunk) {
    const std::size_t c1 = std::min(r1, c0 + rows_per_chunk);
    const std::size_t n = (c1 - c0) * D;
    const T* m = mu + c0 * D;
    const T* x = logvar + c0 * D;
    T* gm = grad_mu ? grad_mu + c0 * D : nullptr;
    T* gx = grad_logvar ? grad_logvar + c0 * D : nullptr;
    std::size_t i = 0;
    for (; i + L <= n; i += L) {
      const simd::vec<T> mv = simd::load<T>(m + i);
      const simd::vec<T> xv = simd::load<T>(x + i);
      simd::vec<T> f, g;
      simd::expm1mx<T>(xv, f, g);
      simd::store<T>(buf + i, mv * mv + f);
      if (gm) simd::store<T>(gm + i, mv);
      if (gx) simd::store<T>(gx + i, T(0.5) * g);
    }
    if (i < n) {
      const int rem = static_cast<int>(n - i);
      const simd::vec<T> mv = simd::load_partial<T>(m + i, rem, T(0));
      const simd::vec<T> xv = simd::load_partial<T>(x + i, rem, T(0));
      simd::vec<T> f, g;
      simd::expm1mx<T>(xv, f, g);
      simd::store_partial<T>(buf + i, mv * mv + f, rem);
      if (gm) simd::store_partial<T>(gm + i, mv, rem);
      if (gx) simd::store_partial<T>(gx + i, T(0.5) * g, rem);
    }
    for (std::size_t r = c0; r < c1; ++r) kl[r] = T(0.5) * detail::row_sum<T>(buf + (r - c0) * D, D);
  }
}

// ---- discrete entropy / cross-entropy / KL along rows ----------------------------
// Per row (natural log):
//   entropy        H(p)     = −Σ p log p
//   cross_entropy  CE(p, q) = −Σ p log q
//   kl             KL(p‖q)  =  Σ p log(p / q)
// with 0·log 0 = 0 and 0·log(0/q) = 0 (a zero p contributes nothing, whatever q),
// and p > 0 = q giving +inf for CE and KL. The same pass returns the row sums
// of p and q and counts entries that are negative or NaN, so the caller can
// validate without a second read of the data.
enum class Kind { entropy, cross_entropy, kl };

struct BadCount {
  std::int64_t p = 0;  // entries of p that are < 0 or NaN
  std::int64_t q = 0;
};

template <class T>
BadCount discrete_rows(Kind kind, const T* p, std::ptrdiff_t p_stride, const T* q,
                       std::ptrdiff_t q_stride, std::size_t r0, std::size_t r1, std::size_t D,
                       T* out, T* sum_p, T* sum_q) {
  using V = simd::vec<T>;
  using VI = simd::ivec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  constexpr T inf = std::numeric_limits<T>::infinity();
  const V zero{};
  VI bad_p{}, bad_q{};
  const bool two = kind != Kind::entropy;
  for (std::size_t r = r0; r < r1; ++r) {
    const T* pr = p + static_cast<std::ptrdiff_t>(r) * p_stride;
    const T* qr = two ? q + static_cast<std::ptrdiff_t>(r) * q_stride : nullptr;
    V acc{}, sp{}, sq{};
    auto step = [&](V pv, V qv) {
      bad_p -= (pv < zero) | (pv != pv);  // masks are -1: subtracting counts them
      sp += pv;
      V term;
      if (kind == Kind::entropy) {
        term = pv * simd::log<T>(pv);
      } else {
        bad_q -= (qv < zero) | (qv != qv);
        sq += qv;
        if (kind == Kind::cross_entropy) {
          term = pv * simd::log<T>(qv);  // p > 0 = q: p·(−inf) = −inf, negated below
        } else {
          // log(p/q): one log per entry. p/q overflows only for q subnormal and p
          // large; there log p − log q is still finite and correct.
          const V ratio = pv / qv;
          V lr = simd::log<T>(ratio);
          const VI ovf = (ratio == inf) & (qv > zero);
          if (simd::any<T>(ovf)) lr = ovf ? simd::log<T>(pv) - simd::log<T>(qv) : lr;
          term = pv * lr;
        }
      }
      // 0·log 0 = 0 (and 0·log(0/q) = 0); NaN p keeps its NaN.
      acc += pv == zero ? zero : term;
    };
    std::size_t j = 0;
    for (; j + L <= D; j += L) step(simd::load<T>(pr + j), two ? simd::load<T>(qr + j) : zero);
    if (j < D) {
      const int rem = static_cast<int>(D - j);
      // padding with p = 0: those lanes contribute 0 to every sum
      step(simd::load_partial<T>(pr + j, rem, T(0)),
           two ? simd::load_partial<T>(qr + j, rem, T(0)) : zero);
    }
    const T s = simd::hsum<T>(acc);
    out[r] = kind == Kind::kl ? s : T(0) - s;  // not -s: H of a point mass is +0, not -0
    sum_p[r] = simd::hsum<T>(sp);
    if (two) sum_q[r] = simd::hsum<T>(sq);
  }
  BadCount bc;
  for (std::size_t i = 0; i < L; ++i) {
    bc.p += static_cast<std::int64_t>(bad_p[i]);
    bc.q += static_cast<std::int64_t>(bad_q[i]);
  }
  return bc;
}

}  // namespace divergence
}  // namespace maxlik
