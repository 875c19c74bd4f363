// The one SIMD layer of maxlik: portable vectors (GCC/Clang vector
// extensions, lowered to SSE2 / AVX2 / AVX-512 by the compiler) and the
// project's own vectorised exp and log.
//
//   vec<T>      a SIMD register of lanes<T> values of T (float or double)
//   exp(v)      e^v, <= 1 ulp on the tested range; exp(-inf)=0, exp(+inf)=inf,
//               exp(nan)=nan, overflow -> inf, underflow -> 0/subnormal
//   log(v)      natural log; log(0)=-inf, log(x<0)=nan, log(inf)=inf, nan->nan
//   log1p(v)    log(1+v) accurate for small v
//
// No -ffast-math anywhere: the inf/NaN rules above are relied on by
// logsumexp and the losses.
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#define MAXLIK_INLINE inline __attribute__((always_inline))

namespace maxlik {
namespace simd {

#if defined(__AVX512F__)
inline constexpr int kVecBytes = 64;
#else
inline constexpr int kVecBytes = 32;  // AVX2; split into two SSE2 ops on baseline
#endif

typedef double vf64 __attribute__((vector_size(kVecBytes)));
typedef float vf32 __attribute__((vector_size(kVecBytes)));
typedef std::int64_t vi64 __attribute__((vector_size(kVecBytes)));
typedef std::int32_t vi32 __attribute__((vector_size(kVecBytes)));

template <class T> struct vec_traits;
template <> struct vec_traits<double> { using v = vf64; using vi = vi64; };
template <> struct vec_traits<float> { using v = vf32; using vi = vi32; };

template <class T> using vec = typename vec_traits<T>::v;
template <class T> using ivec = typename vec_traits<T>::vi;  // same-width integer lanes / masks
template <class T> inline constexpr int lanes = kVecBytes / static_cast<int>(sizeof(T));

// ---- load / store / broadcast -------------------------------------------------
template <class T> MAXLIK_INLINE vec<T> load(const T* p) {
  vec<T> v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}
template <class T> MAXLIK_INLINE void store(T* p, vec<T> v) { std::memcpy(p, &v, sizeof(v)); }
template <class T> MAXLIK_INLINE vec<T> set1(T x) {
  // A scalar operand broadcasts, and x - (+0) == x exactly for every x (also
  // -0, inf, NaN), so this is one vbroadcast. The lane-by-lane loop it replaces
  // compiled to narrow stack stores + a wide reload (a store-forwarding stall
  // per broadcast), halving the speed of FMA loops.
  return x - vec<T>{};
}
// Partial load: lanes >= n are filled with `fill`.
template <class T> MAXLIK_INLINE vec<T> load_partial(const T* p, int n, T fill) {
  vec<T> v = set1<T>(fill);
  for (int i = 0; i < n; ++i) v[i] = p[i];
  return v;
}
template <class T> MAXLIK_INLINE void store_partial(T* p, vec<T> v, int n) {
  for (int i = 0; i < n; ++i) p[i] = v[i];
}
// Strided gather (scalar loop; the compiler may use vgather).
template <class T> MAXLIK_INLINE vec<T> load_strided(const T* p, std::ptrdiff_t stride) {
  vec<T> v;
  for (int i = 0; i < lanes<T>; ++i) v[i] = p[i * stride];
  return v;
}

// ---- lane-wise helpers ----------------------------------------------------------
// Masks are integer vectors with all bits set (-1) in true lanes, 0 otherwise.
template <class T> MAXLIK_INLINE vec<T> select(ivec<T> mask, vec<T> a, vec<T> b) {
  return mask ? a : b;
}
template <class T> MAXLIK_INLINE ivec<T> as_int(vec<T> v) { return __builtin_bit_cast(ivec<T>, v); }
template <class T> MAXLIK_INLINE vec<T> as_float(ivec<T> v) { return __builtin_bit_cast(vec<T>, v); }
// max/min that ignore NaN in `b` (NaNs are propagated separately by exp/sum).
template <class T> MAXLIK_INLINE vec<T> max(vec<T> a, vec<T> b) { return a > b ? a : b; }
template <class T> MAXLIK_INLINE vec<T> min(vec<T> a, vec<T> b) { return a < b ? a : b; }
template <class T> MAXLIK_INLINE vec<T> abs(vec<T> a) { return a < vec<T>{} ? -a : a; }

// Horizontal reductions by halving (fixed order: reproducible results).
template <class T> MAXLIK_INLINE vec<T> swap_halves(vec<T> v, int w) {
  // lanes i and i^w exchanged, for w = lanes/2, lanes/4, ...
  vec<T> r;
  for (int i = 0; i < lanes<T>; ++i) r[i] = v[i ^ w];
  return r;
}
template <class T> MAXLIK_INLINE T hsum(vec<T> v) {
  if constexpr (lanes<T> == 4) {
    v += __builtin_shufflevector(v, v, 2, 3, 0, 1);
    v += __builtin_shufflevector(v, v, 1, 0, 3, 2);
    return v[0];
  } else if constexpr (lanes<T> == 8) {
    v += __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3);
    v += __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5);
    v += __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6);
    return v[0];
  } else {
    for (int w = lanes<T> / 2; w >= 1; w /= 2) v += swap_halves<T>(v, w);
    return v[0];
  }
}
template <class T> MAXLIK_INLINE T hmax(vec<T> v) {
  if constexpr (lanes<T> == 4) {
    v = max<T>(v, __builtin_shufflevector(v, v, 2, 3, 0, 1));
    v = max<T>(v, __builtin_shufflevector(v, v, 1, 0, 3, 2));
    return v[0];
  } else if constexpr (lanes<T> == 8) {
    v = max<T>(v, __builtin_shufflevector(v, v, 4, 5, 6, 7, 0, 1, 2, 3));
    v = max<T>(v, __builtin_shufflevector(v, v, 2, 3, 0, 1, 6, 7, 4, 5));
    v = max<T>(v, __builtin_shufflevector(v, v, 1, 0, 3, 2, 5, 4, 7, 6));
    return v[0];
  } else {
    for (int w = lanes<T> / 2; w >= 1; w /= 2) v = max<T>(v, swap_halves<T>(v, w));
    return v[0];
  }
}
template <class T> MAXLIK_INLINE bool any(ivec<T> mask) {
  for (int i = 0; i < lanes<T>; ++i)
    if (mask[i]) return true;
  return false;
}

