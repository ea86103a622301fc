"""Where one forward's GPU time goes: the CUDA kernels of one run under ``torch.profiler``,
summed by kind, for ``lvsa bench --dit --profile`` (the before/after of work around the kernel).

The kinds are read from kernel names, which belong to the libraries that launch them (cuBLAS,
cuDNN, inductor, LVSA): the first pattern a name matches decides, and the ten longest kernels
are kept by name so that a misfiled one shows.
"""

from __future__ import annotations

import re

import torch

# kind -> kernel-name pattern, in the order they are tried. Inductor names its fused pointwise and
# reduction kernels after the ops they fuse (``triton_red_fused__to_copy_add_mul_native_layer_norm``,
# ``..._scaled_dot_product_cudnn_attention_permute``), so those are elementwise whatever they name;
# its templates (``triton_tem_``: FlexAttention, matmuls) are matched by what follows.
KINDS = {
    "elementwise/other": r"^triton_(poi|red|per)_",
    "prologue": r"norm_rope",
    "attention": r"lvsa|fmha|flash|cudnn|attention|flex|triton_tem_fused|sdpa|sm90_kernel|sm80_kernel",
    "gemm": r"gemm|nvjet|cutlass|xmma|cublas|_mm_|splitk",
    "copy": r"copy|cat|elementwise_kernel_with_index|index",
}


def kind_of(name: str) -> str:
    lowered = name.lower()
    return next((kind for kind, pattern in KINDS.items() if re.search(pattern, lowered)), "elementwise/other")


def profile(fn) -> dict:
    """Milliseconds of GPU kernel time per kind for one call of ``fn``, and the ten longest kernels."""
    activities = [torch.profiler.ProfilerActivity.CUDA]
    with torch.profiler.profile(activities=activities) as prof:
        fn()
        torch.cuda.synchronize()
    by_kind: dict[str, float] = {}
    kernels = []
    for event in prof.key_averages():
        ms = getattr(event, "self_device_time_total", getattr(event, "self_cuda_time_total", 0.0)) / 1e3
        if ms <= 0:
            continue
        kind = kind_of(event.key)
        by_kind[kind] = by_kind.get(kind, 0.0) + ms
        kernels.append((ms, event.key, event.count))
    kernels.sort(reverse=True)
    return dict(kinds_ms={k: round(v, 2) for k, v in sorted(by_kind.items())},
                total_ms=round(sum(by_kind.values()), 2),
                top=[dict(ms=round(ms, 2), calls=count, kernel=name[:160]) for ms, name, count in kernels[:10]])
