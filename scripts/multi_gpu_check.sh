#!/usr/bin/env bash
# Ulysses on a machine of 2+ GPUs, in one go: build, the NCCL equivalence test (2 and 4
# processes for every family; 3, 5 and 8 for head counts they do not divide, as many as there
# are GPUs), the scaling measurement at Wan 2.1 1.3B shapes (1, 2, 4, 8 GPUs: layer and whole
# step, T = 81 and 121; 12 heads on 8 GPUs split 2 and 1) and the diffusers integration tests
# on the GPU.
#
#   scripts/multi_gpu_check.sh            (OUT: folder for logs and JSON; default ./multi_gpu_out)
#   STAGES="nccl" scripts/multi_gpu_check.sh      (a subset of: nccl bench diffusers; default all,
#                                                  e.g. to fit one 10-minute command each)
#
# Wheels in .whl/ (diffusers and what the image lacks) are installed first when present. NVLink
# multicast stays off (NCCL_NVLS_ENABLE=0). The last lines printed are the summary and the table.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/multi_gpu_out}
STAGES=${STAGES:-nccl bench diffusers}
stage() { [[ " $STAGES " == *" $1 "* ]]; }
mkdir -p "$OUT"
export NCCL_NVLS_ENABLE=0 TORCH_SYMM_MEM_DISABLE_MULTICAST=1 NVSHMEM_DISABLE_NVLS=1 PYTHONUNBUFFERED=1
export MAX_JOBS=${MAX_JOBS:-32} CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-32}
declare -A STATUS
stamp() { date +%H:%M:%S; }

GPUS=$(nvidia-smi -L | wc -l)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$OUT/env.txt"
nvidia-smi topo -m >>"$OUT/env.txt" 2>&1

echo "[$(stamp)] wheels + build"
t0=$SECONDS
if ls .whl/diffusers-*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
    .whl/diffusers-*.whl .whl/importlib_metadata-*.whl .whl/zipp-*.whl && export PYTHONPATH=/tmp/site
fi
python3 -m pip install --no-build-isolation --no-deps . >"$OUT/build.log" 2>&1
rc=$?
STATUS[build]="rc=$rc $((SECONDS - t0))s"
if [ $rc -ne 0 ]; then tail -40 "$OUT/build.log"; echo "BUILD FAILED"; exit 1; fi
python3 -c 'import diffusers, lvsa._cuda; print("diffusers", diffusers.__version__)' | tee -a "$OUT/env.txt"

if stage nccl; then
  echo "[$(stamp)] NCCL equivalence (tests/python/test_parallel.py, LVSA_TEST_DEVICE=cuda)"
  t0=$SECONDS
  LVSA_TEST_DEVICE=cuda timeout 420 python3 -m pytest -q -p no:cacheprovider -rf tests/python/test_parallel.py \
    2>&1 | tee "$OUT/test_parallel.log"
  STATUS[nccl_test]="rc=${PIPESTATUS[0]} $((SECONDS - t0))s $(tail -1 "$OUT/test_parallel.log")"
fi

if stage bench; then
  echo "[$(stamp)] scaling"
  rm -f "$OUT/parallel.jsonl"
  for n in 1 2 4 8; do
    [ "$n" -le "$GPUS" ] || continue
    t0=$SECONDS
    timeout 170 python3 -m torch.distributed.run --nproc-per-node "$n" bench/parallel.py --out "$OUT/parallel.jsonl" \
      --step 2>&1 | tee -a "$OUT/bench.log" | grep -v '^\[rank' | tail -4
    STATUS[bench_$n]="rc=${PIPESTATUS[0]} $((SECONDS - t0))s"
  done
fi

if stage diffusers; then
  echo "[$(stamp)] diffusers integration tests on the GPU (LVSA_TEST_DEVICE=cuda LVSA_BACKEND=cuda)"
  t0=$SECONDS
  LVSA_TEST_DEVICE=cuda LVSA_BACKEND=cuda timeout 150 python3 -m pytest -q -p no:cacheprovider -rf \
    tests/python/test_diffusers_models.py tests/python/test_diffusers_enable.py tests/python/test_diffusers_pipelines.py \
    2>&1 | tee "$OUT/test_diffusers_gpu.log"
  STATUS[diffusers_gpu]="rc=${PIPESTATUS[0]} $((SECONDS - t0))s $(tail -1 "$OUT/test_diffusers_gpu.log")"
fi

echo
echo "== multi_gpu_check summary ($(stamp), $GPUS GPUs) =="
for k in build nccl_test bench_1 bench_2 bench_4 bench_8 diffusers_gpu; do
  [ -n "${STATUS[$k]:-}" ] && printf '%-14s %s\n' "$k" "${STATUS[$k]}"
done
if [ -s "$OUT/parallel.jsonl" ]; then
  card=$(python3 -c 'import torch; print(torch.cuda.get_device_name(0).replace(" ", "_"))')
  python3 bench/parallel.py --report "$OUT/parallel.jsonl" --json "$OUT/parallel_${card}_$(date +%F).json"
fi