// ---- exp ------------------------------------------------------------------------
// Range reduction x = k ln2 + r, |r| <= ln2/2 (Cody-Waite two-constant ln2),
// a polynomial for e^r (degree 11 double / 6 float, fit error below 0.05
// ulp), then scaling by 2^k done in two halves so that results in the
// subnormal range and k up to 1024 are exact without a branch.
namespace detail {
template <class T> struct exp_consts;
template <> struct exp_consts<double> {
  static constexpr double hi = 709.8;    // e^hi overflows -> the product gives inf
  static constexpr double lo = -746.0;   // e^lo underflows to 0
  static constexpr double log2e = 1.4426950408889634;
  static constexpr double ln2_hi = 6.93147180369123816490e-01;
  static constexpr double ln2_lo = 1.90821492927058770002e-10;
  static constexpr double magic = 6755399441055744.0;  // 1.5 * 2^52: round-to-int trick
  static constexpr int mant = 52;
  static constexpr int bias = 1023;
};
template <> struct exp_consts<float> {
  static constexpr float hi = 89.0f;
  static constexpr float lo = -104.0f;
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float magic = 12582912.0f;  // 1.5 * 2^23
  static constexpr int mant = 23;
  static constexpr int bias = 127;
};

MAXLIK_INLINE vf64 exp_poly(vf64 r) {
  // Degree-11 Chebyshev fit of e^r on [-ln2/2, ln2/2] (max rel. error 3.2e-18,
  // fitted with mpmath.chebyfit); c0 and c1 round to exactly 1, so exp(0) == 1.
  vf64 p = set1<double>(2.5110037605963777e-08);
  p = p * r + 2.763263963904103e-07;
  p = p * r + 2.755724091857897e-06;
  p = p * r + 2.4801485482328494e-05;
  p = p * r + 0.00019841269890047113;
  p = p * r + 0.0013888888952314775;
  p = p * r + 0.008333333333319601;
  p = p * r + 0.0416666666664881;
  p = p * r + 0.1666666666666668;
  p = p * r + 0.5000000000000019;
  p = p * r + 1.0;
  p = p * r + 1.0;
  return p;
}
MAXLIK_INLINE vf32 exp_poly(vf32 r) {
  // Degree-6 Chebyshev fit on [-ln2/2, ln2/2], max rel. error 2e-9.
  vf32 p = set1<float>(0.0013941108433972674f);
  p = p * r + 0.008375126398153335f;
  p = p * r + 0.04166635289677516f;
  p = p * r + 0.16666415514653277f;
  p = p * r + 0.5000000047117757f;
  p = p * r + 1.000000037716214f;
  p = p * r + 1.0f;
  return p;
}
}  // namespace detail

