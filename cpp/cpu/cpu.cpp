// CPU check and build facts, compiled without -march so it runs on any x86-64
// CPU: `import maxlik` asks it which level to load before loading any level.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "maxlik/cpu_features.hpp"
#include "maxlik_build_info.hpp"

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "Instruction-set check for maxlik (baseline build).";
  m.attr("compiler") = MAXLIK_CXX_ID;
  m.attr("isas_compiled") = pybind11::tuple(pybind11::cast(std::vector<std::string>{MAXLIK_ISAS_LIST}));
  m.def("host_isa", &maxlik::cpu_host_level, "Highest x86-64 level this CPU supports.");
  m.def("supports", &maxlik::cpu_supports_level, pybind11::arg("level"),
        "Whether this CPU can run code compiled for `level` (baseline, x86-64-v2/-v3/-v4).");
}
