// EM for Gaussian mixtures with missing values (NaN entries, missing at random).
//
// For a row with observed coordinates o and missing ones m, and a component
// with mean μ and precision Λ = Σ⁻¹ = U Uᵀ (U upper, the fit's precision
// Cholesky factor), write δ̃ = x − μ with δ̃_m = 0. Then
//
//   b = Λ_mo δ_o = (Λ δ̃)_m,  Λ_mm = L Lᵀ  (a |m| × |m| Cholesky),
//   y_m = −Λ_mm⁻¹ b           (so x̂_m = μ_m + y_m = E[x_m | x_o]),
//   y = δ̃ with y_m filled:     yᵀ Λ y = δ_oᵀ Σ_oo⁻¹ δ_o      (Schur complement),
//   log|Σ_oo| = log|Σ| + log|Λ_mm| = −2 Σ log U_jj + 2 Σ log L_aa,
//   Cov[x_m | x_o] = Λ_mm⁻¹.
//
// So the observed-data log-density log N(x_o | μ_o, Σ_oo) needs one small
// factorisation of Λ_mm per (missingness pattern, component), never one of
// Σ_oo, and the quadratic form is evaluated as ‖Uᵀ y‖² on the filled vector
// (x̂ minimises (x − μ)ᵀΛ(x − μ) over x_m, so rounding in y_m enters only to
// second order). Rows of a block are sorted by pattern, so rows that share a
// pattern share the factorisation, and the factorisations of all components
// (and of several patterns with the same |m|) run side by side in SIMD lanes
// (see pattern_batch). For "diag"/"spherical" Λ is diagonal: x̂_m = μ_m, the
// conditional covariance is the prior variance, and no factorisation is needed.
//
// M-step statistics (expected sufficient statistics, Ghahramani & Jordan 1994),
// accumulated around s_k = μ_k:
//   N_k = Σ γ,  S_k = Σ γ (x̂_k − μ_k),  Q_k = Σ γ [(x̂_k − μ_k)(x̂_k − μ_k)ᵀ + C_k]
// with C_k the conditional covariance in the (m, m) block (zero elsewhere);
// "diag"/"spherical" keep diag(Q_k). For "tied" the caller recentres the
// per-component Q_k to one centre and pools them (see pooled_tied).
// Rows with every entry missing carry no information: the EM pass gives them
// weight 0 (they add nothing to Σ w log p, Σ w or the statistics); the
// density pass gives them log p(x_o) = 0 (log π_k per component) and the
// imputation pass the posterior = the weights.
//
// Everything inside is double (float32 input is widened per block). The
// blocks, tasks and merge order are those of mixture::em_pass, so any thread
// count gives identical bits.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <stdexcept>
#include <string>
#include <vector>

#include "gaussian.hpp"
#include "mixture.hpp"

namespace maxlik::mixture_missing {

using gaussian::CovType;

struct Model {
  bool full = true;  // dense precision ("full", "tied") or diagonal ("diag", "spherical")
  bool tied = false;
  std::size_t K = 0, D = 0, Dp = 0;  // Dp: D rounded up to whole SIMD vectors
  std::size_t Kp = 0;                // K rounded up to whole SIMD vectors
  std::vector<double> mean;   // K×Dp (zero padded)
  std::vector<double> U;      // full: (tied ? 1 : K)×D×D upper factor, precision = U Uᵀ
  // full: D×D×Kp, PT[(i*D + j)*Kp + k] = Λ_k[i][j], components in SIMD lanes
  // ("tied": the same Λ in every lane; padding lanes: the identity)
  std::vector<double> PT;
  std::vector<double> muT;    // full: D×Kp, muT[i*Kp + k] = μ_k[i] (padding lanes 0)
  std::vector<double> p;      // diag: K×D, 1/σ
  std::vector<double> var;    // diag: K×D, σ²
  std::vector<double> logp;   // diag: K×D, log(1/σ)
  std::vector<double> logw;   // K: log π_k
  std::vector<double> cst;    // K: log π_k + log det U_k (diag: + Σ log p) − D/2 log 2π
  const double* Uk(std::size_t k) const { return U.data() + (tied ? 0 : k * D * D); }
};

// means K×D, prec as for gaussian::make_model (full K×D×D, tied D×D, diag K×D,
// spherical K; only the upper triangle of full/tied factors is read).
inline Model make_model(CovType type, std::size_t K, std::size_t D, const double* means,
                        const double* prec, const double* log_weights) {
  constexpr std::size_t L = simd::lanes<double>;
  Model m;
  m.K = K;
  m.D = D;
  m.Dp = (D + L - 1) / L * L;
  m.Kp = (K + L - 1) / L * L;
  m.mean.assign(K * m.Dp, 0.0);
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t i = 0; i < D; ++i) m.mean[k * m.Dp + i] = means[k * D + i];
  m.logw.assign(log_weights, log_weights + K);
  m.cst.assign(K, 0.0);
  const double half_log2pi = 0.5 * static_cast<double>(D) * gaussian::kLog2Pi;
  if (type == CovType::full || type == CovType::tied) {
    m.full = true;
    m.tied = type == CovType::tied;
    const std::size_t nf = m.tied ? 1 : K, Kp = m.Kp;
    m.U.assign(nf * D * D, 0.0);
    m.PT.assign(D * D * Kp, 0.0);
    m.muT.assign(D * Kp, 0.0);
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t i = 0; i < D; ++i) m.muT[i * Kp + k] = means[k * D + i];
    for (std::size_t k = K; k < Kp; ++k)
      for (std::size_t i = 0; i < D; ++i) m.PT[(i * D + i) * Kp + k] = 1.0;
    std::vector<double> logdet(nf, 0.0);
    for (std::size_t f = 0; f < nf; ++f) {
      const double* src = prec + f * D * D;
      double* U = m.U.data() + f * D * D;
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = i; j < D; ++j) U[i * D + j] = src[i * D + j];
      for (std::size_t i = 0; i < D; ++i) logdet[f] += std::log(U[i * D + i]);
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = 0; j < D; ++j) {
          double s = 0;  // (U Uᵀ)_ij = Σ_{l ≥ max(i, j)} U_il U_jl
          for (std::size_t l = std::max(i, j); l < D; ++l) s += U[i * D + l] * U[j * D + l];
          if (m.tied)
            for (std::size_t k = 0; k < K; ++k) m.PT[(i * D + j) * Kp + k] = s;
          else
            m.PT[(i * D + j) * Kp + f] = s;
        }
    }
    for (std::size_t k = 0; k < K; ++k)
      m.cst[k] = m.logw[k] + logdet[m.tied ? 0 : k] - half_log2pi;
  } else {
    m.full = false;
    m.p.resize(K * D);
    m.var.resize(K * D);
    m.logp.resize(K * D);
    for (std::size_t k = 0; k < K; ++k) {
      double ld = 0;
      for (std::size_t j = 0; j < D; ++j) {
        const double pj = type == CovType::spherical ? prec[k] : prec[k * D + j];
        m.p[k * D + j] = pj;
        m.var[k * D + j] = 1.0 / (pj * pj);
        m.logp[k * D + j] = std::log(pj);
        ld += m.logp[k * D + j];
      }
      m.cst[k] = m.logw[k] + ld - half_log2pi;
    }
  }
  return m;
}

