// Batched Gaussian log-densities.
//
//   N rows (samples), D features, K components.
//
// Parameters follow scikit-learn's precision-Cholesky convention: for "full"
// and "tied" an UPPER-triangular U with precision Σ⁻¹ = U Uᵀ, so that
//
//   log N(x | μ, Σ) = −½ (D log 2π + ‖(x − μ)ᵀ U‖²) + Σ_j log U_jj ,
//
// for "diag" the per-feature 1/σ_j, for "spherical" one 1/σ per component.
//
// Kernels work on one block of at most kRowBlock rows held TRANSPOSED
// (feature-major, XT[i*Bp + r]) so that every inner loop is a SIMD loop over
// rows: the triangular product is then free of horizontal reductions and of
// padding waste in D, and the K log-densities of a block land in LP[k*Bp + r]
// ready for a vectorised log-sum-exp. Rows are padded to Bp, a multiple of the
// row tile, with zeros; callers ignore padded rows.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "parallel.hpp"
#include "simd.hpp"

namespace maxlik::gaussian {

enum class CovType : int { full = 0, tied = 1, diag = 2, spherical = 3 };

inline constexpr double kLog2Pi = 1.8378770664093454835606594728112;

// ---- Cholesky -----------------------------------------------------------------
// Status of a factorisation: 0 ok, 1 not symmetric, 2 not positive definite.
enum : int { kCholOk = 0, kCholNotSymmetric = 1, kCholNotPD = 2 };

// A (D×D, row-major, symmetric up to `sym_tol` relative to sqrt(a_ii a_jj))
// -> upper-triangular U with U Uᵀ = A⁻¹ (lower triangle set to 0).
// A = L Lᵀ (Cholesky–Banachiewicz), then U = (L⁻¹)ᵀ by forward substitution on
// the identity, which is what scikit-learn's _compute_precision_cholesky does.
inline int precision_cholesky(const double* A, std::size_t D, double* U, double sym_tol,
                              std::vector<double>& L) {
  if (sym_tol >= 0) {
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = i + 1; j < D; ++j) {
        const double a = A[i * D + j], b = A[j * D + i];
        const double scale = std::sqrt(std::fabs(A[i * D + i] * A[j * D + j]));
        if (!(std::fabs(a - b) <= sym_tol * scale)) return kCholNotSymmetric;
      }
  }
  L.assign(D * D, 0.0);
  for (std::size_t i = 0; i < D; ++i) {
    for (std::size_t j = 0; j <= i; ++j) {
      double s = A[i * D + j];  // lower triangle of A
      for (std::size_t k = 0; k < j; ++k) s -= L[i * D + k] * L[j * D + k];
      if (i == j) {
        if (!(s > 0) || !std::isfinite(s)) return kCholNotPD;
        L[i * D + i] = std::sqrt(s);
      } else {
        L[i * D + j] = s / L[j * D + j];
      }
    }
  }
  // Z = L⁻¹ column by column; U = Zᵀ.
  for (std::size_t i = 0; i < D * D; ++i) U[i] = 0.0;
  for (std::size_t c = 0; c < D; ++c) {
    for (std::size_t i = c; i < D; ++i) {
      double s = (i == c) ? 1.0 : 0.0;
      for (std::size_t k = c; k < i; ++k) s -= L[i * D + k] * U[c * D + k];
      U[c * D + i] = s / L[i * D + i];  // U[c][i] = Z[i][c]
    }
  }
  for (std::size_t i = 0; i < D * D; ++i)
    if (!std::isfinite(U[i])) return kCholNotPD;
  return kCholOk;
}

