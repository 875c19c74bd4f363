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
//   maxlik::sparse::linear   linear models: X B, X^T W X, fused cross-entropy
// (other areas append their own namespace below).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "losses.hpp"
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
//
// The assignment (nnz x K multiply-adds) runs in parallel over fixed blocks
// of kRowBlock rows, each block's inertia in its own slot; the update sums
// (nnz adds, K times less work) then run in row order on the calling
// thread. So no per-task K x D statistics are needed (for text data K x D is
// large: a dense-style per-task copy would leave one task, i.e. one thread),
// and the result does not depend on the thread count.
template <class T, class I>
inline double lloyd_pass(const CSR<T, I>& X, const T* w, const T* shift, const T* C, std::size_t K,
                         std::int32_t* labels, double* S, double* W, double scale) {
  const std::size_t N = X.n, D = X.D;
  const Prepared P(C, shift, K, D);
  std::vector<double> block_J(n_blocks(N), 0.0);
  parallel_for_blocks(N, kRowBlock, [&](std::size_t b, std::size_t r0, std::size_t r1) {
    std::vector<double> dist(K);
    double J = 0;
    for (std::size_t i = r0; i < r1; ++i) {
      row_sq_distances(X, i, scale, P, dist.data());
      std::size_t best = 0;
      for (std::size_t k = 1; k < K; ++k)
        if (dist[k] < dist[best]) best = k;
      labels[i] = static_cast<std::int32_t>(best);
      J += (w ? static_cast<double>(w[i]) : 1.0) * dist[best];
    }
    block_J[b] = J;
  });
  double J = 0;
  for (const double j : block_J) J += j;
  if (S != nullptr) {
    std::fill(S, S + K * D, 0.0);
    std::fill(W, W + K, 0.0);
    for (std::size_t i = 0; i < N; ++i) {
      const std::size_t k = static_cast<std::size_t>(labels[i]);
      const double wi = w ? static_cast<double>(w[i]) : 1.0;
      double* s = S + k * D;
      const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(X.indptr[i + 1]);
      for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(X.indptr[i]); p < p1; ++p)
        s[static_cast<std::size_t>(X.indices[p])] += wi * (static_cast<double>(X.data[p]) * scale);
      W[k] += wi;
    }
    for (std::size_t k = 0; k < K; ++k)
      for (std::size_t f = 0; f < D; ++f) S[k * D + f] -= W[k] * static_cast<double>(shift[f]);
  }
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

// ---- linear models ---------------------------------------------------------------------
//
// The products of LogisticRegression's objective and of least squares for a
// CSR X (float64, the linear models' dtype); nothing is densified or centred.
//   matmul:     X B                 (N x T), rows in parallel;
//   gram:       X^T diag(w) X       (D x D), from X and its transpose
//               Xt = X^T (a CSR of D rows, i.e. X in CSC), output row j in parallel;
//   linear_ce:  the fused cross-entropy of linear_ce (losses.hpp) for a CSR X:
//               Z = X W^T + b, the per-row loss and dloss/dz (the same row
//               kernels as the dense fit), grad_W = G^T X, grad_b = sum G.
// Each output entry is summed in storage order by one task, or in per-task
// slots merged in task order (linear_ce), so results do not depend on the
// thread count.
namespace linear {

// out (N x T) = X B, B (D x T) row-major.
template <class I>
inline void matmul(const CSR<double, I>& X, const double* B, std::size_t T, double* out) {
  parallel_for_blocks(X.n, kRowBlock, [&](std::size_t, std::size_t r0, std::size_t r1) {
    for (std::size_t i = r0; i < r1; ++i) {
      double* o = out + i * T;
      std::fill(o, o + T, 0.0);
      const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(X.indptr[i + 1]);
      for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(X.indptr[i]); p < p1; ++p) {
        const double v = X.data[p];
        const double* b = B + static_cast<std::size_t>(X.indices[p]) * T;
        for (std::size_t t = 0; t < T; ++t) o[t] += v * b[t];
      }
    }
  });
}

// G (D x D) = X^T diag(w) X (w = nullptr: unit weights); Xt is X^T as CSR.
// Row j of G is sum over the stored (r, v) of column j of w_r v X[r, :], kept
// for columns c <= j and mirrored: each entry is one task's sum in row order.
template <class I>
inline void gram(const CSR<double, I>& Xt, const CSR<double, I>& X, const double* w, double* G) {
  const std::size_t D = X.D;
  std::fill(G, G + D * D, 0.0);
  parallel_for_blocks(D, 16, [&](std::size_t, std::size_t j0, std::size_t j1) {
    for (std::size_t j = j0; j < j1; ++j) {
      double* g = G + j * D;
      const std::ptrdiff_t q1 = static_cast<std::ptrdiff_t>(Xt.indptr[j + 1]);
      for (std::ptrdiff_t q = static_cast<std::ptrdiff_t>(Xt.indptr[j]); q < q1; ++q) {
        const std::size_t r = static_cast<std::size_t>(Xt.indices[q]);
        const double wv = (w ? w[r] : 1.0) * Xt.data[q];
        const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(X.indptr[r + 1]);
        for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(X.indptr[r]); p < p1; ++p) {
          const std::size_t c = static_cast<std::size_t>(X.indices[p]);
          if (c <= j) g[c] += wv * X.data[p];
        }
      }
    }
  });
  for (std::size_t j = 0; j < D; ++j)
    for (std::size_t c = 0; c < j; ++c) G[c * D + j] = G[j * D + c];
}