// Rows per sub-block: the passes below keep the blocks and tasks of
// mixture::em_pass, and split each block into sub-blocks of kMissRows rows
// (sorted and solved together), so that a sub-block's Y (K×D values per row)
// and conditional covariances stay in L2 between the E-step and the statistics.
inline constexpr std::size_t kMissRows = 128;

// pattern_batch's compiled lane layouts: KV component vectors per pattern (1
// or 2; 0 = any number) and then 8 / KV patterns side by side (1 for KV = 0).
inline std::size_t batch_kv(std::size_t Kp) {
  constexpr std::size_t L = simd::lanes<double>;
  return Kp / L <= 2 ? Kp / L : 0;
}
inline constexpr std::size_t batch_patterns(std::size_t kv) { return kv > 0 ? 8 / kv : 1; }

// Per-thread scratch for one sub-block of at most kMissRows rows.
struct Scratch {
  gaussian::Workspace<double> ws;  // LP (K×ld), W, G, XC, GW, idx
  std::size_t ld = 0, nr = 0, Bp = 0, ng = 0;
  std::vector<double> XT;    // D×ld observed values, 0 where missing (rows sorted by pattern)
  std::vector<double> M;     // D×ld: 1 observed, 0 missing (padded rows: 1)
  std::vector<double> XR;    // nr×Dp the same rows, row-major, 0 where missing or padding
  std::vector<double> Y;     // K×D×ld: x̂_k − μ_k (observed: x − μ_k)
  std::vector<double> zero;  // D zeros
  std::vector<std::uint64_t> sortkey;  // D ≤ 48: |m|, pattern bits and row packed in one word
  std::vector<std::uint32_t> order;   // sorted position -> row of the block
  std::vector<std::uint64_t> keys;    // nr × nw missingness bit masks
  std::vector<std::uint32_t> nmiss;   // nr: missing entries per row
  std::vector<std::uint32_t> gstart;  // ng + 1: first sorted position of each pattern
  std::vector<std::uint32_t> miss;    // missing coordinates of each pattern, ascending
  std::vector<std::uint32_t> mofs;    // ng + 1 offsets into miss
  std::vector<double> gcst;           // ng×K log-density constant of (pattern, component)
  // full covariances, one pattern at a time, components in SIMD lanes (×Kp):
  // (P patterns side by side, see pattern_batch: ×P·Kp lanes)
  std::size_t P = 1;
  // one buffer, packed per call (A, Z, R, B, pivot product, x_o − μ_o): separate
  // allocations put the arrays at equal offsets modulo 4 KiB, and every
  // store then falsely aliases the loads of the next entry
  std::vector<double> work;
  std::vector<double> Cinv;           // per pattern: upper triangle of Λ_mm⁻¹ (×Kp)
  std::vector<std::size_t> cofs;      // ng offsets into Cinv
  std::vector<double> Qt;             // D×D×Kp: Σ γ Λ_mm⁻¹ of a block (the M-step)
  bool want_cov = false;              // block_estep also stores Λ_mm⁻¹ (the EM pass)
  void resize(std::size_t D, std::size_t K, std::size_t Dp) {
    constexpr std::size_t L = simd::lanes<double>;
    const std::size_t Kp = (K + L - 1) / L * L;
    const std::size_t Bmax = gaussian::padded_rows(kMissRows, gaussian::kRowTile<double>);
    ws.resize(D, K, Bmax);
    ld = ws.ld;
    XT.resize(D * ld);
    M.resize(D * ld);
    XR.resize(kMissRows * Dp);
    Y.resize(K * D * ld);
    zero.assign(D, 0.0);
    P = batch_patterns(batch_kv(Kp));
    const std::size_t S = P * Kp;
    work.resize(2 * D * D * S + 2 * D * S + S + D * Kp);
  }
};

