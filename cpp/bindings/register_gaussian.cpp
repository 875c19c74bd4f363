#include "common.hpp"

void register_gaussian(pybind11::module_& m) { (void)m; }
