// k-means (Lloyd) kernels: hard EM with squared Euclidean distances.
//
//   N  rows (samples), D features, K centres.
//   X       N x D row-major samples
//   scale   a power of two every row is multiplied by on the fly (1 for data of
//           ordinary range; the caller picks 2^-e for data near the overflow or
//           underflow limits, whose squared distances would not be
//           representable). Power-of-two scaling is exact, so the labels are
//           those of the unscaled data and the statistics are scaled exactly.
//   shift   D values subtracted from every scaled row on the fly (the scaled
//           data mean, so that the dot-product form below does not cancel
//           catastrophically; scikit-learn centres X for the same reason).
//           Centres live in the scaled, shifted coordinates u = x scale - shift.
//   C       K x D row-major centres (shifted coordinates)
//
// Assignment (E-step): label(x) = argmin_k ||x - c_k||^2
//                               = argmax_k ( x.c_k - ||c_k||^2 / 2 )
// ||x||^2 is common to all k and dropped; the remaining dot products are a
// small GEMM, computed here by a register-blocked micro-kernel vectorised over
// rows (a transposed copy of the row block) and blocked over groups of
// centres (score_group). The scores are only compared: the inertia is never
// taken from them (||x||^2 - 2 x.c + ||c||^2 cancels catastrophically, e.g.
// scikit-learn-intelex issue 25: float32 rows +-1 +- 1e-4 give 0 instead of
// 4.0e-8), but from the direct form below.
// Ties go to the lowest index (strict comparison in increasing k), as in
// scikit-learn.
//
// Update (M-step) statistics per block, merged in block order by the caller:
//   S_k = sum_{label(n)=k} w_n (x_n - shift)   (double)
//   W_k = sum_{label(n)=k} w_n                 (double)
//   J   = sum_n w_n ||x_n - shift - c_label(n)||^2  (direct form, exact)
// The new centre is S_k / W_k (Lloyd 1982; Bishop PRML (9.4)).
//
// Bounds (optional; Hamerly 2010, "Making k-means even faster"): per row an
// upper bound u >= ||x - c_label|| and a lower bound l <= min_{k != label}
// ||x - c_k||, carried by the caller from pass to pass. Before a pass the
// centres have moved by delta_k: u += delta_label, l -= max_{k != label} delta_k.
// A row whose bounds still separate its centre from every other one by more
// than the rounding error of the scores keeps its label without being scored;
// the others are scored as without bounds. The skip test is conservative, so
// the labels are those of a pass without bounds, and so are the statistics
// (same bits) when they sum every row; with `delta` (incremental sums, see
// lloyd_pass) they agree to rounding (tested). The rounding terms:
//   g = (D + 4) eps_T bounds the relative error of a computed score
//       -||c||^2/2 + x.c (error <= g (||c||^2 + ||x|| ||c||)) and of the
//       direct ||x - c||^2;
//   E = 2 g c_max (||x|| + c_max), ||x|| <= u + c_max, bounds the error of the
//       difference of two scores; a row is skipped when (l^2 - u^2)/2 > E,
//       i.e. when every other centre's true score is below its label's by
//       more than both scores' errors.
//   After scoring, l^2 = d_1^2 (1 - g) + 2 (s_1 - s_2) - 2E (s_1, s_2 the
//   best and second-best computed scores), u^2 = d_1^2 (1 + g), with d_1^2 the
//   direct squared distance of the update sweep. Bound arithmetic is in double
//   with a relative slack of 1e-12 per step (kUp / kDown).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>
#include <vector>

#include "parallel.hpp"
#include "simd.hpp"

