// x86-64 micro-architecture level of the running CPU (the psABI levels:
// x86-64-v2 = SSE4.2+POPCNT, -v3 = AVX2+FMA+BMI, -v4 = AVX-512 F/BW/CD/DQ/VL).
// Compiled with baseline flags only: it runs in maxlik._cpu, which decides
// which per-level module (_core_v2/_v3/_v4) the running CPU may load.
// __builtin_cpu_supports also checks that the OS saves the AVX/AVX-512 state.
#pragma once
#include <string>

namespace maxlik {

inline bool cpu_supports_level(const std::string& level) {
#if defined(__x86_64__) || defined(_M_X64)
  __builtin_cpu_init();
  const bool v2 = __builtin_cpu_supports("sse3") && __builtin_cpu_supports("ssse3") &&
                  __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("sse4.2") &&
                  __builtin_cpu_supports("popcnt");
  const bool v3 = v2 && __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") &&
                  __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
                  __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("f16c") &&
                  __builtin_cpu_supports("lzcnt") && __builtin_cpu_supports("movbe");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
  if (level == "baseline") return true;
  if (level == "x86-64-v2") return v2;
  if (level == "x86-64-v3") return v3;
  if (level == "x86-64-v4") return v4;
  return false;
#else
  return level == "baseline";
#endif
}

inline std::string cpu_host_level() {
  for (const char* l : {"x86-64-v4", "x86-64-v3", "x86-64-v2"})
    if (cpu_supports_level(l)) return l;
  return "baseline";
}

}  // namespace maxlik
