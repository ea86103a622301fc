#!/usr/bin/env bash
# One device call for the Hopper kernel: build (wheel + variants tool), smoke check with
# diagnostics, tests/gpu for both kernel families, variant timings, bench with both families.
#
#   scripts/sm90_check.sh [stage ...]   stages: build smoke variants bench test (default: all; run in that order)
#
# Environment: OUT (logs, bench JSON), BENCH_CASES (default "wan:21,121 hunyuan:65"),
# VARIANT_SHAPES (default "121,1560,12,0 65,1590,16,1985"). Prints a short summary last.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/sm90_check_out}
mkdir -p "$OUT"
STAGES=${*:-build smoke test variants bench}
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
want() { [[ " $STAGES " == *" $1 "* ]]; }
declare -A ST
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"

if want build; then
  t0=$SECONDS
  python3 -m pip install --no-build-isolation --no-deps . >"$OUT/build.log" 2>&1 &
  pip_pid=$!
  cmake -S . -B build-variants -G Ninja -DLVSA_BUILD_CUDA_VARIANTS=ON -DLVSA_BUILD_TESTS=OFF \
    -DLVSA_BUILD_BENCH=OFF >"$OUT/variants_build.log" 2>&1 &&
    cmake --build build-variants --target lvsa_cuda_sm90_variants >>"$OUT/variants_build.log" 2>&1
  vrc=$?
  wait $pip_pid; prc=$?
  ST[build]="pip rc=$prc variants rc=$vrc $((SECONDS - t0))s"
  [ $prc -ne 0 ] && { tail -30 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; }
fi

ok=1
if want smoke; then
  timeout 150 python3 tests/gpu/sm90_smoke.py 2>&1 | tee "$OUT/smoke.log"
  rc=${PIPESTATUS[0]}; ST[smoke]="rc=$rc $(tail -1 "$OUT/smoke.log")"
  [ $rc -ne 0 ] && ok=0
fi

if want variants && [ $ok -eq 1 ] && [ -x build-variants/bench/cuda/lvsa_cuda_sm90_variants ]; then
  for shape in ${VARIANT_SHAPES:-121,1560,12,0 65,1590,16,1985}; do
    timeout 120 build-variants/bench/cuda/lvsa_cuda_sm90_variants ${shape//,/ } 5 2>&1 | tee -a "$OUT/variants.log"
  done
  ST[variants]="see variants.log"
fi

if want bench && [ $ok -eq 1 ]; then
  # shellcheck disable=SC2086
  timeout 300 python3 bench/attention.py --cases ${BENCH_CASES:-wan:21,121 hunyuan:65} --flex none \
    --skip-dense-flash --kernels sm80,sm90 --name "${BENCH_NAME:-sm90}" --out "$OUT" >"$OUT/bench.log" 2>&1
  ST[bench]="rc=$?"
fi

if want test && [ $ok -eq 1 ]; then
  timeout ${TEST_TIMEOUT:-420} python3 -m pytest tests/gpu -q -p no:cacheprovider -rf 2>&1 | tee "$OUT/pytest.log" | tail -25
  ST[test]="rc=${PIPESTATUS[0]} $(tail -1 "$OUT/pytest.log")"
fi

echo
echo "== sm90_check summary =="
for k in build smoke test variants bench; do [ -n "${ST[$k]:-}" ] && printf '%-9s %s\n' "$k" "${ST[$k]}"; done
[ -f "$OUT/variants.log" ] && grep -E "^T=|^variant" "$OUT/variants.log" | sed 's/  */ /g'
[ -f "$OUT/bench.log" ] && sed -n '/^per kernel family/,$p' "$OUT/bench.log"