template <class T> MAXLIK_INLINE vec<T> exp(vec<T> x) {
  using C = detail::exp_consts<T>;
  using VI = ivec<T>;
  // Clamp; NaN compares false and passes through unchanged, then propagates.
  x = x > C::hi ? set1<T>(C::hi) : x;
  x = x < C::lo ? set1<T>(C::lo) : x;
  const vec<T> t = x * C::log2e + C::magic;
  const vec<T> k = t - C::magic;  // round(x / ln2) as a float
  vec<T> r = x - k * C::ln2_hi;
  r = r - k * C::ln2_lo;
  const vec<T> p = detail::exp_poly(r);
  VI ki = as_int<T>(t) - as_int<T>(set1<T>(C::magic));  // round(x / ln2) as an integer
  VI k1 = ki >> 1;
  VI k2 = ki - k1;
  const vec<T> s1 = as_float<T>((k1 + C::bias) << C::mant);
  const vec<T> s2 = as_float<T>((k2 + C::bias) << C::mant);
  vec<T> y = (p * s1) * s2;
  // Above `hi` the clamp made y finite-but-wrong; restore the overflow to +inf.
  // (x was clamped, so test against the clamp bound: equality means "was >= hi".)
  y = x >= C::hi ? set1<T>(std::numeric_limits<T>::infinity()) : y;
  return y;
}

// e^x for x <= 0 (or NaN), flushing results below the smallest normal number
// to zero. For sums of e^{x - max}: a term below 2^-1022 relative to the max
// cannot change a sum that already holds 1. Cheaper than exp(): one scaling
// step and no overflow handling.
template <class T> MAXLIK_INLINE vec<T> exp_nonpositive(vec<T> x) {
  using C = detail::exp_consts<T>;
  using VI = ivec<T>;
  constexpr T lo = sizeof(T) == 8 ? T(-708.39) : T(-87.33);
  // No clamp: lanes below `lo` (incl. -inf) compute garbage and are replaced by 0.
  const vec<T> xc = x;
  const vec<T> t = xc * C::log2e + C::magic;
  const vec<T> k = t - C::magic;
  vec<T> r = xc - k * C::ln2_hi;
  r = r - k * C::ln2_lo;
  const vec<T> p = detail::exp_poly(r);
  const VI ki = as_int<T>(t) - as_int<T>(set1<T>(C::magic));
  const vec<T> y = p * as_float<T>((ki + C::bias) << C::mant);
  return x < lo ? vec<T>{} : y;
}

