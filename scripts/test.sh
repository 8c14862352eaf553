#!/usr/bin/env bash
# Sets up, builds and runs the whole test-suite (CTest over GoogleTest, plus the
# comparison with PyTorch's reference and the installed-package check).
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build.sh
ctest --test-dir build --output-on-failure --parallel "${SPARSITY_JOBS:-2}" "$@"
