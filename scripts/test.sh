#!/usr/bin/env bash
# The whole test suite, set-up included. Trusts nothing installed on the machine: it makes a
# fresh virtual environment each run (build/test-venv) and installs into it only what the
# project declares — the build tools (requirements/build.txt), the test tools
# (requirements/test.txt) and the package itself with its `generate` and `eval` extras — so a package
# installed by hand anywhere can never hide a missing dependency. Then it runs the C++ tests
# (CTest) and pytest. GPU tests (tests/gpu) skip themselves without a GPU; scripts/gpu_check.sh
# runs them on a GPU machine. Chromium (Debian's) renders the `lvsa eval` HTML report in a
# headless browser test. Extra arguments go to the core pytest run. Last, the vLLM-Omni
# plugin's tests run in an environment of their own (build/vllm-omni-venv: vLLM-Omni pins its own
# torch and diffusers), with the same lvsa wheel; LVSA_TEST_VLLM_OMNI=0 skips them locally.
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
mkdir -p build/dist "$wheels"
python3 -m venv --clear "$venv"
py="$PWD/$venv/bin/python"
export PATH="$PWD/$venv/bin:$PATH" VIRTUAL_ENV="$PWD/$venv"  # as activated: the tests run `lvsa` as users do
# Keep pip's own configuration and user site out: only the cache below feeds this environment.
export PIP_CONFIG_FILE=/dev/null PYTHONNOUSERSITE=1 PIP_DISABLE_PIP_VERSION_CHECK=1
install() {  # install PYTHON CACHE ARGS...: from the wheel cache, refreshed first (offline: as it is)
  local python="$1" cache="$2"; shift 2
  "$python" -m pip download --quiet --no-build-isolation -d "$cache" --find-links build/dist "$@" \
    || echo "   (could not refresh the wheel cache; installing from it as it is)"
  rm -f "$cache"/lvsa-*.whl  # this tree's wheel is copied there too: never let a stale one in
  "$python" -m pip install --quiet --no-build-isolation --no-index --find-links "$cache" --find-links build/dist "$@"
}
install "$py" "$wheels" -r requirements/build.txt -r requirements/test.txt

echo "== C++: configure, build, ctest"
# LVSA_CUDA=AUTO: with nvcc on the PATH the CUDA library is built too, and its host-side tests run
# (argument checks, query tiling and kernel choice, the kernels' key walk); none needs a GPU.
cmake -S . -B build/tests -G Ninja -DCMAKE_BUILD_TYPE=Release -DLVSA_CUDA=AUTO \
  -DLVSA_BUILD_TESTS=ON -DLVSA_BUILD_BENCH=ON > build/tests.configure.log 2>&1 \
  || { cat build/tests.configure.log; exit 1; }
cmake --build build/tests -j "$jobs"
ctest --test-dir build/tests --output-on-failure -j "$jobs"

echo "== Python: this tree's wheel, installed with its generate and eval extras; pytest"
rm -rf build/dist
"$py" -m pip wheel --quiet --no-deps --no-build-isolation -w build/dist .
lvsa_wheel=$(ls build/dist/lvsa-*.whl)
install "$py" "$wheels" "$lvsa_wheel[generate,eval]"
"$py" -m pytest -q tests/python tests/gpu "$@"

[ "${LVSA_TEST_VLLM_OMNI:-1}" = 0 ] && { echo "== vLLM-Omni plugin: skipped (LVSA_TEST_VLLM_OMNI=0)"; exit 0; }
echo "== vLLM-Omni plugin: its own environment (build/vllm-omni-venv), vLLM-Omni 0.30.0, pytest"
plugin=plugins/vllm_omni
vvenv=build/vllm-omni-venv
python3 -m venv --clear "$vvenv"
vpy="$PWD/$vvenv/bin/python"
plugin_build=$("$vpy" -c "import tomllib; print(*tomllib.load(open('$plugin/pyproject.toml', 'rb'))['build-system']['requires'])")
install "$vpy" "$wheels/vllm-omni" $plugin_build
install "$vpy" "$wheels/vllm-omni" "$lvsa_wheel" "./$plugin[test]"
(cd "$plugin" && PATH="$PWD/../../$vvenv/bin:$PATH" VIRTUAL_ENV="$PWD/../../$vvenv" "$vpy" -m pytest -q tests)
