// Weighted first and second central moments of one data set, for the
// closed-form Gaussian fit (python/maxlik/mle.py).
//
// Notation: N rows of D features, row-major X (float or double), optional
// per-row weights w (double; null = all ones). Everything accumulates in
// double whatever T is.
//
// Shifted two-pass algorithm with the correction of Chan, Golub & LeVeque
// (1983):
//   pass 1  m = x₀ + Σ w (x − x₀) / W        (x₀ = the first row)
//   pass 2  S = Σ w d dᵀ − b bᵀ / W,  d = x − m,  b = Σ w d
// Shifting by a data row makes a constant column's mean — and so its variance,
// 0 — exact; squares of centred doubles never cancel, unlike E[x²] − E[x]²
// (scikit-learn #30382). b is the first-order rounding error of m.
//
// Determinism: rows are split into a fixed number of blocks that depends on N
// and D only (never on the thread count); each block sums into its own slot,
// and slots are merged in block order.
//
// Range: pass 1 also finds max |x|. Data beyond 2^400 in magnitude (whose
// squares, or sums of squares, may overflow: X ~ 1e200 gives (x - m)^2 ~ 1e400)
// or below 2^-400 (whose squares underflow) are rescaled on the fly by the
// power of two s = 2^-e that brings max |x| into [1, 2): x -> x s is exact, so
// the moments of x s are exactly s and s^2 times those of x. The scatter is
// then returned in the scaled units (the caller multiplies by 2^(2e) where the
// result is representable, and reports an error where it is not); the mean
// is returned unscaled (it lies within the range of the data).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <vector>

#include "maxlik/parallel.hpp"
#include "maxlik/simd.hpp"

