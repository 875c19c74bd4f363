// EM for Gaussian mixtures: one fused pass per iteration.
//
//   N rows, D features, K components; γ_nk responsibilities, w_n sample weights.
//
// For each fixed block of kRowBlock rows (see gaussian.hpp for the layout):
//   1. the K log-densities + log π_k                     (E-step numerator)
//   2. log p(x_n) = logsumexp_k, γ_nk = w_n p(x_n,k)/p(x_n)  (Bishop PRML 9.23)
//   3. the sufficient statistics of the M-step (PRML 9.24–9.27), SHIFTED for
//      numerical stability (float32 variances never go negative):
//        N_k = Σ γ,  S_k = Σ γ (x − s_k),  Q_k = Σ γ (x − s_k)(x − s_k)ᵀ  (upper)
//      with s_k = the current μ_k (full/diag/spherical; Q diagonal only for
//      diag/spherical), and for tied one pooled Q = Σ w (x − c)(x − c)ᵀ and
//      S_k = Σ γ (x − c) around a single centre c.
//   4. Σ w log p(x_n) and Σ w.
// Neither the N×K responsibilities nor per-component N×D arrays exist beyond
// one block. Blocks are grouped into fixed tasks (a function of N only); each
// task sums its blocks in order into its own double-precision slot and the
// slots are merged in task order, so any thread count gives identical bits.
#pragma once

#include <cstdint>
#include <cstring>

#include "gaussian.hpp"

namespace maxlik::mixture {

using gaussian::CovType;

struct Stats {
  std::size_t K = 0, D = 0;
  CovType type = CovType::full;
  std::vector<double> nk;  // K
  std::vector<double> sx;  // K×D
  std::vector<double> sxx; // full K×D×D (upper), diag/spherical K×D, tied D×D (upper)
  double loglik = 0;       // Σ w log p(x)
  double wsum = 0;         // Σ w
  void init(CovType t, std::size_t k, std::size_t d) {
    type = t;
    K = k;
    D = d;
    nk.assign(K, 0.0);
    sx.assign(K * D, 0.0);
    sxx.assign(t == CovType::full ? K * D * D : (t == CovType::tied ? D * D : K * D), 0.0);
    loglik = wsum = 0;
  }
  void add(const Stats& o) {
    for (std::size_t i = 0; i < nk.size(); ++i) nk[i] += o.nk[i];
    for (std::size_t i = 0; i < sx.size(); ++i) sx[i] += o.sx[i];
    for (std::size_t i = 0; i < sxx.size(); ++i) sxx[i] += o.sxx[i];
    loglik += o.loglik;
    wsum += o.wsum;
  }
};

// Where the responsibilities come from.
enum class RespSource { estep, dense, labels };

// Q[i][j] += Σ_r G[i][r] XC[j][r] for j ≥ i (upper triangle, accumulating into
// double). Register tile 3×4 over row vectors; edge tiles clamp indices and
// discard the duplicates.
template <class T>
inline void rank_update_upper(const T* G, const T* XC, std::size_t D, std::size_t ld, std::size_t Bp,
                              double* Q) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  constexpr std::size_t TI = 3, TJ = 4;
  for (std::size_t i0 = 0; i0 < D; i0 += TI) {
    std::size_t ii[TI];
    for (std::size_t a = 0; a < TI; ++a) ii[a] = std::min(i0 + a, D - 1);
    for (std::size_t j0 = (i0 / TJ) * TJ; j0 < D; j0 += TJ) {
      std::size_t jj[TJ];
      for (std::size_t b = 0; b < TJ; ++b) jj[b] = std::min(j0 + b, D - 1);
      V acc[TI][TJ];
      for (std::size_t a = 0; a < TI; ++a)
        for (std::size_t b = 0; b < TJ; ++b) acc[a][b] = V{};
      const T* g[TI];
      const T* x[TJ];
      for (std::size_t a = 0; a < TI; ++a) g[a] = G + ii[a] * ld;
      for (std::size_t b = 0; b < TJ; ++b) x[b] = XC + jj[b] * ld;
      for (std::size_t r = 0; r < Bp; r += L) {
        V gv[TI];
        for (std::size_t a = 0; a < TI; ++a) gv[a] = simd::load(g[a] + r);
        for (std::size_t b = 0; b < TJ; ++b) {
          const V xv = simd::load(x[b] + r);
          for (std::size_t a = 0; a < TI; ++a) acc[a][b] += gv[a] * xv;
        }
      }
      for (std::size_t a = 0; a < TI; ++a) {
        if (i0 + a >= D) break;
        for (std::size_t b = 0; b < TJ; ++b) {
          if (j0 + b >= D) break;
          if (j0 + b < i0 + a) continue;
          Q[(i0 + a) * D + j0 + b] += static_cast<double>(simd::hsum<T>(acc[a][b]));
        }
      }
    }
  }
}