// Rows per task of linear_ce: each task owns a gradient slot of K (D + 1)
// values, so the task count is bounded by a memory budget as well as by 64,
// and a task has at least kTaskMinRows rows; chosen from N, D, K alone.
inline constexpr std::size_t kCeSlotBudget = std::size_t(64) << 20;  // bytes of slots
inline constexpr std::size_t kTaskMinRows = 1024;
inline std::size_t ce_rows_per_task(std::size_t N, std::size_t D, std::size_t K) {
  const std::size_t slot_bytes = K * (D + 1) * sizeof(double);
  std::size_t tasks = std::max<std::size_t>(1, kCeSlotBudget / std::max<std::size_t>(1, slot_bytes));
  tasks = std::min<std::size_t>({tasks, 64, std::max<std::size_t>(1, N / kTaskMinRows)});
  return std::max<std::size_t>(1, n_blocks(N, tasks));
}

// loss = sum_i sw_i CE_i; gW (K x D) and gb (K) its gradient (see losses.hpp
// linear_ce for the binary K == 1 and softmax K >= 2 forms). b may be nullptr.
template <class I>
inline double linear_ce(const CSR<double, I>& X, const double* W, const double* b, std::size_t K,
                        const std::int64_t* y, const double* sw, double* gW, double* gb) {
  namespace ld = maxlik::losses::detail;
  constexpr std::size_t kSub = maxlik::losses::kLinearBlock;
  const std::size_t N = X.n, D = X.D, P = K * (D + 1);
  std::vector<double> Wt(D * K);  // W^T: one stored value updates K contiguous logits
  for (std::size_t k = 0; k < K; ++k)
    for (std::size_t d = 0; d < D; ++d) Wt[d * K + k] = W[k * D + d];
  const std::size_t rpt = ce_rows_per_task(N, D, K);
  const std::size_t n_tasks = n_blocks(N, rpt);
  std::vector<double> slots(n_tasks * P), task_loss(n_tasks);
  parallel_for(n_tasks, [&](std::size_t t) {
    double* gWt = slots.data() + t * P;  // D x K, then K intercept entries
    double* gbt = gWt + D * K;
    std::fill(gWt, gWt + P, 0.0);
    std::vector<double> Z(kSub * K), aux(2 * kSub);
    double acc = 0;
    const std::size_t t1 = std::min(N, (t + 1) * rpt);
    for (std::size_t r0 = t * rpt; r0 < t1; r0 += kSub) {
      const std::size_t R = std::min(t1, r0 + kSub) - r0;
      for (std::size_t r = 0; r < R; ++r) {  // Z = X W^T + b
        double* z = Z.data() + r * K;
        for (std::size_t k = 0; k < K; ++k) z[k] = b ? b[k] : 0.0;
        const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(X.indptr[r0 + r + 1]);
        for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(X.indptr[r0 + r]); p < p1; ++p) {
          const double v = X.data[p];
          const double* wt = Wt.data() + static_cast<std::size_t>(X.indices[p]) * K;
          for (std::size_t k = 0; k < K; ++k) z[k] += v * wt[k];
        }
      }
      acc += K == 1 ? ld::sigmoid_ce_rows<double>(Z.data(), R, y + r0, sw + r0, gbt)
                    : ld::softmax_ce_rows<double>(Z.data(), K, R, K, y + r0, sw + r0, aux.data(), gbt);
      for (std::size_t r = 0; r < R; ++r) {  // gW^T += X^T G
        const double* g = Z.data() + r * K;
        const std::ptrdiff_t p1 = static_cast<std::ptrdiff_t>(X.indptr[r0 + r + 1]);
        for (std::ptrdiff_t p = static_cast<std::ptrdiff_t>(X.indptr[r0 + r]); p < p1; ++p) {
          const double v = X.data[p];
          double* o = gWt + static_cast<std::size_t>(X.indices[p]) * K;
          for (std::size_t k = 0; k < K; ++k) o[k] += v * g[k];
        }
      }
    }
    task_loss[t] = acc;
  });
  double loss = 0;
  std::fill(gW, gW + K * D, 0.0);
  std::fill(gb, gb + K, 0.0);
  for (std::size_t t = 0; t < n_tasks; ++t) {  // task order: thread-count independent
    const double* s = slots.data() + t * P;
    for (std::size_t d = 0; d < D; ++d)
      for (std::size_t k = 0; k < K; ++k) gW[k * D + d] += s[d * K + k];
    for (std::size_t k = 0; k < K; ++k) gb[k] += s[D * K + k];
    loss += task_loss[t];
  }
  return loss;
}

}  // namespace linear

}  // namespace sparse
}  // namespace maxlik