namespace maxlik {
namespace kmeans {

// Per-task statistics: S (K*D), W (K), J (1), all double.
struct Stats {
  std::size_t K = 0, D = 0;
  double* S = nullptr;  // K x D
  double* W = nullptr;  // K
  double* J = nullptr;  // 1
};

// Centres prepared once per iteration: row-major copy and -||c||^2/2.
template <class T> struct Prepared {
  std::size_t K = 0, D = 0;
  const T* C = nullptr;      // K x D, shifted coordinates
  std::vector<T> neg_half_norm;  // -||c_k||^2 / 2
  explicit Prepared(const T* c, std::size_t k, std::size_t d) : K(k), D(d), C(c), neg_half_norm(k) {
    for (std::size_t j = 0; j < K; ++j) {
      T s = 0;
      for (std::size_t f = 0; f < D; ++f) s += c[j * D + f] * c[j * D + f];
      neg_half_norm[j] = T(-0.5) * s;
    }
  }
};

// The assignment micro-kernel's register tile: kRowVecs row vectors (rows of
// the transposed block) x kCentreBlock centres = 12 accumulators, plus 3 row
// loads and 1 broadcast: the 16 AVX2/SSE registers. Per feature it issues
// 12 FMAs for 7 loads (the earlier 4 x 2 tile: 8 FMAs for 6 loads, and only
// 8 independent chains for the FMA latency); measured on Zen 3 under load
// (process CPU time, 1 thread, 2e5 x 16, K = 16): a float64 pass 8.0-9.1 ms
// -> 6.2-6.6 ms. 4 x 3 measured the same as 3 x 4; 2 x 6 and 1 x 8 no better.
inline constexpr int kRowVecs = 3;
inline constexpr int kCentreBlock = 4;
template <class T> inline constexpr std::size_t kStrip = kRowVecs * static_cast<std::size_t>(simd::lanes<T>);

namespace detail {

// Sum of the lanes in simd::hsum's fixed order (lane i += lane i ^ w for
// w = L/2, ..., 1), written with whole-register shuffles for every width:
// simd::hsum's generic branch (16 float lanes: AVX-512 and the emulated
// 64-byte layout) builds each shuffle lane by lane through the stack, about
// 250 instructions per call, once per row in the update sweep, which is what
// made float32 k-means slower than float64 on AVX-512.
template <int W, class V, std::size_t... I> MAXLIK_INLINE V xor_swap(V v, std::index_sequence<I...>) {
  return __builtin_shufflevector(v, v, (int(I) ^ W)...);
}
template <class T, int W = simd::lanes<T> / 2> MAXLIK_INLINE T lane_sum(simd::vec<T> v) {
  if constexpr (W >= 1) {
    v += xor_swap<W>(v, std::make_index_sequence<simd::lanes<T>>{});
    return lane_sum<T, W / 2>(v);
  } else {
    return v[0];
  }
}

// xt[f * ld + i] = row(i)[f] * scale - shift[f] for i in [0, n): whole L x L
// tiles in registers (L stores instead of L*L scalar ones), the edges scalar.
// row(i) is the i-th row to copy: consecutive rows, or the rows of a list.
template <class T, class Row>
inline void transpose_shift(Row row, std::size_t n, std::size_t D, T scale, const T* shift, T* xt,
                            std::size_t ld) {
  using V = simd::vec<T>;
  constexpr std::size_t L = static_cast<std::size_t>(simd::lanes<T>);
  const std::size_t nt = n / L * L, dt = D / L * L;
  const V sc = simd::set1<T>(scale);
  for (std::size_t f = 0; f < dt; f += L) {
    const V sh = simd::load<T>(shift + f);
    for (std::size_t i = 0; i < nt; i += L) {
      V r[L];
      for (std::size_t j = 0; j < L; ++j) r[j] = simd::load<T>(row(i + j) + f) * sc - sh;
      simd::transpose_tile<T>(r);
      for (std::size_t j = 0; j < L; ++j) simd::store<T>(xt + (f + j) * ld + i, r[j]);
    }
  }
  const std::size_t i0 = nt, f0 = dt;
  // Edges: rows [i0, n) for the tiled features, and every row for features >= f0.
  for (std::size_t i = i0; i < n; ++i)
    for (std::size_t f = 0; f < f0; ++f) xt[f * ld + i] = row(i)[f] * scale - shift[f];
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t f = f0; f < D; ++f) xt[f * ld + i] = row(i)[f] * scale - shift[f];
}
}  // namespace detail

// Scratch for one block: the shifted, transposed block (D x ld). ld covers the
// block rounded up to whole strips (the micro-kernel reads whole strips) plus
// one strip, so that consecutive feature rows are not 4 KiB apart: a
// power-of-two leading dimension maps all D rows onto the same cache sets and
// made the transpose 5x slower.
template <class T> struct Scratch {
  std::size_t ld = 0;
  std::vector<T> xt;
  // With bounds: the rows to score, their best and second-best scores.
  std::vector<std::uint32_t> rows;
  std::vector<T> best, second;
  std::vector<double> dist2;  // every row's direct squared distance to its centre
  std::vector<std::int32_t> old_label;  // the scored rows' labels before scoring (delta sums)
  std::size_t rows_for = 0, d_for = 0;
  bool bounds_for = false;
  // reserve() unless the scratch already fits (block_rows, D, bounds).
  void ensure(std::size_t block_rows, std::size_t D, bool bounds) {
    if (rows_for == block_rows && d_for == D && (bounds_for || !bounds)) return;
    reserve(block_rows, D, bounds);
    rows_for = block_rows;
    d_for = D;
    bounds_for = bounds;
  }
  void reserve(std::size_t block_rows, std::size_t D, bool bounds = false) {
    ld = (block_rows + kStrip<T> - 1) / kStrip<T> * kStrip<T> + kStrip<T>;
    xt.assign(ld * D, T(0));
    if (bounds) {
      rows.assign(block_rows, 0);
      best.assign(block_rows, T(0));
      second.assign(block_rows, T(0));
      dist2.assign(block_rows, 0.0);
      old_label.assign(block_rows, 0);
    }
  }
};

namespace detail {

// One group of KC consecutive centres [k, k + KC) against one strip of RV row
// vectors of the transposed block: a register tile of RV x KC accumulators
// (KC broadcasts and RV loads feed RV * KC FMAs per feature), then the running
// argmax updated centre by centre in increasing k (strict >, so ties keep the
// lowest index). Every accumulator starts at -||c||^2/2 and adds x_f c_f for
// f = 0, 1, ... in that order, whatever RV and KC are, so the scores and hence
// the labels do not depend on the blocking.
// With kSecond, second[j] also tracks the second-largest score of each lane
// (a tie with the best gives second == best).
template <class T, int RV, int KC, bool kSecond>
MAXLIK_INLINE void score_group(const T* xs, std::size_t ld, std::size_t D, const T* C, const T* nh,
                               std::size_t k, simd::vec<T>* best, simd::ivec<T>* idx, simd::vec<T>* second) {
  using V = simd::vec<T>;
  using IV = simd::ivec<T>;
  using I = typename std::remove_reference<decltype(std::declval<IV>()[0])>::type;
  constexpr int L = simd::lanes<T>;
  V acc[KC][RV];
  const T* c[KC];
  for (int q = 0; q < KC; ++q) {
    const V h = simd::set1<T>(nh[k + q]);
    for (int j = 0; j < RV; ++j) acc[q][j] = h;
    c[q] = C + (k + q) * D;
  }
  for (std::size_t f = 0; f < D; ++f) {
    const T* xr = xs + f * ld;
    V xv[RV];
    for (int j = 0; j < RV; ++j) xv[j] = simd::load<T>(xr + j * L);
    for (int q = 0; q < KC; ++q) {
      const V b = simd::set1<T>(c[q][f]);
      for (int j = 0; j < RV; ++j) acc[q][j] = xv[j] * b + acc[q][j];
    }
  }
  for (int q = 0; q < KC; ++q) {
    const IV kq = IV{} + I(k + static_cast<std::size_t>(q));
    for (int j = 0; j < RV; ++j) {
      const IV m = acc[q][j] > best[j];
      if constexpr (kSecond) second[j] = m ? best[j] : simd::max<T>(second[j], acc[q][j]);
      best[j] = m ? acc[q][j] : best[j];
      idx[j] = m ? kq : idx[j];
    }
  }
}

// The last r < KC centres (r >= 1), still in increasing k: one tile of width r.
template <class T, int RV, int KC, bool kSecond>
MAXLIK_INLINE void score_tail(std::size_t r, const T* xs, std::size_t ld, std::size_t D, const T* C,
                              const T* nh, std::size_t k, simd::vec<T>* best, simd::ivec<T>* idx,
                              simd::vec<T>* second) {
  if constexpr (KC >= 1) {
    if (r == static_cast<std::size_t>(KC)) {
      score_group<T, RV, KC, kSecond>(xs, ld, D, C, nh, k, best, idx, second);
    } else {
      score_tail<T, RV, KC - 1, kSecond>(r, xs, ld, D, C, nh, k, best, idx, second);
    }
  }
}

// Scores the n rows row(0..n) (already transposed into scratch.xt) and writes
// label(i) = argmax; with kSecond also best(i) and second(i).
template <class T, bool kSecond, class Put>
inline void score_rows(std::size_t n, const Prepared<T>& P, Scratch<T>& scratch, Put put) {
  using V = simd::vec<T>;
  using IV = simd::ivec<T>;
  using I = typename std::remove_reference<decltype(std::declval<IV>()[0])>::type;
  constexpr int L = simd::lanes<T>;
  constexpr std::size_t S = kStrip<T>;
  const std::size_t D = P.D, K = P.K, ld = scratch.ld;
  const T* C = P.C;
  const T* nh = P.neg_half_norm.data();
  constexpr int KC = kCentreBlock;
  for (std::size_t s0 = 0; s0 < n; s0 += S) {
    V best[kRowVecs], second[kRowVecs];
    IV idx[kRowVecs];
    for (int j = 0; j < kRowVecs; ++j) {
      best[j] = second[j] = simd::set1<T>(-std::numeric_limits<T>::infinity());
      idx[j] = IV{} + I(0);
    }
    const T* xs = scratch.xt.data() + s0;
    std::size_t k = 0;
    for (; k + KC <= K; k += KC)
      score_group<T, kRowVecs, KC, kSecond>(xs, ld, D, C, nh, k, best, idx, second);
    if (k < K) score_tail<T, kRowVecs, KC - 1, kSecond>(K - k, xs, ld, D, C, nh, k, best, idx, second);
    const std::size_t m = std::min(S, n - s0);
    for (std::size_t i = 0; i < m; ++i)
      put(s0 + i, static_cast<std::int32_t>(idx[i / L][i % L]), best[i / L][i % L], second[i / L][i % L]);
  }
}

// The n rows row(0..n) into scratch.xt, shifted and transposed, padded with
// zero rows to whole strips (the padding's labels are discarded).
template <class T, class Row>
inline void stage_rows(Row row, std::size_t n, std::size_t D, T scale, const T* shift, Scratch<T>& scratch) {
  constexpr std::size_t S = kStrip<T>;
  const std::size_t ld = scratch.ld, n_pad = (n + S - 1) / S * S;
  T* xt = scratch.xt.data();
  transpose_shift<T>(row, n, D, scale, shift, xt, ld);
  for (std::size_t f = 0; f < D; ++f)
    for (std::size_t i = n; i < n_pad; ++i) xt[f * ld + i] = T(0);
}
}  // namespace detail

// E-step for rows [0, n) of a block starting at `x` (row-major, D columns):
// writes labels[0..n). The block must fit in `scratch` (n <= scratch.ld).
template <class T>
inline void assign_block(const T* x, std::size_t n, T scale, const T* shift, const Prepared<T>& P,
                         Scratch<T>& scratch, std::int32_t* labels) {
  const std::size_t D = P.D;
  detail::stage_rows<T>([x, D](std::size_t i) { return x + i * D; }, n, D, scale, shift, scratch);
  detail::score_rows<T, false>(n, P, scratch, [labels](std::size_t i, std::int32_t k, T, T) { labels[i] = k; });
}

// As assign_block for the m rows listed in scratch.rows (positions in the
// block), also keeping each listed row's best and second-best score in
// scratch.best / scratch.second at its position.
template <class T>
inline void assign_listed(const T* x, std::size_t m, T scale, const T* shift, const Prepared<T>& P,
                          Scratch<T>& scratch, std::int32_t* labels) {
  const std::size_t D = P.D;
  const std::uint32_t* rows = scratch.rows.data();
  detail::stage_rows<T>([x, D, rows](std::size_t i) { return x + std::size_t(rows[i]) * D; }, m, D, scale,
                        shift, scratch);
  T* best = scratch.best.data();
  T* second = scratch.second.data();
  detail::score_rows<T, true>(m, P, scratch, [=](std::size_t i, std::int32_t k, T b, T s2) {
    const std::uint32_t r = rows[i];
    labels[r] = k;
    best[r] = b;
    second[r] = s2;
  });
}

// Per-pass bound parameters (see the top): how far the centres moved since
// the bounds were set (null on the first pass: every row is scored), the two
// largest moves, the largest centre norm and the rounding factor g.
struct Drift {
  const double* moved = nullptr;
  double top1 = 0, top2 = 0;
  std::size_t arg1 = 0;
  double cmax = 0, g = 0;
};
inline constexpr double kUp = 1.0 + 1e-12, kDown = 1.0 - 1e-12;
inline constexpr std::size_t kNoLabel = ~std::size_t(0);

template <class T> Drift make_drift(const Prepared<T>& P, const double* moved) {
  Drift d;
  d.moved = moved;
  for (std::size_t k = 0; k < P.K; ++k) {
    double c2 = 0;
    for (std::size_t f = 0; f < P.D; ++f) c2 += double(P.C[k * P.D + f]) * double(P.C[k * P.D + f]);
    d.cmax = std::max(d.cmax, std::sqrt(c2));
    if (moved) {
      const double v = moved[k];
      if (v > d.top1 || k == 0) {
        d.top2 = k == 0 ? 0.0 : d.top1;
        d.top1 = v;
        d.arg1 = k;
      } else if (v > d.top2) {
        d.top2 = v;
      }
    }
  }
  d.cmax *= kUp;
  d.top1 *= kUp;
  d.top2 *= kUp;
  d.g = double(P.D + 4) * double(std::numeric_limits<T>::epsilon());
  return d;
}

// One block of a Lloyd iteration: labels, and (if st.S) the update statistics
// added into `st`; the inertia J is always accumulated.
// With bounds (upper, lower: the rows' bounds, offset to this block; drift:
// see make_drift) only the rows the bounds cannot settle are scored, and the
// bounds are refreshed for the new labels. want_inertia == false (bounds
// only) leaves J at NaN and skips the distance of every row not scored.
template <class T>
inline void lloyd_block(const T* x, const T* w, std::size_t n, T scale, const T* shift,
                        const Prepared<T>& P, Scratch<T>& scratch, std::int32_t* labels,
                        const Stats& st, double* upper = nullptr, double* lower = nullptr,
                        const Drift* drift = nullptr, bool want_inertia = true, bool delta = false) {
  std::size_t n_listed = 0;
  const std::uint32_t* listed = nullptr;
  if (upper == nullptr) {
    assign_block(x, n, scale, shift, P, scratch, labels);
  } else {
    std::uint32_t* rows = scratch.rows.data();
    std::size_t i = 0;
    if (drift->moved != nullptr) {
      // The skip test, lanes<double> rows at a time (a scalar test per row cost
      // about as much as the update sweep of a skipped row).
      using VD = simd::vec<double>;
      constexpr std::size_t LD = static_cast<std::size_t>(simd::lanes<double>);
      const VD up = simd::set1(kUp), down = simd::set1(kDown), zero{};
      const VD e0 = simd::set1(2 * drift->g * drift->cmax * kUp), c2 = simd::set1(2 * drift->cmax);
      for (; i + LD <= n; i += LD) {
        VD du, dl;
        unsigned bad = 0;
        for (std::size_t j = 0; j < LD; ++j) {
          const auto a = static_cast<std::size_t>(labels[i + j]);
          const bool ok = a < P.K;  // not a label of this pass: score the row
          bad |= unsigned(!ok) << j;
          du[j] = ok ? drift->moved[a] : 0.0;
          dl[j] = a == drift->arg1 ? drift->top2 : drift->top1;
        }
        const VD u = (simd::load(upper + i) + du * up) * up;
        const VD l = simd::max<double>(zero, simd::load(lower + i) - dl) * down;
        const VD E = e0 * (u + c2);
        const auto keep = (l > u) & ((l - u) * (l + u) * simd::set1(0.5 * kDown) > E);
        simd::store(upper + i, u);
        simd::store(lower + i, l);
        unsigned score = ~simd::movemask<double>(keep) & ((1u << LD) - 1u);
        score |= bad;
        while (score) {
          rows[n_listed++] = static_cast<std::uint32_t>(i + unsigned(__builtin_ctz(score)));
          score &= score - 1;
        }
      }
    }
    for (; i < n; ++i) rows[n_listed++] = static_cast<std::uint32_t>(i);  // tail (or first pass): score
    if (delta)
      for (std::size_t q = 0; q < n_listed; ++q) scratch.old_label[q] = labels[rows[q]];
    assign_listed(x, n_listed, scale, shift, P, scratch, labels);
    listed = rows;
  }
  using V = simd::vec<T>;
  constexpr std::size_t L = static_cast<std::size_t>(simd::lanes<T>);
  const V sc = simd::set1<T>(scale);
  const std::size_t D = P.D;
  const std::size_t Dv = D / L * L;
  // One sweep over row i: for the M-step S_k += w x (and W_k += w) and, with
  // kD2, its squared distance to its centre (direct form, fixed-order vector sum).
  // (Captures by value: by reference, every row reloaded them from the stack,
  // since the stores into S may alias.)
  double* const S = st.S;
  double* const Wk = st.W;
  const T* const C = P.C;
  // k: the centre (the row's label unless given); add == false: distance only.
  auto sweep = [=](auto d2_tag, std::size_t i, double wi, std::size_t k = kNoLabel, bool add = true) -> T {
    constexpr bool kD2 = decltype(d2_tag)::value;
    if (k == kNoLabel) k = static_cast<std::size_t>(labels[i]);
    const T* xi = x + i * D;
    const T* c = C + k * D;
    V acc{};
    double* s = (S && add) ? S + k * D : nullptr;
    std::size_t f = 0;
    for (; f < Dv; f += L) {
      const V xs = simd::load<T>(xi + f) * sc - simd::load<T>(shift + f);
      if constexpr (kD2) {
        const V d = xs - simd::load<T>(c + f);
        acc = d * d + acc;
      }
      if (s) {
        if constexpr (std::is_same_v<T, double>) {
          simd::store<double>(s + f, wi * xs + simd::load<double>(s + f));
        } else {
          // Widen the two halves to double vectors (exact) and accumulate.
          constexpr std::size_t H = L / 2;
          simd::store<double>(s + f, wi * simd::widen_half<0>(xs) + simd::load<double>(s + f));
          simd::store<double>(s + f + H, wi * simd::widen_half<1>(xs) + simd::load<double>(s + f + H));
        }
      }
    }
    if (f < D) {
      const int r = static_cast<int>(D - f);
      const V xs = simd::load_partial<T>(xi + f, r, T(0)) * sc - simd::load_partial<T>(shift + f, r, T(0));
      if constexpr (kD2) {
        const V d = xs - simd::load_partial<T>(c + f, r, T(0));
        acc = d * d + acc;
      }
      if (s)
        for (int l = 0; l < r; ++l) s[f + l] += wi * static_cast<double>(xs[l]);
    }
    if (s) Wk[k] += wi;
    if constexpr (kD2) return detail::lane_sum<T>(acc);
    return T(0);
  };
  const std::true_type with_d2;
  const std::false_type without_d2;
  double* dist2 = scratch.dist2.data();
  // Every row's distance is needed for the inertia, or without bounds (then
  // always: the plain pass returns the inertia); otherwise only the scored
  // rows' (their new bounds), and a skipped row keeps its loosened bounds.
  const bool all_d2 = upper == nullptr || want_inertia;
  if (all_d2) {
    double J = 0;
    for (std::size_t i = 0; i < n; ++i) {
      const double wi = w ? static_cast<double>(w[i]) : 1.0;
      const T d2 = sweep(with_d2, i, wi);
      J += wi * static_cast<double>(d2);
      if (upper != nullptr) dist2[i] = static_cast<double>(d2);
    }
    *st.J += J;
  } else if (delta) {
    // Only the rows whose label changed move sums: -w x from the old label's,
    // +w x into the new one's (st.S / st.W receive these differences); every
    // scored row gets its distance for its new bounds.
    for (std::size_t q = 0; q < n_listed; ++q) {
      const std::size_t i = listed[q];
      const double wi = w ? static_cast<double>(w[i]) : 1.0;
      const auto was = static_cast<std::size_t>(scratch.old_label[q]);
      const auto now = static_cast<std::size_t>(labels[i]);
      if (S != nullptr && was != now && was < P.K) {
        sweep(without_d2, i, -wi, was);
        dist2[i] = static_cast<double>(sweep(with_d2, i, wi, now));
      } else {  // unchanged label: the distance only (no sums move)
        dist2[i] = static_cast<double>(sweep(with_d2, i, wi, now, false));
      }
    }
    *st.J = std::numeric_limits<double>::quiet_NaN();  // not computed
  } else {
    if (S != nullptr || n_listed > 0) {
      std::size_t q = 0;  // position in the (increasing) list of scored rows
      for (std::size_t i = 0; i < n; ++i) {
        const double wi = w ? static_cast<double>(w[i]) : 1.0;
        if (q < n_listed && listed[q] == i) {
          ++q;
          dist2[i] = static_cast<double>(sweep(with_d2, i, wi));
        } else {
          sweep(without_d2, i, wi);
        }
      }
    }
    *st.J = std::numeric_limits<double>::quiet_NaN();  // not computed
  }
  if (upper == nullptr) return;
  // The bounds from the direct squared distances: a vectorised square root
  // per row for u (a scalar one per row cost more than the rest of a skipped
  // row), and l for the scored rows.
  const double g = drift->g, cmax = drift->cmax;
  if (all_d2) {
    for (std::size_t i = 0; i < n; ++i) upper[i] = std::sqrt(dist2[i] * (1 + g)) * kUp;
  }
  for (std::size_t q = 0; q < n_listed; ++q) {
    const std::size_t i = listed[q];
    const double d2 = dist2[i];
    const double ub = all_d2 ? upper[i] : std::sqrt(d2 * (1 + g)) * kUp;
    upper[i] = ub;
    const double E = 2 * g * cmax * (ub + 2 * cmax) * kUp;
    const double gap = double(scratch.best[i]) - double(scratch.second[i]);  // +inf for K = 1
    const double l2 = d2 * (1 - g) * kDown + 2 * gap * kDown - 2 * E;
    lower[i] = l2 > 0 ? std::sqrt(l2) * kDown : 0.0;
  }
}

// Rows per assignment/update sweep inside a block (a whole number of strips).
// 4 float64 strips: 48 rows on AVX2 (6 KiB of rows + their transposed copy).
// The sub-block size changes neither the row order nor the task slots.
inline constexpr std::size_t kSubBlock = 4 * kStrip<double>;

// Rows per task: a multiple of kRowBlock chosen from N, K, D only (never the
// thread count), so that all task statistics together stay below ~32 MB.
inline std::size_t rows_per_task(std::size_t N, std::size_t K, std::size_t D) {
  const std::size_t nb = std::max<std::size_t>(1, n_blocks(N));
  const std::size_t stat_bytes = (K * D + K + 1) * sizeof(double);
  const std::size_t budget = std::size_t(32) << 20;
  const std::size_t max_tasks = std::max<std::size_t>(1, budget / stat_bytes);
  const std::size_t per = (nb + max_tasks - 1) / max_tasks;
  return std::max<std::size_t>(1, per) * kRowBlock;
}

// One full Lloyd pass over X (parallel over tasks of fixed row ranges).
// Outputs labels (N), and if S/W are non-null the merged statistics
// S (K x D), W (K); returns the inertia J with respect to C.
// With `upper` and `lower` (N each) the pass keeps Hamerly bounds: `moved`
// (K) says how far each centre moved since the bounds were written, with
// `labels` the labels of that pass; moved == nullptr (re)starts them. With
// bounds and want_inertia == false the returned inertia is NaN (the rows the
// bounds settle are not measured: the update sweep then only sums them).
// With delta (bounds, moved given, want_inertia false) S and W receive only
// the changes since that pass: -w x from the old label and +w x into the new
// one for each row whose label changed; the rows the bounds settle are not
// read at all. The caller adds them to its sums of that pass.
template <class T>
inline double lloyd_pass(const T* X, const T* w, std::size_t N, std::size_t D, const T* shift, const T* C,
                         std::size_t K, std::int32_t* labels, double* S, double* W, T scale = T(1),
                         double* upper = nullptr, double* lower = nullptr, const double* moved = nullptr,
                         bool want_inertia = true, bool delta = false) {
  const Prepared<T> P(C, K, D);
  const bool bounded = upper != nullptr && lower != nullptr;
  const Drift drift = make_drift(P, bounded ? moved : nullptr);
  delta = delta && bounded && moved != nullptr && !want_inertia;
  const bool update = S != nullptr;
  const std::size_t rpt = rows_per_task(N, K, D);
  const std::size_t n_tasks = n_blocks(N, rpt);
  const std::size_t slot = update ? K * D + K + 1 : 1;
  std::vector<double> slots(n_tasks * slot, 0.0);
  parallel_for(n_tasks, [&](std::size_t t) {
    // One scratch per thread, kept between tasks and passes (allocating and
    // zeroing it per 512-row task cost ~0.3 ms of a pass whose rows the bounds
    // settle); every entry a sub-block reads is written by it first.
    thread_local Scratch<T> scratch;
    scratch.ensure(kSubBlock, D, bounded);
    double* base = slots.data() + t * slot;
    Stats st;
    st.K = K;
    st.D = D;
    if (update) {
      st.S = base;
      st.W = base + K * D;
      st.J = base + K * D + K;
    } else {
      st.J = base;
    }
    const std::size_t r_end = std::min(N, (t + 1) * rpt);
    for (std::size_t r0 = t * rpt; r0 < r_end; r0 += kRowBlock) {
      const std::size_t r1 = std::min(r_end, r0 + kRowBlock);
      // Sub-blocks small enough that the rows, their transposed copy and the
      // statistics stay in L1 between the assignment and the update sweep.
      // Same row order as one sweep over the block; the task slot is unchanged.
      for (std::size_t q0 = r0; q0 < r1; q0 += kSubBlock) {
        const std::size_t q1 = std::min(r1, q0 + kSubBlock);
        lloyd_block(X + q0 * D, w ? w + q0 : nullptr, q1 - q0, scale, shift, P, scratch, labels + q0,
                    st, bounded ? upper + q0 : nullptr, bounded ? lower + q0 : nullptr, &drift,
                    want_inertia || !bounded, delta);
      }
    }
  });
  // Merge in task order: bit-identical for any thread count.
  double J = 0;
  if (update) {
    std::fill(S, S + K * D, 0.0);
    std::fill(W, W + K, 0.0);
  }
  for (std::size_t t = 0; t < n_tasks; ++t) {
    const double* base = slots.data() + t * slot;
    if (update) {
      for (std::size_t i = 0; i < K * D; ++i) S[i] += base[i];
      for (std::size_t k = 0; k < K; ++k) W[k] += base[K * D + k];
      J += base[K * D + K];
    } else {
      J += base[0];
    }
  }
  return J;
}

// Squared distances (direct form) of every scaled, shifted row to M points:
// out is N x M. Used by k-means++ seeding and transform().
template <class T>
inline void sq_distances(const T* X, std::size_t N, std::size_t D, const T* shift, const T* C, std::size_t M,
                         T* out, T scale = T(1)) {
  parallel_for_blocks(N, kRowBlock, [&](std::size_t, std::size_t r0, std::size_t r1) {
    std::vector<T> xs(D);
    for (std::size_t i = r0; i < r1; ++i) {
      const T* xi = X + i * D;
      for (std::size_t f = 0; f < D; ++f) xs[f] = xi[f] * scale - shift[f];
      for (std::size_t m = 0; m < M; ++m) {
        const T* c = C + m * D;
        T s = 0;
        for (std::size_t f = 0; f < D; ++f) {
          const T d = xs[f] - c[f];
          s += d * d;
        }
        out[i * M + m] = s;
      }
    }
  });
}

}  // namespace kmeans
}  // namespace maxlik