template <class T> inline double vsum(const T* x, std::size_t n) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  V a0{}, a1{};
  std::size_t r = 0;
  for (; r + 2 * L <= n; r += 2 * L) {
    a0 += simd::load(x + r);
    a1 += simd::load(x + r + L);
  }
  for (; r < n; r += L) a0 += simd::load(x + r);
  return static_cast<double>(simd::hsum<T>(a0 + a1));
}

// idx[0..cnt) = the rows r < Bp (a multiple of the lanes) with gam[r] != 0
// (NaN included), ascending: one vector compare per lanes rows, then the set
// bits of its mask.
template <class T> inline std::size_t nonzero_rows(const T* gam, std::size_t Bp, std::uint32_t* idx) {
  constexpr std::size_t L = simd::lanes<T>;
  const simd::vec<T> zero{};
  std::size_t cnt = 0;
  for (std::size_t r = 0; r < Bp; r += L) {
    unsigned m = simd::movemask<T>(simd::load(gam + r) != zero);
    while (m) {
      idx[cnt++] = static_cast<std::uint32_t>(r + static_cast<std::size_t>(__builtin_ctz(m)));
      m &= m - 1;
    }
  }
  return cnt;
}

// Steps 3 for one block whose responsibilities (already × w) are in ws.LP and
// whose transposed rows are in ws.XT. `shift`: K×D (per-component types) or
// the centre c (tied).
// diag / spherical statistics of the compacted rows idx[0..cnt) read from
// the row-major block Xrows (a row is D contiguous values: whole vectors over
// features, no per-element gathers): Σγ(x−μ) and Σγ(x−μ)², summed over the
// rows in idx order, lane = feature.
template <class T>
inline void diag_rows_accumulate(const T* Xrows, std::size_t D, const std::uint32_t* idx, std::size_t cnt,
                                 const T* gam, const T* mu, double* sx, double* sxx) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  constexpr std::size_t CV = 4;  // feature vectors held in registers per sweep
  for (std::size_t d0 = 0; d0 < D; d0 += CV * L) {
    const std::size_t w = std::min(CV * L, D - d0);
    const std::size_t nvec = (w + L - 1) / L;
    V m[CV], a[CV], q[CV];
    for (std::size_t v = 0; v < CV; ++v) {
      a[v] = q[v] = V{};
      const std::size_t c = d0 + v * L;
      m[v] = c + L <= D ? simd::load<T>(mu + c) : (c < D ? simd::load_partial<T>(mu + c, int(D - c), T(0)) : V{});
    }
    for (std::size_t i = 0; i < cnt; ++i) {
      const T* x = Xrows + static_cast<std::size_t>(idx[i]) * D + d0;
      const V g = simd::set1<T>(gam[idx[i]]);
      for (std::size_t v = 0; v < CV; ++v) {
        if (v >= nvec) break;
        const std::size_t c = v * L;
        const V xv = c + L <= w ? simd::load<T>(x + c) : simd::load_partial<T>(x + c, int(w - c), T(0));
        const V xc = xv - m[v];
        const V gx = g * xc;
        a[v] += gx;
        q[v] += gx * xc;
      }
    }
    for (std::size_t v = 0; v < nvec; ++v)
      for (std::size_t l = 0; l < L && v * L + l < w; ++l) {
        sx[d0 + v * L + l] += static_cast<double>(a[v][l]);
        sxx[d0 + v * L + l] += static_cast<double>(q[v][l]);
      }
  }
}

