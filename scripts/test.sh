#!/usr/bin/env bash
# Sets up, builds and runs the whole test-suite (CTest over GoogleTest, plus the
# comparison with PyTorch's reference and the installed-package check).
#
#   ./scripts/test.sh                 Release build in build/, every test
#   ./scripts/test.sh --sanitize      ASan + UBSan build in build-sanitize/, every test
#   (further arguments go to ctest, e.g. -R DataNorm)
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ "${1:-}" == "--sanitize" ]]; then
  shift
  ./scripts/setup.sh
  # Test discovery runs the test binary during the build: no leak report there.
  export ASAN_OPTIONS="detect_leaks=0"
  cmake -S . -B build-sanitize -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARSITY_SANITIZE=ON \
    -DSPARSITY_BUILD_TESTS=ON -DSPARSITY_BUILD_EXAMPLES=OFF -DSPARSITY_BUILD_BENCHMARKS=OFF
  cmake --build build-sanitize --parallel "${SPARSITY_JOBS:-2}"
  # Leaks are reported, except those of the uninstrumented libraries' static
  # state, listed with the reason in scripts/sanitizer/lsan.supp.
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_odr_violation=0"
  export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizer/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  ctest --test-dir build-sanitize --output-on-failure --parallel "${SPARSITY_JOBS:-2}" "$@"
  exit
fi

./scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "${SPARSITY_JOBS:-2}" "$@"
