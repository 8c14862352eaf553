#!/usr/bin/env bash
# Installs the Debian packages sparsity needs, only those that are missing.
# Runs apt-get as root, through sudo otherwise. Safe to run repeatedly.
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libtorch-dev libgloo-dev libyaml-cpp-dev libfmt-dev libspdlog-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-torch
  zlib1g-dev dataset-fashion-mnist libcli11-dev
  libopenblas0-openmp
  clang libclang-rt-14-dev
  libjs-chart.js chromium
)

missing=()
for p in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

# LibTorch calls whatever libblas.so.3 Debian's alternatives point to. The
# OpenMP OpenBLAS shares LibTorch's thread pool; the pthreads build, when also
# installed, outranks it and oversubscribes the cores (an epoch 5x slower at 2
# threads, bench/README.md), so say how to choose the OpenMP one.
check_blas() {
  local triplet current
  triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -dumpmachine)
  current=$(update-alternatives --query "libblas.so.3-$triplet" 2>/dev/null | sed -n 's/^Value: //p')
  if [[ -n "$current" && "$current" != */openblas-openmp/* ]]; then
    echo "setup: warning: libblas.so.3 is $current, not the OpenMP OpenBLAS; to use it:" >&2
    echo "  sudo update-alternatives --set libblas.so.3-$triplet /usr/lib/$triplet/openblas-openmp/libblas.so.3" >&2
  fi
}

if ((${#missing[@]} == 0)); then
  echo "setup: all ${#packages[@]} packages already installed"
  check_blas
  exit 0
fi

if [[ $(id -u) -eq 0 ]]; then sudo=(); else sudo=(sudo); fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
check_blas
