#!/usr/bin/env bash
# Configures and builds sparsity in build/ (Release, Ninja, ccache), after
# installing what it needs. Used by run.sh and test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DSPARSITY_BUILD_TESTS=ON -DSPARSITY_BUILD_EXAMPLES=ON -DSPARSITY_BUILD_BENCHMARKS=ON
cmake --build build --parallel "${SPARSITY_JOBS:-2}" "$@"