// Bytes of one Scratch (for the callers' memory guard).
inline double scratch_bytes(std::size_t D, std::size_t K) {
  const double ld = double(gaussian::padded_rows(kMissRows, gaussian::kRowTile<double>) + 8);
  const double d = double(D), k = double(K + 8), rows = double(kMissRows);
  // Y, XT/M, XR, Λ_mm⁻¹ (worst case one D×D triangle per row), Qt, keys.
  return gaussian::workspace_bytes<double>(D, K) +
         8.0 * (k * d * ld + 2.0 * d * ld + rows * (d + 8.0) + rows * k * (1.0 + d * (d + 1) / 2) +
                5.0 * d * d * k) +
         rows * (8.0 * (d / 64.0 + 2.0) + 12.0);
}

// Rows r of X (nr×D, NaN = missing) into the scratch, sorted by pattern.
// drop_empty: rows with no observed entry get weight 0 (the EM pass).
template <class T>
void prepare_block(const Model& m, const T* X, const T* w, std::size_t nr, bool drop_empty,
                   Scratch& s) {
  const std::size_t D = m.D, Dp = m.Dp, ld = s.ld;
  const std::size_t nw = (D + 63) / 64;
  s.nr = nr;
  s.Bp = gaussian::padded_rows(nr, gaussian::kRowTile<double>);
  s.keys.assign(nr * nw, 0);
  s.nmiss.assign(nr, 0);
  {  // NaN bit masks, a vector of lanes at a time (lanes divide 64: no chunk straddles a word)
    constexpr std::size_t LT = simd::lanes<T>;
    const std::size_t Dv = D / LT * LT;
    for (std::size_t r = 0; r < nr; ++r) {
      const T* row = X + r * D;
      std::uint64_t* key = s.keys.data() + r * nw;
      std::size_t i = 0;
      for (; i < Dv; i += LT) {
        const simd::vec<T> v = simd::load(row + i);
        key[i / 64] |= std::uint64_t(simd::movemask<T>(v != v)) << (i % 64);
      }
      if (i < D) {
        const simd::vec<T> v = simd::load_partial(row + i, int(D - i), T(0));
        key[i / 64] |= std::uint64_t(simd::movemask<T>(v != v)) << (i % 64);
      }
      std::uint32_t cnt = 0;
      for (std::size_t q = 0; q < nw; ++q) cnt += static_cast<std::uint32_t>(__builtin_popcountll(key[q]));
      s.nmiss[r] = cnt;
    }
  }
  s.order.resize(nr);
  const std::uint64_t* keys = s.keys.data();
  const std::uint32_t* nmiss = s.nmiss.data();
  // Sorted by the number of missing entries first: consecutive patterns then
  // run the small loops below with the same trip counts, which the branch
  // predictor follows (a random |m| per row costs several mispredictions each).
  if (D <= 48) {  // one word per row: |m| (6 bits), pattern (48), row (9 bits)
    static_assert(kMissRows <= 512, "the packed sort key holds 9 bits of row index");
    s.sortkey.resize(nr);
    for (std::size_t r = 0; r < nr; ++r)
      s.sortkey[r] = (std::uint64_t(nmiss[r]) << 57) | (keys[r] << 9) | std::uint64_t(r);
    std::sort(s.sortkey.begin(), s.sortkey.end());
    for (std::size_t p = 0; p < nr; ++p) s.order[p] = static_cast<std::uint32_t>(s.sortkey[p] & 511u);
  } else {
    std::iota(s.order.begin(), s.order.end(), 0u);
    std::sort(s.order.begin(), s.order.end(), [&](std::uint32_t a, std::uint32_t b) {
      if (nmiss[a] != nmiss[b]) return nmiss[a] < nmiss[b];
      for (std::size_t q = 0; q < nw; ++q)
        if (keys[a * nw + q] != keys[b * nw + q]) return keys[a * nw + q] < keys[b * nw + q];
      return a < b;
    });
  }
  double* W = s.ws.W.data();
  // sorted row p, columns [i0, D) one at a time; its padding and weight
  const auto row_tail = [&](std::size_t p, std::size_t i0) {
    const std::size_t r = s.order[p];
    for (std::size_t i = i0; i < D; ++i) {
      const double v = static_cast<double>(X[r * D + i]);
      const bool obs = !std::isnan(v);
      s.XT[i * ld + p] = obs ? v : 0.0;
      s.M[i * ld + p] = obs ? 1.0 : 0.0;
      s.XR[p * Dp + i] = obs ? v : 0.0;
    }
    for (std::size_t i = D; i < Dp; ++i) s.XR[p * Dp + i] = 0.0;
    W[p] = w ? static_cast<double>(w[r]) : 1.0;
  };
  std::size_t p0 = 0;
  if constexpr (std::is_same_v<T, double>) {
    // L sorted rows at a time: masked values row-major (XR) and, through an
    // in-register transpose, column-major (XT, M)
    using V = simd::vec<double>;
    constexpr std::size_t L = simd::lanes<double>;
    const std::size_t Dv = D / L * L;
    const V onev = simd::set1<double>(1.0), zerov{};
    for (; p0 + L <= nr; p0 += L) {
      for (std::size_t i = 0; i < Dv; i += L) {
        V xz[L], mk[L];
        for (std::size_t l = 0; l < L; ++l) {
          const V v = simd::load(X + s.order[p0 + l] * D + i);
          const auto ok = v == v;
          xz[l] = simd::select<double>(ok, v, zerov);
          mk[l] = simd::select<double>(ok, onev, zerov);
          simd::store(s.XR.data() + (p0 + l) * Dp + i, xz[l]);
        }
        simd::transpose_tile<double>(xz);
        simd::transpose_tile<double>(mk);
        for (std::size_t c = 0; c < L; ++c) {
          simd::store(s.XT.data() + (i + c) * ld + p0, xz[c]);
          simd::store(s.M.data() + (i + c) * ld + p0, mk[c]);
        }
      }
      for (std::size_t l = 0; l < L; ++l) row_tail(p0 + l, Dv);
    }
  }
  for (std::size_t p = p0; p < nr; ++p) row_tail(p, 0);
  for (std::size_t i = 0; i < D; ++i)
    for (std::size_t p = nr; p < s.Bp; ++p) {
      s.XT[i * ld + p] = 0.0;
      s.M[i * ld + p] = 1.0;
    }
  for (std::size_t p = nr; p < s.Bp; ++p) W[p] = 0.0;
  // patterns
  s.gstart.clear();
  s.miss.clear();
  s.mofs.assign(1, 0);
  for (std::size_t p = 0; p < nr; ++p) {
    const std::size_t r = s.order[p];
    if (p > 0) {
      const std::size_t r_prev = s.order[p - 1];
      bool same = true;
      for (std::size_t q = 0; q < nw; ++q) same = same && keys[r * nw + q] == keys[r_prev * nw + q];
      if (same) continue;
    }
    s.gstart.push_back(static_cast<std::uint32_t>(p));
    for (std::size_t q = 0; q < nw; ++q)
      for (std::uint64_t bits = keys[r * nw + q]; bits != 0; bits &= bits - 1)
        s.miss.push_back(static_cast<std::uint32_t>(64 * q + std::size_t(__builtin_ctzll(bits))));
    s.mofs.push_back(static_cast<std::uint32_t>(s.miss.size()));
  }
  s.ng = s.gstart.size();
  s.gstart.push_back(static_cast<std::uint32_t>(nr));
  if (drop_empty)
    for (std::size_t g = 0; g < s.ng; ++g)
      if (s.mofs[g + 1] - s.mofs[g] == D)
        for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) W[p] = 0.0;
}