namespace maxlik {
namespace moments {

// Rows per block: at least kRowBlock, and few enough blocks that the per-block
// D×D slots stay small (≤ 2^24 doubles in total, ≤ 64 blocks).
inline std::size_t block_rows(std::size_t N, std::size_t D) {
  const std::size_t per_slot = D * D + 2 * D + 1;
  std::size_t max_blocks = std::max<std::size_t>(1, std::min<std::size_t>(64, (std::size_t(1) << 24) / per_slot));
  return std::max<std::size_t>(kRowBlock, (N + max_blocks - 1) / max_blocks);
}

// acc[j] += Σ_r w_r (x_rj s − shift_j) over rows [r0, r1); returns Σ w_r.
// amax[j] (if given) becomes the largest |x_rj| over the rows with nonzero
// weight (NaN in a column leaves it unchanged there: the sums carry the NaN).
// The column loops are written over restrict-qualified arrays so that they
// compile to SIMD loops (the earlier scalar running max kept them scalar).
template <class T>
double shifted_sum_rows(const T* __restrict X, const double* __restrict w, std::size_t r0, std::size_t r1,
                        std::size_t D, const double* __restrict shift, double s, double* __restrict acc,
                        double* __restrict amax = nullptr) {
  double wsum = 0.0;
  for (std::size_t r = r0; r < r1; ++r) {
    const double wr = w ? w[r] : 1.0;
    if (wr == 0.0) continue;  // weight-0 rows are absent rows (also skips their inf*0)
    wsum += wr;
    const T* __restrict x = X + r * D;
    for (std::size_t j = 0; j < D; ++j) acc[j] += wr * (static_cast<double>(x[j]) * s - shift[j]);
    if (amax)
      for (std::size_t j = 0; j < D; ++j) {
        const double a = std::fabs(static_cast<double>(x[j]));
        amax[j] = amax[j] < a ? a : amax[j];
      }
  }
  return wsum;
}

// The exponent e of the rescaling x -> x 2^-e described at the top (0 when
// max |x| = amax needs none).
inline int scale_exponent(double amax) {
  if (!(amax > 0x1p-400 && amax < 0x1p400) && amax > 0.0 && std::isfinite(amax)) {
    int e = 0;
    std::frexp(amax, &e);  // amax = f 2^e, f in [0.5, 1)
    return std::max(-1000, std::min(1000, e - 1));
  }
  return 0;
}

// b[j] += Σ w d_j and S += Σ w d dᵀ (upper triangle, row-major D×D; with
// full == false only the diagonal, stored as S[j]), d = x − mean, rows [r0, r1).
// d is formed in double in `d` (D doubles of scratch).
template <class T>
void scatter_rows(const T* __restrict X, const double* __restrict w, std::size_t r0, std::size_t r1,
                  std::size_t D, const double* __restrict mean, double s, bool full, double* __restrict b,
                  double* __restrict S, double* __restrict d) {
  using V = simd::vec<double>;
  constexpr std::size_t L = simd::lanes<double>;
  for (std::size_t r = r0; r < r1; ++r) {
    const double wr = w ? w[r] : 1.0;
    if (wr == 0.0) continue;
    const T* __restrict x = X + r * D;
    if (!full) {
      for (std::size_t j = 0; j < D; ++j) {
        const double dj = static_cast<double>(x[j]) * s - mean[j];
        b[j] += wr * dj;
        S[j] += wr * dj * dj;
      }
      continue;
    }
    for (std::size_t j = 0; j < D; ++j) {
      d[j] = static_cast<double>(x[j]) * s - mean[j];
      b[j] += wr * d[j];
    }
    // Upper triangle only, starting each row at the vector boundary at or
    // below the diagonal: about half the multiply-adds of the full outer product.
    for (std::size_t i = 0; i < D; ++i) {
      const double a = wr * d[i];
      const V av = simd::set1<double>(a);
      double* Si = S + i * D;
      std::size_t j = (i / L) * L;
      for (; j + L <= D; j += L) simd::store<double>(Si + j, simd::load<double>(Si + j) + av * simd::load<double>(d + j));
      for (; j < D; ++j) Si[j] += a * d[j];
    }
  }
}

// Full two-pass computation over N rows on the thread pool. Outputs: mean (D),
// scatter (D×D, symmetric, or D diagonal entries) in units of 2^(2 e), and
// *scale_exp = e (see the top; 0 for data of ordinary range, where the
// scatter is the plain one), col_amax (D, if given) = max |x| per column over
// the rows of nonzero weight; returns the weight sum.
template <class T>
double weighted_scatter(const T* X, const double* w, std::size_t N, std::size_t D, bool full,
                        double* mean, double* scatter, int* scale_exp = nullptr,
                        double* col_amax = nullptr) {
  const std::size_t block = block_rows(N, D);
  const std::size_t nb = n_blocks(N, block);
  std::vector<double> shift(D);
  for (std::size_t j = 0; j < D; ++j) shift[j] = N ? static_cast<double>(X[j]) : 0.0;

  // pass 1: shifted sums (and max |x|, which decides the scale)
  std::vector<double> s1(nb * D, 0.0), ws(nb, 0.0), am(nb * D, 0.0);
  double sc = 1.0;
  parallel_for_blocks(N, block, [&](std::size_t bi, std::size_t r0, std::size_t r1) {
    ws[bi] = shifted_sum_rows<T>(X, w, r0, r1, D, shift.data(), 1.0, s1.data() + bi * D, am.data() + bi * D);
  });
  for (std::size_t bi = 1; bi < nb; ++bi)
    for (std::size_t j = 0; j < D; ++j) am[j] = std::max(am[j], am[bi * D + j]);
  if (col_amax) std::copy(am.begin(), am.begin() + D, col_amax);
  const int e = scale_exponent(*std::max_element(am.begin(), am.begin() + D));
  if (e != 0) {  // extreme range: pass 1 again on x 2^-e (its sums may have overflowed)
    sc = std::ldexp(1.0, -e);
    for (std::size_t j = 0; j < D; ++j) shift[j] *= sc;
    std::fill(s1.begin(), s1.end(), 0.0);
    parallel_for_blocks(N, block, [&](std::size_t bi, std::size_t r0, std::size_t r1) {
      shifted_sum_rows<T>(X, w, r0, r1, D, shift.data(), sc, s1.data() + bi * D);
    });
  }
  if (scale_exp) *scale_exp = e;
  double W = 0.0;
  std::vector<double> s(D, 0.0);
  for (std::size_t bi = 0; bi < nb; ++bi) {
    W += ws[bi];
    for (std::size_t j = 0; j < D; ++j) s[j] += s1[bi * D + j];
  }
  for (std::size_t j = 0; j < D; ++j) mean[j] = shift[j] + s[j] / W;  // scaled units

  // pass 2: centred scatter + first-order correction
  const std::size_t sl = full ? D * D : D;
  std::vector<double> b2(nb * D, 0.0), S2(nb * sl, 0.0);
  parallel_for_blocks(N, block, [&](std::size_t bi, std::size_t r0, std::size_t r1) {
    std::vector<double> d(D);
    scatter_rows<T>(X, w, r0, r1, D, mean, sc, full, b2.data() + bi * D, S2.data() + bi * sl,
                    d.data());
  });
  std::vector<double> b(D, 0.0);
  std::fill(scatter, scatter + sl, 0.0);
  for (std::size_t bi = 0; bi < nb; ++bi) {
    for (std::size_t j = 0; j < D; ++j) b[j] += b2[bi * D + j];
    for (std::size_t k = 0; k < sl; ++k) scatter[k] += S2[bi * sl + k];
  }
  if (full) {
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = i; j < D; ++j) {
        double v = scatter[i * D + j] - b[i] * b[j] / W;
        if (i == j && v < 0.0) v = 0.0;  // only rounding can make it negative
        scatter[i * D + j] = v;
        scatter[j * D + i] = v;
      }
  } else {
    for (std::size_t j = 0; j < D; ++j) scatter[j] = std::max(0.0, scatter[j] - b[j] * b[j] / W);
  }
  if (e != 0)
    for (std::size_t j = 0; j < D; ++j) mean[j] = std::ldexp(mean[j], e);  // back to data units
  return W;
}

}  // namespace moments
}  // namespace maxlik
