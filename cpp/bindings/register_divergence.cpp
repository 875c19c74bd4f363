#include "common.hpp"

void register_divergence(pybind11::module_& m) { (void)m; }
