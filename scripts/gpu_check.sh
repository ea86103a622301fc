#!/usr/bin/env bash
# Build, test, sanitize and benchmark the CUDA backend on a GPU machine, in one go.
#
#   scripts/gpu_check.sh [stage ...]
#     stages: deps build selftest sanitize sanitize_py smoke test diffusers precision prologue variants ncu dit
#             flashinfer bench (default: build selftest sanitize test bench)
#     selftest:  the kernels against the CPU reference, each case on every kernel that takes it
#                (SELFTEST_ARGS, default --every-kernel)
#     sanitize:  compute-sanitizer memcheck, racecheck and synccheck on the selftest --small (the
#                cases on the kernels the cost model picks), then, with SANITIZE_KERNEL (a kernel's
#                table name, e.g. "sm90 bf16 d64 n224"), on that kernel too
#     sanitize_py: compute-sanitizer memcheck and racecheck on LVSA's kernels (names holding "lvsa") in
#                the pytest selection SANITIZE_TESTS: the kernels the selftest does not launch (the
#                sm90 kernels without the frame-pair code, which dense plans get; the QK prologue)
#     deps:      installs the wheels carried in .whl/ (diffusers, transformers, accelerate, pillow, ftfy and
#                what they need; the device has no internet), without touching its torch
#     smoke:     tests/gpu/sm90_smoke.py, diagnostics of the Hopper kernel (Hopper only)
#     diffusers: the diffusers integration tests on the GPU with the cuda backend (compiled: tests/gpu)
#                (LVSA_TEST_DEVICE=cuda LVSA_BACKEND=cuda; needs deps)
#     host:      bench/host_overhead.py, host time per lvsa.attention call (and of BEFORE_SRC)
#     precision: bench/compile_precision.py, compiled vs eager numerics at Wan 1.3B size (needs deps)
#     prologue:  bench/prologue.py, the fused QK prologue kernel's time and bandwidth at the models' shapes
#     variants:  builds and runs bench/cuda's lvsa_cuda_variants (kernel schedules side by side)
#     ncu:       Nsight Compute on the schedules named in NCU_VARIANTS (after variants; shape NCU_SHAPE),
#                pipe utilisation and warp stalls into ncu.txt, and the SASS instruction mix of
#                each sm90 kernel (cuobjdump) into sass_mix.txt
#     dit:       bench/dit.py, one whole transformer (Wan 2.1 1.3B at 81 and 161 frames): dense cuDNN,
#                FlexAttention and LVSA eager, dense cuDNN and LVSA compiled (about 6 minutes on an H200;
#                needs deps); DIT_ARGS replaces its arguments
#     flashinfer: installs FlashInfer from the wheels carried in .whl-flashinfer/ and the kernels prebuilt
#                into .flashinfer-cache/aot/ (scripts/flashinfer_prebuild.py; without them FlashInfer
#                JIT-compiles on first use, minutes per module), then tests/gpu/test_flashinfer_attention.py
#                and bench/attention.py with its FlashInfer column (FLASHINFER_BENCH_ARGS, default
#                "--flex none"); run after build (the tests and the bench need lvsa's CUDA module)
#
# Environment: BENCH_ARGS (extra arguments for bench/attention.py, e.g. "--flex none" or
# "--kernels sm80,sm90"), BEFORE_SRC (a source tree of an earlier version, e.g. from
# `git archive`: built alongside this one, and the bench stage times both in the same run,
# before first), VARIANT_SHAPES (default "121,1560,12,0 65,1590,16,1985"), VARIANTS_MATCH (build and
# time only the bench/cuda schedules whose name matches this regular expression, beside the shipped ones),
# VARIANT_REPS (reps per schedule, default 5: a burst, which at shapes under ~50 ms the card runs at
# clocks it does not hold under sustained load; docs/perf/cuda_sm90.md v10), VARIANT_ONLY (a comma list
# of schedule names, as printed: time only those, without the comparison against sm80), VARIANT_ROUNDS
# (times the shapes, in turn, this many times: an A/B that a drift of the card's clocks between two
# schedules cannot decide alone; default 1),
# GPU_TESTS (the test stage's pytest paths; default tests/gpu), TEST_TIMEOUT (seconds; default 540),
# OUT (folder that receives logs and bench JSON; default ./gpu_check_out).
# The last lines printed are a short summary table.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/gpu_check_out}
mkdir -p "$OUT"
STAGES=${*:-build selftest sanitize test bench}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}
export PYTHONUNBUFFERED=1
declare -A STATUS
want() { [[ " $STAGES " == *" $1 "* ]]; }
stamp() { date +%H:%M:%S; }

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader | tee "$OUT/env.txt"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)' | tee -a "$OUT/env.txt"