// Full and tied covariances: n ≤ s.P consecutive patterns g0, …, g0+n−1 with
// the same 0 < |m| = q < D, every component at once. Pattern j of the batch
// holds lanes [j Kp, (j+1) Kp) and component k lane j Kp + k, so Λ_mm of all
// components is one vector load per entry of PT (no gathers), and the short
// dependent chains of the q × q Cholesky factorisation and of the triangular
// solves run n Kp lanes wide with the lane loop innermost (independent chains
// side by side). Sets gcst of the patterns, x̂_m − μ_m in Y for their rows,
// and (want_cov) the upper triangles of Λ_mm⁻¹ in Cinv.
// QC > 0: compiled for q = QC; KV > 0: compiled for Kp = KV lanes-wide vectors
// and s.P = 8 / KV patterns, so that the lane loops (8 vectors) and the q loops
// unroll (most rows of data missing at random have small q; the loop control
// of the small runtime-length loops otherwise costs more than the arithmetic).
// A batch of n < P patterns repeats its last pattern in the unused lanes
// (computed, never written out). QC = 0 / KV = 0: any q / any K (then P = 1).
template <std::size_t QC, std::size_t KV>
void pattern_batch(const Model& m, Scratch& s, std::size_t g0, std::size_t n) {
  using V = simd::vec<double>;
  using IV = simd::ivec<double>;
  constexpr std::size_t L = simd::lanes<double>;
  const std::size_t K = m.K, D = m.D, ld = s.ld, Dp = m.Dp;
  const std::size_t Kp = KV > 0 ? KV * L : m.Kp, P = batch_patterns(KV), S = P * Kp, W = S;
  const std::size_t q = QC > 0 ? QC : s.mofs[g0 + 1] - s.mofs[g0];
  const double* PT = m.PT.data();
  double* A = s.work.data();  // A[(a*q + c)*S + lane], lower triangle
  double* Z = A + q * q * S;   // Z = L⁻¹, same layout
  double* R = Z + q * q * S;   // R[a*S + lane] = 1 / L_aa
  double* B = R + q * S;       // B[a*S + lane] right-hand sides
  double* Pr = B + q * S;      // Pr[lane] product of the pivots
  double* dl = Pr + S;         // dl[o*Kp + k] = x_o − μ_k,o of one row
  // Λ_mm of each pattern
  for (std::size_t j = 0; j < P; ++j) {
    const std::size_t g = g0 + std::min(j, n - 1);
    const std::uint32_t* mi = s.miss.data() + s.mofs[g];
    for (std::size_t a = 0; a < q; ++a)
      for (std::size_t c = 0; c <= a; ++c) {
        const double* src = PT + (mi[a] * D + mi[c]) * Kp;
        double* dst = A + (a * q + c) * S + j * Kp;
        for (std::size_t v = 0; v < Kp; v += L) simd::store(dst + v, simd::load(src + v));
      }
  }
  const V one = simd::set1<double>(1.0), inf = simd::set1<double>(HUGE_VAL);
  // the log-determinant is the log of the product of the pivots, unless a
  // pivot is outside [2^-60, 2^60] or q > 16 (the product could then leave the
  // range of normal doubles, and the pivots' logs are summed instead)
  const V lo = simd::set1<double>(0x1p-60), hi = simd::set1<double>(0x1p60);
  IV fail{}, wide{};
  for (std::size_t v = 0; v < W; v += L) simd::store(Pr + v, one);
  for (std::size_t i = 0; i < q; ++i) {
    for (std::size_t j = 0; j < i; ++j)
      for (std::size_t v = 0; v < W; v += L) {
        V t = simd::load(A + (i * q + j) * S + v);
        for (std::size_t l = 0; l < j; ++l)
          t -= simd::load(A + (i * q + l) * S + v) * simd::load(A + (j * q + l) * S + v);
        simd::store(A + (i * q + j) * S + v, t * simd::load(R + j * S + v));
      }
    for (std::size_t v = 0; v < W; v += L) {
      V t = simd::load(A + (i * q + i) * S + v);
      for (std::size_t l = 0; l < i; ++l) {
        const V u = simd::load(A + (i * q + l) * S + v);
        t -= u * u;
      }
      fail |= ~((t > 0.0) & (t < inf));  // not positive definite (or NaN / inf)
      const V d = simd::sqrt<double>(t);
      wide |= (d < lo) | (d > hi);
      simd::store(A + (i * q + i) * S + v, d);
      simd::store(R + i * S + v, one / d);
      simd::store(Pr + v, simd::load(Pr + v) * d);
    }
  }
  if (simd::any<double>(fail)) {  // name the first failing (pattern, component)
    std::size_t lane = W;
    for (std::size_t v = 0; v < W && lane == W; ++v)
      for (std::size_t i = 0; i < q; ++i) {
        const double d = A[(i * q + i) * S + v];
        if (!(d > 0.0 && d < HUGE_VAL)) {
          lane = v;
          break;
        }
      }
    throw std::invalid_argument(
        "the precision matrix of component " + std::to_string(lane % Kp) +
        " is numerically singular on a set of missing coordinates; increase reg_covar");
  }
  const bool exact = q > 16 || simd::any<double>(wide);
  const double hl2p_q = 0.5 * gaussian::kLog2Pi * static_cast<double>(q);
  for (std::size_t v = 0; v < W; v += L) {
    V logsum{};
    if (!exact) {
      logsum = simd::log<double>(simd::load(Pr + v));
    } else {
      for (std::size_t i = 0; i < q; ++i) logsum += simd::log<double>(simd::load(A + (i * q + i) * S + v));
    }
    simd::store(Pr + v, logsum);
  }
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t k = 0; k < K; ++k) s.gcst[(g0 + j) * K + k] = m.cst[k] - Pr[j * Kp + k] + hl2p_q;
  if (s.want_cov) {
    // Cov[x_m | x_o] = Λ_mm⁻¹ = L⁻ᵀ L⁻¹: Z = L⁻¹ by forward substitution, then ZᵀZ
    for (std::size_t c = 0; c < q; ++c)
      for (std::size_t a = c; a < q; ++a)
        for (std::size_t v = 0; v < W; v += L) {
          V t = a == c ? one : V{};
          for (std::size_t j = c; j < a; ++j)
            t -= simd::load(A + (a * q + j) * S + v) * simd::load(Z + (j * q + c) * S + v);
          simd::store(Z + (a * q + c) * S + v, t * simd::load(R + a * S + v));
        }
    std::size_t idx = 0;
    for (std::size_t a = 0; a < q; ++a)
      for (std::size_t c = a; c < q; ++c, ++idx)
        for (std::size_t j = 0; j < n; ++j) {
          double* out = s.Cinv.data() + s.cofs[g0 + j] + idx * Kp;
          for (std::size_t v = j * Kp; v < (j + 1) * Kp; v += L) {
            V t{};
            for (std::size_t l = c; l < q; ++l)
              t += simd::load(Z + (l * q + a) * S + v) * simd::load(Z + (l * q + c) * S + v);
            simd::store(out + (v - j * Kp), t);
          }
        }
  }
  // rows: b = (Λ δ̃)_m, c = L⁻¹ b, y = L⁻ᵀ c, x̂_m − μ_m = −y. The first row
  // of every pattern in one sweep of the lanes, further rows (patterns shared
  // by several rows) one pattern at a time.
  const auto rhs = [&](std::size_t j, std::size_t p) {  // B of pattern j = (Λ δ̃)_m of row p
    const std::uint32_t* mi = s.miss.data() + s.mofs[g0 + std::min(j, n - 1)];
    const double* xr = s.XR.data() + p * Dp;
    // δ̃ for every coordinate (contiguous loops, no index lists), 0 where missing
    for (std::size_t i = 0; i < D; ++i) {
      const V x = simd::set1<double>(xr[i]);
      const double* mu = m.muT.data() + i * Kp;
      for (std::size_t v = 0; v < Kp; v += L) simd::store(dl + i * Kp + v, x - simd::load(mu + v));
    }
    for (std::size_t a = 0; a < q; ++a)
      for (std::size_t v = 0; v < Kp; v += L) simd::store(dl + mi[a] * Kp + v, V{});
    for (std::size_t a = 0; a < q; ++a) {
      const double* pr = PT + mi[a] * D * Kp;
      for (std::size_t v = 0; v < Kp; v += L) {
        V t0{}, t1{}, t2{}, t3{};  // four chains: the sum is latency-bound otherwise
        std::size_t i = 0;
        for (; i + 4 <= D; i += 4) {
          t0 += simd::load(pr + i * Kp + v) * simd::load(dl + i * Kp + v);
          t1 += simd::load(pr + (i + 1) * Kp + v) * simd::load(dl + (i + 1) * Kp + v);
          t2 += simd::load(pr + (i + 2) * Kp + v) * simd::load(dl + (i + 2) * Kp + v);
          t3 += simd::load(pr + (i + 3) * Kp + v) * simd::load(dl + (i + 3) * Kp + v);
        }
        for (; i < D; ++i) t0 += simd::load(pr + i * Kp + v) * simd::load(dl + i * Kp + v);
        simd::store(B + a * S + j * Kp + v, (t0 + t1) + (t2 + t3));
      }
    }
  };
  const auto solve = [&](std::size_t v0, std::size_t v1) {  // lanes [v0, v1), in place in B
    for (std::size_t a = 0; a < q; ++a)
      for (std::size_t v = v0; v < v1; v += L) {
        V t = simd::load(B + a * S + v);
        for (std::size_t j = 0; j < a; ++j)
          t -= simd::load(A + (a * q + j) * S + v) * simd::load(B + j * S + v);
        simd::store(B + a * S + v, t * simd::load(R + a * S + v));
      }
    for (std::size_t a = q; a-- > 0;)
      for (std::size_t v = v0; v < v1; v += L) {
        V t = simd::load(B + a * S + v);
        for (std::size_t j = a + 1; j < q; ++j)
          t -= simd::load(A + (j * q + a) * S + v) * simd::load(B + j * S + v);
        simd::store(B + a * S + v, t * simd::load(R + a * S + v));
      }
  };
  const auto scatter = [&](std::size_t j, std::size_t p) {
    const std::uint32_t* mi = s.miss.data() + s.mofs[g0 + j];
    for (std::size_t k = 0; k < K; ++k) {
      double* Yk = s.Y.data() + k * D * ld + p;
      for (std::size_t a = 0; a < q; ++a) Yk[mi[a] * ld] = -B[a * S + j * Kp + k];
    }
  };
  for (std::size_t j = 0; j < P; ++j) rhs(j, s.gstart[g0 + std::min(j, n - 1)]);
  solve(0, W);
  for (std::size_t j = 0; j < n; ++j) scatter(j, s.gstart[g0 + j]);
  for (std::size_t j = 0; j < n; ++j)
    for (std::size_t p = s.gstart[g0 + j] + 1; p < s.gstart[g0 + j + 1]; ++p) {
      rhs(j, p);
      solve(j * Kp, (j + 1) * Kp);
      scatter(j, p);
    }
}

