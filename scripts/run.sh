#!/usr/bin/env bash
# Sets up, builds and runs the main job: trainer_demo on configs/default.yaml
# (an MLP trained on Fashion-MNIST, then sparsified after and during
# training), or on the config and overrides given, e.g.
#   ./scripts/run.sh configs/lossy_activations.yaml --output runs/lossy
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/build.sh --target trainer_demo
./build/trainer_demo/trainer_demo "$@"
