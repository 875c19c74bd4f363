// log-sum-exp, softmax and log-softmax over one axis of a strided 3-D view.
//
// The input is viewed as (nb, no, L): nb batches × no outputs per batch × a
// reduced axis of length L, with element strides (sb, so, si). Two layouts
// have fast paths:
//   rows     si == 1  (reduce along the contiguous axis)
//   columns  so == 1  (reduce across rows: axis=0 of C-ordered data)
// Anything else is made contiguous by the caller.
//
// One pass over memory: each slice is processed in cache-sized chunks; a chunk
// is read for its max and re-read from L1 for the exponentials, and chunks are
// merged with online max rescaling.
//
// Accumulator (scipy >= 1.15 semantics, and the accuracy of log1p):
//   sum_i b_i e^{a_i} = e^m (W + S),   m = max a_i over unmasked elements,
//   W = sum of b_i with a_i == m,      S = sum of b_i e^{a_i - m} with a_i < m.
// The result is m + log|W| + log1p(S/W): the dominant term never enters a sum
// with 1, so log-sum-exp of [0, -40] keeps its 4e-18.
// Weights b_i == 0 mask their element entirely (even if a_i is inf or NaN).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

#include "maxlik/parallel.hpp"
#include "maxlik/simd.hpp"

namespace maxlik {
namespace lse {

// Merged state; true sum = e^m (W + S). Kept in double for every T so that
// long reductions in float32 do not lose accuracy across chunks.
struct Acc {
  double m = -std::numeric_limits<double>::infinity();
  double W = 0.0;
  double S = 0.0;
};

inline void merge(Acc& x, const Acc& y) {
  if (y.m > x.m) {
    const double s = simd::exp1<double>(x.m - y.m);
    x.S = y.S + (x.W + x.S) * s;
    x.W = y.W;
    x.m = y.m;
  } else if (y.m < x.m) {
    x.S += (y.W + y.S) * simd::exp1<double>(y.m - x.m);
  } else {  // equal maxima (also both -inf / +inf), or a NaN (S is NaN then)
    if (x.m == std::numeric_limits<double>::infinity() && ((x.W > 0 && y.W < 0) || (x.W < 0 && y.W > 0)))
      x.W = std::numeric_limits<double>::quiet_NaN();  // +inf - inf
    x.W += y.W;
    x.S += y.S;
    if (y.m != y.m) x.m = y.m;
  }
}

inline constexpr std::size_t kChunk = 1024;       // elements per chunk (8 KB in double)
inline constexpr std::size_t kChunksPerRange = 64;  // chunks merged per range (fixed)

// Running maxima of the whole vectors of x[0, nv) (nv a multiple of the lanes),
// in two accumulators; the caller folds in its tail and reduces.
template <class T>
MAXLIK_INLINE void max_of_vectors(const T* x, std::size_t nv, simd::vec<T>& vm0, simd::vec<T>& vm1) {
  constexpr int Ln = simd::lanes<T>;
  std::size_t i = 0;
  for (; i + 2 * Ln <= nv; i += 2 * Ln) {
    vm0 = simd::max<T>(vm0, simd::load<T>(x + i));
    vm1 = simd::max<T>(vm1, simd::load<T>(x + i + Ln));
  }
  if (i < nv) vm0 = simd::max<T>(vm0, simd::load<T>(x + i));
}

// ---- one contiguous chunk --------------------------------------------------------
// Unweighted: the hot path. Padding lanes hold -inf: they add e^{-inf} = 0 to
// S and never equal a finite max (for an all -inf chunk W is irrelevant).
template <class T>
MAXLIK_INLINE void chunk_core_unweighted(const T* x, std::size_t n, T& m_out, T& S_out, T& W_out) {
  using V = simd::vec<T>;
  constexpr int Ln = simd::lanes<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const V vninf = simd::set1<T>(ninf);
  const V zero{};
  const V one = simd::set1<T>(T(1));
  const std::size_t nv = n / Ln * Ln;
  const int tail = static_cast<int>(n - nv);
  V vm0 = vninf, vm1 = vninf;
  max_of_vectors<T>(x, nv, vm0, vm1);
  const V xt = tail ? simd::load_partial<T>(x + nv, tail, ninf) : vninf;
  vm1 = simd::max<T>(vm1, xt);
  const T m = simd::hmax<T>(simd::max<T>(vm0, vm1));
  const V vm = simd::set1<T>(m);
  V s0 = zero, s1 = zero, w0 = zero, w1 = zero;
  auto step = [&](V xv, V& s, V& w) {
    const auto eq = xv == vm;
    const V e = simd::exp_nonpositive<T>(xv - vm);
    s += eq ? zero : e;
    w += eq ? one : zero;
  };
  std::size_t i = 0;
  for (; i + 2 * Ln <= nv; i += 2 * Ln) {
    step(simd::load<T>(x + i), s0, w0);
    step(simd::load<T>(x + i + Ln), s1, w1);
  }
  if (i < nv) step(simd::load<T>(x + i), s0, w0);
  if (tail) step(xt, s1, w1);
  m_out = m;
  S_out = simd::hsum<T>(s0 + s1);
  W_out = simd::hsum<T>(w0 + w1);
}

template <class T>
MAXLIK_INLINE Acc chunk_state_unweighted(const T* x, std::size_t n) {
  T m, S, W;
  chunk_core_unweighted<T>(x, n, m, S, W);
  Acc a;
  a.m = static_cast<double>(m);
  a.S = static_cast<double>(S);
  a.W = static_cast<double>(W);
  return a;
}

template <class T>
inline Acc chunk_state(const T* x, const T* b, std::ptrdiff_t bsi, std::size_t n) {
  if (!b) return chunk_state_unweighted<T>(x, n);
  using V = simd::vec<T>;
  constexpr int Ln = simd::lanes<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const V vninf = simd::set1<T>(ninf);
  const V zero{};
  const std::size_t nv = n / Ln * Ln;
  const int tail = static_cast<int>(n - nv);

  auto load_x = [&](std::size_t i, int cnt) -> V {
    V v = cnt == Ln ? simd::load<T>(x + i) : simd::load_partial<T>(x + i, cnt, ninf);
    if (b) {
      V w = bsi == 1 ? (cnt == Ln ? simd::load<T>(b + i) : simd::load_partial<T>(b + i, cnt, T(0)))
                     : simd::load_partial<T>(b, 0, T(0));
      if (bsi != 1)
        for (int k = 0; k < cnt; ++k) w[k] = b[static_cast<std::ptrdiff_t>(i + k) * bsi];
      v = w == zero ? vninf : v;
    }
    return v;
  };
  auto load_b = [&](std::size_t i, int cnt) -> V {
    if (bsi == 1) return cnt == Ln ? simd::load<T>(b + i) : simd::load_partial<T>(b + i, cnt, T(0));
    V w = zero;
    for (int k = 0; k < cnt; ++k) w[k] = b[static_cast<std::ptrdiff_t>(i + k) * bsi];
    return w;
  };

  // pass 1: max
  V vm0 = vninf, vm1 = vninf;
  std::size_t i = 0;
  for (; i + 2 * Ln <= nv; i += 2 * Ln) {
    vm0 = simd::max<T>(vm0, load_x(i, Ln));
    vm1 = simd::max<T>(vm1, load_x(i + Ln, Ln));
  }
  for (; i < nv; i += Ln) vm0 = simd::max<T>(vm0, load_x(i, Ln));
  if (tail) vm1 = simd::max<T>(vm1, load_x(nv, tail));
  const T m = simd::hmax<T>(simd::max<T>(vm0, vm1));
  const V vm = simd::set1<T>(m);

  // pass 2 (from L1): S = sum of e^{x-m} below the max, W = weight at the max
  V s0 = zero, s1 = zero, w0 = zero, w1 = zero;
  const V one = simd::set1<T>(T(1));
  auto step = [&](std::size_t j, int cnt, V& s, V& w) {
    const V xv = load_x(j, cnt);
    const auto eq = xv == vm;
    const V e = simd::exp_nonpositive<T>(xv - vm);
    if (b) {
      const V bv = load_b(j, cnt);
      s += eq ? zero : bv * e;
      w += eq ? bv : zero;
    } else {
      s += eq ? zero : e;
      w += eq ? one : zero;
    }
  };
  i = 0;
  for (; i + 2 * Ln <= nv; i += 2 * Ln) {
    step(i, Ln, s0, w0);
    step(i + Ln, Ln, s1, w1);
  }
  for (; i < nv; i += Ln) step(i, Ln, s0, w0);
  if (tail) {
    // padded lanes hold -inf (x) and 0 (b): they must not count at the max
    const V xv = load_x(nv, tail);
    V e = simd::exp_nonpositive<T>(xv - vm);
    V bv = b ? load_b(nv, tail) : one;
    auto eq = xv == vm;
    for (int k = tail; k < Ln; ++k) {
      eq[k] = 0;
      e[k] = 0;
      bv[k] = 0;
    }
    s1 += eq ? zero : bv * e;
    w1 += eq ? bv : zero;
  }
  Acc a;
  a.m = static_cast<double>(m);
  a.S = static_cast<double>(simd::hsum<T>(s0 + s1));
  a.W = static_cast<double>(simd::hsum<T>(w0 + w1));
  if (b && m == std::numeric_limits<T>::infinity()) {
    // +inf terms with weights of both signs: inf - inf is NaN (rare path)
    bool pos = false, neg = false;
    for (std::size_t k = 0; k < n; ++k) {
      const T bk = b[static_cast<std::ptrdiff_t>(k) * bsi];
      if (x[k] == m) {
        pos |= bk > 0;
        neg |= bk < 0;
      }
    }
    if (pos && neg) a.W = std::numeric_limits<double>::quiet_NaN();
  }
  return a;
}

// State of a contiguous slice [x, x+n) made of whole ranges starting at chunk c0.
template <class T>
inline Acc range_state(const T* x, const T* b, std::ptrdiff_t bsi, std::size_t n, std::size_t range) {
  const std::size_t r0 = range * kChunk * kChunksPerRange;
  const std::size_t r1 = std::min(n, r0 + kChunk * kChunksPerRange);
  if (r1 - r0 <= kChunk) return chunk_state<T>(x + r0, b ? b + static_cast<std::ptrdiff_t>(r0) * bsi : nullptr, bsi, r1 - r0);
  Acc acc;
  for (std::size_t c = r0; c < r1; c += kChunk) {
    const std::size_t len = std::min(kChunk, r1 - c);
    merge(acc, chunk_state<T>(x + c, b ? b + static_cast<std::ptrdiff_t>(c) * bsi : nullptr, bsi, len));
  }
  return acc;
}

inline std::size_t n_ranges(std::size_t L) {
  return std::max<std::size_t>(1, (L + kChunk * kChunksPerRange - 1) / (kChunk * kChunksPerRange));
}

// ---- finalisation ------------------------------------------------------------------
// out = log|sum|, sign = sign(sum); without return_sign a negative sum gives NaN.
template <class T>
inline void finalize(const Acc& a, T* out, T* sign, bool return_sign) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  double o, sg;
  if (a.m != a.m || a.S != a.S || a.W != a.W) {
    o = nan;
    sg = nan;
  } else if (a.m == -inf) {  // every term is zero (all -inf or all masked)
    o = -inf;
    sg = 0.0;
  } else if (a.m == inf) {
    if (a.W == 0.0) {  // +inf - inf
      o = nan;
      sg = nan;
    } else {
      o = inf;
      sg = a.W > 0 ? 1.0 : -1.0;
    }
  } else if (a.W != 0.0) {
    double r = a.S / a.W;
    const double s1 = (1.0 + r) > 0 ? 1.0 : ((1.0 + r) < 0 ? -1.0 : 0.0);
    sg = s1 * (a.W > 0 ? 1.0 : -1.0);
    if (r < -1.0) r = -r - 2.0;
    const double lw = a.W == 1.0 ? 0.0 : std::log(std::fabs(a.W));
    o = (simd::log1p1<double>(r) + lw) + a.m;
  } else {  // the weights at the max cancelled exactly: the sum is e^m S
    sg = a.S > 0 ? 1.0 : (a.S < 0 ? -1.0 : 0.0);
    o = a.S == 0.0 ? -inf : a.m + std::log(std::fabs(a.S));
  }
  if (!return_sign && sg < 0) o = nan;
  *out = static_cast<T>(o);
  if (sign) *sign = static_cast<T>(sg);
}

// Vectorised finalisation of n states without weights (W >= 1 counts, S >= 0):
// the hot path of row reductions with many short rows.
template <class T>
inline void finalize_block(const Acc* acc, std::size_t n, T* out, T* sign, bool return_sign) {
  using VD = simd::vec<double>;
  constexpr int Ld = simd::lanes<double>;
  std::size_t i = 0;
  for (; i + Ld <= n; i += Ld) {
    VD m, S;
    bool simple = true;
    for (int k = 0; k < Ld; ++k) {
      const Acc& a = acc[i + k];
      m[k] = a.m;
      S[k] = a.S;
      simple &= std::isfinite(a.m) && a.W == 1.0 && a.S >= 0.0 && a.S <= 1e300;
    }
    if (!simple) {
      for (int k = 0; k < Ld; ++k) finalize<T>(acc[i + k], out + i + k, sign ? sign + i + k : nullptr, return_sign);
      continue;
    }
    const VD o = simd::log1p<double>(S) + m;
    for (int k = 0; k < Ld; ++k) {
      out[i + k] = static_cast<T>(o[k]);
      if (sign) sign[i + k] = T(1);
    }
  }
  for (; i < n; ++i) finalize<T>(acc[i], out + i, sign ? sign + i : nullptr, return_sign);
}

// Unweighted short rows, finalised in T: W >= 1 is the count at the max and
// S >= 0, so out = m + log(W) + log1p(S/W) needs no sign logic; rows with a
// non-finite max or a NaN go through the scalar path.
// One vector of unweighted states (lane = output): returns false, writing
// nothing, when a lane needs the scalar path (non-finite max, NaN sum).
template <class T>
MAXLIK_INLINE bool finalize_vec(simd::vec<T> vm, simd::vec<T> vs, simd::vec<T> vw, T* out, T* sign) {
  using V = simd::vec<T>;
  const V big = simd::set1<T>(std::numeric_limits<T>::max());
  const V one = simd::set1<T>(T(1));
  const auto bad = (simd::abs<T>(vm) > big) | (vm != vm) | (vs != vs);
  if (simd::any<T>(bad)) return false;
  const bool all_one = !simd::any<T>(vw != one);
  const V o = all_one ? simd::log1p<T>(vs) + vm : (simd::log1p<T>(vs / vw) + simd::log<T>(vw)) + vm;
  simd::store<T>(out, o);
  if (sign) simd::store<T>(sign, one);
  return true;
}

template <class T>
inline void finalize_small(const T* m, const T* S, const T* W, std::size_t n, T* out, T* sign,
                           bool return_sign) {
  constexpr int Ln = simd::lanes<T>;
  std::size_t i = 0;
  auto scalar = [&](std::size_t k) {
    Acc a;
    a.m = m[k];
    a.S = S[k];
    a.W = W[k];
    finalize<T>(a, out + k, sign ? sign + k : nullptr, return_sign);
  };
  for (; i + Ln <= n; i += Ln) {
    if (!finalize_vec<T>(simd::load<T>(m + i), simd::load<T>(S + i), simd::load<T>(W + i), out + i,
                         sign ? sign + i : nullptr))
      for (int l = 0; l < Ln; ++l) scalar(i + l);
  }
  for (; i < n; ++i) scalar(i);
}

// Many short unweighted rows (L <= kLanesRowsMax): lanes<T> rows at a time,
// transposed in registers so that lane i holds row i. Max, sums and the final
// log1p then run across rows, with no per-row horizontal reductions.
inline constexpr std::size_t kLanesRowsMax = 32;

template <class T>
MAXLIK_INLINE void rows_in_lanes(const T* const* rows, std::size_t L, T* out, T* sign, bool return_sign) {
  using V = simd::vec<T>;
  constexpr int Ln = simd::lanes<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  V cols[kLanesRowsMax + Ln];
  const std::size_t nt = (L + Ln - 1) / Ln;
  for (std::size_t t = 0; t < nt; ++t) {
    const std::size_t c0 = t * Ln;
    const int cnt = static_cast<int>(std::min<std::size_t>(Ln, L - c0));
    V r[Ln];
    for (int i = 0; i < Ln; ++i)
      r[i] = cnt == Ln ? simd::load<T>(rows[i] + c0) : simd::load_partial<T>(rows[i] + c0, cnt, ninf);
    simd::transpose_tile<T>(r);
    for (int j = 0; j < Ln; ++j) cols[c0 + j] = r[j];
  }
  V vm = cols[0];
  for (std::size_t j = 1; j < L; ++j) vm = simd::max<T>(vm, cols[j]);
  const V zero{};
  const V one = simd::set1<T>(T(1));
  V s0 = zero, s1 = zero, w = zero;
  std::size_t j = 0;
  for (; j + 2 <= L; j += 2) {
    const auto eq0 = cols[j] == vm, eq1 = cols[j + 1] == vm;
    const V e0 = simd::exp_nonpositive<T>(cols[j] - vm), e1 = simd::exp_nonpositive<T>(cols[j + 1] - vm);
    s0 += eq0 ? zero : e0;
    s1 += eq1 ? zero : e1;
    w += (eq0 ? one : zero) + (eq1 ? one : zero);
  }
  if (j < L) {
    const auto eq0 = cols[j] == vm;
    s0 += eq0 ? zero : simd::exp_nonpositive<T>(cols[j] - vm);
    w += eq0 ? one : zero;
  }
  const V S = s0 + s1;
  if (finalize_vec<T>(vm, S, w, out, sign)) return;
  T ms[Ln], Ss[Ln], Ws[Ln];
  simd::store<T>(ms, vm);
  simd::store<T>(Ss, S);
  simd::store<T>(Ws, w);
  finalize_small<T>(ms, Ss, Ws, Ln, out, sign, return_sign);
}

// rows_in_lanes for L = NT * lanes<T> (a compile-time length: the loops unroll
// and the columns stay in registers; the count at the max is an integer
// subtraction of the compare mask). Same sums in the same order as
// rows_in_lanes, so the same bits.
template <class T, int NT>
MAXLIK_INLINE void rows_in_lanes_fixed(const T* const* rows, T* out, T* sign, bool return_sign) {
  using V = simd::vec<T>;
  using VI = simd::ivec<T>;
  constexpr int Ln = simd::lanes<T>;
  constexpr int L = NT * Ln;
  V cols[L];
  for (int t = 0; t < NT; ++t) {
    V r[Ln];
    for (int i = 0; i < Ln; ++i) r[i] = simd::load<T>(rows[i] + t * Ln);
    simd::transpose_tile<T>(r);
    for (int j = 0; j < Ln; ++j) cols[t * Ln + j] = r[j];
  }
  V vm = cols[0];
  for (int j = 1; j < L; ++j) vm = simd::max<T>(vm, cols[j]);
  const V zero{};
  V s0 = zero, s1 = zero;
  VI w0{}, w1{}, slow{};
#pragma GCC unroll 16
  for (int j = 0; j < L; j += 2) {
    const VI eq0 = cols[j] == vm, eq1 = cols[j + 1] == vm;
    const V e0 = simd::exp_unchecked<T>(cols[j] - vm, slow), e1 = simd::exp_unchecked<T>(cols[j + 1] - vm, slow);
    s0 += eq0 ? zero : e0;
    s1 += eq1 ? zero : e1;
    w0 -= eq0;  // true lanes are -1
    w1 -= eq1;
  }
  // A term below e^-708 of the max, -inf or NaN somewhere: the general kernel
  // (exp_nonpositive's flush to zero, NaN propagation) for these rows.
  if (__builtin_expect(simd::any<T>(slow), 0)) return rows_in_lanes<T>(rows, L, out, sign, return_sign);
  const V S = s0 + s1;
  const V w = simd::small_int_to_float<T>(w0 + w1);  // counts of maxima, at most L
  if (finalize_vec<T>(vm, S, w, out, sign)) return;
  T ms[Ln], Ss[Ln], Ws[Ln];
  simd::store<T>(ms, vm);
  simd::store<T>(Ss, S);
  simd::store<T>(Ws, w);
  finalize_small<T>(ms, Ss, Ws, Ln, out, sign, return_sign);
}

// rows_in_lanes, through the fixed-length version for L = 1..4 whole vectors.
template <class T>
MAXLIK_INLINE void rows_in_lanes_any(const T* const* rows, std::size_t L, T* out, T* sign, bool return_sign) {
  constexpr std::size_t Ln = static_cast<std::size_t>(simd::lanes<T>);
  if (L % Ln == 0) {
    switch (L / Ln) {
      case 1: return rows_in_lanes_fixed<T, 1>(rows, out, sign, return_sign);
      case 2: return rows_in_lanes_fixed<T, 2>(rows, out, sign, return_sign);
      case 3: return rows_in_lanes_fixed<T, 3>(rows, out, sign, return_sign);
      case 4: return rows_in_lanes_fixed<T, 4>(rows, out, sign, return_sign);
      default: break;
    }
  }
  rows_in_lanes<T>(rows, L, out, sign, return_sign);
}

// ---- row layout (si == 1) ------------------------------------------------------------
template <class T>
struct View {
  const T* p;
  std::size_t nb, no, L;
  std::ptrdiff_t sb, so, si;
  // element offset of output k = (batch, o) in (b, o) order
  std::ptrdiff_t off(std::size_t k) const {
    if (nb == 1) return static_cast<std::ptrdiff_t>(k) * so;  // no integer division on the hot path
    return static_cast<std::ptrdiff_t>(k / no) * sb + static_cast<std::ptrdiff_t>(k % no) * so;
  }
};

// States of every output of a row-layout view, in output order (b..., o...).
// Parallel over fixed blocks of outputs; rows longer than one range are split
// into ranges merged in range order, so the arithmetic never depends on the
// thread count.
template <class T>
void row_states(const View<T>& a, const T* b, std::ptrdiff_t bsb, std::ptrdiff_t bso, std::ptrdiff_t bsi,
                Acc* states) {
  const std::size_t n_out = a.nb * a.no;
  const std::size_t nr = n_ranges(a.L);
  auto row_ptr = [&](std::size_t k) { return a.p + a.off(k); };
  auto brow_ptr = [&](std::size_t k) -> const T* {
    return b ? b + static_cast<std::ptrdiff_t>(k / a.no) * bsb + static_cast<std::ptrdiff_t>(k % a.no) * bso : nullptr;
  };
  if (nr == 1) {
    parallel_for_blocks(n_out, kRowBlock, [&](std::size_t, std::size_t r0, std::size_t r1) {
      for (std::size_t k = r0; k < r1; ++k) states[k] = range_state<T>(row_ptr(k), brow_ptr(k), bsi, a.L, 0);
    });
    return;
  }
  std::vector<Acc> parts(n_out * nr);
  parallel_for(n_out * nr, [&](std::size_t t) {
    const std::size_t k = t / nr, r = t % nr;
    parts[t] = range_state<T>(row_ptr(k), brow_ptr(k), bsi, a.L, r);
  });
  for (std::size_t k = 0; k < n_out; ++k) {
    Acc acc = parts[k * nr];
    for (std::size_t r = 1; r < nr; ++r) merge(acc, parts[k * nr + r]);
    states[k] = acc;
  }
}

// ---- column layout (so == 1) -----------------------------------------------------------
inline constexpr std::size_t kColWidth = 256;  // columns per task
inline constexpr std::size_t kColRows = 64;    // rows per inner block (max then exp from cache)

// Fold rows [r0, r1) of columns [c0, c0+w) into double states st[0..w).
template <class T>
void column_block(const T* base, std::ptrdiff_t si, const T* b, std::ptrdiff_t bsi, std::size_t w,
                  std::size_t r0, std::size_t r1, Acc* st) {
  using V = simd::vec<T>;
  constexpr int Ln = simd::lanes<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const V vninf = simd::set1<T>(ninf);
  const V zero{};
  const V one = simd::set1<T>(T(1));
  const std::size_t nvec = (w + Ln - 1) / Ln;
  V vmax[kColWidth / 4], vs[kColWidth / 4], vw[kColWidth / 4];  // w <= kColWidth, Ln >= 4
  auto ld = [&](const T* p, std::size_t j, T fill) -> V {
    const std::size_t c = j * Ln;
    return c + Ln <= w ? simd::load<T>(p + c) : simd::load_partial<T>(p + c, static_cast<int>(w - c), fill);
  };
  for (std::size_t rb = r0; rb < r1; rb += kColRows) {
    const std::size_t re = std::min(r1, rb + kColRows);
    // Column-vector outer, rows inner: max and sums stay in registers; the
    // block (<= kColRows rows x kColWidth columns) is re-read from L1/L2.
    for (std::size_t j = 0; j < nvec; ++j) {
      const std::size_t c = j * Ln;
      const bool full = c + Ln <= w;
      V vm = vninf, s = zero, wsum = zero;
      if (!b && full) {
        const T* p = base + static_cast<std::ptrdiff_t>(rb) * si + static_cast<std::ptrdiff_t>(c);
        const T* q = p;
        for (std::size_t r = rb; r < re; ++r, q += si) vm = simd::max<T>(vm, simd::load<T>(q));
        q = p;
        for (std::size_t r = rb; r < re; ++r, q += si) {
          const V x = simd::load<T>(q);
          const auto eq = x == vm;
          const V e = simd::exp_nonpositive<T>(x - vm);
          s += eq ? zero : e;
          wsum += eq ? one : zero;
        }
      } else {
        for (std::size_t r = rb; r < re; ++r) {
          const T* row = base + static_cast<std::ptrdiff_t>(r) * si;
          V x = ld(row, j, ninf);
          if (b) x = ld(b + static_cast<std::ptrdiff_t>(r) * bsi, j, T(0)) == zero ? vninf : x;
          vm = simd::max<T>(vm, x);
        }
        for (std::size_t r = rb; r < re; ++r) {
          const T* row = base + static_cast<std::ptrdiff_t>(r) * si;
          V x = ld(row, j, ninf);
          V bv = one;
          if (b) {
            bv = ld(b + static_cast<std::ptrdiff_t>(r) * bsi, j, T(0));
            x = bv == zero ? vninf : x;
          }
          const auto eq = x == vm;
          const V e = simd::exp_nonpositive<T>(x - vm);
          s += eq ? zero : bv * e;
          wsum += eq ? bv : zero;
        }
      }
      vmax[j] = vm;
      vs[j] = s;
      vw[j] = wsum;
    }
    for (std::size_t c = 0; c < w; ++c) {
      Acc blk;
      blk.m = static_cast<double>(vmax[c / Ln][c % Ln]);
      blk.S = static_cast<double>(vs[c / Ln][c % Ln]);
      blk.W = static_cast<double>(vw[c / Ln][c % Ln]);
      if (b && blk.m == std::numeric_limits<double>::infinity()) {
        // +inf terms with weights of both signs: inf - inf is NaN (rare path)
        bool pos = false, neg = false;
        for (std::size_t r = rb; r < re; ++r) {
          const std::ptrdiff_t ri = static_cast<std::ptrdiff_t>(r);
          const T bb = b[ri * bsi + static_cast<std::ptrdiff_t>(c)];
          if (bb != T(0) && base[ri * si + static_cast<std::ptrdiff_t>(c)] == -ninf) {
            pos |= bb > 0;
            neg |= bb < 0;
          }
        }
        if (pos && neg) blk.W = std::numeric_limits<double>::quiet_NaN();
      }
      if (rb == r0) st[c] = blk;
      else merge(st[c], blk);
    }
  }
}

// Calls on_done(k0, states, n) for consecutive runs of outputs k0..k0+n-1,
// so callers can finalise without a global N-sized state array.
template <class T, class OnDone>
void column_states(const View<T>& a, const T* b, std::ptrdiff_t bsb, std::ptrdiff_t bsi, OnDone&& on_done) {
  // a.so == 1 (and b's output stride is 1): outputs are adjacent columns.
  const std::size_t ncr = (a.no + kColWidth - 1) / kColWidth;
  // Row super-blocks give parallelism when there are few columns; their size
  // depends on the shape only, and super-blocks merge in order.
  std::size_t sb_rows = 4096;
  const std::size_t max_slots = std::size_t(1) << 21;
  while ((a.L + sb_rows - 1) / sb_rows * a.no * a.nb > max_slots && sb_rows < a.L) sb_rows *= 2;
  const std::size_t nsb = std::max<std::size_t>(1, (a.L + sb_rows - 1) / sb_rows);
  const std::size_t n_out = a.nb * a.no;
  std::vector<Acc> slots(nsb > 1 ? nsb * n_out : 0);
  const std::size_t n_tasks = a.nb * ncr * nsb;
  parallel_for(n_tasks, [&](std::size_t t) {
    const std::size_t s = t % nsb;
    const std::size_t cr = (t / nsb) % ncr;
    const std::size_t bi = t / (nsb * ncr);
    const std::size_t c0 = cr * kColWidth;
    const std::size_t w = std::min(kColWidth, a.no - c0);
    const std::size_t r0 = s * sb_rows, r1 = std::min(a.L, r0 + sb_rows);
    const T* base = a.p + static_cast<std::ptrdiff_t>(bi) * a.sb + static_cast<std::ptrdiff_t>(c0);
    const T* bb = b ? b + static_cast<std::ptrdiff_t>(bi) * bsb + static_cast<std::ptrdiff_t>(c0) : nullptr;
    const std::size_t k0 = bi * a.no + c0;
    if (nsb == 1) {
      Acc loc[kColWidth];
      column_block<T>(base, a.si, bb, bsi, w, r0, r1, loc);
      on_done(k0, static_cast<const Acc*>(loc), w);
    } else {
      column_block<T>(base, a.si, bb, bsi, w, r0, r1, slots.data() + s * n_out + k0);
    }
  });
  if (nsb > 1) {
    parallel_for_blocks(n_out, kColWidth, [&](std::size_t, std::size_t k0, std::size_t k1) {
      Acc loc[kColWidth];
      for (std::size_t k = k0; k < k1; ++k) {
        Acc acc = slots[k];
        for (std::size_t s = 1; s < nsb; ++s) merge(acc, slots[s * n_out + k]);
        loc[k - k0] = acc;
      }
      on_done(k0, static_cast<const Acc*>(loc), k1 - k0);
    });
  }
}

// ---- public kernels --------------------------------------------------------------------
template <class T>
void states(const View<T>& a, const T* b, std::ptrdiff_t bsb, std::ptrdiff_t bso, std::ptrdiff_t bsi,
            Acc* st) {
  if (a.L == 0) {
    for (std::size_t k = 0; k < a.nb * a.no; ++k) st[k] = Acc{};
    return;
  }
  if (a.si == 1 && (!b || bsi == 1 || bsi == 0)) {
    row_states<T>(a, b, bsb, bso, bsi, st);
  } else {
    column_states<T>(a, b, bsb, bsi, [st](std::size_t k0, const Acc* loc, std::size_t n) {
      std::copy(loc, loc + n, st + k0);
    });
  }
}

// out[k] (and sign[k]) for every output k in (b, o) order.
template <class T>
void logsumexp(const View<T>& a, const T* b, std::ptrdiff_t bsb, std::ptrdiff_t bso, std::ptrdiff_t bsi,
               T* out, T* sign, bool return_sign) {
  const std::size_t n_out = a.nb * a.no;
  if (a.L > 0 && a.si == 1 && (!b || bsi == 1 || bsi == 0) && n_ranges(a.L) == 1) {
    // Short rows: states live only per block, finalised in place.
    parallel_for_blocks(n_out, kRowBlock, [&](std::size_t, std::size_t r0, std::size_t r1) {
      if (b) {
        for (std::size_t k = r0; k < r1; ++k) {
          const T* bp = b + static_cast<std::ptrdiff_t>(k / a.no) * bsb + static_cast<std::ptrdiff_t>(k % a.no) * bso;
          finalize<T>(chunk_state<T>(a.p + a.off(k), bp, bsi, a.L), out + k, sign ? sign + k : nullptr, return_sign);
        }
        return;
      }
      std::size_t k = r0;
      if (a.L <= kLanesRowsMax) {
        constexpr int Ln = simd::lanes<T>;
        const T* rows[Ln];
        for (; k + Ln <= r1; k += Ln) {
          for (int i = 0; i < Ln; ++i) rows[i] = a.p + a.off(k + i);
          rows_in_lanes_any<T>(rows, a.L, out + k, sign ? sign + k : nullptr, return_sign);
        }
      }
      T ms[kRowBlock], Ss[kRowBlock], Ws[kRowBlock];
      for (std::size_t q = k; q < r1; ++q)
        chunk_core_unweighted<T>(a.p + a.off(q), a.L, ms[q - k], Ss[q - k], Ws[q - k]);
      finalize_small<T>(ms, Ss, Ws, r1 - k, out + k, sign ? sign + k : nullptr, return_sign);
    });
    return;
  }
  auto fin = [&](std::size_t k0, const Acc* loc, std::size_t n) {
    if (b) {
      for (std::size_t k = 0; k < n; ++k)
        finalize<T>(loc[k], out + k0 + k, sign ? sign + k0 + k : nullptr, return_sign);
    } else {
      finalize_block<T>(loc, n, out + k0, sign ? sign + k0 : nullptr, return_sign);
    }
  };
  if (a.L > 0 && !b && a.si != 1 && a.L <= kColRows) {
    // Few rows, many columns, unweighted (e.g. axis=0 of a (16, 1e6) array):
    // each column vector is reduced in registers and finalised as a vector.
    using V = simd::vec<T>;
    constexpr std::size_t Ln = static_cast<std::size_t>(simd::lanes<T>);
    const std::size_t ncr = (a.no + kColWidth - 1) / kColWidth;
    parallel_for(a.nb * ncr, [&](std::size_t t) {
      const std::size_t bi = t / ncr, c0 = (t % ncr) * kColWidth;
      const std::size_t w = std::min(kColWidth, a.no - c0);
      const T* base = a.p + static_cast<std::ptrdiff_t>(bi) * a.sb + static_cast<std::ptrdiff_t>(c0);
      const std::size_t k0 = bi * a.no + c0;
      const V zero{};
      const V one = simd::set1<T>(T(1));
      std::size_t c = 0;
      for (; c + Ln <= w; c += Ln) {
        const T* p = base + static_cast<std::ptrdiff_t>(c);
        V vm = simd::load<T>(p);
        for (std::size_t r = 1; r < a.L; ++r) vm = simd::max<T>(vm, simd::load<T>(p + static_cast<std::ptrdiff_t>(r) * a.si));
        V s0 = zero, wsum = zero;
        for (std::size_t r = 0; r < a.L; ++r) {
          const V x = simd::load<T>(p + static_cast<std::ptrdiff_t>(r) * a.si);
          const auto eq = x == vm;
          s0 += eq ? zero : simd::exp_nonpositive<T>(x - vm);
          wsum += eq ? one : zero;
        }
        if (!finalize_vec<T>(vm, s0, wsum, out + k0 + c, sign ? sign + k0 + c : nullptr)) {
          for (std::size_t l = 0; l < Ln; ++l) {
            Acc acc;
            acc.m = vm[l];
            acc.S = s0[l];
            acc.W = wsum[l];
            finalize<T>(acc, out + k0 + c + l, sign ? sign + k0 + c + l : nullptr, return_sign);
          }
        }
      }
      if (c < w) {  // ragged edge: the generic block kernel on the last columns
        Acc loc[simd::lanes<T>];
        column_block<T>(base + c, a.si, nullptr, 0, w - c, 0, a.L, loc);
        for (std::size_t l = 0; l < w - c; ++l)
          finalize<T>(loc[l], out + k0 + c + l, sign ? sign + k0 + c + l : nullptr, return_sign);
      }
    });
    return;
  }
  if (a.L > 0 && !(a.si == 1 && (!b || bsi == 1 || bsi == 0))) {
    column_states<T>(a, b, bsb, bsi, fin);  // finalised per column range
    return;
  }
  std::vector<Acc> st(n_out);
  states<T>(a, b, bsb, bso, bsi, st.data());
  parallel_for_blocks(n_out, kRowBlock * 8, [&](std::size_t, std::size_t r0, std::size_t r1) {
    if (b) {
      for (std::size_t k = r0; k < r1; ++k) finalize<T>(st[k], out + k, sign ? sign + k : nullptr, return_sign);
    } else {
      finalize_block<T>(st.data() + r0, r1 - r0, out + r0, sign ? sign + r0 : nullptr, return_sign);
    }
  });
}

// A row whose max is not finite or that holds a NaN, as scipy does it:
// softmax is NaN throughout; log_softmax replaces a non-finite max by 0 and
// returns x - log(sum(exp(x))).
template <class T>
inline void softmax_special_row(const T* x, std::ptrdiff_t xs, std::size_t L, T* y, std::ptrdiff_t ys,
                                bool log_) {
  if (!log_) {
    for (std::size_t i = 0; i < L; ++i) y[static_cast<std::ptrdiff_t>(i) * ys] = std::numeric_limits<T>::quiet_NaN();
    return;
  }
  double s = 0;
  for (std::size_t i = 0; i < L; ++i) s += std::exp(static_cast<double>(x[static_cast<std::ptrdiff_t>(i) * xs]));
  const T ls = static_cast<T>(std::log(s));
  for (std::size_t i = 0; i < L; ++i) y[static_cast<std::ptrdiff_t>(i) * ys] = x[static_cast<std::ptrdiff_t>(i) * xs] - ls;
}

// Rows up to this many bytes are done by softmax_row: the row stays in L1/L2
// between its passes, so memory sees one read of x and one write of y.
inline constexpr std::size_t kFusedRowBytes = 64 * 1024;

// One contiguous row: max, then e = exp(x - m) written to y (softmax) while
// S (terms below the max) and W (count at the max) are summed as in
// chunk_state (per-chunk vector sums in T, merged in double), then y scaled by
// 1 / (W + S) (or, for log_softmax, y = (x - m) - log(W + S)) — the same
// values the two-pass path computes, with one exp per element and x read
// from memory once.
template <class T>
inline void softmax_row(const T* x, std::size_t L, T* y, bool log_) {
  using V = simd::vec<T>;
  constexpr int Ln = simd::lanes<T>;
  constexpr T ninf = -std::numeric_limits<T>::infinity();
  const std::size_t nv = L / Ln * Ln;
  const int tail = static_cast<int>(L - nv);
  V vm0 = simd::set1<T>(ninf), vm1 = vm0;
  max_of_vectors<T>(x, nv, vm0, vm1);
  const V xt = tail ? simd::load_partial<T>(x + nv, tail, ninf) : vm0;
  const T m = simd::hmax<T>(simd::max<T>(simd::max<T>(vm0, vm1), xt));
  if (!std::isfinite(m)) return softmax_special_row<T>(x, 1, L, y, 1, log_);
  const V vm = simd::set1<T>(m);
  const V zero{};
  const V one = simd::set1<T>(T(1));
  double S = 0, W = 0;
  auto step = [&](std::size_t j, V& s, V& w) {
    const V xv = simd::load<T>(x + j);
    const auto eq = xv == vm;
    const V e = simd::exp<T>(xv - vm);
    if (!log_) simd::store<T>(y + j, e);
    s += eq ? zero : e;
    w += eq ? one : zero;
  };
  for (std::size_t c0 = 0; c0 < nv; c0 += kChunk) {
    const std::size_t c1 = std::min(nv, c0 + kChunk);
    V s0 = zero, s1 = zero, w0 = zero, w1 = zero;
    std::size_t j = c0;
    for (; j + 2 * Ln <= c1; j += 2 * Ln) {
      step(j, s0, w0);
      step(j + Ln, s1, w1);
    }
    if (j < c1) step(j, s0, w0);
    S += static_cast<double>(simd::hsum<T>(s0 + s1));
    W += static_cast<double>(simd::hsum<T>(w0 + w1));
  }
  if (tail) {  // padding lanes hold -inf: e = 0, never equal to the finite max
    const auto eq = xt == vm;
    const V e = simd::exp<T>(xt - vm);
    if (!log_) simd::store_partial<T>(y + nv, e, tail);
    S += static_cast<double>(simd::hsum<T>(eq ? zero : e));
    W += static_cast<double>(simd::hsum<T>(eq ? one : zero));
  }
  if (S != S) return softmax_special_row<T>(x, 1, L, y, 1, log_);  // a NaN in the row
  if (!log_) {
    const V sc = simd::set1<T>(static_cast<T>(1.0 / (W + S)));
    for (std::size_t i = 0; i < nv; i += Ln) simd::store<T>(y + i, simd::load<T>(y + i) * sc);
    if (tail) simd::store_partial<T>(y + nv, simd::load_partial<T>(y + nv, tail, T(0)) * sc, tail);
  } else {
    const V lt = simd::set1<T>(static_cast<T>(std::log(W) + simd::log1p1<double>(S / W)));
    for (std::size_t i = 0; i < nv; i += Ln) simd::store<T>(y + i, (simd::load<T>(x + i) - vm) - lt);
    if (tail) simd::store_partial<T>(y + nv, (xt - vm) - lt, tail);
  }
}

// softmax (log_ == false) or log_softmax (log_ == true), written into `o`, a
// view with the same shape as `a` (its own strides).
template <class T>
void softmax(const View<T>& a, const View<T>& o_view, T* o, bool log_) {
  const std::size_t n_out = a.nb * a.no;
  if (a.L > 0 && a.si == 1 && o_view.si == 1 && a.L * sizeof(T) <= kFusedRowBytes) {
    // Blocks of about 64K elements (rows are independent: any partition gives
    // the same bits).
    const std::size_t rows = std::max<std::size_t>(1, 65536 / a.L);
    parallel_for_blocks(n_out, rows, [&](std::size_t, std::size_t r0, std::size_t r1) {
      for (std::size_t k = r0; k < r1; ++k) softmax_row<T>(a.p + a.off(k), a.L, o + o_view.off(k), log_);
    });
    return;
  }
  std::vector<Acc> st(n_out);
  states<T>(a, nullptr, 0, 0, 0, st.data());
  // Per output: shift and scale so that y = exp(x - m) / T  or  (x - m) - log T.
  std::vector<T> shift(n_out), scale(n_out);
  std::vector<unsigned char> special(n_out);
  for (std::size_t k = 0; k < n_out; ++k) {
    const Acc& s = st[k];
    const bool fin = std::isfinite(s.m) && std::isfinite(s.S) && std::isfinite(s.W);
    special[k] = !fin;
    shift[k] = static_cast<T>(fin ? s.m : 0.0);
    const double lt = fin ? std::log(s.W) + simd::log1p1<double>(s.S / s.W) : 0.0;
    scale[k] = static_cast<T>(log_ ? lt : 1.0 / (s.W + s.S));
  }
  auto emit_row = [&](std::size_t k) {
    const T* x = a.p + a.off(k);
    T* y = o + o_view.off(k);
    const T mk = shift[k];
    if (special[k]) return softmax_special_row<T>(x, a.si, a.L, y, o_view.si, log_);
    const T sc = scale[k];
    if (a.si == 1 && o_view.si == 1) {
      using V = simd::vec<T>;
      constexpr int Ln = simd::lanes<T>;
      const V vm = simd::set1<T>(mk), vsc = simd::set1<T>(sc);
      std::size_t i = 0;
      for (; i + Ln <= a.L; i += Ln) {
        const V d = simd::load<T>(x + i) - vm;
        simd::store<T>(y + i, log_ ? d - vsc : simd::exp<T>(d) * vsc);
      }
      if (i < a.L) {
        const int t = static_cast<int>(a.L - i);
        const V d = simd::load_partial<T>(x + i, t, T(0)) - vm;
        simd::store_partial<T>(y + i, log_ ? d - vsc : simd::exp<T>(d) * vsc, t);
      }
    } else {
      for (std::size_t i = 0; i < a.L; ++i) {
        const T d = x[static_cast<std::ptrdiff_t>(i) * a.si] - mk;
        y[static_cast<std::ptrdiff_t>(i) * o_view.si] = log_ ? d - sc : simd::exp1<T>(d) * sc;
      }
    }
  };
  if (a.si == 1 || a.so != 1 || o_view.so != 1) {
    parallel_for_blocks(n_out, kRowBlock, [&](std::size_t, std::size_t r0, std::size_t r1) {
      for (std::size_t k = r0; k < r1; ++k) emit_row(k);
    });
    return;
  }
  // Column layout: sweep rows, vectorised across adjacent outputs.
  parallel_for_blocks(a.L, 64, [&](std::size_t, std::size_t r0, std::size_t r1) {
    using V = simd::vec<T>;
    constexpr int Ln = simd::lanes<T>;
    for (std::size_t bi = 0; bi < a.nb; ++bi) {
      const std::size_t k0 = bi * a.no;
      for (std::size_t r = r0; r < r1; ++r) {
        const T* x = a.p + static_cast<std::ptrdiff_t>(bi) * a.sb + static_cast<std::ptrdiff_t>(r) * a.si;
        T* y = o + static_cast<std::ptrdiff_t>(bi) * o_view.sb + static_cast<std::ptrdiff_t>(r) * o_view.si;
        std::size_t c = 0;
        for (; c + Ln <= a.no; c += Ln) {
          bool sp = false;
          for (int l = 0; l < Ln; ++l) sp |= special[k0 + c + l] != 0;
          if (sp) {
            for (int l = 0; l < Ln; ++l) {
              const std::size_t k = k0 + c + l;
              if (special[k]) {
                if (!log_) y[c + l] = std::numeric_limits<T>::quiet_NaN();
                // log path for special columns is written by emit_row below
              } else {
                const T d = x[c + l] - shift[k];
                y[c + l] = log_ ? d - scale[k] : simd::exp1<T>(d) * scale[k];
              }
            }
            continue;
          }
          const V d = simd::load<T>(x + c) - simd::load<T>(shift.data() + k0 + c);
          const V sc = simd::load<T>(scale.data() + k0 + c);
          simd::store<T>(y + c, log_ ? d - sc : simd::exp<T>(d) * sc);
        }
        for (; c < a.no; ++c) {
          const std::size_t k = k0 + c;
          if (special[k]) {
            if (!log_) y[c] = std::numeric_limits<T>::quiet_NaN();
            continue;
          }
          const T d = x[c] - shift[k];
          y[c] = log_ ? d - scale[k] : simd::exp1<T>(d) * scale[k];
        }
      }
    }
  });
  if (log_) {
    for (std::size_t k = 0; k < n_out; ++k)
      if (special[k]) emit_row(k);
  }
}

}  // namespace lse
}  // namespace maxlik