// ---- the model in kernel form -------------------------------------------------
// Built once per call from double parameters; O(K·D²).
template <class T> struct Model {
  CovType type = CovType::full;  // kernel path: full, tied or diag (spherical -> diag)
  std::size_t K = 0, D = 0;
  std::vector<T> mean;   // K×D (tied: b_k = (μ_k − c)ᵀU)
  std::vector<T> prec;   // full: K×D×D upper; tied: D×D upper; diag: K×D
  std::vector<T> center; // tied: c (D)
  std::vector<T> cst;    // K: log π_k + log det U_k − D/2 log 2π
  // diag in double, GEMM form (see diag_logdens_gemm): x' = x − c with c the
  // mean of the K means; log N + log π = qc_k + Σ_i qa_ki x'_i + qb_ki x'_i².
  std::vector<T> qshift, qa, qb, qc;  // D, K×D, K×D, K
};

// The GEMM form of the diag log-densities (diag_logdens_gemm): double, and
// enough components and features for the register tile to pay.
template <class T> inline bool use_diag_gemm(std::size_t K, std::size_t D) {
  return sizeof(T) == 8 && K >= 4 && D >= 4;
}

// means: K×D; prec: full K×D×D, tied D×D, diag K×D, spherical K (all double);
// log_weights: K or nullptr; center: D (tied only; nullptr -> 0).
// The lower triangle of full/tied factors is ignored (treated as 0).
// D = 1 uses the diag path for every type (the fast path).
template <class T>
Model<T> make_model(CovType type, std::size_t K, std::size_t D, const double* means,
                    const double* prec, const double* log_weights, const double* center) {
  Model<T> m;
  m.K = K;
  m.D = D;
  m.cst.assign(K, T(0));
  std::vector<double> logdet(K, 0.0);
  if (type == CovType::full || type == CovType::tied) {
    const bool tied = type == CovType::tied;
    for (std::size_t k = 0; k < K; ++k) {
      const double* U = prec + (tied ? 0 : k * D * D);
      for (std::size_t j = 0; j < D; ++j) logdet[k] += std::log(U[j * D + j]);
    }
    if (D == 1) {
      m.type = CovType::diag;
      m.mean.assign(means, means + K);
      m.prec.resize(K);
      for (std::size_t k = 0; k < K; ++k) m.prec[k] = static_cast<T>(prec[tied ? 0 : k]);
    } else if (!tied) {
      m.type = CovType::full;
      m.mean.assign(means, means + K * D);
      m.prec.assign(K * D * D, T(0));
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t j = i; j < D; ++j)
            m.prec[(k * D + i) * D + j] = static_cast<T>(prec[(k * D + i) * D + j]);
    } else {
      m.type = CovType::tied;
      m.prec.assign(D * D, T(0));
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = i; j < D; ++j) m.prec[i * D + j] = static_cast<T>(prec[i * D + j]);
      m.center.assign(D, T(0));
      std::vector<double> c(D, 0.0);
      if (center)
        for (std::size_t i = 0; i < D; ++i) c[i] = center[i];
      for (std::size_t i = 0; i < D; ++i) m.center[i] = static_cast<T>(c[i]);
      // b_k = (μ_k − c)ᵀ U in double: the transformed data is z = (x − c)ᵀU.
      m.mean.assign(K * D, T(0));
      for (std::size_t k = 0; k < K; ++k)
        for (std::size_t j = 0; j < D; ++j) {
          double s = 0;
          for (std::size_t i = 0; i <= j; ++i) s += (means[k * D + i] - c[i]) * prec[i * D + j];
          m.mean[k * D + j] = static_cast<T>(s);
        }
    }
  } else {
    m.type = CovType::diag;
    m.mean.assign(means, means + K * D);
    m.prec.resize(K * D);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t j = 0; j < D; ++j) {
        const double p = type == CovType::spherical ? prec[k] : prec[k * D + j];
        m.prec[k * D + j] = static_cast<T>(p);
        logdet[k] += type == CovType::spherical ? 0.0 : std::log(p);
      }
    if (type == CovType::spherical)
      for (std::size_t k = 0; k < K; ++k) logdet[k] = static_cast<double>(D) * std::log(prec[k]);
  }
  for (std::size_t k = 0; k < K; ++k)
    m.cst[k] = static_cast<T>((log_weights ? log_weights[k] : 0.0) + logdet[k] -
                              0.5 * static_cast<double>(D) * kLog2Pi);
  if (m.type == CovType::diag && use_diag_gemm<T>(K, D)) {
    // −½ Σ ((x − μ) p)² = −½ Σ p² (x' − d)² with d = μ − c
    //                   = Σ [ (d p²) x' + (−½ p²) x'² ] − ½ Σ (d p)²,
    // all coefficients formed in double from the double parameters. Near μ_k
    // the terms cancel: the absolute error is about eps Σ (d p)², so the
    // expanded form is used only while that stays below 1e6 (< 1e-9 nats);
    // farther-flung components keep the centred form.
    m.qshift.assign(D, T(0));
    m.qa.assign(K * D, T(0));
    m.qb.assign(K * D, T(0));
    m.qc.assign(K, T(0));
    bool gemm_ok = true;
    std::vector<double> c(D, 0.0);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t j = 0; j < D; ++j) c[j] += double(m.mean[k * D + j]) / double(K);
    for (std::size_t j = 0; j < D; ++j) m.qshift[j] = static_cast<T>(c[j]);
    for (std::size_t k = 0; k < K; ++k) {
      double q = 0;
      for (std::size_t j = 0; j < D; ++j) {
        const double p = double(m.prec[k * D + j]), d = double(m.mean[k * D + j]) - double(m.qshift[j]);
        m.qa[k * D + j] = static_cast<T>(d * p * p);
        m.qb[k * D + j] = static_cast<T>(-0.5 * p * p);
        q += (d * p) * (d * p);
      }
      m.qc[k] = static_cast<T>(double(m.cst[k]) - 0.5 * q);
      if (!(q <= 1e6)) gemm_ok = false;  // also NaN / inf
    }
    if (!gemm_ok) m.qshift.clear(), m.qa.clear(), m.qb.clear(), m.qc.clear();
  }
  return m;
}

