// Sparse (CSR) bindings (glue only; kernels in maxlik/sparse.hpp).
//
// A CSR argument is three arrays plus the column count: data (float32 /
// float64), indices and indptr (both int32 or both int64, as scipy stores
// them). indptr has n_rows + 1 entries and may start anywhere (a row slice is
// a view of a bigger matrix's indptr). Grouped by area, like sparse.hpp.
#include <cstdint>
#include <optional>
#include <string>

#include <pybind11/stl.h>

#include "common.hpp"
#include "maxlik/sparse.hpp"

namespace py = pybind11;
using maxlik::bind::carray;
using maxlik::bind::require;
using maxlik::bind::LloydSums;
using maxlik::bind::row_weights;
using maxlik::bind::writeable_labels;

namespace {

// Checks the CSR arrays against each other (not every index: the Python layer
// builds them from a scipy matrix whose indices it has checked) and returns the view.
template <class T, class I>
maxlik::sparse::CSR<T, I> csr_view(const carray<T>& data, const carray<I>& indices, const carray<I>& indptr,
                                   std::size_t n_features) {
  require(data.ndim() == 1 && indices.ndim() == 1 && data.shape(0) == indices.shape(0),
          "data and indices must be 1-D arrays of the same length");
  require(indptr.ndim() == 1 && indptr.shape(0) >= 1, "indptr must be a 1-D array of n_rows + 1 offsets");
  maxlik::sparse::CSR<T, I> v;
  v.data = data.data();
  v.indices = indices.data();
  v.indptr = indptr.data();
  v.n = static_cast<std::size_t>(indptr.shape(0) - 1);
  v.D = n_features;
  const I* p = indptr.data();
  require(p[0] >= 0 && static_cast<py::ssize_t>(p[v.n]) <= data.shape(0),
          "indptr must index into data (0 <= indptr <= len(data))");
  for (std::size_t i = 0; i < v.n; ++i) require(p[i] <= p[i + 1], "indptr must be non-decreasing");
  return v;
}

// ---- k-means ---------------------------------------------------------------------------

template <class T>
void check_centres(const carray<T>& shift, const carray<T>& C, std::size_t D) {
  require(C.ndim() == 2 && C.shape(0) >= 1, "centers must be 2-D with at least one row");
  require(static_cast<std::size_t>(C.shape(1)) == D,
          "centers must have as many columns as X (" + std::to_string(D) + "); got " + std::to_string(C.shape(1)));
  require(shift.ndim() == 1 && static_cast<std::size_t>(shift.shape(0)) == D, "shift must have shape (n_features,)");
}

// As kmeans_lloyd_step (register_cluster.cpp) for a CSR X: (S, W, J), labels in place.
template <class T, class I>
py::tuple csr_lloyd_step(const carray<T>& data, const carray<I>& indices, const carray<I>& indptr,
                         std::size_t n_features, const carray<T>& shift, const carray<T>& C,
                         const std::optional<carray<T>>& sample_weight,
                         py::array_t<std::int32_t, py::array::c_style> labels, bool update, double scale) {
  const auto X = csr_view(data, indices, indptr, n_features);
  check_centres(shift, C, n_features);
  const std::size_t N = X.n, D = n_features, K = static_cast<std::size_t>(C.shape(0));
  std::int32_t* lp = writeable_labels(labels, N);
  const T* w = row_weights(sample_weight, N);
  LloydSums sums(update, K, D);
  double* sp = sums.s;
  double* wp = sums.w;
  const T* hp = shift.data();
  const T* cp = C.data();
  double J;
  {
    py::gil_scoped_release release;  // raw buffers kept alive by the arguments only
    J = maxlik::sparse::kmeans::lloyd_pass<T, I>(X, w, hp, cp, K, lp, sp, wp, scale);
  }
  return sums.tuple(J);
}

// As kmeans_sq_distances for a CSR X: (N, M) squared distances of the shifted rows.
template <class T, class I>
carray<T> csr_sq_distances(const carray<T>& data, const carray<I>& indices, const carray<I>& indptr,
                           std::size_t n_features, const carray<T>& shift, const carray<T>& C, double scale) {
  const auto X = csr_view(data, indices, indptr, n_features);
  check_centres(shift, C, n_features);
  const std::size_t M = static_cast<std::size_t>(C.shape(0));
  carray<T> out({X.n, M});
  T* op = out.mutable_data();
  const T* hp = shift.data();
  const T* cp = C.data();
  {
    py::gil_scoped_release release;
    maxlik::sparse::kmeans::sq_distances<T, I>(X, hp, cp, M, op, scale);
  }
  return out;
}

template <class T, class I> void def_kmeans(py::module_& m) {
  m.def("csr_kmeans_lloyd_step", &csr_lloyd_step<T, I>, py::arg("data"), py::arg("indices"), py::arg("indptr"),
        py::arg("n_features"), py::arg("shift"), py::arg("centers"), py::arg("sample_weight"), py::arg("labels"),
        py::arg("update"), py::arg("scale") = 1.0);
  m.def("csr_kmeans_sq_distances", &csr_sq_distances<T, I>, py::arg("data"), py::arg("indices"),
        py::arg("indptr"), py::arg("n_features"), py::arg("shift"), py::arg("centers"), py::arg("scale") = 1.0);
}

// ---- linear models ---------------------------------------------------------------------

// X B for a CSR X (float64) and B (n_features, T): (n_rows, T).
template <class I>
carray<double> csr_matmul(const carray<double>& data, const carray<I>& indices, const carray<I>& indptr,
                          std::size_t n_features, const carray<double>& B) {
  const auto X = csr_view(data, indices, indptr, n_features);
  require(B.ndim() == 2 && static_cast<std::size_t>(B.shape(0)) == n_features,
          "B must have shape (n_features, T) with n_features = " + std::to_string(n_features));
  const std::size_t T = static_cast<std::size_t>(B.shape(1));
  carray<double> out({X.n, T});
  double* op = out.mutable_data();
  const double* bp = B.data();
  {
    py::gil_scoped_release release;  // raw buffers kept alive by the arguments only
    maxlik::sparse::linear::matmul<I>(X, bp, T, op);
  }
  return out;
}

// X^T diag(w) X (n_features, n_features) from X (CSR) and its transpose Xt (CSR of X^T).
template <class I>
carray<double> csr_gram(const carray<double>& t_data, const carray<I>& t_indices, const carray<I>& t_indptr,
                        const carray<double>& data, const carray<I>& indices, const carray<I>& indptr,
                        std::size_t n_features, const std::optional<carray<double>>& sample_weight) {
  const auto X = csr_view(data, indices, indptr, n_features);
  const auto Xt = csr_view(t_data, t_indices, t_indptr, X.n);
  require(Xt.n == n_features && t_data.shape(0) == data.shape(0), "Xt must be the transpose of X");
  const double* w = nullptr;
  if (sample_weight) {
    require(sample_weight->ndim() == 1 && static_cast<std::size_t>(sample_weight->shape(0)) == X.n,
            "sample_weight must have shape (n_samples,)");
    w = sample_weight->data();
  }
  carray<double> out({n_features, n_features});
  double* op = out.mutable_data();
  {
    py::gil_scoped_release release;
    maxlik::sparse::linear::gram<I>(Xt, X, w, op);
  }
  return out;
}

// (sum_i sw_i CE_i, grad_W (K, D), grad_b (K)) of the linear softmax / sigmoid
// model on a CSR X, as _linear_ce (register_losses.cpp) for a dense one.
template <class I>
py::tuple csr_linear_ce(const carray<double>& data, const carray<I>& indices, const carray<I>& indptr,
                        std::size_t n_features, const carray<double>& W, const std::optional<carray<double>>& b,
                        const carray<std::int64_t>& y, const carray<double>& sw) {
  const auto X = csr_view(data, indices, indptr, n_features);
  require(W.ndim() == 2 && W.shape(0) >= 1 && static_cast<std::size_t>(W.shape(1)) == n_features,
          "W must have shape (K, n_features)");
  const std::size_t N = X.n, D = n_features, K = static_cast<std::size_t>(W.shape(0));
  require(static_cast<std::size_t>(y.size()) == N && static_cast<std::size_t>(sw.size()) == N,
          "y and sample_weight need n_samples entries");
  const double* bp = nullptr;
  if (b) {
    require(static_cast<std::size_t>(b->size()) == K, "intercept must have K entries");
    bp = b->data();
  }
  const std::int64_t* yp = y.data();
  for (std::size_t i = 0; i < N; ++i)
    require(yp[i] >= 0 && yp[i] < static_cast<std::int64_t>(K == 1 ? 2 : K), "class codes out of range");
  py::array_t<double> gW({K, D});
  py::array_t<double> gb(K);
  double* gwp = gW.mutable_data();
  double* gbp = gb.mutable_data();
  const double* wp = W.data();
  const double* swp = sw.data();
  double loss;
  {
    py::gil_scoped_release release;
    loss = maxlik::sparse::linear::linear_ce<I>(X, wp, bp, K, yp, swp, gwp, gbp);
  }
  return py::make_tuple(loss, gW, gb);
}

template <class I> void def_linear(py::module_& m) {
  m.def("csr_matmul", &csr_matmul<I>, py::arg("data"), py::arg("indices"), py::arg("indptr"),
        py::arg("n_features"), py::arg("B"));
  m.def("csr_gram", &csr_gram<I>, py::arg("t_data"), py::arg("t_indices"), py::arg("t_indptr"),
        py::arg("data"), py::arg("indices"), py::arg("indptr"), py::arg("n_features"),
        py::arg("sample_weight"));
  m.def("csr_linear_ce", &csr_linear_ce<I>, py::arg("data"), py::arg("indices"), py::arg("indptr"),
        py::arg("n_features"), py::arg("W"), py::arg("b"), py::arg("y"), py::arg("sample_weight"));
}

}  // namespace

void register_sparse(py::module_& m) {
  // k-means
  def_kmeans<double, std::int32_t>(m);
  def_kmeans<double, std::int64_t>(m);
  def_kmeans<float, std::int32_t>(m);
  def_kmeans<float, std::int64_t>(m);
  // linear models (float64 only, the linear models' dtype)
  def_linear<std::int32_t>(m);
  def_linear<std::int64_t>(m);
  // (other areas: append their def_* calls here)
}
