"""LVSA-cuda vs dense attention and FlexAttention at real video-DiT shapes.

    python3 bench/attention.py [--cases wan:21,41,81,121 hunyuan:33,49,65 wan14b:21,41 cosmos:24,47
                               cogvideox:13,25,49] [--flex all|none|wan:121 hunyuan:65 ...]
                               [--kernels sm80,sm90] [--fp8] [--int8] [--int8-fp8] [--data normal|uniform]
                               [--name attention] [--out bench/results]

For every case: median time of LVSA-cuda, dense cuDNN SDPA, dense torch flash SDPA,
FlexAttention with the identical mask (compiled, block mask from create_block_mask), and
LVSA's pattern through FlashInfer's block-sparse wrapper (``backend="flashinfer"``, one frame
per block, encoder tokens merged by log-sum-exp) when that package is installed, else
"flashinfer": "not installed"; its first call (JIT compile or load, and the wrapper's plan) is
timed apart as flashinfer_first_call_s. TFLOP/s count the work
actually kept (4 * attended pairs * D * H) for sparse methods and 4 * S^2 * D * H for dense
ones; LVSA's rate on the tiles it computes is reported too, so padding waste is visible. The
max error vs a float64 reference is measured on a subset of rows of one head. Results go to
bench/results/<name>_<card>_<date>.json; a short table is printed last.

--kernels times several LVSA kernel families (LVSA_CUDA_KERNEL values) side by side on the
same data; the first one fills the lvsa_* columns, each one its own lvsa_<family>_* keys.

--fp8 adds LVSA with fp8 scores (``precision="fp8"``, head_dim 128) on the same data: its time
with the quantising pre-pass (fp8_ms; the pre-pass alone is fp8_quantize_ms), its speedup over
the 16-bit kernel and its max error vs float64 next to the 16-bit one's. --int8 adds the same
for int8 scores (``precision="int8"``, int8_* keys), --int8-fp8 for int8 scores with fp8 P.V
(``precision="int8-fp8"``, int8_fp8_* keys; its pre-pass quantises v too).

--data uniform draws q, k and v from U(-2, 2), the values bench/cuda's lvsa_cuda_variants uses,
instead of N(0, 1): a kernel's speed at a fixed clock does not depend on the values, but the card's
clock under its power limit may (the file records ``data``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import lvsa
from lvsa import Geometry, PatternConfig, Planner
from lvsa.backends import cuda as lvsa_cuda
from lvsa.backends import flashinfer as lvsa_flashinfer
from lvsa.backends import quantized_scores
from lvsa.bench import results as result_files
from lvsa.bench.mask import block_mask, flex_attention, kept_pairs
from lvsa.bench.timing import time_ms

MODELS = {
    # heads, head_dim, P, encoder_len, encoder_side, reference frames R
    "wan": dict(heads=12, D=128, P=1560, E=0, side="none", R=21, label="Wan2.1-1.3B"),
    "hunyuan": dict(heads=16, D=128, P=1590, E=1985, side="after", R=33, label="HunyuanVideo1.5"),
    "wan14b": dict(heads=40, D=128, P=3600, E=0, side="none", R=21, label="Wan2.1-14B-720p"),  # 720x1280
    "cosmos": dict(heads=16, D=128, P=3520, E=0, side="none", R=24, label="Cosmos2.5-2B"),  # 704x1280
    "cogvideox": dict(heads=48, D=64, P=1350, E=226, side="before", R=13, label="CogVideoX-5B"),  # 480x720
}
TILE_M, TILE_N, WARP_ROWS = 128, 64, 32


def computed_pairs(plan, valid):
    """Query rows x key columns the kernel's tiles actually compute (mma work)."""
    g = plan.geometry
    P, T = g.tokens_per_frame, g.frames
    rows_frame = sum(math.ceil(min(TILE_M, P - r) / WARP_ROWS) * WARP_ROWS for r in range(0, P, TILE_M))

    def key_cols(intervals):
        merged = []
        for b, e in sorted(intervals):
            if merged and merged[-1][1] == b:
                merged[-1][1] = e
            else:
                merged.append([b, e])
        return sum(math.ceil((e - b) / TILE_N) * TILE_N for b, e in merged)

    enc = [(g.encoder_begin, g.encoder_begin + valid)] if valid else []
    offs = plan.range_offsets
    total = 0
    for f in range(T):
        iv = [(int(plan.range_begin[i]), int(plan.range_end[i])) for i in range(offs[f], offs[f + 1])]
        total += rows_frame * key_cols(iv + enc)
    if valid:
        enc_rows = sum(math.ceil(min(TILE_M, valid - r) / WARP_ROWS) * WARP_ROWS for r in range(0, valid, TILE_M))
        total += enc_rows * key_cols([(g.video_begin, g.video_begin + g.video_tokens)] + enc)
    return total


