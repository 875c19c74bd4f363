// k-means bindings (glue only; kernels in maxlik/kmeans.hpp).
#include <cstdint>
#include <optional>
#include <string>

#include <pybind11/stl.h>

#include "common.hpp"
#include "maxlik/kmeans.hpp"

namespace py = pybind11;
using maxlik::bind::carray;
using maxlik::bind::require;
using maxlik::bind::LloydSums;
using maxlik::bind::row_weights;
using maxlik::bind::writeable_labels;

namespace {

template <class T>
void check_common(const carray<T>& X, const carray<T>& shift, const carray<T>& C) {
  require(X.ndim() == 2, "X must be 2-D");
  require(C.ndim() == 2, "centers must be 2-D");
  require(shift.ndim() == 1 && shift.shape(0) == X.shape(1), "shift must have shape (n_features,)");
  require(C.shape(1) == X.shape(1), "centers must have as many columns as X (" + std::to_string(X.shape(1)) +
                                        "); got " + std::to_string(C.shape(1)));
  require(C.shape(0) >= 1, "centers must have at least one row");
}

// An in-place float64 (n,) array (the Hamerly bounds), checked: a converted
// copy would silently drop the kernel's writes.
double* writeable_doubles(py::array a, std::size_t n, const char* name) {
  const bool ok = a.dtype().is(py::dtype::of<double>()) && a.ndim() == 1 &&
                  static_cast<std::size_t>(a.shape(0)) == n && (a.flags() & py::array::c_style) && a.writeable();
  require(ok, std::string(name) + " must be a writeable C-contiguous float64 array of shape (n_samples,)");
  return static_cast<double*>(a.mutable_data());
}

// Returns (S, W, J): S (K, D) float64 sums of weighted scaled, shifted rows per
// label, W (K,) summed weights, J the weighted inertia w.r.t. `centers`.
// With update=False, S and W are None. labels (N,) int32 is written in place.
// upper / lower (N,) float64, optional, are Hamerly bounds kept in place
// (kmeans.hpp); `moved` (K,) is how far each centre moved since they were
// written (with `labels` from that pass), None to start them. inertia=False
// (with bounds) returns J = NaN and spares the rows the bounds settle their distance;
// delta=True (with moved, inertia=False) returns in S, W only the changes since
// that pass (rows whose label changed), to be added to that pass's sums.
template <class T>
py::tuple lloyd_step(const carray<T>& X, const carray<T>& shift, const carray<T>& C,
                     const std::optional<carray<T>>& sample_weight, py::array_t<std::int32_t, py::array::c_style> labels,
                     bool update, double scale, const std::optional<py::array>& upper,
                     const std::optional<py::array>& lower, const std::optional<carray<double>>& moved,
                     bool inertia, bool delta) {
  check_common(X, shift, C);
  const std::size_t N = static_cast<std::size_t>(X.shape(0)), D = static_cast<std::size_t>(X.shape(1)),
                    K = static_cast<std::size_t>(C.shape(0));
  std::int32_t* lp = writeable_labels(labels, N);
  require(upper.has_value() == lower.has_value(), "upper and lower bounds must be given together");
  require(!moved || upper, "moved needs the bounds (upper, lower)");
  double* up = upper ? writeable_doubles(*upper, N, "upper") : nullptr;
  double* lo = lower ? writeable_doubles(*lower, N, "lower") : nullptr;
  const double* mv = nullptr;
  if (moved) {
    require(moved->ndim() == 1 && static_cast<std::size_t>(moved->shape(0)) == K, "moved must have shape (n_clusters,)");
    mv = moved->data();
  }
  if (delta && mv != nullptr && !inertia) {
    // incremental sums move each changed row out of its old label's sum: the
    // labels must be that pass's (a label outside [0, K) would be silently lost)
    for (std::size_t i = 0; i < N; ++i)
      require(lp[i] >= 0 && static_cast<std::size_t>(lp[i]) < K,
              "delta=True needs labels from the previous pass, in [0, n_clusters)");
  }
  const T* w = row_weights(sample_weight, N);
  LloydSums sums(update, K, D);
  double* sp = sums.s;
  double* wp = sums.w;
  const T* xp = X.data();
  const T* hp = shift.data();
  const T* cp = C.data();
  double J;
  {
    // Safe without the GIL: only raw buffers kept alive by the arguments are
    // touched, no Python objects or refcounts.
    py::gil_scoped_release release;
    J = maxlik::kmeans::lloyd_pass<T>(xp, w, N, D, hp, cp, K, lp, sp, wp, T(scale), up, lo, mv, inertia, delta);
  }
  return sums.tuple(J);
}

// Squared Euclidean distances (N, M) from the shifted rows of X to `centers`.
template <class T>
carray<T> sq_distances(const carray<T>& X, const carray<T>& shift, const carray<T>& C, double scale) {
  check_common(X, shift, C);
  const std::size_t N = static_cast<std::size_t>(X.shape(0)), D = static_cast<std::size_t>(X.shape(1)),
                    M = static_cast<std::size_t>(C.shape(0));
  carray<T> out({N, M});
  T* op = out.mutable_data();
  const T* xp = X.data();
  const T* hp = shift.data();
  const T* cp = C.data();
  {
    py::gil_scoped_release release;  // raw buffers only, see lloyd_step
    maxlik::kmeans::sq_distances<T>(xp, N, D, hp, cp, M, op, T(scale));
  }
  return out;
}

}  // namespace

void register_cluster(py::module_& m) {
  // `scale` (a power of two, default 1): rows are used as X * scale - shift (kmeans.hpp).
  m.def("kmeans_lloyd_step", &lloyd_step<double>, py::arg("X"), py::arg("shift"), py::arg("centers"),
        py::arg("sample_weight"), py::arg("labels"), py::arg("update"), py::arg("scale") = 1.0,
        py::arg("upper") = py::none(), py::arg("lower") = py::none(), py::arg("moved") = py::none(),
        py::arg("inertia") = true, py::arg("delta") = false);
  m.def("kmeans_lloyd_step", &lloyd_step<float>, py::arg("X"), py::arg("shift"), py::arg("centers"),
        py::arg("sample_weight"), py::arg("labels"), py::arg("update"), py::arg("scale") = 1.0,
        py::arg("upper") = py::none(), py::arg("lower") = py::none(), py::arg("moved") = py::none(),
        py::arg("inertia") = true, py::arg("delta") = false);
  m.def("kmeans_sq_distances", &sq_distances<double>, py::arg("X"), py::arg("shift"), py::arg("centers"),
        py::arg("scale") = 1.0);
  m.def("kmeans_sq_distances", &sq_distances<float>, py::arg("X"), py::arg("shift"), py::arg("centers"),
        py::arg("scale") = 1.0);
}
