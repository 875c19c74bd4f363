// The one SIMD layer of maxlik: portable vectors (GCC/Clang vector
// extensions, lowered to SSE2 / AVX2 / AVX-512 by the compiler) and the
// project's own vectorised exp and log.
//
//   vec<T>      a SIMD register of lanes<T> values of T (float or double)
//   exp(v)      e^v, <= 1 ulp with FMA (x86-64-v3/v4), <= 1.5 ulp without (v2:
//               every a*b+c rounds twice); exp(-inf)=0, exp(+inf)=inf,
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
#include <utility>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#define MAXLIK_INLINE inline __attribute__((always_inline))

namespace maxlik {
namespace simd {

#if defined(MAXLIK_VEC_BYTES)
// Forced register width (CMake MAXLIK_VEC_BYTES): 64 on an AVX2 machine gives
// AVX-512's lane layout and so its summation orders, lowered to pairs of AVX2
// ops, so CI on any machine covers the rounding an AVX-512 build produces.
inline constexpr int kVecBytes = MAXLIK_VEC_BYTES;
static_assert(kVecBytes == 16 || kVecBytes == 32 || kVecBytes == 64, "MAXLIK_VEC_BYTES: 16, 32 or 64");
#elif defined(__AVX512F__)
inline constexpr int kVecBytes = 64;
#else
inline constexpr int kVecBytes = 32;  // AVX2; split into two SSE2 ops on baseline
#endif

typedef double vf64 __attribute__((vector_size(kVecBytes)));
typedef float vf32 __attribute__((vector_size(kVecBytes)));
typedef std::int64_t vi64 __attribute__((vector_size(kVecBytes)));
typedef std::int32_t vi32 __attribute__((vector_size(kVecBytes)));
typedef std::uint64_t vu64 __attribute__((vector_size(kVecBytes)));
typedef std::uint32_t vu32 __attribute__((vector_size(kVecBytes)));

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
// Lane-wise square root (with -fno-math-errno the loop compiles to one vsqrtp*).
template <class T> MAXLIK_INLINE vec<T> sqrt(vec<T> a) {
  vec<T> r;
  for (int i = 0; i < lanes<T>; ++i) r[i] = std::sqrt(a[i]);
  return r;
}

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
// True if any lane of the mask is set: one vptest where the ISA has it (the
// lane-by-lane loop compiled to a chain of extracts and branches).
namespace detail {
typedef std::int64_t vi64x2 __attribute__((vector_size(16)));
typedef std::int64_t vi64x4 __attribute__((vector_size(32)));
typedef std::int64_t vi64x8 __attribute__((vector_size(64)));
MAXLIK_INLINE bool any_v(vi64x2 m) {
#if defined(__SSE4_1__)
  const __m128i v = __builtin_bit_cast(__m128i, m);
  return !_mm_testz_si128(v, v);
#else
  return (m[0] | m[1]) != 0;
#endif
}
MAXLIK_INLINE bool any_v(vi64x4 m) {
#if defined(__AVX__)
  const __m256i v = __builtin_bit_cast(__m256i, m);
  return !_mm256_testz_si256(v, v);
#else
  return any_v(__builtin_shufflevector(m, m, 0, 1) | __builtin_shufflevector(m, m, 2, 3));
#endif
}
MAXLIK_INLINE bool any_v(vi64x8 m) {
  return any_v(__builtin_shufflevector(m, m, 0, 1, 2, 3) | __builtin_shufflevector(m, m, 4, 5, 6, 7));
}
}  // namespace detail
template <class T> MAXLIK_INLINE bool any(ivec<T> mask) { return detail::any_v(__builtin_bit_cast(vi64, mask)); }

// Bit l of the result is set iff lane l of the mask is (lanes <= 16).
namespace detail {
typedef float vf32x4 __attribute__((vector_size(16)));
typedef float vf32x8 __attribute__((vector_size(32)));
typedef double vf64x2 __attribute__((vector_size(16)));
typedef double vf64x4 __attribute__((vector_size(32)));
template <class T, class M> MAXLIK_INLINE unsigned movemask_generic(M m) {
  unsigned r = 0;
  for (int i = 0; i < int(sizeof(M) / sizeof(T)); ++i) r |= (m[i] != 0 ? 1u : 0u) << i;
  return r;
}
template <class T> MAXLIK_INLINE unsigned movemask16(vi64x2 m) {
#if defined(__SSE2__)
  if constexpr (sizeof(T) == 8) return unsigned(_mm_movemask_pd(__builtin_bit_cast(__m128d, m)));
  else return unsigned(_mm_movemask_ps(__builtin_bit_cast(__m128, m)));
#else
  typedef std::conditional_t<sizeof(T) == 8, std::int64_t, std::int32_t> I;
  typedef I vx __attribute__((vector_size(16)));
  return movemask_generic<T>(__builtin_bit_cast(vx, m));
#endif
}
template <class T> MAXLIK_INLINE unsigned movemask32(vi64x4 m) {
#if defined(__AVX__)
  if constexpr (sizeof(T) == 8) return unsigned(_mm256_movemask_pd(__builtin_bit_cast(__m256d, m)));
  else return unsigned(_mm256_movemask_ps(__builtin_bit_cast(__m256, m)));
#else
  constexpr int h = 16 / int(sizeof(T));
  return movemask16<T>(__builtin_shufflevector(m, m, 0, 1)) | (movemask16<T>(__builtin_shufflevector(m, m, 2, 3)) << h);
#endif
}
template <class T> MAXLIK_INLINE unsigned movemask_v(vi64x2 m) { return movemask16<T>(m); }
template <class T> MAXLIK_INLINE unsigned movemask_v(vi64x4 m) { return movemask32<T>(m); }
template <class T> MAXLIK_INLINE unsigned movemask_v(vi64x8 m) {
  constexpr int h = 32 / int(sizeof(T));
  return movemask32<T>(__builtin_shufflevector(m, m, 0, 1, 2, 3)) |
         (movemask32<T>(__builtin_shufflevector(m, m, 4, 5, 6, 7)) << h);
}
}  // namespace detail
template <class T> MAXLIK_INLINE unsigned movemask(ivec<T> mask) {
  return detail::movemask_v<T>(__builtin_bit_cast(vi64, mask));
}

// ---- in-register transpose and widening --------------------------------------------
// Perfect-shuffle interleaves: lo(a,b) = a0 b0 a1 b1 ..., hi(a,b) = the upper halves.
namespace detail {
template <class V, int L, std::size_t... I> MAXLIK_INLINE V ilo(V a, V b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, ((I % 2) ? L + int(I / 2) : int(I / 2))...);
}
template <class V, int L, std::size_t... I> MAXLIK_INLINE V ihi(V a, V b, std::index_sequence<I...>) {
  return __builtin_shufflevector(a, b, ((I % 2) ? L + L / 2 + int(I / 2) : L / 2 + int(I / 2))...);
}
typedef float vf32_half __attribute__((vector_size(kVecBytes / 2)));
template <int Part, std::size_t... I> MAXLIK_INLINE vf64 widen_half_(vf32 v, std::index_sequence<I...>) {
  constexpr int H = lanes<float> / 2;
  const vf32_half h = __builtin_shufflevector(v, v, (Part * H + int(I))...);
  return __builtin_convertvector(h, vf64);
}
}  // namespace detail

// Half `Part` (0 = low, 1 = high) of a float vector, converted exactly to double.
template <int Part> MAXLIK_INLINE vf64 widen_half(vf32 v) {
  return detail::widen_half_<Part>(v, std::make_index_sequence<lanes<float> / 2>{});
}

// In-register transpose of an L x L tile held as L row vectors (L = lanes<T>):
// log2(L) rounds of perfect shuffles pairing row i with row i + L/2; 4 x 4
// doubles use in-lane unpacks then 128-bit half swaps (the generic rounds
// compile to slow lane-crossing permutes there).
template <class T> MAXLIK_INLINE void transpose_tile(vec<T>* r) {
  using V = vec<T>;
  constexpr int L = lanes<T>;
  if constexpr (L == 4) {
    const V t0 = __builtin_shufflevector(r[0], r[1], 0, 4, 2, 6);
    const V t1 = __builtin_shufflevector(r[0], r[1], 1, 5, 3, 7);
    const V t2 = __builtin_shufflevector(r[2], r[3], 0, 4, 2, 6);
    const V t3 = __builtin_shufflevector(r[2], r[3], 1, 5, 3, 7);
    r[0] = __builtin_shufflevector(t0, t2, 0, 1, 4, 5);
    r[1] = __builtin_shufflevector(t1, t3, 0, 1, 4, 5);
    r[2] = __builtin_shufflevector(t0, t2, 2, 3, 6, 7);
    r[3] = __builtin_shufflevector(t1, t3, 2, 3, 6, 7);
    return;
  }
  using Seq = std::make_index_sequence<L>;
  for (int round = 1; round < L; round *= 2) {
    V t[L];
    for (int i = 0; i < L / 2; ++i) {
      t[2 * i] = detail::ilo<V, L>(r[i], r[i + L / 2], Seq{});
      t[2 * i + 1] = detail::ihi<V, L>(r[i], r[i + L / 2], Seq{});
    }
    for (int i = 0; i < L; ++i) r[i] = t[i];
  }
}

// ---- exp ------------------------------------------------------------------------
// Range reduction x = k ln2 + r, |r| <= ln2/2 (Cody-Waite two-constant ln2),
// a polynomial for e^r (degree 11 double / 6 float, fit error below 0.05 ulp),
// and 2^k added to the exponent field of the polynomial's value.
//
// The common path (|x| <= kFast: the result is a normal number) has no clamps
// and no selects; one vptest per vector decides whether any lane needs the
// full treatment (overflow to inf, results in the subnormal range done in two
// scaling halves, underflow to 0, NaN), which then runs for that vector only.
namespace detail {
template <class T> struct exp_consts;
template <> struct exp_consts<double> {
  static constexpr double hi = 709.8;    // e^hi overflows -> the product gives inf
  static constexpr double lo = -746.0;   // e^lo underflows to 0
  static constexpr double fast = 708.0;  // |x| <= fast: k in [-1021, 1021], a normal result
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
  static constexpr float fast = 86.0f;  // k in [-124, 124]
  static constexpr float log2e = 1.44269504088896341f;
  static constexpr float ln2_hi = 0.693359375f;
  static constexpr float ln2_lo = -2.12194440e-4f;
  static constexpr float magic = 12582912.0f;  // 1.5 * 2^23
  static constexpr int mant = 23;
  static constexpr int bias = 127;
};

MAXLIK_INLINE vf64 exp_poly(vf64 r) {
  // Degree-11 Chebyshev fit of e^r on [-ln2/2, ln2/2] (max rel. error 3.2e-18,
  // fitted with mpmath.chebyfit); c0 and c1 round to exactly 1, so
  //   e^r = 1 + r (1 + r Q(r)),  Q = c2 + c3 r + ... + c11 r⁹,
  // with Q as even(r²) + r·odd(r²): two independent Horner chains of 4 FMAs,
  // so the dependency chain is 8 operations deep instead of 11 (the loops
  // around exp keep several vectors in flight; a long chain stalls them).
  // The last two steps are Horner's, so the rounding is as in plain Horner:
  // one rounding at the result's magnitude, the previous one scaled by |r|.
  const vf64 r2 = r * r;
  vf64 e = set1<double>(2.763263963904103e-07);   // c10
  vf64 o = set1<double>(2.5110037605963777e-08);  // c11
  e = e * r2 + 2.4801485482328494e-05;  // c8
  o = o * r2 + 2.755724091857897e-06;   // c9
  e = e * r2 + 0.0013888888952314775;   // c6
  o = o * r2 + 0.00019841269890047113;  // c7
  e = e * r2 + 0.0416666666664881;      // c4
  o = o * r2 + 0.008333333333319601;    // c5
  e = e * r2 + 0.5000000000000019;      // c2
  o = o * r2 + 0.1666666666666668;      // c3
  const vf64 q = o * r + e;
  return (q * r + 1.0) * r + 1.0;
}
MAXLIK_INLINE vf32 exp_poly(vf32 r) {
  // Degree-6 Chebyshev fit on [-ln2/2, ln2/2], max rel. error 2e-9 (c1 =
  // 1.0000000377 rounds to 1 in float); the same 1 + r (1 + r Q) form.
  const vf32 r2 = r * r;
  vf32 e = set1<float>(0.0013941108433972674f);  // c6
  vf32 o = set1<float>(0.008375126398153335f);   // c5
  e = e * r2 + 0.04166635289677516f;  // c4
  o = o * r2 + 0.16666415514653277f;  // c3
  e = e * r2 + 0.5000000047117757f;   // c2
  const vf32 q = o * r + e;
  return (q * r + 1.0f) * r + 1.0f;
}

// The reduction and the polynomial: x = k ln2 + r, returns p = e^r and
// kbits = k << mant (the bits to add to an exponent field).
template <class T> MAXLIK_INLINE vec<T> exp_core(vec<T> x, ivec<T>& kbits) {
  using C = exp_consts<T>;
  const vec<T> t = x * C::log2e + C::magic;
  const vec<T> k = t - C::magic;  // round(x / ln2) as a float
  vec<T> r = x - k * C::ln2_hi;
  r = r - k * C::ln2_lo;
  // The low mantissa bits of t hold k in two's complement; shifting them to
  // the exponent field drops the bits of `magic` (for |k| < 2^(mant-1)).
  kbits = as_int<T>(t) << C::mant;
  return exp_poly(r);
}

// Every lane, every input: clamp, two-step scaling (exact in the subnormal
// range and for k up to 1024), overflow restored to +inf, NaN propagated.
template <class T> __attribute__((noinline)) vec<T> exp_full(vec<T> x) {
  using C = exp_consts<T>;
  using VI = ivec<T>;
  // Clamp; NaN compares false and passes through unchanged, then propagates.
  x = x > C::hi ? set1<T>(C::hi) : x;
  x = x < C::lo ? set1<T>(C::lo) : x;
  const vec<T> t = x * C::log2e + C::magic;
  const vec<T> k = t - C::magic;
  vec<T> r = x - k * C::ln2_hi;
  r = r - k * C::ln2_lo;
  const vec<T> p = exp_poly(r);
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

// Lanes outside the fast range: !(|x| <= fast), NaN included. On the bits:
// |x| as an integer orders like |x|, and a NaN's bits exceed every finite
// number's (an AND and an integer compare; the float form needs a select).
template <class T> MAXLIK_INLINE ivec<T> exp_slow_lanes(vec<T> x) {
  using C = exp_consts<T>;
  using VI = ivec<T>;
  const VI sign = as_int<T>(set1<T>(T(-0.0)));
  return (as_int<T>(x) & ~sign) > as_int<T>(set1<T>(C::fast));
}
}  // namespace detail

namespace detail {
// p * 2^k as the integer sum of p's bits and kb = k << mantissa bits, wrapping
// (unsigned lanes): on the lanes exp_slow_lanes flags (|x| large, inf, NaN) kb
// is out of range and the sum is discarded, but a signed sum would still be
// undefined behaviour there. Same instruction (vpadd) as the signed sum.
template <class T> MAXLIK_INLINE vec<T> add_exponent_bits(vec<T> p, ivec<T> kb) {
  using U = std::conditional_t<sizeof(T) == 8, vu64, vu32>;
  return __builtin_bit_cast(vec<T>, __builtin_bit_cast(U, as_int<T>(p)) + __builtin_bit_cast(U, kb));
}
}  // namespace detail

// e^x for every x: <= 1 ulp, exp(-inf) = 0, exp(+inf) = inf, exp(NaN) = NaN.
template <class T> MAXLIK_INLINE vec<T> exp(vec<T> x) {
  ivec<T> kb;
  const vec<T> p = detail::exp_core<T>(x, kb);
  const vec<T> y = detail::add_exponent_bits<T>(p, kb);
  const ivec<T> slow = detail::exp_slow_lanes<T>(x);
  if (__builtin_expect(any<T>(slow), 0)) return slow ? detail::exp_full<T>(x) : y;
  return y;
}

// e^x for x <= 0 (or NaN), flushing results below the smallest normal number
// to zero. For sums of e^{x - max}: a term below 2^-1022 relative to the max
// cannot change a sum that already holds 1. The same exp; only the rare
// lanes below -fast (incl. -inf) differ: 0 instead of a subnormal.
template <class T> MAXLIK_INLINE vec<T> exp_nonpositive(vec<T> x) {
  ivec<T> kb;
  const vec<T> p = detail::exp_core<T>(x, kb);
  const vec<T> y = detail::add_exponent_bits<T>(p, kb);
  const ivec<T> slow = detail::exp_slow_lanes<T>(x);
  if (__builtin_expect(any<T>(slow), 0)) {
    constexpr T lo = sizeof(T) == 8 ? T(-708.39) : T(-87.33);  // e^lo ~ the smallest normal
    return slow ? (x < lo ? vec<T>{} : detail::exp_full<T>(x)) : y;
  }
  return y;
}

// The common path of exp alone, for loops that test the range once per batch:
// `slow` accumulates the lanes whose result is not valid (|x| > fast, NaN);
// if any(slow) after the batch, the caller redoes the batch with exp() or
// exp_nonpositive(). Valid lanes are bit-identical to exp().
template <class T> MAXLIK_INLINE vec<T> exp_unchecked(vec<T> x, ivec<T>& slow) {
  ivec<T> kb;
  const vec<T> p = detail::exp_core<T>(x, kb);
  slow |= detail::exp_slow_lanes<T>(x);
  return detail::add_exponent_bits<T>(p, kb);
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

// Integer lanes with |v| < 2^(mant-1) (exponents, counts) as floating point,
// exactly: added to the bits of 1.5 * 2^mant, minus that constant. There is
// no int64 -> double instruction before AVX-512DQ, and the compiler's
// lane-by-lane fallback for __builtin_convertvector costs more than a log.
template <class T> MAXLIK_INLINE vec<T> small_int_to_float(ivec<T> v) {
  const T magic = T(1.5) * static_cast<T>(std::uint64_t(1) << detail::exp_consts<T>::mant);
  return as_float<T>(as_int<T>(set1<T>(magic)) + v) - magic;
}

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
  const vec<T> ef = small_int_to_float<T>(e);
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

// ---- e^x - 1 - x ------------------------------------------------------------------
namespace detail {
// e^x - 1 - x without cancellation near 0 (the per-entry VAE KL term is
// ½(μ² + e^x - 1 - x) with x = log σ²; near the prior x ≈ 0 the naive form
// loses every digit). |x| < 1: Taylor series x² Σ_{n≥2} x^{n-2}/n!, truncated
// where the next term is below half an ulp of the sum; elsewhere the direct
// form, where the cancellation costs at most ~2 bits.
MAXLIK_INLINE vf64 exm1mx_poly(vf64 x) {
  // Σ_{n=2}^{19} x^n/n! (x^18/20! < 1e-18 of the x²/2 leading term), as two
  // interleaved Horner chains in x² (even and odd n): half the dependency
  // latency of one chain, same operation count.
    const vf64 x2 = x * x;
  vf64 e = set1<double>(1.0 / 6402373705728000.0);  // 1/18!
  vf64 o = set1<double>(1.0 / 121645100408832000.0);  // 1/19!
  e = e * x2 + 1.0 / 20922789888000.0;   // 1/16!
  o = o * x2 + 1.0 / 355687428096000.0;  // 1/17!
  e = e * x2 + 1.0 / 87178291200.0;      // 1/14!
  o = o * x2 + 1.0 / 1307674368000.0;    // 1/15!
  e = e * x2 + 1.0 / 479001600.0;        // 1/12!
  o = o * x2 + 1.0 / 6227020800.0;       // 1/13!
  e = e * x2 + 1.0 / 3628800.0;          // 1/10!
  o = o * x2 + 1.0 / 39916800.0;         // 1/11!
  e = e * x2 + 1.0 / 40320.0;            // 1/8!
  o = o * x2 + 1.0 / 362880.0;           // 1/9!
  e = e * x2 + 1.0 / 720.0;              // 1/6!
  o = o * x2 + 1.0 / 5040.0;             // 1/7!
  e = e * x2 + 1.0 / 24.0;               // 1/4!
  o = o * x2 + 1.0 / 120.0;              // 1/5!
  e = e * x2 + 0.5;                      // 1/2!
  o = o * x2 + 1.0 / 6.0;                // 1/3!
  return (e + o * x) * x2;
}
MAXLIK_INLINE vf32 exm1mx_poly(vf32 x) {
  // Σ_{n=2}^{11} x^n/n!, even / odd chains as in the double version
    const vf32 x2 = x * x;
  vf32 e = set1<float>(1.0f / 3628800.0f);  // 1/10!
  vf32 o = set1<float>(1.0f / 39916800.0f);  // 1/11!
  e = e * x2 + 1.0f / 40320.0f;
  o = o * x2 + 1.0f / 362880.0f;
  e = e * x2 + 1.0f / 720.0f;
  o = o * x2 + 1.0f / 5040.0f;
  e = e * x2 + 1.0f / 24.0f;
  o = o * x2 + 1.0f / 120.0f;
  e = e * x2 + 0.5f;
  o = o * x2 + 1.0f / 6.0f;
  return (e + o * x) * x2;
}

}  // namespace detail

// f = e^x − 1 − x and g = e^x − 1 (= x + f) for a vector x, both accurate near 0.
// x = +inf gives f = g = inf; x = −inf gives f = inf, g = −1; NaN propagates.
template <class T> MAXLIK_INLINE void expm1mx(vec<T> x, vec<T>& f, vec<T>& g) {
  const vec<T> em1 = exp<T>(x) - T(1);
  vec<T> direct = em1 - x;
  direct = x == std::numeric_limits<T>::infinity() ? x : direct;  // inf − inf
  const vec<T> poly = detail::exm1mx_poly(x);
  // NaN fails the comparison and takes the direct branch, which propagates it.
  const ivec<T> small = abs<T>(x) < T(1);
  f = small ? poly : direct;
  g = small ? x + poly : em1;
}


// Scalar convenience wrappers (one lane) so that scalar tails use the very same
// arithmetic as the vector bodies.
template <class T> MAXLIK_INLINE T exp1(T x) { return exp<T>(set1<T>(x))[0]; }
template <class T> MAXLIK_INLINE T log1(T x) { return log<T>(set1<T>(x))[0]; }
template <class T> MAXLIK_INLINE T log1p1(T x) { return log1p<T>(set1<T>(x))[0]; }

}  // namespace simd
}  // namespace maxlik
