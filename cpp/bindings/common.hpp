// Shared pybind11 glue helpers. Only glue: no numerics here.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
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

}  // namespace maxlik::bind