// ---- block helpers -----------------------------------------------------------
template <class T> inline constexpr std::size_t kRowTileVecs = 4;
template <class T> inline constexpr std::size_t kRowTile = kRowTileVecs<T> * simd::lanes<T>;

inline std::size_t padded_rows(std::size_t n, std::size_t tile) { return (n + tile - 1) / tile * tile; }

// B[j*ldb + i] = A[i*lda + j] for i < m, j < n. Whole L×L tiles go through
// registers: log2(L) rounds of "zip" (perfect shuffle) on L loaded rows give
// the transposed tile (a scalar transpose costs ~2 memory ops per element).
namespace detail {
template <class T> inline void transpose_tile(const T* A, std::size_t lda, T* B, std::size_t ldb) {
  constexpr int L = simd::lanes<T>;
  simd::vec<T> r[L];
  for (int i = 0; i < L; ++i) r[i] = simd::load(A + i * lda);
  simd::transpose_tile<T>(r);
  for (int j = 0; j < L; ++j) simd::store(B + j * ldb, r[j]);
}
}  // namespace detail

template <class T>
inline void transpose(const T* A, std::size_t lda, std::size_t m, std::size_t n, T* B,
                      std::size_t ldb) {
  constexpr std::size_t L = simd::lanes<T>;
  const std::size_t m0 = m / L * L, n0 = n / L * L;
  for (std::size_t i = 0; i < m0; i += L) {
    // X streams from memory: ask for the rows 4 tiles ahead (one cache line per
    // 64 bytes of the next rows).
    const char* ahead = reinterpret_cast<const char*>(A + (i + 4 * L) * lda);
    if (i + 4 * L < m)
      for (std::size_t b = 0; b < L * lda * sizeof(T); b += 64) __builtin_prefetch(ahead + b);
    for (std::size_t j = 0; j < n0; j += L) detail::transpose_tile(A + i * lda + j, lda, B + j * ldb + i, ldb);
    for (std::size_t j = n0; j < n; ++j)
      for (std::size_t q = 0; q < L; ++q) B[j * ldb + i + q] = A[(i + q) * lda + j];
  }
  for (std::size_t i = m0; i < m; ++i)
    for (std::size_t j = 0; j < n; ++j) B[j * ldb + i] = A[i * lda + j];
}

