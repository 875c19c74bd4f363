#!/usr/bin/env bash
# Build the C++ core with AddressSanitizer + UndefinedBehaviorSanitizer
# (CMake option MAXLIK_SANITIZE) into a separate virtual environment, run the
# tests that reach the C++ kernels, and fail on any sanitizer report.
#
#   scripts/sanitize.sh                 # build (incremental) + run the default test set
#   scripts/sanitize.sh tests/test_x.py # build + run only these pytest arguments
#
# Environment:
#   MAXLIK_ASAN_PYTHON python whose environment gets the sanitized build (CI passes
#                      its own venv's python; it must have the test extras)
#   MAXLIK_ASAN_VENV   otherwise: a venv of its own, created with ".[test]" on
#                      first use, nothing taken from the system Python
#                      (default: build/asan-venv)
#   MAXLIK_ASAN_OPT    optimisation flags       (default: "-O1 -g"; sanitizers want
#                      -O1 for usable stacks; set "-O3 -g" to test the release code paths)
#   MAXLIK_ASAN_BUILD_DIR     CMake build directory (default: build/asan)
#   MAXLIK_ASAN_ISAS   instruction-set levels to build (CMake MAXLIK_ISAS; default:
#                      only the highest this CPU supports, the one the tests then
#                      run: a third of the cost of compiling all three)
#   MAXLIK_ASAN_SKIP_BUILD=1  reuse the existing build
#
# Cost on the 2-core shared dev machine: a cold build 4-12 min (load-dependent),
# an incremental one seconds to ~4 min; the default test set ~2-4 min.
#
# Why LD_PRELOAD: the Python interpreter is not instrumented, so the ASan
# runtime has to be loaded before anything else for its malloc/free
# interceptors to see every allocation. detect_leaks=0 because CPython
# deliberately leaks at exit; PYTHONMALLOC=malloc routes Python objects through
# the intercepted malloc so overflows into them are caught too.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
OPT="${MAXLIK_ASAN_OPT:--O1 -g}"
BUILD_DIR="${MAXLIK_ASAN_BUILD_DIR:-build/asan}"
LOG="$ROOT/$BUILD_DIR/sanitize.log"

# Highest x86-64 level of this CPU from /proc/cpuinfo (the same feature sets
# as cpp/include/maxlik/cpu_features.hpp); empty elsewhere = CMake's default.
host_level() {
  local f; f=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  has() { local x; for x in "$@"; do [[ "$f" == *" $x "* ]] || return 1; done; }
  if ! has pni ssse3 sse4_1 sse4_2 popcnt; then return; fi
  if ! has avx avx2 fma bmi1 bmi2 f16c abm movbe; then echo x86-64-v2; return; fi
  if ! has avx512f avx512bw avx512cd avx512dq avx512vl; then echo x86-64-v3; return; fi
  echo x86-64-v4
}
ISAS="${MAXLIK_ASAN_ISAS-$(host_level)}"

start=$(date +%s)
if [[ -n "${MAXLIK_ASAN_PYTHON:-}" ]]; then
  PY="$MAXLIK_ASAN_PYTHON"          # e.g. CI's own venv, test extras already installed
else
  VENV="${MAXLIK_ASAN_VENV:-$ROOT/build/asan-venv}"
  PY="$VENV/bin/python"
  if [[ ! -x "$PY" ]]; then         # a self-contained venv: nothing from the system Python
    python3 -m venv "$VENV"
    "$PY" -m pip install -q --upgrade pip
    "$PY" -m pip install -q "$ROOT[test]"
  fi
fi
if [[ "${MAXLIK_ASAN_SKIP_BUILD:-0}" != 1 ]]; then
  "$PY" -m pip install -q "scikit-build-core>=0.10" "pybind11>=3"
  "$PY" -m pip install --no-build-isolation --no-deps --force-reinstall -q "$ROOT" \
    -Cbuild-dir="$BUILD_DIR" \
    -Ccmake.build-type=Release \
    -Ccmake.define.CMAKE_INTERPROCEDURAL_OPTIMIZATION=OFF \
    -Ccmake.define.MAXLIK_SANITIZE=ON \
    "-Ccmake.define.MAXLIK_ISAS=$ISAS" \
    "-Ccmake.define.CMAKE_CXX_FLAGS_RELEASE=$OPT -DNDEBUG"
fi
built=$(date +%s)
echo "sanitize.sh: build took $((built - start)) s"

if [[ $# -gt 0 ]]; then
  TESTS=("$@")
else
  # Every test file that calls into maxlik._core (one list, shared with .ci/run).
  mapfile -t TESTS < <(grep -v '^\s*\(#\|$\)' "$ROOT/.ci/cxx-tests")
fi

ASAN_LIB="$(g++ -print-file-name=libasan.so)"
UBSAN_LIB="$(g++ -print-file-name=libubsan.so)"
mkdir -p "$(dirname "$LOG")"
# Reports go to files: pytest captures fd 2 per test,
# and a sanitizer that halts the process takes the captured report with it
# (exit 87 with no message). <prefix>.<pid> per reporting process.
REPORTS="$(dirname "$LOG")/reports"
rm -rf "$REPORTS"; mkdir -p "$REPORTS"
set +e
LD_PRELOAD="$ASAN_LIB:$UBSAN_LIB" \
ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:exitcode=86:strict_init_order=1:detect_stack_use_after_return=1:log_path=$REPORTS/asan" \
UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=87:log_path=$REPORTS/ubsan" \
PYTHONMALLOC=malloc \
MAXLIK_SANITIZED=1 \
  "$PY" -m pytest -q -p no:cacheprovider "${TESTS[@]}" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "sanitize.sh: tests took $((end - built)) s (total $((end - start)) s), pytest exit code $rc"

# A report printed by a subprocess (the fuzz/interrupt tests run candidates in
# child processes that inherit LD_PRELOAD) does not always change pytest's exit
# code, so also scan the output.
if compgen -G "$REPORTS/*" > /dev/null; then
  head -c 20000 "$REPORTS"/* >&2
  echo "sanitize.sh: SANITIZER REPORT FOUND (in $REPORTS)" >&2
  exit 1
fi
if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|SUMMARY: (Address|UndefinedBehavior)Sanitizer" "$LOG"; then
  echo "sanitize.sh: SANITIZER REPORT FOUND (see $LOG)" >&2
  exit 1
fi
if [[ $rc -ne 0 ]]; then
  echo "sanitize.sh: tests failed (exit $rc), see $LOG" >&2
  exit "$rc"
fi
echo "sanitize.sh: clean"
