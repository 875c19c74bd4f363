# Type stub for maxlik._cpu (cpp/cpu/cpu.cpp): the CPU check, compiled with
# baseline flags so it runs on any x86-64 CPU.
compiler: str
isas_compiled: tuple[str, ...]

def host_isa() -> str: ...
def supports(level: str) -> bool: ...
