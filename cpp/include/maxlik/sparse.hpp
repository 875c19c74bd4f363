// Sparse (CSR) row-block kernels.
//
// A CSR view of N rows and D columns:
//   data[p], indices[p]   the stored values and their columns,
//   indptr[0..N]          row i owns positions [indptr[i], indptr[i+1]).
// indptr need not start at 0 (a row slice of a bigger matrix is a view of
// its indptr). Columns may be unsorted; each (row, column) appears at most
// once (the Python layer calls sum_duplicates first). Index type I is int32
// or int64, as scipy stores it.
//
// Every kernel follows the parallel-for contract (parallel.hpp): rows are
// split into tasks of fixed row ranges chosen from the sizes only, each task
// writes its own slot, slots merge in task order, so 1 and N threads give
// bit-identical results.
//
// The file is grouped by area; each area is one namespace:
//   maxlik::sparse::kmeans   k-means assignment / update / distances
// (other areas append their own namespace below).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "kmeans.hpp"
#include "parallel.hpp"

namespace maxlik {
namespace sparse {

// A CSR row range: rows [0, n) of the view, columns [0, D).
template <class T, class I> struct CSR {
  const T* data = nullptr;
  const I* indices = nullptr;
  const I* indptr = nullptr;  // n + 1 entries
  std::size_t n = 0, D = 0;
};

// ---- k-means ---------------------------------------------------------------------------
//
// Rows are used as u = x * scale - shift (as in kmeans.hpp), centres C (K x D)
// live in those shifted coordinates. Subtracting the shift would make a sparse
// row dense, so the distances are taken in the unshifted coordinates with the
// centres moved back, c' = c + shift (double):
//     ||u - c||^2 = ||x s - c'||^2 = ||x s||^2 - 2 (x s).c' + ||c'||^2,
// the form scikit-learn uses for sparse X, computed in double and clamped at
// 0 (cancellation can leave a tiny negative). Ties go to the lowest index.
// The update statistics are those of the dense kernel:
//     S_k = sum w (x s - shift) = sum w x s - W_k shift,   W_k = sum w,
//     J   = sum w ||u - c_label||^2.
namespace kmeans {

// Centres prepared once per pass: c'^T (D x K, so that one stored value of a
// row updates K contiguous dot products) and ||c'||^2.
struct Prepared {
  std::size_t K = 0, D = 0;
  std::vector<double> ct;    // D x K
  std::vector<double> norm;  // K
  template <class T> Prepared(const T* C, const T* shift, std::size_t k, std::size_t d)
      : K(k), D(d), ct(k * d), norm(k, 0.0) {
    for (std::size_t j = 0; j < K; ++j) {
      double s = 0;
      for (std::size_t f = 0; f < D; ++f) {
        const double c = static_cast<double>(C[j * D + f]) + static_cast<double>(shift[f]);
        ct[f * K + j] = c;
        s += c * c;
      }
      norm[j] = s;
    }
  }
};

// Squared distances of row i to every centre into dist[0..K); returns nothing.
template <class T, class I>
inline void row_sq_distances(const CSR<T, I>& X, std::size_t i, double scale, const Prepared& P,
                             double* dist) {
  const std::size_t K = P.K;
  std::fill(dist, dist + K, 0.0);
  double xx = 0;
  const std::ptrdiff_t p0 = static_cast<std::ptrdiff_t>(X.indptr[i]);
  const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(X.indptr[i + 1]);
  for (std::ptrdiff_t p = p0; p < p1; ++p) {
    const double v = static_cast<double>(X.data[p]) * scale;
    xx += v * v;
    const double* c = P.ct.data() + static_cast<std::size_t>(X.indices[p]) * K;
    for (std::size_t k = 0; k < K; ++k) dist[k] += v * c[k];
  }
  for (std::size_t k = 0; k < K; ++k) dist[k] = std::max(0.0, xx - 2.0 * dist[k] + P.norm[k]);
}

// One Lloyd pass over all rows of X: labels (N); if S, W are non-null the
// merged statistics S (K x D), W (K); returns the inertia J.
template <class T, class I>
inline double lloyd_pass(const CSR<T, I>& X, const T* w, const T* shift, const T* C, std::size_t K,
                         std::int32_t* labels, double* S, double* W, double scale) {
  const std::size_t N = X.n, D = X.D;
  const Prepared P(C, shift, K, D);
  const bool update = S != nullptr;
  const std::size_t rpt = maxlik::kmeans::rows_per_task(N, K, D);
  const std::size_t n_tasks = n_blocks(N, rpt);
  const std::size_t slot = update ? K * D + K + 1 : 1;
  std::vector<double> slots(n_tasks * slot, 0.0);
  parallel_for(n_tasks, [&](std::size_t t) {
    std::vector<double> dist(K);
    double* base = slots.data() + t * slot;
    double* s_t = update ? base : nullptr;
    double* w_t = update ? base + K * D : nullptr;
    double J = 0;
    const std::size_t r_end = std::min(N, (t + 1) * rpt);
    for (std::size_t i = t * rpt; i < r_end; ++i) {
      row_sq_distances(X, i, scale, P, dist.data());
      std::size_t best = 0;
      for (std::size_t k = 1; k < K; ++k)
        if (dist[k] < dist[best]) best = k;
      labels[i] = static_cast<std::int32_t>(best);
      const double wi = w ? static_cast<double>(w[i]) : 1.0;
      J += wi * dist[best];
      if (update) {
        double* s = s_t + best * D;
        const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(X.indptr[i + 1]);
        for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(X.indptr[i]); p < p1; ++p)
          s[static_cast<std::size_t>(X.indices[p])] += wi * (static_cast<double>(X.data[p]) * scale);
        w_t[best] += wi;
      }
    }
    base[slot - 1] = J;
  });
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
    }
    J += base[slot - 1];
  }
  if (update)
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t f = 0; f < D; ++f) S[k * D + f] -= W[k] * static_cast<double>(shift[f]);
  return J;
}

// Squared distances (N x M, in T) of every shifted row to M points (k-means++
// seeding, transform, relocation).
template <class T, class I>
inline void sq_distances(const CSR<T, I>& X, const T* shift, const T* C, std::size_t M, T* out,
                         double scale) {
  const Prepared P(C, shift, M, X.D);
  parallel_for_blocks(X.n, kRowBlock, [&](std::size_t, std::size_t r0, std::size_t r1) {
    std::vector<double> dist(M);
    for (std::size_t i = r0; i < r1; ++i) {
      row_sq_distances(X, i, scale, P, dist.data());
      for (std::size_t m = 0; m < M; ++m) out[i * M + m] = static_cast<T>(dist[m]);
    }
  });
}

}  // namespace kmeans

}  // namespace sparse
}  // namespace maxlik
