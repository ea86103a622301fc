#!/usr/bin/env bash
# The whole test suite, set-up included. Trusts nothing installed on the machine: it makes a
# fresh virtual environment each run (build/test-venv) and installs into it only what the
# project declares — the build tools (requirements/build.txt), the test tools
# (requirements/test.txt) and the package itself with its `generate` and `eval` extras — so a package
# installed by hand anywhere can never hide a missing dependency. Then it runs the C++ tests
# (CTest) and pytest. GPU tests (tests/gpu) skip themselves without a GPU; scripts/gpu_check.sh
# runs them on a GPU machine. Chromium (Debian's) renders the `lvsa eval` HTML report in a
# headless browser test. Extra arguments go to pytest.
#
# Wheels are kept in a download cache outside any environment (LVSA_WHEEL_CACHE, default
# ~/.cache/lvsa/wheels): later runs download only what changed, and install offline from it.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
venv=build/test-venv
wheels="${LVSA_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/lvsa/wheels}"

echo "== set-up: build tools and Chromium (Debian packages)"
apt_packages=(cmake ninja-build g++ libgtest-dev libgmock-dev libbenchmark-dev python3-venv chromium)
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_=""; [ "$(id -u)" -eq 0 ] || sudo_="sudo"
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_ apt-get install -y -qq "${missing[@]}"
fi

echo "== set-up: a fresh virtual environment ($venv), wheels cached in $wheels"
mkdir -p build "$wheels"
python3 -m venv --clear "$venv"
py="$PWD/$venv/bin/python"
export PATH="$PWD/$venv/bin:$PATH" VIRTUAL_ENV="$PWD/$venv"  # as activated: the tests run `lvsa` as users do
# Keep pip's own configuration and user site out: only the cache below feeds this environment.
export PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
install() {  # install "$@" from the wheel cache, refreshing the cache first (offline: as it is)
  "$py" -m pip download --quiet --no-build-isolation -d "$wheels" "$@" \
    || echo "   (could not refresh the wheel cache; installing from it as it is)"
  "$py" -m pip install --quiet --no-build-isolation --no-index --find-links "$wheels" "$@"
}
install -r requirements/build.txt -r requirements/test.txt

echo "== C++: configure, build, ctest"
cmake -S . -B build/tests -G Ninja -DCMAKE_BUILD_TYPE=Release -DLVSA_CUDA=OFF \
  -DLVSA_BUILD_TESTS=ON -DLVSA_BUILD_BENCH=ON > build/tests.configure.log 2>&1 \
  || { cat build/tests.configure.log; exit 1; }
cmake --build build/tests -j "$jobs"
ctest --test-dir build/tests --output-on-failure -j "$jobs"

echo "== Python: install this tree with its generate and eval extras, pytest"
install ".[generate,eval]"
"$py" -m pytest -q tests/python tests/gpu "$@"
