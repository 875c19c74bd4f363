#include "common.hpp"

void register_cluster(pybind11::module_& m) { (void)m; }