// ---- log ------------------------------------------------------------------------
// x = 2^e f with f in [sqrt(1/2), sqrt(2)); log f = 2 atanh(s), s = (f-1)/(f+1),
// |s| <= 0.1716, series in s^2 (odd terms to s^23 in double, s^11 in float).
namespace detail {
MAXLIK_INLINE vf64 log_series(vf64 s2) {
  vf64 p = set1<double>(2.0 / 23);
  p = p * s2 + 2.0 / 21;
  p = p * s2 + 2.0 / 19;
  p = p * s2 + 2.0 / 17;
  p = p * s2 + 2.0 / 15;
  p = p * s2 + 2.0 / 13;
  p = p * s2 + 2.0 / 11;
  p = p * s2 + 2.0 / 9;
  p = p * s2 + 2.0 / 7;
  p = p * s2 + 2.0 / 5;
  p = p * s2 + 2.0 / 3;
  return p;
}
MAXLIK_INLINE vf32 log_series(vf32 s2) {
  vf32 p = set1<float>(2.0f / 11);
  p = p * s2 + 2.0f / 9;
  p = p * s2 + 2.0f / 7;
  p = p * s2 + 2.0f / 5;
  p = p * s2 + 2.0f / 3;
  return p;
}
}  // namespace detail

template <class T> MAXLIK_INLINE vec<T> log(vec<T> x) {
  using C = detail::exp_consts<T>;
  using VI = ivec<T>;
  constexpr T inf = std::numeric_limits<T>::infinity();
  const vec<T> zero{};
  // Subnormals: scale up by 2^mant first.
  const VI tiny = (x < std::numeric_limits<T>::min()) & (x > zero);
  const T up = static_cast<T>(std::uint64_t(1) << C::mant);
  vec<T> xs = tiny ? x * up : x;
  VI bits = as_int<T>(xs);
  using I = std::remove_reference_t<decltype(bits[0])>;
  constexpr I exp_mask = sizeof(T) == 8 ? 0x7ff : 0xff;
  constexpr I mant_mask = (I(1) << C::mant) - 1;
  VI e = ((bits >> C::mant) & exp_mask) - C::bias;
  e = tiny ? e - C::mant : e;
  vec<T> f = as_float<T>((bits & mant_mask) | as_int<T>(set1<T>(T(1))));
  const VI big = f > static_cast<T>(1.4142135623730951);
  f = big ? f * T(0.5) : f;
  e = big ? e + 1 : e;
  // g = f - 1 is exact (Sterbenz). With s = g/(2+g) and hfsq = g^2/2,
  // log(1+g) = 2 atanh(s) = g - (hfsq - s (hfsq + R)),  R = sum_{j>=1} 2 s^{2j}/(2j+1):
  // the leading term g is exact and the rest is a small correction (< 1 ulp).
  const vec<T> g = f - T(1);
  const vec<T> s = g / (g + T(2));
  const vec<T> s2 = s * s;
  const vec<T> hfsq = T(0.5) * g * g;
  const vec<T> R = s2 * detail::log_series(s2);
  const vec<T> ef = __builtin_convertvector(e, vec<T>);
  vec<T> y = ef * C::ln2_hi + (g - (hfsq - (s * (hfsq + R) + ef * C::ln2_lo)));
  y = x == zero ? set1<T>(-inf) : y;
  y = x < zero ? set1<T>(std::numeric_limits<T>::quiet_NaN()) : y;
  y = x == inf ? set1<T>(inf) : y;
  y = x != x ? x : y;
  return y;
}

template <class T> MAXLIK_INLINE vec<T> log1p(vec<T> x) {
  // log1p(x) = log(u) + (x - (u - 1)) / u with u = fl(1 + x): the second term
  // restores the bits of x lost when forming u.
  const vec<T> u = x + T(1);
  const vec<T> corr = (x - (u - T(1))) / u;
  vec<T> y = log<T>(u) + corr;
  // where u is inf (huge x) or x is -1/NaN, plain log(u) has the right answer
  const vec<T> ly = log<T>(u);
  const ivec<T> plain = (u == std::numeric_limits<T>::infinity()) | (u == T(0)) | (x != x);
  return plain ? ly : y;
}

// Scalar convenience wrappers (one lane) so that scalar tails use the very same
// arithmetic as the vector bodies.
template <class T> MAXLIK_INLINE T exp1(T x) { return exp<T>(set1<T>(x))[0]; }
template <class T> MAXLIK_INLINE T log1(T x) { return log<T>(set1<T>(x))[0]; }
template <class T> MAXLIK_INLINE T log1p1(T x) { return log1p<T>(set1<T>(x))[0]; }

}  // namespace simd
}  // namespace maxlik