// Xrows (optional): the block's rows in row-major order (nr rows of D), so
// compacted rows are read as whole rows instead of gathered feature by feature.
template <class T>
void block_accumulate(CovType type, std::size_t K, std::size_t D, std::size_t Bp,
                      const T* shift, gaussian::Workspace<T>& ws, Stats& st, const T* Xrows = nullptr,
                      std::size_t nr = 0) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  T* XC = ws.XC.data();
  T* G = ws.G.data();
  const std::size_t ld = ws.ld;
  if (type == CovType::tied) {
    gaussian::centre_block(ws.XT.data(), D, ld, Bp, shift, XC);
    std::vector<std::uint32_t>& idx = ws.idx;
    idx.resize(Bp);
    std::vector<T> acc(D);
    for (std::size_t k = 0; k < K; ++k) {
      const T* gam = ws.LP.data() + k * ld;
      st.nk[k] += vsum(gam, Bp);
      const std::size_t cnt = nonzero_rows(gam, Bp, idx.data());
      if (cnt == 0) continue;
      if (cnt * 4 <= Bp) {  // few rows of k in this block: sum over those only
        std::fill(acc.begin(), acc.end(), T(0));
        for (std::size_t q = 0; q < cnt; ++q) {
          const std::size_t r = idx[q];
          for (std::size_t i = 0; i < D; ++i) acc[i] += gam[r] * XC[i * ld + r];
        }
        for (std::size_t i = 0; i < D; ++i) st.sx[k * D + i] += static_cast<double>(acc[i]);
        continue;
      }
      for (std::size_t i = 0; i < D; ++i) {
        const T* x = XC + i * ld;
        V a{};
        for (std::size_t r = 0; r < Bp; r += L) a += simd::load(gam + r) * simd::load(x + r);
        st.sx[k * D + i] += static_cast<double>(simd::hsum<T>(a));
      }
    }
    // Pooled scatter Σ w (x − c)(x − c)ᵀ: one rank update per block.
    const T* w = ws.W.data();
    for (std::size_t i = 0; i < D; ++i)
      for (std::size_t r = 0; r < Bp; r += L)
        simd::store(G + i * ld + r, simd::load(w + r) * simd::load(XC + i * ld + r));
    rank_update_upper(G, XC, D, ld, Bp, st.sxx.data());
    return;
  }
  // Per component. Rows whose responsibility is exactly 0 (flushed in step 2)
  // contribute nothing, so when few rows remain they are gathered into a
  // compact block first: with separated clusters this makes the O(D²) rank
  // update cost O(rows that belong to k) instead of O(all rows) per component.
  std::vector<std::uint32_t>& idx = ws.idx;
  idx.resize(Bp);
  T* GW = ws.GW.data();  // compacted γ
  for (std::size_t k = 0; k < K; ++k) {
    const T* gam = ws.LP.data() + k * ld;
    const T* mu = shift + k * D;
    const std::size_t cnt = nonzero_rows(gam, Bp, idx.data());
    if (cnt == 0) continue;
    const T* g_src = gam;
    const T* x_src = ws.XT.data();
    std::size_t n = Bp;
    const bool rows_ok = Xrows && idx[cnt - 1] < nr;  // idx ascends; padding rows are not in Xrows
    if (cnt * 2 <= Bp && rows_ok && type != CovType::full) {
      double nk = 0;
      for (std::size_t q = 0; q < cnt; ++q) nk += static_cast<double>(gam[idx[q]]);
      st.nk[k] += nk;
      diag_rows_accumulate<T>(Xrows, D, idx.data(), cnt, gam, mu, st.sx.data() + k * D, st.sxx.data() + k * D);
      continue;
    }
    if (cnt * 2 <= Bp && rows_ok) {  // full: whole rows copied, then one in-register transpose
      n = (cnt + L - 1) / L * L;
      for (std::size_t q = 0; q < n; ++q) GW[q] = q < cnt ? gam[idx[q]] : T(0);
      for (std::size_t q = 0; q < n; ++q) {
        if (q < cnt) std::memcpy(G + q * D, Xrows + static_cast<std::size_t>(idx[q]) * D, D * sizeof(T));
        else std::memcpy(G + q * D, mu, D * sizeof(T));  // padding rows: x = μ, so x − μ = 0
      }
      gaussian::transpose(G, D, n, D, XC, ld);
      g_src = GW;
      x_src = XC;  // centred in place below
    } else if (cnt * 2 <= Bp) {  // compact: rows idx[0..cnt) then zero padding to a whole vector
      n = (cnt + L - 1) / L * L;
      for (std::size_t q = 0; q < n; ++q) GW[q] = q < cnt ? gam[idx[q]] : T(0);
      for (std::size_t i = 0; i < D; ++i) {
        const T* xs = ws.XT.data() + i * ld;
        T* xd = XC + i * ld;
        for (std::size_t q = 0; q < n; ++q) xd[q] = q < cnt ? xs[idx[q]] : mu[i];
      }
      g_src = GW;
      x_src = XC;  // centred in place below
    }
    st.nk[k] += vsum(g_src, n);
    if (type == CovType::full) {
      for (std::size_t i = 0; i < D; ++i) {
        const V m = simd::set1<T>(mu[i]);
        const T* x = x_src + i * ld;
        V a{};
        for (std::size_t r = 0; r < n; r += L) {
          const V xc = simd::load(x + r) - m;
          const V g = simd::load(g_src + r) * xc;
          simd::store(XC + i * ld + r, xc);
          simd::store(G + i * ld + r, g);
          a += g;
        }
        st.sx[k * D + i] += static_cast<double>(simd::hsum<T>(a));
      }
      rank_update_upper(G, XC, D, ld, n, st.sxx.data() + k * D * D);
    } else {  // diag / spherical: Σγ(x−μ) and Σγ(x−μ)²
      for (std::size_t i = 0; i < D; ++i) {
        const V m = simd::set1<T>(mu[i]);
        const T* x = x_src + i * ld;
        V a{}, q{};
        for (std::size_t r = 0; r < n; r += L) {
          const V xc = simd::load(x + r) - m;
          const V g = simd::load(g_src + r) * xc;
          a += g;
          q += g * xc;
        }
        st.sx[k * D + i] += static_cast<double>(simd::hsum<T>(a));
        st.sxx[k * D + i] += static_cast<double>(simd::hsum<T>(q));
      }
    }
  }
}