// E-step of a prepared block: LP[k*ld + p] = log π_k + log N(x_o | μ_k,o, Σ_k,oo)
// and Y (x̂ − μ_k) for every component.
inline void block_estep(const Model& m, Scratch& s) {
  using V = simd::vec<double>;
  constexpr std::size_t L = simd::lanes<double>;
  const std::size_t K = m.K, D = m.D, Dp = m.Dp, ld = s.ld, Bp = s.Bp, ng = s.ng;
  const double hl2p = 0.5 * gaussian::kLog2Pi;
  double* LP = s.ws.LP.data();
  s.gcst.resize(ng * K);
  // observed: x − μ_k; missing: 0 (filled below for full/tied)
  for (std::size_t k = 0; k < K; ++k) {
    double* Yk = s.Y.data() + k * D * ld;
    const double* mu = m.mean.data() + k * Dp;
    for (std::size_t i = 0; i < D; ++i) {
      const V mi = simd::set1<double>(mu[i]);
      const double* x = s.XT.data() + i * ld;
      const double* mk = s.M.data() + i * ld;
      double* y = Yk + i * ld;
      for (std::size_t r = 0; r < Bp; r += L)
        simd::store(y + r, (simd::load(x + r) - mi) * simd::load(mk + r));
    }
  }
  if (m.full) {
    if (s.want_cov) {
      s.cofs.resize(ng);
      std::size_t tot = 0;
      for (std::size_t g = 0; g < ng; ++g) {
        const std::size_t q = s.mofs[g + 1] - s.mofs[g];
        s.cofs[g] = tot;
        if (q < D) tot += q * (q + 1) / 2 * m.Kp;
      }
      s.Cinv.resize(tot);
    }
    for (std::size_t g = 0; g < ng;) {
      const std::size_t q = s.mofs[g + 1] - s.mofs[g];
      if (q == 0 || q == D) {  // complete row, or nothing observed: p(x_o) = 1
        for (std::size_t k = 0; k < K; ++k) s.gcst[g * K + k] = q == 0 ? m.cst[k] : m.logw[k];
        ++g;
        continue;
      }
      std::size_t n = 1;  // patterns are sorted by q: batch consecutive ones with this q
      while (n < s.P && g + n < ng && s.mofs[g + n + 1] - s.mofs[g + n] == q) ++n;
      const std::size_t kv = batch_kv(m.Kp);
      switch (q * 4 + kv) {
#define MAXLIK_PATTERN_CASES(Q) \
  case Q * 4 + 1: pattern_batch<Q, 1>(m, s, g, n); break; \
  case Q * 4 + 2: pattern_batch<Q, 2>(m, s, g, n); break; \
  case Q * 4: pattern_batch<Q, 0>(m, s, g, n); break;
        MAXLIK_PATTERN_CASES(1)
        MAXLIK_PATTERN_CASES(2)
        MAXLIK_PATTERN_CASES(3)
        MAXLIK_PATTERN_CASES(4)
        MAXLIK_PATTERN_CASES(5)
#undef MAXLIK_PATTERN_CASES
        default:
          if (kv == 1) pattern_batch<0, 1>(m, s, g, n);
          else if (kv == 2) pattern_batch<0, 2>(m, s, g, n);
          else pattern_batch<0, 0>(m, s, g, n);
      }
      g += n;
    }
  }
  for (std::size_t k = 0; k < K; ++k) {
    double* Yk = s.Y.data() + k * D * ld;
    double* lp = LP + k * ld;
    if (m.full) {
      gaussian::tri_maha<double>(Yk, D, ld, Bp, s.zero.data(), m.Uk(k), 0.0, lp);
    } else {
      const double* lpk = m.logp.data() + k * D;
      for (std::size_t g = 0; g < ng; ++g) {
        const std::size_t q = s.mofs[g + 1] - s.mofs[g];
        const std::uint32_t* mi = s.miss.data() + s.mofs[g];
        double gc = m.cst[k];
        if (q == D) {
          gc = m.logw[k];
        } else {
          for (std::size_t a = 0; a < q; ++a) gc -= lpk[mi[a]];
          gc += hl2p * static_cast<double>(q);
        }
        s.gcst[g * K + k] = gc;
      }
      gaussian::diag_logdens<double>(Yk, D, ld, Bp, s.zero.data(), m.p.data() + k * D, 0.0, lp);
    }
    for (std::size_t g = 0; g < ng; ++g) {
      const double gc = s.gcst[g * K + k];
      for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) lp[p] += gc;
    }
    for (std::size_t p = s.nr; p < Bp; ++p) lp[p] += m.cst[k];  // padding: finite, weight 0
  }
}

