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
// pattern share the factorisation (for "tied" one factorisation serves every
// component). For "diag"/"spherical" Λ is diagonal: x̂_m = μ_m, the
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
  std::vector<double> mean;   // K×Dp (zero padded)
  std::vector<double> U;      // full: (tied ? 1 : K)×D×D upper factor, precision = U Uᵀ
  std::vector<double> P;      // full: (tied ? 1 : K)×D×Dp precision rows (zero padded)
  std::vector<double> p;      // diag: K×D, 1/σ
  std::vector<double> var;    // diag: K×D, σ²
  std::vector<double> logp;   // diag: K×D, log(1/σ)
  std::vector<double> logw;   // K: log π_k
  std::vector<double> cst;    // K: log π_k + log det U_k (diag: + Σ log p) − D/2 log 2π
  const double* Uk(std::size_t k) const { return U.data() + (tied ? 0 : k * D * D); }
  const double* Pk(std::size_t k) const { return P.data() + (tied ? 0 : k * D * Dp); }
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
  m.mean.assign(K * m.Dp, 0.0);
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t i = 0; i < D; ++i) m.mean[k * m.Dp + i] = means[k * D + i];
  m.logw.assign(log_weights, log_weights + K);
  m.cst.assign(K, 0.0);
  const double half_log2pi = 0.5 * static_cast<double>(D) * gaussian::kLog2Pi;
  if (type == CovType::full || type == CovType::tied) {
    m.full = true;
    m.tied = type == CovType::tied;
    const std::size_t nf = m.tied ? 1 : K;
    m.U.assign(nf * D * D, 0.0);
    m.P.assign(nf * D * m.Dp, 0.0);
    std::vector<double> logdet(nf, 0.0);
    for (std::size_t f = 0; f < nf; ++f) {
      const double* src = prec + f * D * D;
      double* U = m.U.data() + f * D * D;
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = i; j < D; ++j) U[i * D + j] = src[i * D + j];
      for (std::size_t i = 0; i < D; ++i) logdet[f] += std::log(U[i * D + i]);
      double* P = m.P.data() + f * D * m.Dp;
      for (std::size_t i = 0; i < D; ++i)
        for (std::size_t j = 0; j < D; ++j) {
          double s = 0;  // (U Uᵀ)_ij = Σ_{l ≥ max(i, j)} U_il U_jl
          for (std::size_t l = std::max(i, j); l < D; ++l) s += U[i * D + l] * U[j * D + l];
          P[i * m.Dp + j] = s;
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

// Per-thread scratch for one block of at most kRowBlock rows.
struct Scratch {
  gaussian::Workspace<double> ws;  // LP (K×ld), W, G, XC, GW, idx
  std::size_t ld = 0, nr = 0, Bp = 0, ng = 0;
  std::vector<double> XT;    // D×ld observed values, 0 where missing (rows sorted by pattern)
  std::vector<double> M;     // D×ld: 1 observed, 0 missing (padded rows: 1)
  std::vector<double> XR;    // nr×Dp the same rows, row-major, 0 where missing or padding
  std::vector<double> MR;    // nr×Dp row-major mask: 1 observed, 0 missing or padding
  std::vector<double> Y;     // K×D×ld: x̂_k − μ_k (observed: x − μ_k)
  std::vector<double> zero;  // D zeros
  std::vector<double> c, drow;
  std::vector<std::uint32_t> order;   // sorted position -> row of the block
  std::vector<std::uint64_t> keys;    // nr × nw missingness bit masks
  std::vector<std::uint32_t> nmiss;   // nr: missing entries per row
  std::vector<std::uint32_t> gstart;  // ng + 1: first sorted position of each pattern
  std::vector<std::uint32_t> miss;    // missing coordinates of each pattern, ascending
  std::vector<std::uint32_t> mofs;    // ng + 1 offsets into miss
  std::vector<double> Lf;             // lower Cholesky factor of Λ_mm per (pattern, component)
  std::vector<std::size_t> lofs;      // ng×K offsets into Lf
  std::vector<double> gcst;           // ng×K log-density constant of (pattern, component)
  std::vector<double> inv;            // scratch for Λ_mm⁻¹
  std::vector<std::uint32_t> single;  // patterns with one row and 0 < |m| < D, in order
  std::vector<std::uint8_t> is_single;
  std::vector<double> bA, bB, bR;     // lane-interleaved batch factors, right-hand sides, 1/L_aa
  std::vector<double> bZ;             // lane-interleaved L⁻¹ of a batch
  bool want_cov = false;              // batch_solve also stores Λ_mm⁻¹ (the EM pass)
  void resize(std::size_t D, std::size_t K, std::size_t Dp) {
    const std::size_t Bmax = gaussian::padded_rows(kRowBlock, gaussian::kRowTile<double>);
    ws.resize(D, K, Bmax);
    ld = ws.ld;
    XT.resize(D * ld);
    M.resize(D * ld);
    XR.resize(kRowBlock * Dp);
    MR.resize(kRowBlock * Dp);
    Y.resize(K * D * ld);
    zero.assign(D, 0.0);
    c.resize(D);
    drow.resize(Dp);
    inv.resize(D * D);
    constexpr std::size_t L = simd::lanes<double>;
    bA.resize(D * D * L);
    bB.resize(D * L);
    bR.resize(D * L);
    bZ.resize(D * D * L);
  }
};

// Bytes of one Scratch (for the callers' memory guard).
inline double scratch_bytes(std::size_t D, std::size_t K) {
  const double ld = double(gaussian::padded_rows(kRowBlock, gaussian::kRowTile<double>) + 8);
  const double d = double(D), k = double(K), rows = double(kRowBlock);
  // Y, XT/M, XR, factors (worst case one D×D factor per row and component), keys.
  return gaussian::workspace_bytes<double>(D, K) +
         8.0 * (k * d * ld + 2.0 * d * ld + 2.0 * rows * (d + 8.0) + rows * k * (2.0 + d * d + d)) +
         rows * (8.0 * (d / 64.0 + 1.0) + 12.0);
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
  for (std::size_t r = 0; r < nr; ++r)
    for (std::size_t i = 0; i < D; ++i)
      if (std::isnan(X[r * D + i])) {
        s.keys[r * nw + i / 64] |= std::uint64_t(1) << (i % 64);
        ++s.nmiss[r];
      }
  s.order.resize(nr);
  std::iota(s.order.begin(), s.order.end(), 0u);
  const std::uint64_t* keys = s.keys.data();
  const std::uint32_t* nmiss = s.nmiss.data();
  // Sorted by the number of missing entries first: consecutive patterns then
  // run the small loops below with the same trip counts, which the branch
  // predictor follows (a random |m| per row costs several mispredictions each).
  std::sort(s.order.begin(), s.order.end(), [&](std::uint32_t a, std::uint32_t b) {
    if (nmiss[a] != nmiss[b]) return nmiss[a] < nmiss[b];
    for (std::size_t q = 0; q < nw; ++q)
      if (keys[a * nw + q] != keys[b * nw + q]) return keys[a * nw + q] < keys[b * nw + q];
    return a < b;
  });
  double* W = s.ws.W.data();
  for (std::size_t p = 0; p < nr; ++p) {
    const std::size_t r = s.order[p];
    const T* row = X + r * D;
    for (std::size_t i = 0; i < D; ++i) {
      const double v = static_cast<double>(row[i]);
      const bool obs = !std::isnan(v);
      s.XT[i * ld + p] = obs ? v : 0.0;
      s.M[i * ld + p] = obs ? 1.0 : 0.0;
      s.XR[p * Dp + i] = obs ? v : 0.0;
      s.MR[p * Dp + i] = obs ? 1.0 : 0.0;
    }
    for (std::size_t i = D; i < Dp; ++i) s.XR[p * Dp + i] = s.MR[p * Dp + i] = 0.0;
    W[p] = w ? static_cast<double>(w[r]) : 1.0;
  }
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
    for (std::size_t i = 0; i < D; ++i)
      if ((keys[r * nw + i / 64] >> (i % 64)) & 1u) s.miss.push_back(static_cast<std::uint32_t>(i));
    s.mofs.push_back(static_cast<std::uint32_t>(s.miss.size()));
  }
  s.ng = s.gstart.size();
  s.gstart.push_back(static_cast<std::uint32_t>(nr));
  if (drop_empty)
    for (std::size_t g = 0; g < s.ng; ++g)
      if (s.mofs[g + 1] - s.mofs[g] == D)
        for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) W[p] = 0.0;
  // patterns of a single row (most of them when entries are missing at random)
  // are factorised SIMD-lane-parallel, one row per lane (see batch_solve)
  s.single.clear();
  s.is_single.assign(s.ng, 0);
  for (std::size_t g = 0; g < s.ng; ++g) {
    const std::size_t q = s.mofs[g + 1] - s.mofs[g];
    if (s.gstart[g + 1] - s.gstart[g] == 1 && q > 0 && q < D) {
      s.single.push_back(static_cast<std::uint32_t>(g));
      s.is_single[g] = 1;
    }
  }
}