// XT[i*ld + r] = X[r, i] for r < nr; 0 for padded rows up to Bp.
template <class T>
inline void transpose_block(const T* X, std::size_t nr, std::size_t D, T* XT, std::size_t ld,
                            std::size_t Bp) {
  transpose(X, D, nr, D, XT, ld);
  for (std::size_t i = 0; i < D; ++i)
    for (std::size_t q = nr; q < Bp; ++q) XT[i * ld + q] = T(0);
}

// XC = XT − shift (per feature), over Bp rows.
template <class T>
inline void centre_block(const T* XT, std::size_t D, std::size_t ld, std::size_t Bp, const T* shift,
                         T* XC) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  for (std::size_t i = 0; i < D; ++i) {
    const V s = simd::set1<T>(shift[i]);
    const T* x = XT + i * ld;
    T* y = XC + i * ld;
    for (std::size_t r = 0; r < Bp; r += L) simd::store(y + r, simd::load(x + r) - s);
  }
}

// Triangular product y_j = Σ_{i≤j} U_ij xc_i for every row of the block,
// using only the upper triangle of U (half the multiply-adds of a dense product).
// kMaha: out[r] = cst − ½ Σ_j y_j², else Y[j*Bp + r] = y_j.
// Register tile: 2 output features × kRowTileVecs row vectors (8 accumulators).
template <class T, bool kMaha>
inline void tri_product(const T* XC, std::size_t D, std::size_t ld, std::size_t Bp, const T* U, T cst,
                        T* out) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  constexpr std::size_t RV = kRowTileVecs<T>;
  for (std::size_t r0 = 0; r0 < Bp; r0 += RV * L) {
    V mh[RV];
    for (std::size_t v = 0; v < RV; ++v) mh[v] = V{};
    std::size_t j0 = 0;
    for (; j0 + 2 <= D; j0 += 2) {
      V a0[RV], a1[RV];
      for (std::size_t v = 0; v < RV; ++v) a0[v] = a1[v] = V{};
      for (std::size_t i = 0; i <= j0 + 1; ++i) {
        const V u0 = simd::set1<T>(U[i * D + j0]);  // 0 for i = j0+1 (upper factor)
        const V u1 = simd::set1<T>(U[i * D + j0 + 1]);
        const T* x = XC + i * ld + r0;
        for (std::size_t v = 0; v < RV; ++v) {
          const V xv = simd::load(x + v * L);
          a0[v] += u0 * xv;
          a1[v] += u1 * xv;
        }
      }
      if constexpr (kMaha) {
        for (std::size_t v = 0; v < RV; ++v) mh[v] += a0[v] * a0[v] + a1[v] * a1[v];
      } else {
        for (std::size_t v = 0; v < RV; ++v) {
          simd::store(out + j0 * ld + r0 + v * L, a0[v]);
          simd::store(out + (j0 + 1) * ld + r0 + v * L, a1[v]);
        }
      }
    }
    if (j0 < D) {  // odd D: last column
      V a0[RV];
      for (std::size_t v = 0; v < RV; ++v) a0[v] = V{};
      for (std::size_t i = 0; i <= j0; ++i) {
        const V u0 = simd::set1<T>(U[i * D + j0]);
        const T* x = XC + i * ld + r0;
        for (std::size_t v = 0; v < RV; ++v) a0[v] += u0 * simd::load(x + v * L);
      }
      if constexpr (kMaha) {
        for (std::size_t v = 0; v < RV; ++v) mh[v] += a0[v] * a0[v];
      } else {
        for (std::size_t v = 0; v < RV; ++v) simd::store(out + j0 * ld + r0 + v * L, a0[v]);
      }
    }
    if constexpr (kMaha) {
      const V c = simd::set1<T>(cst), h = simd::set1<T>(T(0.5));
      for (std::size_t v = 0; v < RV; ++v) simd::store(out + r0 + v * L, c - h * mh[v]);
    }
  }
}