// Statistics of a block after block_estep + block_responsibilities (γ·w in LP).
// st: nk K, sx K×D, sxx K×D×D upper (full/tied) or K×D (diag/spherical), around μ_k.
inline void block_statistics(const Model& m, Scratch& s, mixture::Stats& st) {
  using V = simd::vec<double>;
  constexpr std::size_t L = simd::lanes<double>;
  const std::size_t K = m.K, D = m.D, ld = s.ld, Bp = s.Bp, Kp = m.Kp;
  std::vector<std::uint32_t>& idx = s.ws.idx;
  idx.resize(Bp);
  double* GW = s.ws.GW.data();
  double* XC = s.ws.XC.data();
  double* G = s.ws.G.data();
  for (std::size_t k = 0; k < K; ++k) {
    const double* gam = s.ws.LP.data() + k * ld;
    const double* Yk = s.Y.data() + k * D * ld;
    std::size_t cnt = 0;
    for (std::size_t r = 0; r < Bp; ++r) {
      idx[cnt] = static_cast<std::uint32_t>(r);
      cnt += gam[r] != 0.0;
    }
    if (cnt == 0) continue;
    const double* g_src = gam;
    const double* x_src = Yk;
    std::size_t n = Bp;
    if (cnt * 2 <= Bp) {  // few rows of k: compact them (as mixture::block_accumulate)
      n = (cnt + L - 1) / L * L;
      for (std::size_t q = 0; q < n; ++q) GW[q] = q < cnt ? gam[idx[q]] : 0.0;
      for (std::size_t i = 0; i < D; ++i) {
        const double* ys = Yk + i * ld;
        double* yd = XC + i * ld;
        for (std::size_t q = 0; q < n; ++q) yd[q] = q < cnt ? ys[idx[q]] : 0.0;
      }
      g_src = GW;
      x_src = XC;
    }
    st.nk[k] += mixture::vsum(g_src, n);
    if (m.full) {
      for (std::size_t i = 0; i < D; ++i) {
        const double* y = x_src + i * ld;
        V a{};
        for (std::size_t r = 0; r < n; r += L) {
          const V gy = simd::load(g_src + r) * simd::load(y + r);
          simd::store(G + i * ld + r, gy);
          a += gy;
        }
        st.sx[k * D + i] += simd::hsum<double>(a);
      }
      mixture::rank_update_upper(G, x_src, D, ld, n, st.sxx.data() + k * D * D);
    } else {
      for (std::size_t i = 0; i < D; ++i) {
        const double* y = x_src + i * ld;
        V a{}, q{};
        for (std::size_t r = 0; r < n; r += L) {
          const V yv = simd::load(y + r);
          const V gy = simd::load(g_src + r) * yv;
          a += gy;
          q += gy * yv;
        }
        st.sx[k * D + i] += simd::hsum<double>(a);
        st.sxx[k * D + i] += simd::hsum<double>(q);
      }
      // conditional variances: (Σ_pattern γ) σ²_m on the diagonal
      for (std::size_t g = 0; g < s.ng; ++g) {
        const std::size_t q = s.mofs[g + 1] - s.mofs[g];
        if (q == 0 || q == D) continue;
        double sg = 0;
        for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) sg += gam[p];
        if (sg == 0.0) continue;
        const std::uint32_t* mi = s.miss.data() + s.mofs[g];
        for (std::size_t a = 0; a < q; ++a) st.sxx[k * D + mi[a]] += sg * m.var[k * D + mi[a]];
      }
    }
  }
  if (!m.full) return;
  // conditional covariances: Σ_pattern (Σ γ) Λ_mm⁻¹ in the (m, m) block, every
  // component at once (lanes), then added to the upper triangles of sxx
  s.Qt.assign(D * D * Kp, 0.0);
  double* Qt = s.Qt.data();
  double* sg = s.work.data();  // Kp
  const double* LP = s.ws.LP.data();
  for (std::size_t g = 0; g < s.ng; ++g) {
    const std::size_t q = s.mofs[g + 1] - s.mofs[g];
    if (q == 0 || q == D) continue;
    for (std::size_t k0 = 0; k0 < Kp; k0 += L) {  // Σ γ over the rows of the pattern
      V t{};
      if (k0 + L <= K) {
        for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p)
          t += simd::load_strided(LP + k0 * ld + p, static_cast<std::ptrdiff_t>(ld));
      } else {
        for (std::size_t k = k0; k < K; ++k)
          for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) t[k - k0] += LP[k * ld + p];
      }
      simd::store(sg + k0, t);
    }
    const std::uint32_t* mi = s.miss.data() + s.mofs[g];
    const double* ci = s.Cinv.data() + s.cofs[g];
    std::size_t id = 0;
    for (std::size_t a = 0; a < q; ++a)
      for (std::size_t c = a; c < q; ++c, ++id) {
        double* dst = Qt + (mi[a] * D + mi[c]) * Kp;
        for (std::size_t v = 0; v < Kp; v += L)
          simd::store(dst + v, simd::load(dst + v) + simd::load(sg + v) * simd::load(ci + id * Kp + v));
      }
  }
  for (std::size_t k = 0; k < K; ++k) {
    double* Q = st.sxx.data() + k * D * D;
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t j = i; j < D; ++j) Q[i * D + j] += Qt[(i * D + j) * Kp + k];
  }
}