if want deps; then
  echo "[$(stamp)] deps"
  python3 -m pip install --no-index --find-links .whl diffusers transformers accelerate pillow ftfy >"$OUT/deps.log" 2>&1
  STATUS[deps]="rc=$? $(python3 -c 'import diffusers, transformers; print("diffusers", diffusers.__version__, "transformers", transformers.__version__)' 2>&1 | tail -1)"
fi

if [ -n "${BEFORE_SRC:-}" ]; then  # built in the background while this tree builds and tests
  BEFORE_DIR=$(mktemp -d)
  python3 -m pip install --no-build-isolation --no-deps --target "$BEFORE_DIR" "$BEFORE_SRC" \
    >"$OUT/before_build.log" 2>&1 &
  BEFORE_PID=$!
fi

BUILD_DIR=""
if want build; then
  echo "[$(stamp)] build"
  t0=$SECONDS
  if [ -f pyproject.toml ]; then
    python3 -m pip install --no-build-isolation --no-deps -v . >"$OUT/build.log" 2>&1
    rc=$?
  else
    cmake -S . -B build-gpu -G Ninja -DLVSA_BUILD_PYTHON=ON -DLVSA_BUILD_TESTS=OFF -DLVSA_BUILD_BENCH=OFF \
      >"$OUT/build.log" 2>&1 && cmake --build build-gpu >>"$OUT/build.log" 2>&1
    rc=$?
  fi
  STATUS[build]="rc=$rc $((SECONDS - t0))s"
  if [ $rc -ne 0 ]; then tail -40 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; fi
fi
# The selftest target lives in the same CMake tree as the Python build: reuse its objects.
for d in build/wheel-* build-gpu; do [ -f "$d/CMakeCache.txt" ] && BUILD_DIR=$d && break; done
SELFTEST=""
if [ -n "$BUILD_DIR" ] && (want selftest || want sanitize); then
  cmake --build "$BUILD_DIR" --target lvsa_cuda_selftest >>"$OUT/build.log" 2>&1
  SELFTEST=$(find "$BUILD_DIR" -name lvsa_cuda_selftest -type f | head -1)
fi

if want selftest && [ -n "$SELFTEST" ]; then
  echo "[$(stamp)] selftest"
  # shellcheck disable=SC2086
  "$SELFTEST" ${SELFTEST_ARGS:---every-kernel} 2>&1 | tee "$OUT/selftest.log"
  STATUS[selftest]="rc=${PIPESTATUS[0]} $(tail -1 "$OUT/selftest.log")"
fi

# sanitize NAME TOOL COMMAND...: COMMAND under compute-sanitizer's TOOL; its log appended to
# $OUT/NAME.log, its summary line (and pytest's, if any) in STATUS[NAME_TOOL].
sanitize() {
  local name=$1 tool=$2
  shift 2
  echo "[$(stamp)] compute-sanitizer $tool: $*"
  timeout 300 compute-sanitizer --tool "$tool" --error-exitcode 99 "$@" >"$OUT/${name}_one.log" 2>&1
  local rc=$?
  STATUS[${name}_$tool]="rc=$rc $(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$OUT/${name}_one.log" | tail -1) $(grep -E ' passed| failed' "$OUT/${name}_one.log" | tail -1)"
  { echo "=== $tool (rc=$rc)"; cat "$OUT/${name}_one.log"; } >>"$OUT/$name.log"
  tail -3 "$OUT/${name}_one.log"
  rm -f "$OUT/${name}_one.log"
}

