#!/usr/bin/env bash
# Whether the shipped CUDA kernels compile to the same PTX as at another revision: the check a
# kernel refactor gets when no GPU is at hand (identical PTX, identical machine code).
#
#   scripts/compare_ptx.sh REV [BUILD_DIR]
#
# BUILD_DIR is a configured build of this tree (default build/cudacheck): the instantiations its
# src/cuda/generated/fwd_kernels.hpp lists are the shipped ones. Each is compiled to PTX against this
# tree and against REV (a git worktree), and the two are compared after normalising the kernel's
# mangled name and the size of its parameter block (a field appended to FwdParams changes both,
# nothing else). Prints one line per instantiation; exits 1 if any differs.
set -euo pipefail
cd "$(dirname "$0")/.."
REV=${1:?usage: scripts/compare_ptx.sh REV [BUILD_DIR]}
BUILD=${2:-build/cudacheck}
NVCC=${NVCC:-nvcc}
WORK=$(mktemp -d)
trap 'git worktree remove --force "$WORK/old" >/dev/null 2>&1; rm -rf "$WORK"' EXIT
git worktree add -q --detach "$WORK/old" "$REV"

normalise() {
  grep -v '^//' "$1" | sed -E 's/_ZN4lvsa4cuda4sm[0-9]+10fwd_kernel[A-Za-z0-9_]*/KERNEL/g; s/KERNEL\[[0-9]+\]/KERNEL[N]/'
}

status=0
# The instantiations of the current configuration: the launchers fwd_kernels.hpp declares.
for name in $(grep -o 'void launch_fwd_[a-z0-9_]*' "$BUILD/src/cuda/generated/fwd_kernels.hpp" | sed 's/void launch_//'); do
  unit=$BUILD/src/cuda/generated/$name.cu
  case $name in *sm90*) arch=sm_90a ;; *) arch=sm_80 ;; esac
  for tree in "$PWD" "$WORK/old"; do
    tag=$([ "$tree" = "$PWD" ] && echo new || echo old)
    "$NVCC" -std=c++17 -O3 --use_fast_math -arch=$arch -ptx -I"$tree/src/cuda" -I"$tree/include" \
      -o "$WORK/$name.$tag.ptx" "$unit" 2>/dev/null &
  done
  wait || true
  if [ ! -s "$WORK/$name.old.ptx" ]; then
    echo "new        $name (does not compile at $REV)"
  elif diff -q <(normalise "$WORK/$name.old.ptx") <(normalise "$WORK/$name.new.ptx") >/dev/null; then
    echo "same       $name"
  else
    echo "DIFFERENT  $name ($(diff <(normalise "$WORK/$name.old.ptx") <(normalise "$WORK/$name.new.ptx") | grep -c '^[<>]') lines)"
    status=1
  fi
done
exit $status