inline CovType stat_type_of(const Model& m) { return m.full ? CovType::full : CovType::diag; }

// The EM pass over N rows (fixed blocks and tasks of mixture::em_pass).
template <class T>
mixture::Stats em_missing_pass(const Model& m, const T* X, const T* w, std::size_t N) {
  const std::size_t nb = n_blocks(N);
  const std::size_t per_task = std::max<std::size_t>(2, (nb + 127) / 128);
  const std::size_t n_tasks = mixture::em_pass_tasks(N);
  const CovType st_type = stat_type_of(m);
  std::vector<mixture::Stats> slots(n_tasks);
  parallel_for(n_tasks, [&](std::size_t t) {
    thread_local Scratch s;
    s.resize(m.D, m.K, m.Dp);
    s.want_cov = true;
    mixture::Stats& st = slots[t];
    st.init(st_type, m.K, m.D);
    mixture::Stats blk;
    const std::size_t r_end = std::min(N, std::min(nb, (t + 1) * per_task) * kRowBlock);
    for (std::size_t r0 = t * per_task * kRowBlock; r0 < r_end; r0 += kMissRows) {
      const std::size_t nr = std::min(r_end, r0 + kMissRows) - r0;
      prepare_block(m, X + r0 * m.D, w ? w + r0 : nullptr, nr, true, s);
      blk.init(st_type, m.K, m.D);
      block_estep(m, s);
      blk.loglik = mixture::block_responsibilities<double>(m.K, s.Bp, s.ws);
      blk.wsum = mixture::vsum(s.ws.W.data(), s.Bp);
      block_statistics(m, s, blk);
      st.add(blk);
    }
  });
  mixture::Stats out;
  out.init(st_type, m.K, m.D);
  for (auto& s : slots) out.add(s);
  return out;
}

