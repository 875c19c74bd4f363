// Glue for logsumexp / softmax / log_softmax. The Python layer reshapes the
// input into a genuine 3-D numpy view (batch, output, reduced axis); numpy has
// validated that view, so reading it through its own shape and strides can
// never go out of bounds.
#include <optional>

#include <pybind11/complex.h>

#include "common.hpp"
#include "maxlik/logsumexp.hpp"
#include "maxlik/logsumexp_complex.hpp"

namespace py = pybind11;
using maxlik::bind::require;

namespace {

template <class T> maxlik::lse::View<T> view3(const py::array& a, const char* name) {
  require(a.ndim() == 3, std::string(name) + ": internal error, expected a 3-D view");
  for (int d = 0; d < 3; ++d)
    require(a.strides(d) % static_cast<py::ssize_t>(sizeof(T)) == 0,
            std::string(name) + ": strides must be multiples of the item size");
  return {static_cast<const T*>(a.data()), static_cast<std::size_t>(a.shape(0)),
          static_cast<std::size_t>(a.shape(1)), static_cast<std::size_t>(a.shape(2)),
          maxlik::bind::elem_stride<T>(a, 0), maxlik::bind::elem_stride<T>(a, 1),
          maxlik::bind::elem_stride<T>(a, 2)};
}

template <class T>
py::tuple lse_impl(const py::array& a, const std::optional<py::array>& b, bool return_sign) {
  auto v = view3<T>(a, "a");
  require(v.si == 1 || v.so == 1 || v.no <= 1, "a: internal error, unsupported layout");
  maxlik::lse::View<T> bv{nullptr, 0, 0, 0, 0, 0, 0};
  if (b) {
    require(b->dtype().is(py::dtype::of<T>()), "b: dtype must match a");
    bv = view3<T>(*b, "b");
    require(bv.nb == v.nb && bv.no == v.no && bv.L == v.L, "b: shape must match a");
    if (v.si == 1) require(bv.si == 1 || bv.si == 0, "b: layout must match a");
    else require(bv.so == 1 || v.no <= 1, "b: layout must match a");
  }
  const std::size_t n_out = v.nb * v.no;
  py::array_t<T> out(static_cast<py::ssize_t>(n_out));
  py::array_t<T> sign(static_cast<py::ssize_t>(return_sign ? n_out : 0));
  T* po = out.mutable_data();
  T* ps = return_sign ? sign.mutable_data() : nullptr;
  {
    // Safe without the GIL: only raw buffers kept alive by a, b, out are touched.
    py::gil_scoped_release release;
    maxlik::lse::logsumexp<T>(v, bv.p, bv.sb, bv.so, bv.si, po, ps, return_sign);
  }
  if (return_sign) return py::make_tuple(out, sign);
  return py::make_tuple(out, py::none());
}

template <class T> void softmax_impl(const py::array& a, py::array& out, bool log_) {
  auto v = view3<T>(a, "x");
  require(v.si == 1 || v.so == 1 || v.no <= 1, "x: internal error, unsupported layout");
  require(out.dtype().is(py::dtype::of<T>()) && out.writeable(), "out: must be a writeable array of x's dtype");
  auto o = view3<T>(out, "out");
  require(o.nb == v.nb && o.no == v.no && o.L == v.L, "out: shape must match x");
  T* po = static_cast<T*>(out.mutable_data());
  py::gil_scoped_release release;  // raw buffers only, see above
  maxlik::lse::softmax<T>(v, o, po, log_);
}

// Complex input: the Python layer passes C-contiguous (rows, L) arrays.
template <class T>
py::tuple lse_complex_impl(const py::array& a, const std::optional<py::array>& b, bool return_sign) {
  using C = std::complex<T>;
  auto ac = py::array_t<C, py::array::c_style>::ensure(a);
  require(ac && ac.ndim() == 2, "a: internal error, expected a C-contiguous 2-D complex array");
  const auto n_rows = static_cast<std::size_t>(ac.shape(0)), L = static_cast<std::size_t>(ac.shape(1));
  py::array_t<C, py::array::c_style> bc;
  if (b) {
    require(b->dtype().is(ac.dtype()) && (b->flags() & py::array::c_style) && b->ndim() == 2 &&
                static_cast<std::size_t>(b->shape(0)) == n_rows && static_cast<std::size_t>(b->shape(1)) == L,
            "b: internal error, expected a C-contiguous array like a");
    bc = py::array_t<C, py::array::c_style>::ensure(*b);
  }
  py::array_t<C> res(static_cast<py::ssize_t>(n_rows));
  py::array_t<C> sgn(static_cast<py::ssize_t>(return_sign ? n_rows : 0));
  const C* pa = ac.data();
  const C* pb = b ? bc.data() : nullptr;
  C* pr = res.mutable_data();
  C* ps = return_sign ? sgn.mutable_data() : nullptr;
  {
    py::gil_scoped_release release;  // raw buffers kept alive by ac, bc, res, sgn
    maxlik::lse::cplx::logsumexp_rows<T>(pa, pb, n_rows, L, return_sign, pr, ps);
  }
  if (return_sign) return py::make_tuple(res, sgn);
  return py::make_tuple(res, py::none());
}

}  // namespace

void register_special(py::module_& m) {
  m.def(
      "logsumexp",
      [](const py::array& a, const std::optional<py::array>& b, bool return_sign) {
        if (a.dtype().is(py::dtype::of<double>())) return lse_impl<double>(a, b, return_sign);
        if (a.dtype().is(py::dtype::of<float>())) return lse_impl<float>(a, b, return_sign);
        throw py::type_error("a: dtype must be float32 or float64");
      },
      py::arg("a"), py::arg("b"), py::arg("return_sign"));
  m.def(
      "logsumexp_complex",
      [](const py::array& a, const std::optional<py::array>& b, bool return_sign) {
        if (a.dtype().is(py::dtype::of<std::complex<double>>())) return lse_complex_impl<double>(a, b, return_sign);
        if (a.dtype().is(py::dtype::of<std::complex<float>>())) return lse_complex_impl<float>(a, b, return_sign);
        throw py::type_error("a: dtype must be complex64 or complex128");
      },
      py::arg("a"), py::arg("b"), py::arg("return_sign"));
  m.def(
      "softmax",
      [](const py::array& a, py::array& out, bool log_) {
        if (a.dtype().is(py::dtype::of<double>())) return softmax_impl<double>(a, out, log_);
        if (a.dtype().is(py::dtype::of<float>())) return softmax_impl<float>(a, out, log_);
        throw py::type_error("x: dtype must be float32 or float64");
      },
      py::arg("x"), py::arg("out"), py::arg("log"));
}