// In place: A (q×q, row-major, symmetric) -> its lower Cholesky factor L, and
// rd[a] = 1 / L_aa (the solves multiply instead of dividing). Returns
// Σ log L_aa (one log per factor: std::log costs as much as the factorisation
// of a small block), or NaN if A is not numerically positive definite.
inline double cholesky_lower(double* A, double* rd, std::size_t q) {
  double prod = 1.0, logsum = 0.0;
  for (std::size_t i = 0; i < q; ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      double v = A[i * q + j];
      for (std::size_t l = 0; l < j; ++l) v -= A[i * q + l] * A[j * q + l];
      A[i * q + j] = v * rd[j];
    }
    double v = A[i * q + i];
    for (std::size_t l = 0; l < i; ++l) v -= A[i * q + l] * A[i * q + l];
    if (!(v > 0) || !std::isfinite(v)) return std::nan("");
    const double d = std::sqrt(v);
    A[i * q + i] = d;
    rd[i] = 1.0 / d;
    for (std::size_t j = i + 1; j < q; ++j) A[i * q + j] = 0.0;
    prod *= d;
    if (!(prod > 1e-150 && prod < 1e150)) {  // keep the running product in range
      logsum += std::log(prod);
      prod = 1.0;
    }
  }
  return logsum + std::log(prod);
}

