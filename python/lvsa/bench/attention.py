"""``lvsa bench``: dense vs LVSA attention at a real model's geometry, no weights needed.

On a GPU the geometry is the model's own; on the CPU the spatial size and head count are
scaled down (the frame structure, which decides the sparsity, is kept) so a run takes well
under a minute. For each length it times every dense attention the device has — PyTorch SDPA
with each of its GPU kernels (cuDNN, flash, memory-efficient) on a GPU, PyTorch SDPA on the
CPU — and LVSA with the sparse plan, and reports each method's time, the speedup over the
FASTEST dense method (the baseline a user would otherwise run), the ideal speedup 1/density,
the share of it achieved, and the largest error against the exact reference (CPU) or a
float32 masked dense computation (GPU). LVSA's own kernel on a dense plan (keyframe interval
1) is listed too, as a method, never as the baseline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import datetime, timezone

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..ops import attention
from ..plan import Geometry, PatternConfig, Planner, preset
from .results import cpu_name


def _parse(argv):
    p = argparse.ArgumentParser(prog="lvsa bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="wan2.1-1.3b", help="model preset (default wan2.1-1.3b)")
    p.add_argument("--frames", type=int, nargs="+", default=None,
                   help="video frame counts (default: 1x, 4x and 6x the model's reference length)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backend", default="auto")
    p.add_argument("--dtype", default=None, choices=["float32", "float16", "bfloat16"],
                   help="default: bfloat16 on GPU, float32 on CPU")
    p.add_argument("--tokens-per-frame", type=int, default=None,
                   help="override P (default: the model's on GPU, 48 on CPU)")
    p.add_argument("--heads", type=int, default=None, help="default: the model's on GPU, 2 on CPU")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--json", dest="json_path", default=None, help="also write the results here")
    return p.parse_args(argv)


def _time(fn, device, repeats):
    fn()  # warm-up: plan upload, kernel load
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# Dense baselines: PyTorch SDPA on [B, H, S, D] views of the [B, S, H, D] tensors (as diffusers
# calls it), pinned to one kernel each on a GPU.
_GPU_DENSE = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION,
              "efficient": SDPBackend.EFFICIENT_ATTENTION}


def _dense_methods(device) -> dict:
    def sdpa(kernel):
        def run(q, k, v):
            if kernel is None:
                return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
            with sdpa_kernel(kernel):
                return F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return run

    if device.type == "cuda":
        return {f"sdpa_{name}": sdpa(kernel) for name, kernel in _GPU_DENSE.items()}
    return {"sdpa": sdpa(None)}


def _time_dense(methods, q, k, v, device, repeats) -> dict:
    """Median seconds per dense method; a kernel that cannot take these inputs is left out,
    with its reason printed."""
    times = {}
    for name, run in methods.items():
        try:
            times[name] = _time(lambda: run(q, k, v), device, repeats)
        except RuntimeError as error:
            print(f"lvsa bench: {name} unavailable here: {str(error).splitlines()[0]}", file=sys.stderr)
    return times


def _max_error(out, q, k, v, plan, device, backend_name):
    """Largest |out - exact| over the output, against the double-precision reference on CPU
    or the float32 torch backend on other devices."""
    if device.type == "cpu":
        exact = attention(q.float(), k.float(), v.float(), plan, backend="reference")
    else:
        exact = attention(q.float(), k.float(), v.float(), plan, backend="torch")
    return (out.float() - exact.float()).abs().max().item()


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    device = torch.device(args.device)
    on_cpu = device.type == "cpu"
    m = preset(args.model)
    dtype = getattr(torch, args.dtype or ("float32" if on_cpu else "bfloat16"))
    _, height, width = m["default_size"]
    vae_t, patch_t = m["vae_temporal"], m["patch"][0]
    R = m["reference"]
    # 1x, ~4x and ~6x the reference horizon in latent frames (Wan: T = 21, 81, 121).
    latent_default = [R, 4 * (R - 1) + 1, 6 * (R - 1) + 1]
    frames_list = args.frames or [(T * patch_t - 1) * vae_t + 1 for T in latent_default]
    heads = args.heads or (2 if on_cpu else m["heads"])
    D = m["head_dim"]
    gen = torch.Generator(device="cpu").manual_seed(0)

    dense_methods = _dense_methods(device)
    rows = []
    for frames in frames_list:
        g = Geometry.from_model(args.model, frames, height, width)
        if on_cpu or args.tokens_per_frame:
            g = Geometry(g.frames, args.tokens_per_frame or 48, g.encoder_len, g.encoder_side)
        sparse = Planner(g, PatternConfig(reference=m["reference"]))
        dense_plan = Planner(g, PatternConfig(reference=m["reference"], keyframe_interval=1))
        q, k, v = (torch.randn((1, g.seq_len, heads, D), generator=gen).to(device, dtype) for _ in range(3))
        dense = _time_dense(dense_methods, q, k, v, device, args.repeats)
        if not dense:
            raise SystemExit("lvsa bench: no dense attention ran on this device; nothing to compare with")
        t_sparse = _time(lambda: attention(q, k, v, sparse, step=0, backend=args.backend), device, args.repeats)
        t_own_dense = _time(lambda: attention(q, k, v, dense_plan, step=0, backend=args.backend), device,
                            args.repeats)
        baseline = min(dense, key=dense.get)
        plan = sparse.step(0)
        work = plan.work(heads, D)
        out = attention(q, k, v, plan, backend=args.backend)
        rows.append(dict(
            frames=frames, latent_frames=g.frames, tokens_per_frame=g.tokens_per_frame,
            encoder_len=g.encoder_len, heads=heads, head_dim=D, dtype=str(dtype).removeprefix("torch."),
            kfi=plan.kfi, density=work["density"],
            dense_ms={name: t * 1e3 for name, t in dense.items()}, baseline=baseline,
            baseline_ms=dense[baseline] * 1e3, lvsa_dense_plan_ms=t_own_dense * 1e3, sparse_ms=t_sparse * 1e3,
            speedup=dense[baseline] / t_sparse, ideal=1 / work["density"],
            efficiency=(dense[baseline] / t_sparse) * work["density"],
            sparse_tflops=work["sparse_flops"] / t_sparse / 1e12,
            dense_tflops=work["dense_flops"] / dense[baseline] / 1e12,
            max_error=_max_error(out, q, k, v, plan, device, args.backend)))

    card = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"lvsa bench: {args.model} on {card} ({device.type}, backend {args.backend}, "
          f"{torch.get_num_threads() if on_cpu else ''}{' threads' if on_cpu else ''}); speedup over the fastest "
          "dense attention measured")
    names = list(dense_methods)
    print(f"{'T':>4} {'P':>5} {'H':>3} {'D':>4} {'kfi':>4} {'density':>8} "
          + " ".join(f"{n + ' ms':>16}" for n in names)
          + f" {'lvsa kfi=1 ms':>14} {'lvsa ms':>10} {'speedup':>8} {'ideal':>6} {'of ideal':>8} {'max err':>9}")
    for r in rows:
        dense_cells = " ".join(f"{r['dense_ms'][n]:>16.2f}" if n in r["dense_ms"] else f"{'n/a':>16}" for n in names)
        print(f"{r['latent_frames']:>4} {r['tokens_per_frame']:>5} {r['heads']:>3} {r['head_dim']:>4} "
              f"{r['kfi']:>4} {r['density']:>8.3f} {dense_cells} {r['lvsa_dense_plan_ms']:>14.2f} "
              f"{r['sparse_ms']:>10.2f} {r['speedup']:>7.2f}x {r['ideal']:>5.2f}x {r['efficiency']:>7.0%} "
              f"{r['max_error']:>9.2e}")
    if args.json_path:
        with open(args.json_path, "w") as f:
            json.dump(dict(model=args.model, device=device.type, card=card, backend=args.backend,
                           torch=torch.__version__, date=datetime.now(timezone.utc).isoformat(),
                           threads=torch.get_num_threads(), rows=rows), f, indent=2)
    return 0
