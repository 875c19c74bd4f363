// The extension module: one register_<area>() per area (see DESIGN.md).
// CMake compiles this file and every register_*.cpp once per instruction-set
// level, each copy its own module named MAXLIK_MODULE_NAME (_core_v2, _core_v3,
// _core_v4, or _core_baseline); maxlik/__init__.py imports one as maxlik._core.
#include <pybind11/pybind11.h>

#include "maxlik/parallel.hpp"
#include "maxlik/simd.hpp"

namespace py = pybind11;

namespace {

// Ctrl-C inside a long kernel: Python's C-level SIGINT handler only sets a
// flag that the interpreter reads when it next runs bytecode, i.e. after the
// kernel returns (28 s for one full-covariance E-step on 1e6 x 50 rows, K=50).
// parallel_for polls this hook from its calling thread every ~20 ms instead.
// Signals are handled only on Python's main thread, so other threads never
// take the GIL here. PyErr_CheckSignals runs the Python-level handler; if it
// raised (KeyboardInterrupt by default) the error is stashed, the kernel
// stops, and the translator below re-raises it.
unsigned long g_main_thread = 0;
thread_local PyObject* g_pending[3] = {nullptr, nullptr, nullptr};

bool python_interrupt_check() {
  if (PyThread_get_thread_ident() != g_main_thread) return false;
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() == 0) return false;
  PyErr_Fetch(&g_pending[0], &g_pending[1], &g_pending[2]);
  return true;
}

}  // namespace

void register_special(py::module_& m);     // logsumexp, softmax, log_softmax
void register_gaussian(py::module_& m);    // Gaussian log-densities, Cholesky
void register_mixture(py::module_& m);     // EM block statistics for mixtures
void register_mixture_missing(py::module_& m);  // EM with missing values (NaN)
void register_cluster(py::module_& m);     // k-means
void register_divergence(py::module_& m);  // entropies, KL
void register_losses(py::module_& m);      // cross-entropy & friends
void register_sparse(py::module_& m);      // CSR row-block kernels

#ifndef MAXLIK_MODULE_NAME
#error "MAXLIK_MODULE_NAME (the module's name, e.g. _core_v3) is set by CMakeLists.txt"
#endif

PYBIND11_MODULE(MAXLIK_MODULE_NAME, m) {
  m.doc() = "maxlik C++ kernels (private; use the maxlik package).";
  m.attr("build_isa") = MAXLIK_BUILD_ISA;
  m.attr("compile_flags") = MAXLIK_CXX_FLAGS;
  m.def("get_num_threads", &maxlik::get_num_threads);
  m.def("set_num_threads", &maxlik::set_num_threads, py::arg("n"));
  m.attr("row_block") = maxlik::kRowBlock;
  m.attr("simd_bytes") = maxlik::simd::kVecBytes;
  g_main_thread = py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  maxlik::set_interrupt_check(&python_interrupt_check);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const maxlik::interrupted&) {
      if (g_pending[0] != nullptr) {
        PyErr_Restore(g_pending[0], g_pending[1], g_pending[2]);
        g_pending[0] = g_pending[1] = g_pending[2] = nullptr;
      } else {
        PyErr_SetNone(PyExc_KeyboardInterrupt);
      }
    }
  });
  register_special(m);
  register_gaussian(m);
  register_mixture(m);
  register_mixture_missing(m);
  register_cluster(m);
  register_divergence(m);
  register_losses(m);
  register_sparse(m);
}
