#include "common.hpp"

void register_losses(pybind11::module_& m) { (void)m; }