// Per-row results: out_lp (N×K, log π_k + log N(x_o | k)) and/or out_x (N×D,
// pre-filled with X: the missing entries are set to E[x_m | x_o]).
template <class T>
void rows_pass(const Model& m, const T* X, std::size_t N, double* out_lp, T* out_x) {
  const std::size_t nb = n_blocks(N);
  const std::size_t per_task = 4;
  const std::size_t n_tasks = (nb + per_task - 1) / per_task;
  const std::size_t K = m.K, D = m.D;
  parallel_for(n_tasks, [&](std::size_t t) {
    thread_local Scratch s;
    s.resize(D, K, m.Dp);
    s.want_cov = false;
    const std::size_t r_end = std::min(N, std::min(nb, (t + 1) * per_task) * kRowBlock);
    for (std::size_t r0 = t * per_task * kRowBlock; r0 < r_end; r0 += kMissRows) {
      const std::size_t nr = std::min(r_end, r0 + kMissRows) - r0;
      prepare_block(m, X + r0 * D, static_cast<const T*>(nullptr), nr, false, s);
      block_estep(m, s);
      const std::size_t ld = s.ld;
      if (out_lp)
        for (std::size_t p = 0; p < nr; ++p)
          for (std::size_t k = 0; k < K; ++k)
            out_lp[(r0 + s.order[p]) * K + k] = s.ws.LP[k * ld + p];
      if (!out_x) continue;
      mixture::block_responsibilities<double>(K, s.Bp, s.ws);  // posterior γ (w = 1)
      for (std::size_t g = 0; g < s.ng; ++g) {
        const std::size_t q = s.mofs[g + 1] - s.mofs[g];
        const std::uint32_t* mi = s.miss.data() + s.mofs[g];
        for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) {
          T* row = out_x + (r0 + s.order[p]) * D;
          for (std::size_t a = 0; a < q; ++a) {
            const std::size_t i = mi[a];
            double v = 0;
            for (std::size_t k = 0; k < K; ++k)
              v += s.ws.LP[k * ld + p] * (m.mean[k * m.Dp + i] + s.Y[(k * D + i) * ld + p]);
            row[i] = static_cast<T>(v);
          }
        }
      }
    }
  });
}

}  // namespace maxlik::mixture_missing