if want sanitize && [ -n "$SELFTEST" ]; then
  for tool in memcheck racecheck synccheck; do
    sanitize sanitize "$tool" "$SELFTEST" --small
    [ -n "${SANITIZE_KERNEL:-}" ] && sanitize sanitize_kernel "$tool" "$SELFTEST" --small --kernel "$SANITIZE_KERNEL"
  done
fi

if want sanitize_py; then
  SANITIZE_TESTS=${SANITIZE_TESTS:-"tests/gpu/test_cuda_attention.py::test_kfi1_equals_dense tests/gpu/test_prologue_cuda.py::test_kernel_equals_reference"}
  for tool in memcheck racecheck; do
    # shellcheck disable=SC2086
    sanitize sanitize_py "$tool" --kernel-name kns=lvsa python3 -m pytest $SANITIZE_TESTS -q -p no:cacheprovider -x
  done
fi

if want smoke; then
  echo "[$(stamp)] sm90 smoke"
  timeout 150 python3 tests/gpu/sm90_smoke.py 2>&1 | tee "$OUT/smoke.log"
  STATUS[smoke]="rc=${PIPESTATUS[0]} $(tail -1 "$OUT/smoke.log")"
fi

if want test; then
  echo "[$(stamp)] pytest tests/gpu"
  # shellcheck disable=SC2086
  timeout "${TEST_TIMEOUT:-540}" python3 -m pytest ${GPU_TESTS:-tests/gpu} -q -p no:cacheprovider -rf 2>&1 |
    tee "$OUT/pytest.log"
  STATUS[test]="rc=${PIPESTATUS[0]} $(tail -1 "$OUT/pytest.log")"
fi

if want diffusers; then
  echo "[$(stamp)] diffusers tests on the GPU"
  LVSA_TEST_DEVICE=cuda LVSA_BACKEND=cuda python3 -m pytest tests/python/test_diffusers_models.py \
    tests/python/test_diffusers_pipelines.py tests/python/test_diffusers_enable.py \
    -q -p no:cacheprovider -rf 2>&1 | tee "$OUT/diffusers.log"
  STATUS[diffusers]="rc=${PIPESTATUS[0]} $(tail -1 "$OUT/diffusers.log")"
fi

if want precision; then
  echo "[$(stamp)] compiled vs eager precision"
  timeout 420 python3 bench/compile_precision.py --out "$OUT" 2>&1 | tee "$OUT/precision.log"
  STATUS[precision]="rc=${PIPESTATUS[0]}"
fi

if want host; then
  echo "[$(stamp)] host time per call"
  if [ -n "${BEFORE_SRC:-}" ]; then
    wait "$BEFORE_PID"
    PYTHONPATH="$BEFORE_DIR" python3 bench/host_overhead.py --calls 40 --name host_overhead_before --out "$OUT" \
      2>&1 | tee "$OUT/host.log"
  fi
  python3 bench/host_overhead.py --calls 40 --out "$OUT" 2>&1 | tee -a "$OUT/host.log"
  STATUS[host]="rc=${PIPESTATUS[0]}"
fi

if want prologue; then
  echo "[$(stamp)] prologue"
  timeout 180 python3 bench/prologue.py --out "$OUT" 2>&1 | tee "$OUT/prologue.log"
  STATUS[prologue]="rc=${PIPESTATUS[0]}"
fi

