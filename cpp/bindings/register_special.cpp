#include "common.hpp"

void register_special(pybind11::module_& m) { (void)m; }
