// Import-time ISA check, compiled without -march so it runs on any x86-64 CPU.
#include <pybind11/pybind11.h>
#include "maxlik/cpu_features.hpp"
#include "maxlik_build_info.hpp"

PYBIND11_MODULE(_cpu, m) {
  m.doc() = "Instruction-set check for maxlik (baseline build).";
  m.attr("build_isa") = MAXLIK_BUILD_ISA;
  m.attr("compiler") = MAXLIK_CXX_ID;
  m.attr("compile_flags") = MAXLIK_CXX_FLAGS;
  m.def("host_isa", &maxlik::cpu_host_level, "Highest x86-64 level this CPU supports.");
  m.def("supports", &maxlik::cpu_supports_level, pybind11::arg("level"));
}