// Mahalanobis form of tri_product: out[r] = cst − ½ ‖Uᵀ(x_r − μ)‖², centring on
// the fly (the subtractions use the FP-add pipes, not the FMA pipes). Register
// tile 4 output features × 2 row vectors with the x vectors held in registers:
// per i, 2 loads + 4 broadcasts feed 8 FMAs (the 2×4 tile of tri_product needs
// 10 loads for 8 FMAs, which caps it below the FMA rate).
template <class T>
inline void tri_maha(const T* XT, std::size_t D, std::size_t ld, std::size_t Bp, const T* mu,
                     const T* U, T cst, T* out) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  for (std::size_t r0 = 0; r0 < Bp; r0 += 2 * L) {
    V mh0{}, mh1{};
    std::size_t j0 = 0;
    for (; j0 + 4 <= D; j0 += 4) {
      V a00{}, a01{}, a10{}, a11{}, a20{}, a21{}, a30{}, a31{};
      for (std::size_t i = 0; i < j0 + 4; ++i) {  // U[i][j] = 0 for i > j
        const T* x = XT + i * ld + r0;
        const V m = simd::set1<T>(mu[i]);
        const V x0 = simd::load(x) - m, x1 = simd::load(x + L) - m;
        const T* u = U + i * D + j0;
        const V u0 = simd::set1<T>(u[0]), u1 = simd::set1<T>(u[1]);
        const V u2 = simd::set1<T>(u[2]), u3 = simd::set1<T>(u[3]);
        a00 += u0 * x0;
        a01 += u0 * x1;
        a10 += u1 * x0;
        a11 += u1 * x1;
        a20 += u2 * x0;
        a21 += u2 * x1;
        a30 += u3 * x0;
        a31 += u3 * x1;
      }
      mh0 += a00 * a00 + a10 * a10 + a20 * a20 + a30 * a30;
      mh1 += a01 * a01 + a11 * a11 + a21 * a21 + a31 * a31;
    }
    for (; j0 < D; ++j0) {
      V a0{}, a1{};
      for (std::size_t i = 0; i <= j0; ++i) {
        const T* x = XT + i * ld + r0;
        const V u = simd::set1<T>(U[i * D + j0]), m = simd::set1<T>(mu[i]);
        a0 += u * (simd::load(x) - m);
        a1 += u * (simd::load(x + L) - m);
      }
      mh0 += a0 * a0;
      mh1 += a1 * a1;
    }
    const V c = simd::set1<T>(cst), h = simd::set1<T>(T(0.5));
    simd::store(out + r0, c - h * mh0);
    simd::store(out + r0 + L, c - h * mh1);
  }
}

// out[r] = cst − ½ Σ_i ((xt_i − μ_i) p_i)²   (diag / spherical / D = 1, and
// tied after the transform with p = 1).
template <class T>
inline void diag_logdens(const T* XT, std::size_t D, std::size_t ld, std::size_t Bp, const T* mu,
                         const T* p, T cst, T* out) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  constexpr std::size_t RV = kRowTileVecs<T>;
  for (std::size_t r0 = 0; r0 < Bp; r0 += RV * L) {
    V mh[RV];
    for (std::size_t v = 0; v < RV; ++v) mh[v] = V{};
    for (std::size_t i = 0; i < D; ++i) {
      const V m = simd::set1<T>(mu[i]);
      const T* x = XT + i * ld + r0;
      if (p) {
        const V pi = simd::set1<T>(p[i]);
        for (std::size_t v = 0; v < RV; ++v) {
          const V d = (simd::load(x + v * L) - m) * pi;
          mh[v] += d * d;
        }
      } else {
        for (std::size_t v = 0; v < RV; ++v) {
          const V d = simd::load(x + v * L) - m;
          mh[v] += d * d;
        }
      }
    }
    const V c = simd::set1<T>(cst), h = simd::set1<T>(T(0.5));
    for (std::size_t v = 0; v < RV; ++v) simd::store(out + r0 + v * L, c - h * mh[v]);
  }
}

