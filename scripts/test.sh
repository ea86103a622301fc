#!/usr/bin/env bash
# The whole test suite, set-up included: installs what is missing (Debian packages, then
# requirements/test.txt), runs the C++ tests (CTest), installs the Python package from this
# tree and runs its tests. GPU tests (tests/gpu) skip themselves without a GPU;
# scripts/gpu_check.sh runs them on a GPU machine. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)

echo "== set-up: build tools and test dependencies"
apt_packages=(cmake ninja-build g++ libgtest-dev libgmock-dev libbenchmark-dev)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}"
fi
python3 -m pip install --quiet -r requirements/test.txt
mkdir -p build

echo "== C++: configure, build, ctest"
cmake -S . -B build/tests -G Ninja -DCMAKE_BUILD_TYPE=Release -DLVSA_CUDA=OFF \
  -DLVSA_BUILD_TESTS=ON -DLVSA_BUILD_BENCH=ON > build/tests.configure.log 2>&1 \
  || { cat build/tests.configure.log; exit 1; }
cmake --build build/tests -j "$jobs"
ctest --test-dir build/tests --output-on-failure -j "$jobs"

echo "== Python: install this tree, pytest"
python3 -m pip install --quiet --no-build-isolation --no-deps .
python3 -m pytest -q tests/python tests/gpu "$@"
