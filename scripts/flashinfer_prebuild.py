"""Compile ahead of time the FlashInfer kernels ``backend="flashinfer"`` asks for, so that a GPU
machine skips FlashInfer's JIT (minutes per module) on its first call.

    FLASHINFER_CUDA_ARCH_LIST=9.0a MAX_JOBS=2 python3 scripts/flashinfer_prebuild.py [--dtypes bfloat16 float16]
        [--head-dims 128] [--out .flashinfer-cache]      # needs nvcc and ninja, no GPU
    python3 scripts/flashinfer_prebuild.py --install .flashinfer-cache   # on the GPU machine

Building compiles the modules LVSA's FlashInfer backend loads on a Hopper GPU (FA3 kernels):
the block-sparse wrapper's batch-prefill module, the single-prefill module of the encoder terms
(per dtype and head_dim) and the cascade module of ``merge_state_in_place``. FlashInfer's JIT
works in ``<out>/workspace`` (FLASHINFER_WORKSPACE_BASE); each finished library is copied to
``<out>/aot/<name>/<name>.so``, the layout of FlashInfer's ahead-of-time folder.

``--install`` copies those libraries into the installed package's ``flashinfer/data/aot``, where
FlashInfer loads a module without compiling or running ninja. The JIT folder itself would not
do: its ninja files hold this machine's absolute paths, so a machine with other paths rebuilds.
A library built here works with the same FlashInfer and apache-tvm-ffi versions and any Python.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

DTYPES = ("bfloat16", "float16")


def specs(dtypes, head_dims):
    """The JIT specs the backend's calls request on sm90a: exactly the arguments of
    BlockSparseAttentionWrapper.plan (int32 indices, no RoPE, window or soft cap),
    single_prefill_with_kv_cache and merge_state_in_place."""
    import torch
    from flashinfer.jit.attention import gen_batch_prefill_module, gen_single_prefill_module
    from flashinfer.jit.cascade import gen_cascade_module

    out = [gen_cascade_module()]
    for name in dtypes:
        dtype = getattr(torch, name)
        for d in head_dims:
            flags = (0, False, False, False)  # pos_encoding NONE, sliding window, soft cap, fp16 qk reduction
            out.append(gen_batch_prefill_module("fa3", dtype, dtype, dtype, torch.int32, d, d, *flags))
            out.append(gen_single_prefill_module("fa3", dtype, dtype, dtype, d, d, *flags))
    return out


def build(out: Path, dtypes, head_dims) -> int:
    if not os.environ.get("FLASHINFER_CUDA_ARCH_LIST"):
        sys.exit("flashinfer_prebuild: set FLASHINFER_CUDA_ARCH_LIST (9.0a for H100/H200): there may be no GPU "
                 "here to ask")
    # FlashInfer reads its workspace from the environment when it is imported.
    os.environ["FLASHINFER_WORKSPACE_BASE"] = str((out / "workspace").resolve())
    for spec in specs(dtypes, head_dims):
        began = time.perf_counter()
        spec.build(verbose=False)
        target = out / "aot" / spec.name / f"{spec.name}.so"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(spec.jit_library_path, target)
        print(f"flashinfer_prebuild: {spec.name}: {time.perf_counter() - began:.0f} s, "
              f"{target.stat().st_size / 2**20:.1f} MB -> {target}", flush=True)
    return 0


def install(cache: Path) -> int:
    import flashinfer
    from flashinfer.jit import env as jit_env

    libraries = sorted((cache / "aot").glob("*/*.so"))
    if not libraries:
        sys.exit(f"flashinfer_prebuild: no libraries under {cache / 'aot'}")
    for library in libraries:
        target = jit_env.FLASHINFER_AOT_DIR / library.parent.name / library.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(library, target)
        print(f"flashinfer_prebuild: {library.parent.name} -> {target}")
    print(f"flashinfer_prebuild: {len(libraries)} modules installed for flashinfer {flashinfer.__version__}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtypes", nargs="+", default=list(DTYPES), choices=DTYPES)
    p.add_argument("--head-dims", nargs="+", type=int, default=[128], choices=[64, 128])
    p.add_argument("--out", type=Path, default=Path(".flashinfer-cache"))
    p.add_argument("--install", type=Path, metavar="CACHE", help="install the libraries built into CACHE")
    args = p.parse_args(argv)
    if args.install is not None:
        return install(args.install)
    return build(args.out, args.dtypes, args.head_dims)


if __name__ == "__main__":
    sys.exit(main())