def reference_error(q, k, v, out, plan, valid, rows, head=0):
    """max |out - ref| over `rows` of one head, ref in float64 from plan.attended (not ranges)."""
    g = plan.geometry
    T, P = g.frames, g.tokens_per_frame
    fm = torch.zeros((T, T), dtype=torch.bool)
    for f in range(T):
        fm[f, plan.attended(f)] = True
    kd, vd = k[0, :, head].double(), v[0, :, head].double()
    err = 0.0
    for r in rows:
        m = torch.zeros(g.seq_len, dtype=torch.bool, device=q.device)
        vb = g.video_begin
        if g.video_begin <= r < g.video_begin + T * P:
            m[vb:vb + T * P] = fm[(r - vb) // P].repeat_interleave(P).to(q.device)
        else:
            m[vb:vb + T * P] = True
        m[g.encoder_begin:g.encoder_begin + valid] = True
        s = (kd @ q[0, r, head].double()) * q.shape[-1] ** -0.5
        w = torch.softmax(s.masked_fill(~m, float("-inf")), 0)
        err = max(err, (w @ vd - out[0, r, head].double()).abs().max().item())
    return err


def flex_runner(q, k, v, plan, valid):
    bm = block_mask(plan, [valid], q.device)
    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
    return lambda: flex_attention(qt, kt, vt, bm)


def sdpa_runner(q, k, v, backend):
    from torch.nn.attention import SDPBackend, sdpa_kernel

    qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
    be = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}[backend]

    def fn():
        with sdpa_kernel(be):
            return F.scaled_dot_product_attention(qt, kt, vt)

    return fn


def flashinfer_columns(q, k, v, plan, ev, valid, rows, kept_tflop):
    """LVSA's FlashInfer backend on the same data: time, kept TFLOP/s and error, or its error."""
    run = lambda: lvsa_flashinfer.run(q, k, v, plan, ev, None, False)  # noqa: E731
    try:
        t0 = time.time()
        out = run()[0]
        torch.cuda.synchronize()
        first = time.time() - t0
        err = reference_error(q, k, v, out, plan, valid, rows)
        del out
        t, ts = time_ms(run, budget_s=1.0)
    except Exception as error:  # noqa: BLE001 - report, keep benchmarking
        return dict(flashinfer_error=repr(error)[:200])
    return dict(flashinfer_first_call_s=first, flashinfer_ms=t, flashinfer_ms_all=ts,
                flashinfer_tflops_kept=kept_tflop / t * 1e3, flashinfer_max_err_vs_fp64=err)


def column_prefix(precision: str) -> str:
    """The JSON key prefix of ``precision``'s columns: fp8, int8, int8_fp8."""
    return precision.replace("-", "_")


def quantized_columns(q, k, v, plan, ev, valid, rows, kept_tflop, precision):
    """LVSA with ``precision``'s quantised inputs (fp8, int8 or int8-fp8) on the same data: time
    (pre-pass included), kept TFLOP/s, error; keys prefixed with ``column_prefix``."""
    run = lambda: lvsa_cuda.run(q, k, v, plan, ev, None, False, precision=precision)  # noqa: E731

    def prepass():
        quantized_scores.quantize_scores_cuda(q, k, plan, ev, precision=precision)
        if precision in quantized_scores.FP8_VALUES:
            quantized_scores.quantize_values_cuda(v, plan, ev)

    key = column_prefix(precision)
    try:
        out = run()[0]
        err = reference_error(q, k, v, out, plan, valid, rows)
        del out
        t, ts = time_ms(run)
        tq, _ = time_ms(prepass)
    except Exception as error:  # noqa: BLE001 - report, keep benchmarking
        return {f"{key}_error": repr(error)[:200]}
    return {f"{key}_ms": t, f"{key}_ms_all": ts, f"{key}_quantize_ms": tq,
            f"{key}_tflops_kept": kept_tflop / t * 1e3, f"{key}_max_err_vs_fp64": err}