template <class T> inline bool all_true(simd::ivec<T> m) { return !simd::any<T>(~m); }

// Step 2: LP (log π_k + log N) -> γ·w in place; returns Σ w log p(x) of the block.
template <class T> inline double block_responsibilities(std::size_t K, std::size_t Bp, gaussian::Workspace<T>& ws) {
  using V = simd::vec<T>;
  constexpr std::size_t L = simd::lanes<T>;
  T* LP = ws.LP.data();
  const T* W = ws.W.data();
  const std::size_t ld = ws.ld;
  V ll{};
  // e^-75 ≈ 3e-33 (double), e^-40 ≈ 4e-18 (float): far below rounding of any
  // statistic of a non-empty component.
  const V cut = simd::set1<T>(sizeof(T) == 4 ? T(-40) : T(-75));
  for (std::size_t r = 0; r < Bp; r += L) {
    V mx = simd::load(LP + r);
    for (std::size_t k = 1; k < K; ++k) mx = simd::max<T>(mx, simd::load(LP + k * ld + r));
    V s{};
    for (std::size_t k = 0; k < K; ++k) {
      const V d = simd::load(LP + k * ld + r) - mx;
      // Responsibilities below e^cut (relative to the largest) are set to 0: they
      // cannot change any statistic, and keeping them would create subnormal
      // products γ·x·x, which cost ~100 cycles each on x86.
      const auto tiny = d < cut;
      V e{};
      if (!all_true<T>(tiny)) e = simd::select<T>(tiny, V{}, simd::exp<T>(simd::max<T>(d, cut)));
      simd::store(LP + k * ld + r, e);
      s += e;
    }
    const V w = simd::load(W + r);
    const V lse = mx + simd::log<T>(s);
    // zero-weight (and padded) rows contribute nothing, even if lse is not finite
    ll += simd::select<T>(w != V{}, w * lse, V{});
    const V f = w / s;
    for (std::size_t k = 0; k < K; ++k)
      simd::store(LP + k * ld + r, simd::load(LP + k * ld + r) * f);
  }
  return static_cast<double>(simd::hsum<T>(ll));
}