// Diag in GEMM form: LP[k*ld + r] = qc_k + Σ_i qa_ki XC_i + qb_ki XQ_i with
// XC = x − c and XQ = XC² (feature-major, computed once per block, not once
// per component). Register tile 4 components × 2 row vectors: per feature 4
// loads and 8 broadcasts feed 16 FMAs (the centred per-component form needs a
// subtraction, a multiply and an FMA per component and element).
template <class T>
inline void diag_logdens_gemm(const T* XC, const T* XQ, std::size_t D, std::size_t K, std::size_t ld,
                              std::size_t Bp, const T* qa, const T* qb, const T* qc, T* LP) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  std::size_t k0 = 0;
  for (; k0 + 4 <= K; k0 += 4) {
    for (std::size_t r0 = 0; r0 < Bp; r0 += 2 * L) {
      V acc[4][2];
      for (std::size_t kk = 0; kk < 4; ++kk) acc[kk][0] = acc[kk][1] = simd::set1<T>(qc[k0 + kk]);
      for (std::size_t i = 0; i < D; ++i) {
        const V x0 = simd::load(XC + i * ld + r0), x1 = simd::load(XC + i * ld + r0 + L);
        const V q0 = simd::load(XQ + i * ld + r0), q1 = simd::load(XQ + i * ld + r0 + L);
        for (std::size_t kk = 0; kk < 4; ++kk) {
          const V a = simd::set1<T>(qa[(k0 + kk) * D + i]), b = simd::set1<T>(qb[(k0 + kk) * D + i]);
          acc[kk][0] += a * x0;
          acc[kk][1] += a * x1;
          acc[kk][0] += b * q0;
          acc[kk][1] += b * q1;
        }
      }
      for (std::size_t kk = 0; kk < 4; ++kk) {
        simd::store(LP + (k0 + kk) * ld + r0, acc[kk][0]);
        simd::store(LP + (k0 + kk) * ld + r0 + L, acc[kk][1]);
      }
    }
  }
  for (; k0 < K; ++k0) {
    for (std::size_t r0 = 0; r0 < Bp; r0 += L) {
      V acc = simd::set1<T>(qc[k0]);
      for (std::size_t i = 0; i < D; ++i) {
        acc += simd::set1<T>(qa[k0 * D + i]) * simd::load(XC + i * ld + r0);
        acc += simd::set1<T>(qb[k0 * D + i]) * simd::load(XQ + i * ld + r0);
      }
      simd::store(LP + k0 * ld + r0, acc);
    }
  }
}

