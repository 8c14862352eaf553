#!/usr/bin/env bash
# Builds and runs the libFuzzer targets of fuzz/ (Clang, ASan + UBSan) in
# build-fuzz/.
#
#   ./scripts/fuzz.sh --list             the target names, one a line
#   ./scripts/fuzz.sh TARGET SECONDS     fuzz TARGET for SECONDS
#   ./scripts/fuzz.sh --smoke [SECONDS]  every target for SECONDS (default 10), as CI does
#
# Each target starts from its seed corpus fuzz/corpus/TARGET (kept in the
# repository) and grows a working corpus in build-fuzz/corpus/TARGET. A crash,
# a sanitizer report, a leak or a timeout stops the run with a non-zero exit
# and leaves the input as build-fuzz/crash-* (libFuzzer's artifact).
set -euo pipefail
cd "$(dirname "$0")/.."

# The targets are those fuzz/CMakeLists.txt builds: one list, kept there.
read -r -a targets <<< "$(sed -n 's/^set(SPARSITY_FUZZ_TARGETS \(.*\))$/\1/p' fuzz/CMakeLists.txt)"
((${#targets[@]} > 0)) || { echo "fuzz: no SPARSITY_FUZZ_TARGETS in fuzz/CMakeLists.txt" >&2; exit 1; }

if [[ "${1:-}" == "--list" ]]; then
  printf '%s\n' "${targets[@]}"
  exit 0
fi

usage() {
  echo "usage: $0 --list | TARGET SECONDS | --smoke [SECONDS]" >&2
  exit 2
}

build() {
  ./scripts/setup.sh
  # The leaks libFuzzer checks for are our own: LibTorch's process-lifetime
  # state is suppressed as for the sanitizer build.
  CC=clang CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSPARSITY_FUZZ=ON \
    -DSPARSITY_BUILD_TESTS=OFF -DSPARSITY_BUILD_EXAMPLES=OFF -DSPARSITY_BUILD_BENCHMARKS=OFF \
    -DSPARSITY_BUILD_DEMO=OFF > build-fuzz.log 2>&1 || { cat build-fuzz.log >&2; exit 1; }
  cmake --build build-fuzz --parallel "${SPARSITY_JOBS:-2}" --target "${@/#/fuzz_}"
}

run() {
  local target=$1 seconds=$2
  mkdir -p "build-fuzz/corpus/$target"
  export ASAN_OPTIONS="detect_leaks=1:detect_odr_violation=0"
  export LSAN_OPTIONS="suppressions=$PWD/scripts/sanitizer/lsan.supp:print_suppressions=0"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  echo "fuzz: $target for ${seconds}s"
  "build-fuzz/fuzz/fuzz_$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix=build-fuzz/ \
    "build-fuzz/corpus/$target" "fuzz/corpus/$target"
}

case "${1:-}" in
  --smoke)
    seconds=${2:-10}
    build "${targets[@]}"
    for t in "${targets[@]}"; do run "$t" "$seconds"; done
    ;;
  "" | -*) usage ;;
  *)
    [[ $# -eq 2 && "$2" =~ ^[0-9]+$ ]] || usage
    printf '%s\n' "${targets[@]}" | grep -qx "$1" || { echo "unknown target '$1'; $0 --list" >&2; exit 2; }
    build "$1"
    run "$1" "$2"
    ;;
esac