// Number of tasks of em_pass for N rows (fixed by N alone, see em_pass).
inline std::size_t em_pass_tasks(std::size_t N) {
  const std::size_t nb = n_blocks(N);
  const std::size_t per_task = std::max<std::size_t>(2, (nb + 127) / 128);
  return (nb + per_task - 1) / per_task;
}

// Bytes em_pass<T> allocates (as a double: no overflow for absurd sizes): the
// per-task statistics slots, one running block statistics and one Workspace
// per thread, the model copy, and the merged result. For the memory guard of
// the callers, which runs before anything is allocated.
template <class T>
inline double em_pass_bytes(CovType stat_type, std::size_t N, std::size_t D, std::size_t K,
                            int n_threads) {
  const double k = double(K), d = double(D);
  const double sxx = stat_type == CovType::full ? k * d * d : stat_type == CovType::tied ? d * d : k * d;
  const double stats = (k + k * d + sxx) * 8.0;
  const double tasks = double(std::max<std::size_t>(1, em_pass_tasks(N)));
  const double threads = std::min(tasks, double(std::max(1, n_threads)));
  return (tasks + threads + 1.0) * stats + threads * gaussian::workspace_bytes<T>(D, K) +
         gaussian::model_bytes<T>(stat_type, D, K);
}

// The whole pass. X: N×D row-major; w: N or nullptr (ones).
// src = estep: γ from the model m; dense: resp (N×K, given); labels: label[n]
// in [0, K) or −1 (row ignored).
template <class T>
Stats em_pass(CovType stat_type, const gaussian::Model<T>* m, const T* X, const T* w,
              std::size_t N, std::size_t D, std::size_t K, const T* shift, RespSource src,
              const T* resp, const std::int64_t* labels) {
  const std::size_t nb = n_blocks(N);
  // Fixed task size (depends on N only): bounds the number of statistics slots
  // (memory) without making results depend on the thread count.
  const std::size_t per_task = std::max<std::size_t>(2, (nb + 127) / 128);
  const std::size_t n_tasks = em_pass_tasks(N);
  std::vector<Stats> slots(n_tasks);
  parallel_for(n_tasks, [&](std::size_t t) {
    thread_local gaussian::Workspace<T> ws;  // reused: see log_densities
    const std::size_t Bmax = gaussian::padded_rows(kRowBlock, gaussian::kRowTile<T>);
    ws.resize(D, K, Bmax);
    Stats& st = slots[t];
    st.init(stat_type, K, D);
    Stats blk;
    for (std::size_t b = t * per_task; b < std::min(nb, (t + 1) * per_task); ++b) {
      const std::size_t r0 = b * kRowBlock, nr = std::min(N, r0 + kRowBlock) - r0;
      const std::size_t Bp = gaussian::padded_rows(nr, gaussian::kRowTile<T>);
      gaussian::transpose_block(X + r0 * D, nr, D, ws.XT.data(), ws.ld, Bp);
      for (std::size_t r = 0; r < Bp; ++r) ws.W[r] = r < nr ? (w ? w[r0 + r] : T(1)) : T(0);
      blk.init(stat_type, K, D);
      if (src == RespSource::estep) {
        gaussian::block_log_densities(*m, Bp, ws);
        blk.loglik = block_responsibilities(K, Bp, ws);
      } else {
        for (std::size_t k = 0; k < K; ++k)
          for (std::size_t r = 0; r < Bp; ++r) {
            T g = T(0);
            if (r < nr) {
              if (src == RespSource::dense) g = resp[(r0 + r) * K + k];
              else g = labels[r0 + r] == static_cast<std::int64_t>(k) ? T(1) : T(0);
            }
            ws.LP[k * ws.ld + r] = g * ws.W[r];
          }
      }
      blk.wsum = vsum(ws.W.data(), Bp);
      block_accumulate(stat_type, K, D, Bp, shift, ws, blk, X + r0 * D, nr);
      st.add(blk);
    }
  });
  Stats out;
  out.init(stat_type, K, D);
  for (auto& s : slots) out.add(s);
  return out;
}

}  // namespace maxlik::mixture
