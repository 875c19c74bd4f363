// The extension module: one register_<area>() per area (see DESIGN.md).
#include <pybind11/pybind11.h>

#include "maxlik/parallel.hpp"

namespace py = pybind11;

void register_special(py::module_& m);     // logsumexp, softmax, log_softmax
void register_gaussian(py::module_& m);    // Gaussian log-densities, Cholesky
void register_mixture(py::module_& m);     // EM block statistics for mixtures
void register_cluster(py::module_& m);     // k-means
void register_divergence(py::module_& m);  // entropies, KL
void register_losses(py::module_& m);      // cross-entropy & friends

PYBIND11_MODULE(_core, m) {
  m.doc() = "maxlik C++ kernels (private; use the maxlik package).";
  m.attr("build_isa") = MAXLIK_BUILD_ISA;
  m.def("get_num_threads", &maxlik::get_num_threads);
  m.def("set_num_threads", &maxlik::set_num_threads, py::arg("n"));
  m.attr("row_block") = maxlik::kRowBlock;
  register_special(m);
  register_gaussian(m);
  register_mixture(m);
  register_cluster(m);
  register_divergence(m);
  register_losses(m);
}
