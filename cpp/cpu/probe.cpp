// Configure-time probe: prints the highest ISA level of the building CPU.
#include <cstdio>
#include "maxlik/cpu_features.hpp"
int main() { std::printf("%s\n", maxlik::cpu_host_level().c_str()); return 0; }