// Tied: LP[k*ld + r] = cst_k − ½ Σ_j (z_j − b_kj)² for all k, with the
// transformed block Z (feature-major). Register tile 4 components × 2 row
// vectors: each z vector loaded once feeds 4 components (the per-component
// loop would reload it K times); subtractions run on the FP-add pipes.
template <class T>
inline void tied_logdens(const T* Z, std::size_t D, std::size_t K, std::size_t ld, std::size_t Bp,
                         const T* b, const T* cst, T* LP) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  const V h = simd::set1<T>(T(0.5));
  std::size_t k0 = 0;
  for (; k0 + 4 <= K; k0 += 4) {
    for (std::size_t r0 = 0; r0 < Bp; r0 += 2 * L) {
      V a00{}, a01{}, a10{}, a11{}, a20{}, a21{}, a30{}, a31{};
      for (std::size_t j = 0; j < D; ++j) {
        const T* z = Z + j * ld + r0;
        const V z0 = simd::load(z), z1 = simd::load(z + L);
        const V m0 = simd::set1<T>(b[k0 * D + j]), m1 = simd::set1<T>(b[(k0 + 1) * D + j]);
        const V m2 = simd::set1<T>(b[(k0 + 2) * D + j]), m3 = simd::set1<T>(b[(k0 + 3) * D + j]);
        V d;
        d = z0 - m0; a00 += d * d;
        d = z1 - m0; a01 += d * d;
        d = z0 - m1; a10 += d * d;
        d = z1 - m1; a11 += d * d;
        d = z0 - m2; a20 += d * d;
        d = z1 - m2; a21 += d * d;
        d = z0 - m3; a30 += d * d;
        d = z1 - m3; a31 += d * d;
      }
      const V c0 = simd::set1<T>(cst[k0]), c1 = simd::set1<T>(cst[k0 + 1]);
      const V c2 = simd::set1<T>(cst[k0 + 2]), c3 = simd::set1<T>(cst[k0 + 3]);
      simd::store(LP + k0 * ld + r0, c0 - h * a00);
      simd::store(LP + k0 * ld + r0 + L, c0 - h * a01);
      simd::store(LP + (k0 + 1) * ld + r0, c1 - h * a10);
      simd::store(LP + (k0 + 1) * ld + r0 + L, c1 - h * a11);
      simd::store(LP + (k0 + 2) * ld + r0, c2 - h * a20);
      simd::store(LP + (k0 + 2) * ld + r0 + L, c2 - h * a21);
      simd::store(LP + (k0 + 3) * ld + r0, c3 - h * a30);
      simd::store(LP + (k0 + 3) * ld + r0 + L, c3 - h * a31);
    }
  }
  for (; k0 < K; ++k0)
    diag_logdens<T>(Z, D, ld, Bp, b + k0 * D, nullptr, cst[k0], LP + k0 * ld);
}

// Per-block scratch, sized once per task.
// Row stride ld = Bmax + one cache line: rows of a feature-major block must
// not sit a multiple of 4 KiB apart, or the 7–16 streams of the inner loops
// all map to one L1 set and evict each other.
template <class T> struct Workspace {
  std::vector<T> XT, XC, G, LP, W, GW;
  std::vector<std::uint32_t> idx;
  std::size_t ld = 0;
  void resize(std::size_t D, std::size_t K, std::size_t Bmax) {
    ld = Bmax + 64 / sizeof(T);
    XT.resize(D * ld);
    XC.resize(D * ld);
    G.resize(D * ld);
    LP.resize(K * ld);
    W.resize(ld);
    GW.resize(ld);
  }
};

// Bytes of one Workspace<T> sized as by log_densities / em_pass (a double, so
// that absurd K or D cannot overflow the estimate). Used by the callers'
// memory guard, before anything is allocated.
template <class T> inline double workspace_bytes(std::size_t D, std::size_t K) {
  const double ld = double(padded_rows(kRowBlock, kRowTile<T>) + 64 / sizeof(T));
  return (3.0 * double(D) * ld + double(K) * ld + 2.0 * ld) * double(sizeof(T)) + 4.0 * ld;
}

// Bytes of the model copy made by make_model<T> (means, factors, constants).
template <class T> inline double model_bytes(CovType type, std::size_t D, std::size_t K) {
  const double k = double(K), d = double(D);
  const double prec = type == CovType::full ? k * d * d : type == CovType::tied ? d * d
                    : type == CovType::diag ? k * d : k;
  const bool diag = type == CovType::diag || type == CovType::spherical;
  const double gemm = diag && use_diag_gemm<T>(K, D) ? 2.0 * k * d + k + d : 0.0;
  return (k * d + prec + 2.0 * k + d + gemm) * double(sizeof(T)) + k * 8.0;
}

