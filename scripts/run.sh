#!/usr/bin/env bash
# Sets up, builds and runs the main job: for now the example program that
# sparsifies a tensor, a parameter and an embedding table and prints the result.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build.sh --target data_sparsifier_example
./build/examples/data_sparsifier_example "$@"
