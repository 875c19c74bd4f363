// Shared pybind11 glue helpers. Only glue: no numerics here.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace maxlik::bind {
namespace py = pybind11;

// C-contiguous array of T; forcecast is OFF so dtype mistakes surface as
// errors from the Python validation layer rather than silent copies here.
template <class T> using carray = py::array_t<T, py::array::c_style>;

// Element strides in units of T (numpy gives bytes).
template <class T> inline std::ptrdiff_t elem_stride(const py::array& a, int axis) {
  return static_cast<std::ptrdiff_t>(a.strides(axis)) / static_cast<std::ptrdiff_t>(sizeof(T));
}

inline void require(bool ok, const std::string& msg) {
  if (!ok) throw std::invalid_argument(msg);  // -> ValueError
}

// Per-row weights given as an optional typed array: nullptr when absent,
// else their data after checking there is one weight per row.
template <class T> inline const T* row_weights(const std::optional<carray<T>>& w, std::size_t n) {
  if (!w) return nullptr;
  require(w->ndim() == 1 && static_cast<std::size_t>(w->shape(0)) == n, "sample_weight must have shape (n_samples,)");
  return w->data();
}

// The same for weights given as a Python object (None or an array of T);
// `keep` holds the cast array alive while the pointer is used.
template <class T> inline const T* row_weights(const py::object& w, std::size_t n, carray<T>& keep) {
  if (w.is_none()) return nullptr;
  keep = w.cast<carray<T>>();
  require(static_cast<std::size_t>(keep.size()) == n, "sample_weight must have N entries");
  return keep.data();
}

// The in-place (N,) int32 labels of a k-means pass, checked.
inline std::int32_t* writeable_labels(py::array_t<std::int32_t, py::array::c_style>& labels, std::size_t n) {
  require(labels.ndim() == 1 && static_cast<std::size_t>(labels.shape(0)) == n, "labels must have shape (n_samples,)");
  require(labels.writeable(), "labels must be writeable");
  return labels.mutable_data();
}

// The M-step sums of a k-means pass: S (K, D) and W (K,) float64 when
// `update`, else no arrays and null pointers; tuple() is (S, W, J) or (None, None, J).
struct LloydSums {
  py::array_t<double> S, W;
  double* s = nullptr;
  double* w = nullptr;
  bool update;
  LloydSums(bool update_, std::size_t K, std::size_t D) : update(update_) {
    if (!update) return;
    S = py::array_t<double>({K, D});
    W = py::array_t<double>(K);
    s = S.mutable_data();
    w = W.mutable_data();
  }
  py::tuple tuple(double J) const {
    if (update) return py::make_tuple(S, W, J);
    return py::make_tuple(py::none(), py::none(), J);
  }
};

}  // namespace maxlik::bind