def parse_cases(items):
    out = []
    for item in items:
        model, frames = item.split(":")
        out += [(model, int(t)) for t in frames.split(",")]
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", nargs="+", default=["wan:21,41,81,121", "hunyuan:33,49,65"])
    ap.add_argument("--flex", nargs="+", default=["all"], help="all, none, or model:T,... items like --cases")
    ap.add_argument("--skip-dense-flash", action="store_true")
    ap.add_argument("--kernels", default="", help="comma list of LVSA_CUDA_KERNEL values (sm80,sm90)")
    ap.add_argument("--fp8", action="store_true", help="also time fp8 scores (precision='fp8', head_dim 128)")
    ap.add_argument("--int8", action="store_true", help="also time int8 scores (precision='int8', head_dim 128)")
    ap.add_argument("--int8-fp8", action="store_true",
                    help="also time int8 scores with fp8 P.V (precision='int8-fp8', head_dim 128)")
    ap.add_argument("--data", choices=["normal", "uniform"], default="normal",
                    help="q, k and v from N(0, 1) (default) or U(-2, 2)")
    ap.add_argument("--name", default="attention")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    args = ap.parse_args(argv)
    cases = parse_cases(args.cases)
    flex_cases = (set(cases) if args.flex == ["all"] else set() if args.flex == ["none"]
                  else set(parse_cases(args.flex)))
    info = result_files.card_info()
    date = _dt.date.today().isoformat()
    results = []
    for model, T in cases:
        m = MODELS[model]
        g = Geometry(T, m["P"], m["E"], m["side"])
        plan = Planner(g, PatternConfig(reference=m["R"])).step(0)
        H, D, S = m["heads"], m["D"], g.seq_len
        valid = m["E"]
        q, k, v = (torch.randn((1, S, H, D), dtype=torch.bfloat16, device="cuda") for _ in range(3))
        if args.data == "uniform":
            q, k, v = (t.uniform_(-2, 2) for t in (q, k, v))
        ev = torch.tensor([valid], dtype=torch.int32, device="cuda") if m["E"] else None
        pairs = kept_pairs(plan, valid)
        cpairs = computed_pairs(plan, valid)
        row = dict(model=m["label"], T=T, S=S, heads=H, D=D, kfi=plan.kfi, density=pairs / S**2,
                   kept_tflop=4 * pairs * D * H / 1e12, computed_tflop=4 * cpairs * D * H / 1e12,
                   dense_tflop=4 * S * S * D * H / 1e12)
        rows = [g.video_begin + f * m["P"] + r for f in (0, T // 2, T - 1) for r in (0, 127, 128, m["P"] - 1)]
        if valid:
            rows += [g.encoder_begin, g.encoder_begin + valid - 1]
        families = args.kernels.split(",") if args.kernels else [None]
        saved_env = os.environ.get("LVSA_CUDA_KERNEL")
        for i, fam in enumerate(families):
            if fam is not None:
                os.environ["LVSA_CUDA_KERNEL"] = fam
                lvsa_cuda.release_device_plans()  # read when the geometry's device plan is set up
            out = lvsa_cuda.run(q, k, v, plan, ev, None, False)[0]
            t, ts = time_ms(lambda: lvsa_cuda.run(q, k, v, plan, ev, None, False))
            err = reference_error(q, k, v, out, plan, valid, rows)
            del out
            res = dict(ms=t, ms_all=ts, tflops_kept=row["kept_tflop"] / t * 1e3,
                       tflops_computed=row["computed_tflop"] / t * 1e3, max_err_vs_fp64=err)
            if i == 0:
                row.update({("max_err_vs_fp64" if k_ == "max_err_vs_fp64" else f"lvsa_{k_}"): v_
                            for k_, v_ in res.items()})
                if fam is not None:
                    row["lvsa_kernel"] = fam
            if fam is not None:
                row.update({f"lvsa_{fam}_{k_}": v_ for k_, v_ in res.items()})
        if saved_env is None:
            os.environ.pop("LVSA_CUDA_KERNEL", None)
        else:
            os.environ["LVSA_CUDA_KERNEL"] = saved_env
        for name in ("cudnn", "flash"):
            if name == "flash" and args.skip_dense_flash:
                continue
            try:
                t, _ = time_ms(sdpa_runner(q, k, v, name), min_reps=2, budget_s=1.0)
                row[f"{name}_ms"] = t
                row[f"{name}_tflops"] = row["dense_tflop"] / t * 1e3
            except Exception as error:  # noqa: BLE001 - report, keep benchmarking
                row[f"{name}_error"] = repr(error)[:200]
        if (model, T) in flex_cases:
            try:
                t0 = time.time()
                fn = flex_runner(q, k, v, plan, valid)
                fn()
                row["flex_compile_s"] = time.time() - t0
                t, _ = time_ms(fn, budget_s=1.0)
                row["flex_ms"] = t
                row["flex_tflops_kept"] = row["kept_tflop"] / t * 1e3
            except Exception as error:  # noqa: BLE001
                row["flex_error"] = repr(error)[:200]
        if lvsa_flashinfer.package_reason():
            row["flashinfer"] = "not installed"
        else:
            row.update(flashinfer_columns(q, k, v, plan, ev, valid, rows, row["kept_tflop"]))
        quantized = ([p for p in quantized_scores.FORMATS if getattr(args, column_prefix(p))]
                     if D in quantized_scores.HEAD_DIMS else [])
        for precision in quantized:
            row.update(quantized_columns(q, k, v, plan, ev, valid, rows, row["kept_tflop"], precision))
            key = column_prefix(precision)
            if f"{key}_ms" in row:
                row[f"{key}_speedup_vs_lvsa"] = row["lvsa_ms"] / row[f"{key}_ms"]
        if "cudnn_ms" in row:
            row["speedup_vs_cudnn"] = row["cudnn_ms"] / row["lvsa_ms"]
        if "flex_ms" in row:
            row["speedup_vs_flex"] = row["flex_ms"] / row["lvsa_ms"]
        if "flashinfer_ms" in row:
            row["speedup_vs_flashinfer"] = row["flashinfer_ms"] / row["lvsa_ms"]
        results.append(row)
        print(json.dumps({k_: v_ for k_, v_ in row.items() if not k_.endswith("_all")}), flush=True)
        del q, k, v
        torch.cuda.empty_cache()

    path = result_files.write(args.out, args.name, info, dict(data=args.data, results=results))

    print(f"\n{info['card']}  driver {info['driver']}  torch {info['torch']}  {date}  -> {path}")
    hdr = ("model", "T", "dens", "lvsa ms", "kept TF/s", "comp TF/s", "cuDNN ms", "cuDNN TF/s",
           "flash ms", "flex ms", "FI ms", "x cuDNN", "x flex", "x FI", "max err", "fp8 ms", "fp8 x lvsa",
           "fp8 max err", "int8 ms", "int8 x lvsa", "int8 max err", "int8-fp8 ms", "int8-fp8 x lvsa",
           "int8-fp8 max err")
    print(" | ".join(hdr))
    for r in results:
        f = lambda key, fmt: (fmt % r[key]) if key in r else "-"  # noqa: E731
        print(" | ".join([r["model"], str(r["T"]), "%.2f" % r["density"], f("lvsa_ms", "%.1f"),
                          f("lvsa_tflops_kept", "%.0f"), f("lvsa_tflops_computed", "%.0f"),
                          f("cudnn_ms", "%.1f"), f("cudnn_tflops", "%.0f"), f("flash_ms", "%.1f"),
                          f("flex_ms", "%.1f"), f("flashinfer_ms", "%.1f"), f("speedup_vs_cudnn", "%.2f"),
                          f("speedup_vs_flex", "%.2f"), f("speedup_vs_flashinfer", "%.2f"),
                          f("max_err_vs_fp64", "%.1e"), f("fp8_ms", "%.1f"), f("fp8_speedup_vs_lvsa", "%.2f"),
                          f("fp8_max_err_vs_fp64", "%.1e"), f("int8_ms", "%.1f"), f("int8_speedup_vs_lvsa", "%.2f"),
                          f("int8_max_err_vs_fp64", "%.1e"), f("int8_fp8_ms", "%.1f"),
                          f("int8_fp8_speedup_vs_lvsa", "%.2f"), f("int8_fp8_max_err_vs_fp64", "%.1e")]))
    if args.kernels:
        fams = args.kernels.split(",")
        print("\nper kernel family: ms (kept TF/s) [max err]")
        print(" | ".join(["model", "T"] + fams + ["cuDNN ms (TF/s)"] +
                         [f"{a} speedup" for a in fams[1:]]))
        for r in results:
            cells = [r["model"], str(r["T"])]
            for fam in fams:
                cells.append("%.1f (%.0f) [%.1e]" % (r[f"lvsa_{fam}_ms"], r[f"lvsa_{fam}_tflops_kept"],
                                                     r[f"lvsa_{fam}_max_err_vs_fp64"]))
            cells.append("%.1f (%.0f)" % (r["cudnn_ms"], r["cudnn_tflops"]) if "cudnn_ms" in r else "-")
            cells += ["%.2fx" % (r[f"lvsa_{fams[0]}_ms"] / r[f"lvsa_{a}_ms"]) for a in fams[1:]]
            print(" | ".join(cells))
    return results


if __name__ == "__main__":
    main()