// For n ≤ L single-row patterns gs[0..n) with the same |m| = q, component k:
// the factorisations of Λ_mm, the solves and the constants of block_estep,
// with row `lane` of the batch in SIMD lane `lane` (the short dependent chains
// of a |m| × |m| Cholesky and two triangular solves run L at a time; unused
// lanes repeat the last row and are discarded). Writes the same per-pattern
// results as the scalar path (Yk at the missing entries, gcst); the factor is
// not kept (block_statistics recomputes it for the components that need it).
inline void batch_solve(const Model& m, Scratch& s, std::size_t k, const std::uint32_t* gs,
                        std::size_t n, std::size_t q) {
  using V = simd::vec<double>;
  constexpr std::size_t L = simd::lanes<double>;
  const std::size_t D = m.D, Dp = m.Dp, ld = s.ld, K = m.K;
  const double* Pk = m.Pk(k);
  const double* mu = m.mean.data() + k * Dp;
  double* A = s.bA.data();  // A[(a*q + c)*L + lane], lower triangle
  double* B = s.bB.data();  // B[a*L + lane]
  double* R = s.bR.data();  // R[a*L + lane] = 1 / L_aa
  for (std::size_t lane = 0; lane < L; ++lane) {
    const std::size_t g = gs[std::min(lane, n - 1)];
    const std::uint32_t* mi = s.miss.data() + s.mofs[g];
    const std::size_t p = s.gstart[g];
    const double* xr = s.XR.data() + p * Dp;
    const double* mr = s.MR.data() + p * Dp;
    double* dt = s.drow.data();  // δ̃ = (x − μ) · mask
    for (std::size_t i = 0; i < Dp; i += L)
      simd::store(dt + i, (simd::load(xr + i) - simd::load(mu + i)) * simd::load(mr + i));
    for (std::size_t a = 0; a < q; ++a) {
      const double* pr = Pk + mi[a] * Dp;
      for (std::size_t c = 0; c <= a; ++c) A[(a * q + c) * L + lane] = pr[mi[c]];
      V acc{};  // (Λ δ̃)_a
      for (std::size_t i = 0; i < Dp; i += L) acc += simd::load(pr + i) * simd::load(dt + i);
      B[a * L + lane] = simd::hsum<double>(acc);
    }
  }
  V logsum{};
  for (std::size_t i = 0; i < q; ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      V v = simd::load(A + (i * q + j) * L);
      for (std::size_t l = 0; l < j; ++l)
        v -= simd::load(A + (i * q + l) * L) * simd::load(A + (j * q + l) * L);
      simd::store(A + (i * q + j) * L, v * simd::load(R + j * L));
    }
    V v = simd::load(A + (i * q + i) * L);
    for (std::size_t l = 0; l < i; ++l) {
      const V t = simd::load(A + (i * q + l) * L);
      v -= t * t;
    }
    V d;
    for (std::size_t lane = 0; lane < L; ++lane) {
      if (!(v[lane] > 0) || !std::isfinite(v[lane]))
        throw std::invalid_argument(
            "the precision matrix of component " + std::to_string(k) +
            " is numerically singular on a set of missing coordinates; increase reg_covar");
      d[lane] = std::sqrt(v[lane]);
    }
    simd::store(A + (i * q + i) * L, d);
    simd::store(R + i * L, simd::set1<double>(1.0) / d);
    logsum += simd::log<double>(d);
  }
  if (s.want_cov) {
    // Cov[x_m | x_o] = Λ_mm⁻¹ = L⁻ᵀ L⁻¹ for the M-step (upper triangle, per
    // lane into the pattern's slot): Z = L⁻¹ by forward substitution, then ZᵀZ
    double* Z = s.bZ.data();
    for (std::size_t c = 0; c < q; ++c)
      for (std::size_t a = c; a < q; ++a) {
        V v = simd::set1<double>(a == c ? 1.0 : 0.0);
        for (std::size_t j = c; j < a; ++j)
          v -= simd::load(A + (a * q + j) * L) * simd::load(Z + (j * q + c) * L);
        simd::store(Z + (a * q + c) * L, v * simd::load(R + a * L));
      }
    std::size_t idx = 0;
    for (std::size_t a = 0; a < q; ++a)
      for (std::size_t c = a; c < q; ++c, ++idx) {
        V v{};
        for (std::size_t j = c; j < q; ++j)
          v += simd::load(Z + (j * q + a) * L) * simd::load(Z + (j * q + c) * L);
        for (std::size_t lane = 0; lane < n; ++lane)
          s.Lf[s.lofs[gs[lane] * K + k] + idx] = v[lane];
      }
  }
  // forward and back substitution, in place in B
  for (std::size_t a = 0; a < q; ++a) {
    V v = simd::load(B + a * L);
    for (std::size_t j = 0; j < a; ++j) v -= simd::load(A + (a * q + j) * L) * simd::load(B + j * L);
    simd::store(B + a * L, v * simd::load(R + a * L));
  }
  for (std::size_t a = q; a-- > 0;) {
    V v = simd::load(B + a * L);
    for (std::size_t j = a + 1; j < q; ++j)
      v -= simd::load(A + (j * q + a) * L) * simd::load(B + j * L);
    simd::store(B + a * L, v * simd::load(R + a * L));
  }
  const double hl2p = 0.5 * gaussian::kLog2Pi;
  double* Yk = s.Y.data() + k * D * ld;
  for (std::size_t lane = 0; lane < n; ++lane) {
    const std::size_t g = gs[lane];
    const std::uint32_t* mi = s.miss.data() + s.mofs[g];
    const std::size_t p = s.gstart[g];
    for (std::size_t a = 0; a < q; ++a) Yk[mi[a] * ld + p] = -B[a * L + lane];
    s.gcst[g * K + k] = m.cst[k] - logsum[lane] + hl2p * static_cast<double>(q);
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
  if (m.full) {
    // factor offsets: one factor per pattern ("tied") or per (pattern, component)
    s.lofs.resize(ng * K);
    std::size_t tot = 0;
    for (std::size_t g = 0; g < ng; ++g) {
      const std::size_t q = s.mofs[g + 1] - s.mofs[g];
      for (std::size_t k = 0; k < K; ++k) {
        s.lofs[g * K + k] = (m.tied && k > 0) ? s.lofs[g * K] : tot;
        if (!(m.tied && k > 0) && q < D) {
          if (!s.is_single[g]) tot += q * q + q + 1;    // L, 1/L_aa, Σ log L_aa
          else if (s.want_cov) tot += q * (q + 1) / 2;  // upper triangle of Λ_mm⁻¹
        }
      }
    }
    s.Lf.resize(tot);
  }
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
    double* lp = LP + k * ld;
    if (m.full) {
      const double* Pk = m.Pk(k);
      // 1. one factorisation of Λ_mm per pattern (independent short chains,
      //    which the CPU overlaps), then the constants of the log-density
      for (std::size_t g = 0; g < ng; ++g) {
        const std::size_t q = s.mofs[g + 1] - s.mofs[g];
        double& gc = s.gcst[g * K + k];
        if (q == 0) {
          gc = m.cst[k];
          continue;
        }
        if (q == D) {  // nothing observed: p(x_o) = 1
          gc = m.logw[k];
          continue;
        }
        if (s.is_single[g]) continue;  // batch_solve
        double* Lg = s.Lf.data() + s.lofs[g * K + k];
        double* rd = Lg + q * q;
        if (!(m.tied && k > 0)) {
          const std::uint32_t* mi = s.miss.data() + s.mofs[g];
          for (std::size_t a = 0; a < q; ++a)
            for (std::size_t c = 0; c <= a; ++c) Lg[a * q + c] = Pk[mi[a] * Dp + mi[c]];
          rd[q] = cholesky_lower(Lg, rd, q);
          if (std::isnan(rd[q]))
            throw std::invalid_argument(
                "the precision matrix of component " + std::to_string(k) +
                " is numerically singular on a set of missing coordinates; increase reg_covar");
        }
        gc = m.cst[k] - rd[q] + hl2p * static_cast<double>(q);
      }
      // 2. per row: c = L⁻¹ (Λ δ̃)_m, y = L⁻ᵀ c, x̂_m − μ_m = −y
      for (std::size_t g = 0; g < ng; ++g) {
        const std::size_t q = s.mofs[g + 1] - s.mofs[g];
        if (q == 0 || q == D || s.is_single[g]) continue;
        const std::uint32_t* mi = s.miss.data() + s.mofs[g];
        const double* Lg = s.Lf.data() + s.lofs[g * K + k];
        const double* rd = Lg + q * q;
        for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) {
          // δ̃ = (x − μ) · mask, row-major, in registers (no scalar stores
          // followed by vector loads of the same bytes)
          const double* xr = s.XR.data() + p * Dp;
          const double* mr = s.MR.data() + p * Dp;
          double* cv = s.c.data();
          double* dt = s.drow.data();
          for (std::size_t i = 0; i < Dp; i += L)
            simd::store(dt + i, (simd::load(xr + i) - simd::load(mu + i)) * simd::load(mr + i));
          for (std::size_t a = 0; a < q; ++a) {
            const double* pr = Pk + mi[a] * Dp;
            V acc{};
            for (std::size_t i = 0; i < Dp; i += L) acc += simd::load(pr + i) * simd::load(dt + i);
            cv[a] = simd::hsum<double>(acc);
          }
          for (std::size_t a = 0; a < q; ++a) {
            double v = cv[a];
            for (std::size_t j = 0; j < a; ++j) v -= Lg[a * q + j] * cv[j];
            cv[a] = v * rd[a];
          }
          for (std::size_t a = q; a-- > 0;) {
            double v = cv[a];
            for (std::size_t j = a + 1; j < q; ++j) v -= Lg[j * q + a] * cv[j];
            cv[a] = v * rd[a];
          }
          for (std::size_t a = 0; a < q; ++a) Yk[mi[a] * ld + p] = -cv[a];
        }
      }
      // 3. single-row patterns: L rows at a time with the same |m|, one per lane
      for (std::size_t i = 0; i < s.single.size();) {
        const std::size_t q = s.mofs[s.single[i] + 1] - s.mofs[s.single[i]];
        std::size_t j = i + 1;
        while (j < s.single.size() && j - i < L &&
               s.mofs[s.single[j] + 1] - s.mofs[s.single[j]] == q)
          ++j;
        batch_solve(m, s, k, s.single.data() + i, j - i, q);
        i = j;
      }
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
  const std::size_t K = m.K, D = m.D, ld = s.ld, Bp = s.Bp;
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
    }
    // conditional covariances: (Σ_pattern γ) Cov[x_m | x_o] in the (m, m) block
    for (std::size_t g = 0; g < s.ng; ++g) {
      const std::size_t q = s.mofs[g + 1] - s.mofs[g];
      if (q == 0 || q == D) continue;
      double sg = 0;
      for (std::size_t p = s.gstart[g]; p < s.gstart[g + 1]; ++p) sg += gam[p];
      if (sg == 0.0) continue;
      const std::uint32_t* mi = s.miss.data() + s.mofs[g];
      if (!m.full) {
        for (std::size_t a = 0; a < q; ++a) st.sxx[k * D + mi[a]] += sg * m.var[k * D + mi[a]];
        continue;
      }
      // Λ_mm⁻¹ = L⁻ᵀ L⁻¹: Z = L⁻¹ (lower) by forward substitution, then ZᵀZ
      const double* Lg = s.Lf.data() + s.lofs[g * K + k];
      double* Q = st.sxx.data() + k * D * D;
      if (s.is_single[g]) {  // batch_solve stored Λ_mm⁻¹ (upper triangle)
        std::size_t idx = 0;
        for (std::size_t a = 0; a < q; ++a)
          for (std::size_t c = a; c < q; ++c, ++idx) Q[mi[a] * D + mi[c]] += sg * Lg[idx];
        continue;
      }
      const double* rd = Lg + q * q;
      double* Z = s.inv.data();
      for (std::size_t c = 0; c < q; ++c)
        for (std::size_t a = 0; a < q; ++a) {
          if (a < c) {
            Z[a * q + c] = 0.0;
            continue;
          }
          double v = a == c ? 1.0 : 0.0;
          for (std::size_t j = c; j < a; ++j) v -= Lg[a * q + j] * Z[j * q + c];
          Z[a * q + c] = v * rd[a];
        }
      for (std::size_t a = 0; a < q; ++a)
        for (std::size_t c = a; c < q; ++c) {
          double v = 0;
          for (std::size_t j = c; j < q; ++j) v += Z[j * q + a] * Z[j * q + c];
          Q[mi[a] * D + mi[c]] += sg * v;
        }
    }
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
    for (std::size_t b = t * per_task; b < std::min(nb, (t + 1) * per_task); ++b) {
      const std::size_t r0 = b * kRowBlock, nr = std::min(N, r0 + kRowBlock) - r0;
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
    for (std::size_t b = t * per_task; b < std::min(nb, (t + 1) * per_task); ++b) {
      const std::size_t r0 = b * kRowBlock, nr = std::min(N, r0 + kRowBlock) - r0;
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
