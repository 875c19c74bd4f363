#include "common.hpp"

void register_mixture(pybind11::module_& m) { (void)m; }