// LP[k*Bp + r] = log N(x_r | k) + log π_k for the block already in ws.XT.
template <class T> inline void block_log_densities(const Model<T>& m, std::size_t Bp, Workspace<T>& ws) {
  const std::size_t D = m.D, K = m.K, ld = ws.ld;
  switch (m.type) {
    case CovType::full:
      for (std::size_t k = 0; k < K; ++k) {
        tri_maha<T>(ws.XT.data(), D, ld, Bp, m.mean.data() + k * D, m.prec.data() + k * D * D,
                    m.cst[k], ws.LP.data() + k * ld);
      }
      break;
    case CovType::tied:
      // Transform once per block (not once per component): z = (x − c)ᵀU.
      centre_block(ws.XT.data(), D, ld, Bp, m.center.data(), ws.XC.data());
      tri_product<T, false>(ws.XC.data(), D, ld, Bp, m.prec.data(), T(0), ws.G.data());
      tied_logdens<T>(ws.G.data(), D, K, ld, Bp, m.mean.data(), m.cst.data(), ws.LP.data());
      break;
    default:
      if (!m.qa.empty()) {
        T* XC = ws.XC.data();
        T* XQ = ws.G.data();
        centre_block(ws.XT.data(), D, ld, Bp, m.qshift.data(), XC);
        for (std::size_t i = 0; i < D; ++i)
          for (std::size_t r = 0; r < Bp; r += simd::lanes<T>) {
            const auto v = simd::load(XC + i * ld + r);
            simd::store(XQ + i * ld + r, v * v);
          }
        diag_logdens_gemm<T>(XC, XQ, D, K, ld, Bp, m.qa.data(), m.qb.data(), m.qc.data(), ws.LP.data());
        // inf − inf (a row with huge values) gives NaN where the centred form
        // gives −inf: such a block is redone in the centred form.
        simd::ivec<T> nan{};
        for (std::size_t k = 0; k < K; ++k)
          for (std::size_t r = 0; r < Bp; r += simd::lanes<T>) {
            const auto v = simd::load(ws.LP.data() + k * ld + r);
            nan |= v != v;
          }
        if (!simd::any<T>(nan)) break;
      }
      for (std::size_t k = 0; k < K; ++k)
        diag_logdens<T>(ws.XT.data(), D, ld, Bp, m.mean.data() + k * D, m.prec.data() + k * D,
                        m.cst[k], ws.LP.data() + k * ld);
  }
}

// Scratch bytes of log_densities besides its N×K output: one Workspace per
// pool thread (kept between calls) and the model copy.
template <class T>
inline double log_densities_scratch_bytes(CovType type, std::size_t D, std::size_t K, int n_threads) {
  return double(std::max(1, n_threads)) * workspace_bytes<T>(D, K) + model_bytes<T>(type, D, K);
}

// out (N×K, row-major) = log N(x_n | k) + log π_k for all rows; parallel over
// fixed row blocks (each block writes its own rows: thread-count independent).
template <class T> void log_densities(const Model<T>& m, const T* X, std::size_t N, T* out) {
  const std::size_t D = m.D, K = m.K;
  const std::size_t nb = n_blocks(N);
  const std::size_t per_task = 4;  // blocks per task: amortises the workspace
  const std::size_t n_tasks = (nb + per_task - 1) / per_task;
  parallel_for(n_tasks, [&](std::size_t t) {
    // One scratch per thread, reused across calls: fresh multi-100 KB buffers
    // per task cost an mmap + page faults each.
    thread_local Workspace<T> ws;
    ws.resize(D, K, padded_rows(kRowBlock, kRowTile<T>));
    for (std::size_t b = t * per_task; b < std::min(nb, (t + 1) * per_task); ++b) {
      const std::size_t r0 = b * kRowBlock, nr = std::min(N, r0 + kRowBlock) - r0;
      const std::size_t Bp = padded_rows(nr, kRowTile<T>);
      transpose_block(X + r0 * D, nr, D, ws.XT.data(), ws.ld, Bp);
      block_log_densities(m, Bp, ws);
      transpose(ws.LP.data(), ws.ld, K, nr, out + r0 * K, K);
    }
  });
}

}  // namespace maxlik::gaussian
