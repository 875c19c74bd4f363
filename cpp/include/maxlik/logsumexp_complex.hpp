// log(sum(b * exp(a))) for complex a (and b), one contiguous row at a time.
//
// Semantics (scipy.special.logsumexp for complex input):
//   * the imaginary part of a is a phase; the result z satisfies
//     exp(z) = sum_j b_j exp(a_j), with Im z in (-pi, pi];
//   * return_sign: res = log|sum| (real) and sign = sum / |sum| (a complex
//     phase, 0 for a zero sum);
//   * the term with the largest real part is taken out of the sum, as in the
//     real kernel: res = a_max + log(m) + log1p(s / m) with m = b_max and s the
//     rest relative to e^{a_max}, so tiny imaginary parts are kept;
//   * where that is not finite (infinite or NaN terms) the result is the
//     direct log(sum(b exp(a))), whose edge cases follow C99 Annex G (cexp,
//     clog), like numpy's;
//   * a zero weight removes its element, even an infinite or NaN one.
// Scalar std::complex arithmetic: complex input is rare and never the hot
// path; rows are independent, so the result does not depend on threads.
#pragma once
#include <cmath>
#include <complex>
#include <cstddef>
#include <limits>

#include "maxlik/parallel.hpp"

namespace maxlik {
namespace lse {
namespace cplx {

template <class T> using C = std::complex<T>;

// z / |z|; 0 for 0; (+-1, 0) or (0, +-1) for one infinite component; NaN
// otherwise (numpy's sign for complex).
template <class T> inline C<T> phase(C<T> z) {
  constexpr T nan = std::numeric_limits<T>::quiet_NaN();
  if (z == C<T>(0, 0)) return C<T>(0, 0);
  const bool ir = std::isinf(z.real()), ii = std::isinf(z.imag());
  if (ir || ii) {
    if (ir && !ii && !std::isnan(z.imag())) return C<T>(std::copysign(T(1), z.real()), 0);
    if (ii && !ir && !std::isnan(z.real())) return C<T>(0, std::copysign(T(1), z.imag()));
    return C<T>(nan, nan);
  }
  const T r = std::hypot(z.real(), z.imag());
  if (!(r > 0) || !std::isfinite(r)) return C<T>(nan, nan);
  return C<T>(z.real() / r, z.imag() / r);
}

// log(1 + z) without losing a small real part (log(hypot(1+x, y)) would).
template <class T> inline C<T> log1p_c(C<T> z) {
  const T x = z.real(), y = z.imag();
  const T im = std::atan2(y, T(1) + x);
  const T ax = std::abs(x), ay = std::abs(y);
  T re;
  if (ax < T(0.5) && ay < T(0.5)) {
    re = T(0.5) * std::log1p(x * (T(2) + x) + y * y);  // |1+z|^2 - 1, no cancellation of 1
  } else {
    re = std::log(std::hypot(T(1) + x, y));
  }
  return C<T>(re, im);
}

// Wrap an angle into (-pi, pi]; angles already inside are returned unchanged.
template <class T> inline T wrap(T x) {
  const T pi = T(3.14159265358979323846264338327950288L);
  if (std::abs(x) < pi || !std::isfinite(x)) return x;
  T r = std::fmod(pi - x, T(2) * pi);  // floor-mod, as Python's % on floats
  if (r < 0) r += T(2) * pi;
  return -(r - pi);
}

inline bool finite(double re, double im) { return std::isfinite(re) && std::isfinite(im); }

// One row of length L. b may be nullptr (all weights 1). Writes res (complex,
// or real in res->real() when return_sign) and sgn when return_sign.
template <class T>
inline void row(const C<T>* a, const C<T>* b, std::size_t L, bool return_sign, C<T>* res, C<T>* sgn) {
  using D = double;  // accumulate in double also for complex64
  constexpr D ninf = -std::numeric_limits<D>::infinity();
  // the (last) unmasked element with the largest real part; NaN never wins
  std::size_t imax = L;
  D best = ninf;
  for (std::size_t j = 0; j < L; ++j) {
    if (b && b[j] == C<T>(0, 0)) continue;
    const D r = static_cast<D>(a[j].real());
    if (std::isnan(r)) continue;  // a NaN term makes the sum NaN below anyway
    if (imax == L || r >= best) {
      imax = j;
      best = r;
    }
  }
  C<D> out, sg;
  bool ok = false;
  if (imax < L) {
    const C<D> amax(a[imax].real(), a[imax].imag());
    const C<D> m = b ? C<D>(b[imax].real(), b[imax].imag()) : C<D>(1, 0);
    C<D> s(0, 0);
    for (std::size_t j = 0; j < L; ++j) {
      if (j == imax || (b && b[j] == C<T>(0, 0))) continue;
      const C<D> e = std::exp(C<D>(a[j].real(), a[j].imag()) - amax);
      s += b ? C<D>(b[j].real(), b[j].imag()) * e : e;
    }
    if (s != C<D>(0, 0)) s /= m;
    const C<D> z = log1p_c(s) + std::log(m) + amax;
    if (finite(z.real(), z.imag())) {
      ok = true;
      out = z;
      if (return_sign) sg = phase(s + C<D>(1, 0)) * phase(m) * std::exp(C<D>(0, amax.imag()));
    }
  }
  if (!ok) {  // direct formula: C99 edge cases of cexp / clog
    C<D> sum(0, 0);
    for (std::size_t j = 0; j < L; ++j) {
      if (b && b[j] == C<T>(0, 0)) continue;
      const C<D> e = std::exp(C<D>(a[j].real(), a[j].imag()));
      sum += b ? C<D>(b[j].real(), b[j].imag()) * e : e;
    }
    if (return_sign) {
      sg = phase(sum);
      out = C<D>(std::log(std::abs(sum)), 0);
    } else {
      out = std::log(sum);
    }
  }
  if (return_sign) {
    *res = C<T>(static_cast<T>(out.real()), 0);
    *sgn = C<T>(static_cast<T>(sg.real()), static_cast<T>(sg.imag()));
  } else {
    *res = C<T>(static_cast<T>(out.real()), static_cast<T>(wrap(out.imag())));
  }
}

// n_rows contiguous rows of length L (b: same layout, or nullptr).
template <class T>
void logsumexp_rows(const C<T>* a, const C<T>* b, std::size_t n_rows, std::size_t L, bool return_sign,
                    C<T>* res, C<T>* sgn) {
  const std::size_t block = L >= 4096 ? 1 : 4096 / (L + 1) + 1;
  parallel_for_blocks(n_rows, block, [&](std::size_t, std::size_t r0, std::size_t r1) {
    for (std::size_t r = r0; r < r1; ++r)
      row<T>(a + r * L, b ? b + r * L : nullptr, L, return_sign, res + r, return_sign ? sgn + r : nullptr);
  });
}

}  // namespace cplx
}  // namespace lse
}  // namespace maxlik