if want variants; then
  echo "[$(stamp)] variants"
  cmake -S . -B build-variants -G Ninja -DLVSA_BUILD_CUDA_VARIANTS=ON -DLVSA_BUILD_TESTS=OFF \
    -DLVSA_BUILD_BENCH=OFF "-DLVSA_CUDA_VARIANTS_MATCH=${VARIANTS_MATCH:-}" >"$OUT/variants_build.log" 2>&1 &&
    cmake --build build-variants --target lvsa_cuda_variants >>"$OUT/variants_build.log" 2>&1
  for _round in $(seq "${VARIANT_ROUNDS:-1}"); do
    for shape in ${VARIANT_SHAPES:-121,1560,12,0 65,1590,16,1985}; do
      timeout 120 build-variants/bench/cuda/lvsa_cuda_variants ${shape//,/ } "${VARIANT_REPS:-5}" ${VARIANT_ONLY:+"$VARIANT_ONLY"} 2>&1 |
        tee -a "$OUT/variants.log"
    done
  done
  STATUS[variants]="see variants.log"
fi

if want ncu && [ -x build-variants/bench/cuda/lvsa_cuda_variants ]; then
  NCU_SHAPE=${NCU_SHAPE:-121,1560,12,0}
  echo "[$(stamp)] ncu"
  # shellcheck disable=SC2086
  timeout 240 ncu --clock-control none --kernel-name-base demangled --kernel-name regex:sm90 \
    --section SpeedOfLight --section ComputeWorkloadAnalysis --section WarpStateStats \
    --section SchedulerStats --section InstructionStats --print-details all \
    build-variants/bench/cuda/lvsa_cuda_variants ${NCU_SHAPE//,/ } 1 \
    "${NCU_VARIANTS:-sm90 shipped}" >"$OUT/ncu.txt" 2>&1
  STATUS[ncu]="rc=$? $(grep -c 'fwd_kernel' "$OUT/ncu.txt") kernels profiled"
  # shellcheck disable=SC2086
  timeout 120 ncu --clock-control none --kernel-name-base demangled --kernel-name regex:sm90 --metrics \
    sm__inst_executed_pipe_xu.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_fma.avg.pct_of_peak_sustained_active,sm__inst_executed_pipe_alu.avg.pct_of_peak_sustained_active,sm__pipe_tensor_op_gmma_cycles_active.avg.pct_of_peak_sustained_active,smsp__issue_active.avg.pct_of_peak_sustained_active \
    build-variants/bench/cuda/lvsa_cuda_variants ${NCU_SHAPE//,/ } 1 "${NCU_VARIANTS:-sm90 shipped}" >"$OUT/ncu_pipes.txt" 2>&1
  ncu --query-metrics 2>&1 | grep -iE "pipe|inst_executed" >"$OUT/ncu_metrics.txt"
  cuobjdump --dump-sass build-variants/bench/cuda/lvsa_cuda_variants 2>/dev/null | python3 scripts/sass_mix.py \
    >"$OUT/sass_mix.txt" 2>&1
fi

if want dit; then
  echo "[$(stamp)] dit"
  # shellcheck disable=SC2086
  timeout 570 python3 bench/dit.py ${DIT_ARGS:---model wan2.1-1.3b --frames 81 161 --methods dense-cudnn flex \
    lvsa-cuda dense-cudnn:compile lvsa-cuda:compile --plot} 2>&1 | tee "$OUT/dit.log"
  STATUS[dit]="rc=${PIPESTATUS[0]}"
  latest=$(ls -t bench/results/dit_*.json 2>/dev/null | head -1)
  [ -n "$latest" ] && cp "$latest" "$OUT/" && cp "${latest%.json}.png" "$OUT/" 2>/dev/null
fi

if want flashinfer; then
  echo "[$(stamp)] flashinfer"
  # The package without its declared dependencies (CuTe DSL, cuDNN frontend, NCCL, cuda-python, ...:
  # the block-sparse wrapper, single prefill and merge_state never import them), then exactly what
  # importing that path needs, and ninja for the JIT where the machine has none.
  {
    python3 -m pip install --no-index --no-deps .whl-flashinfer/flashinfer_python-*.whl &&
      python3 -m pip install --no-index --no-deps --find-links .whl-flashinfer apache-tvm-ffi nvidia-ml-py \
        packaging requests certifi charset-normalizer idna urllib3 &&
      { command -v ninja || python3 -m pip install --no-index --no-deps --find-links .whl-flashinfer ninja; }
  } >"$OUT/flashinfer_install.log" 2>&1
  rc=$?
  export FLASHINFER_CUDA_ARCH_LIST=${FLASHINFER_CUDA_ARCH_LIST:-9.0a}
  export FLASHINFER_WORKSPACE_BASE=${FLASHINFER_WORKSPACE_BASE:-$PWD/.flashinfer-cache/workspace}
  export MAX_JOBS=${MAX_JOBS:-$(nproc)}
  if [ $rc -eq 0 ] && [ -d .flashinfer-cache/aot ]; then
    python3 scripts/flashinfer_prebuild.py --install .flashinfer-cache >>"$OUT/flashinfer_install.log" 2>&1
    rc=$?
  fi
  tail -3 "$OUT/flashinfer_install.log"
  python3 -m pytest tests/gpu/test_flashinfer_attention.py -q -p no:cacheprovider -rf 2>&1 |
    tee "$OUT/flashinfer_test.log"
  STATUS[flashinfer]="install rc=$rc, test rc=${PIPESTATUS[0]} $(tail -1 "$OUT/flashinfer_test.log")"
  # shellcheck disable=SC2086
  python3 bench/attention.py ${FLASHINFER_BENCH_ARGS:---flex none} --name attention_flashinfer 2>&1 |
    tee "$OUT/flashinfer_bench.log"
  STATUS[flashinfer_bench]="rc=${PIPESTATUS[0]}"
  latest=$(ls -t bench/results/attention_flashinfer_*.json 2>/dev/null | head -1)
  [ -n "$latest" ] && cp "$latest" "$OUT/"
fi

if want bench; then
  if [ -n "${BEFORE_SRC:-}" ]; then
    echo "[$(stamp)] bench (before: $BEFORE_SRC)"
    wait "$BEFORE_PID" 2>/dev/null; rc=$?; [ -f "$BEFORE_DIR/lvsa/__init__.py" ] && rc=0
    # shellcheck disable=SC2086
    [ $rc -eq 0 ] && PYTHONPATH="$BEFORE_DIR" python3 bench/attention.py ${BENCH_ARGS:-} --name before \
      2>&1 | tee "$OUT/bench_before.log"
    STATUS[bench_before]="build rc=$rc, bench rc=${PIPESTATUS[0]}"
    cp "$(ls -t bench/results/before_*.json | head -1)" "$OUT/" 2>/dev/null
  fi
  echo "[$(stamp)] bench"
  # shellcheck disable=SC2086
  python3 bench/attention.py ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench.log"
  STATUS[bench]="rc=${PIPESTATUS[0]}"
  # Only this run's JSON: the device returns at most 8 files.
  latest=$(ls -t bench/results/*.json 2>/dev/null | head -1)
  [ -n "$latest" ] && cp "$latest" "$OUT/"
fi

echo
echo "== gpu_check summary ($(stamp)) =="
for k in deps build selftest sanitize_memcheck sanitize_racecheck sanitize_synccheck sanitize_kernel_memcheck \
  sanitize_kernel_racecheck sanitize_kernel_synccheck sanitize_py_memcheck sanitize_py_racecheck smoke test diffusers host precision prologue variants ncu dit flashinfer flashinfer_bench bench_before bench; do
  [ -n "${STATUS[$k]:-}" ] && printf '%-20s %s\n' "$k" "${STATUS[$k]}"
done
if [ -f "$OUT/bench_before.log" ]; then
  echo "-- before"; sed -n '/^$/,$p' "$OUT/bench_before.log" | tail -8; echo "-- after"
fi
if want prologue && [ -f "$OUT/prologue.log" ]; then
  grep -A4 '^shape ' "$OUT/prologue.log"
fi
if want variants && [ -f "$OUT/variants.log" ]; then
  grep -E '^T=|^variant' "$OUT/variants.log" | sed -E 's/ +maxdiff.*//'
fi
if want dit && [ -f "$OUT/dit.log" ]; then
  sed -n '/^frames /,/^lvsa bench --dit: results/p' "$OUT/dit.log"
fi
if want flashinfer && [ -f "$OUT/flashinfer_bench.log" ]; then
  sed -n '/^$/,$p' "$OUT/flashinfer_bench.log" | tail -12
fi
if want bench && [ -f "$OUT/bench.log" ]; then
  sed -n '/^$/,$p' "$OUT/bench.log" | tail -12
fi
