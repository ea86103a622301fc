"""Ulysses scaling at Wan 2.1 1.3B shapes: one self-attention layer (all-to-all in, LVSA
attention, all-to-all out) and, with ``--step``, one whole transformer forward, on N GPUs.

    torchrun --nproc-per-node N bench/parallel.py --out runs.jsonl [--frames 81 121] [--step] [--P 1560]
    python3 bench/parallel.py --report runs.jsonl [--json bench/results/parallel_<card>_<date>.json]

The first form (run once per GPU count) appends one JSON line per measurement from rank 0; the
second prints the table (times, speedups over 1 GPU, the most heads a GPU attends with) and
writes the combined JSON. Any GPU count up to 12 runs: the 12 heads split ⌈12/N⌉ or ⌊12/N⌋ a
GPU (on 8: four GPUs with 2, four with 1), so attention can speed up by 12/⌈12/N⌉ at most.
Layer shapes: 12 heads, D = 128, P = 1560 tokens per frame (480x832), bf16, cuda backend, Wan's
default pattern (reference 21) at step 0; each rank starts from its share of q, k, v, as the
processor does. Times are medians over repetitions, each rank timed with CUDA events after a
barrier, and the slowest rank reported (it sets the pace). The step uses the real
``WanTransformer3DModel`` at the 1.3B config with random weights and ``lvsa.enable(parallel=N)``.
Without a GPU it runs on the CPU (gloo, float32, cpu backend, wall-clock timing): with a small
``--P``, a check that the measurement runs, not a result.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import statistics
import subprocess
import sys
from pathlib import Path

HEADS, HEAD_DIM, REFERENCE = 12, 128, 21
WAN_1_3B = dict(patch_size=(1, 2, 2), num_attention_heads=HEADS, attention_head_dim=HEAD_DIM, in_channels=16,
                out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", help="append this run's measurements (JSON lines) to this file")
    parser.add_argument("--frames", type=int, nargs="+", default=[81, 121], help="latent frames T")
    parser.add_argument("--P", type=int, default=1560, help="tokens per latent frame (1560: 480x832)")
    parser.add_argument("--reps", type=int, default=10, help="timed repetitions of the layer")
    parser.add_argument("--step", action="store_true", help="also time a whole 1.3B transformer forward")
    parser.add_argument("--report", help="print the table of these JSON lines instead of measuring")
    parser.add_argument("--json", help="with --report: write the combined results here")
    return parser.parse_args(argv)


def _timed(fn, reps: int, device, warmup: int = 2) -> list[float]:
    """Per-repetition ms of ``fn`` on this rank, each started after a barrier (CUDA events on a
    GPU, the wall clock on the CPU)."""
    import time

    import torch
    import torch.distributed as dist

    for _ in range(warmup):
        fn()
    times = []
    gpu = device.type == "cuda"
    start, end = (torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) if gpu else (None, None)
    for _ in range(reps):
        if gpu:
            torch.cuda.synchronize()
        if dist.is_initialized():
            dist.barrier()
        if gpu:
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            began = time.perf_counter()
            fn()
            times.append((time.perf_counter() - began) * 1e3)
    return times


def _slowest_median(times: list[float]) -> float:
    """The slowest rank's median (every rank must call this)."""
    import torch.distributed as dist

    median = statistics.median(times)
    if not dist.is_initialized():
        return median
    medians = [None] * dist.get_world_size()
    dist.all_gather_object(medians, median)
    return max(medians)


def _layer(frames: int, P: int, reps: int, degree: int, device) -> dict:
    """One self-attention layer's all-to-all + LVSA attention + all-to-all on this rank's share."""
    import torch
    import torch.distributed as dist

    import lvsa
    from lvsa.parallel.collectives import Layout, shares, split_heads, to_heads, to_sequence

    geometry = lvsa.Geometry(frames, P)
    plan = lvsa.Planner(geometry, lvsa.PatternConfig(reference=REFERENCE)).step(0)
    rank = dist.get_rank() if dist.is_initialized() else 0
    heads = split_heads(HEADS, HEADS, degree)  # 12 heads on 8 GPUs: 2 on ranks 0-3, 1 on ranks 4-7
    layout = Layout(tuple(shares(geometry.video_tokens, degree)), rank, heads)
    generator = torch.Generator(device=device).manual_seed(rank)
    dtype, backend = (torch.bfloat16, "cuda") if device.type == "cuda" else (torch.float32, "cpu")
    q, k, v = (torch.randn(1, layout.local, HEADS, HEAD_DIM, device=device, dtype=dtype, generator=generator)
               for _ in range(3))
    group = dist.group.WORLD if degree > 1 else None

    def attend(q, k, v):
        return lvsa.attention(q, k, v, plan, backend=backend)

    def layer():
        if degree == 1:
            return attend(q, k, v)
        return to_sequence(attend(*to_heads([q, k, v], layout, group)), layout, group)

    row = dict(kind="layer", frames=frames, P=P, heads=HEADS, head_dim=HEAD_DIM, gpus=degree,
               most_heads=max(len(ranges) for ranges in heads.query),
               tokens=geometry.video_tokens, density=plan.frame_density, dtype=str(dtype).replace("torch.", ""),
               layer_ms=_slowest_median(_timed(layer, reps, device)))
    if degree > 1:
        whole = to_heads([q, k, v], layout, group)
        out = attend(*whole)
        row["a2a_in_ms"] = _slowest_median(_timed(lambda: to_heads([q, k, v], layout, group), reps, device))
        row["attention_ms"] = _slowest_median(_timed(lambda: attend(*whole), reps, device))
        row["a2a_out_ms"] = _slowest_median(_timed(lambda: to_sequence(out, layout, group), reps, device))
    else:
        row["attention_ms"] = row["layer_ms"]
    return row


def _step(frames: int, degree: int, device) -> dict:
    """One forward of the 1.3B transformer (random weights) with LVSA, Ulysses over ``degree``."""
    import torch
    from diffusers import WanTransformer3DModel

    import lvsa

    with torch.device(device):
        torch.manual_seed(0)
        model = WanTransformer3DModel(**WAN_1_3B).to(torch.bfloat16).eval()
        latents = torch.randn(1, 16, frames, 60, 104, dtype=torch.bfloat16)
        text = torch.randn(1, 512, 4096, dtype=torch.bfloat16)
        timestep = torch.tensor([500.0])
    lvsa.enable(model, backend="cuda", strict=True, parallel=degree)

    def forward():
        with torch.no_grad(), lvsa.denoising_step(0):
            model(latents, timestep, text, return_dict=False)

    ms = _slowest_median(_timed(forward, 2, device, warmup=1))
    lvsa.disable(model)
    del model
    torch.cuda.empty_cache()
    return dict(kind="step", frames=frames, P=1560, heads=HEADS, head_dim=HEAD_DIM, gpus=degree,
                most_heads=-(-HEADS // degree),
                tokens=frames * 1560, layers=WAN_1_3B["num_layers"], dtype="bfloat16", step_ms=ms)


def _card(device) -> dict:
    import platform

    import torch

    date = _dt.date.today().isoformat()
    if device.type != "cuda":
        return dict(card=platform.processor() or "cpu", driver="", torch=torch.__version__, date=date)
    props = torch.cuda.get_device_properties(device)
    driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                            capture_output=True, text=True).stdout.split("\n")[0].strip()
    return dict(card=props.name, driver=driver, torch=torch.__version__, date=date)


def measure(args) -> None:
    import torch.distributed as dist

    import lvsa.parallel

    device = lvsa.parallel.init_process_group()
    degree = dist.get_world_size() if dist.is_initialized() else 1
    rows = [_layer(frames, args.P, args.reps, degree, device) for frames in args.frames]
    if args.step:
        rows += [_step(frames, degree, device) for frames in args.frames]
    if lvsa.parallel.is_leader():
        info = _card(device)
        with open(args.out, "a") as f:
            for row in rows:
                print(json.dumps(row), flush=True)
                f.write(json.dumps({**info, **row}) + "\n")
    if dist.is_initialized():
        dist.barrier()  # no rank tears gloo down while rank 0 still writes
        dist.destroy_process_group()


def report(args) -> None:
    rows = [json.loads(line) for line in Path(args.report).read_text().splitlines() if line.strip()]
    base = {(r["kind"], r["frames"]): r for r in rows if r["gpus"] == 1}
    first = rows[0]
    print(f"\nUlysses scaling, Wan 2.1 1.3B shapes ({HEADS} heads, D={HEAD_DIM}, P={first['P']}, "
          f"{first['dtype']}) on {first['card']}, {first['date']}; layer = all-to-all + LVSA attention + all-to-all")
    print(f"{'what':<6} {'T':>4} {'GPUs':>4} {'heads':>5} {'ms':>9} {'speedup':>8} {'a2a in':>8} {'attn':>8} "
          f"{'a2a out':>8}")
    for r in sorted(rows, key=lambda r: (r["kind"], r["frames"], r["gpus"])):
        ms = r["layer_ms"] if r["kind"] == "layer" else r["step_ms"]
        one = base.get((r["kind"], r["frames"]))
        r["speedup"] = (one["layer_ms" if r["kind"] == "layer" else "step_ms"] / ms) if one else None
        parts = "".join(f" {r[k]:>8.2f}" if k in r else f" {'':>8}"
                        for k in ("a2a_in_ms", "attention_ms", "a2a_out_ms"))
        speedup = f"{r['speedup']:.2f}x" if r["speedup"] else "-"
        print(f"{r['kind']:<6} {r['frames']:>4} {r['gpus']:>4} {r.get('most_heads', ''):>5} {ms:>9.2f} "
              f"{speedup:>8}{parts}")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(card=rows[0]["card"], date=rows[0]["date"], results=rows),
                                              indent=1))
        print(f"-> {args.json}")


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    if args.report:
        report(args)
    elif args.out:
        measure(args)
    else:
        sys.exit("bench/parallel.py: give --out (measure, under torchrun) or --report")
    return 0


if __name__ == "__main__":
    sys.exit(main())
