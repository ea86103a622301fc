"""Host time of one ``lvsa.attention`` call on the CUDA backend: what the CPU spends before the
kernel is queued (validation, plan lookup and upload, kernel choice, launch), paid once per
self-attention layer per transformer call — 3,000 times in a 50-step, 30-layer generation with
guidance.

    python3 bench/host_overhead.py [--calls 300] [--out bench/results] [--profile]

Each call is timed alone between two synchronisations, so the GPU is idle when it starts and
the time is the host's (the kernel runs asynchronously after the call returns). Steps rotate
through the keyframe offsets, so plan switches (uploads) are included as a generation has
them. Prints median and p90 per call; writes JSON with card and date. ``--profile`` prints
where the host time of same-step calls goes (cProfile, by cumulative time).
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as _dt
import pstats
import json
import statistics
import time
from pathlib import Path

import torch

import lvsa

CASES = {  # name: (T, P, encoder_len, side, heads)
    "wan_T121": (121, 1560, 0, "none", 12),
    "hunyuan_T65_text": (65, 1590, 1985, "after", 16),
}


def host_times(case, calls: int) -> dict:
    T, P, E, side, heads = CASES[case]
    geometry = lvsa.Geometry(T, P, E, side)
    planner = lvsa.Planner(geometry, lvsa.PatternConfig(window=3, reference=21 if E == 0 else 33))
    q, k, v = (torch.randn((1, geometry.seq_len, heads, 128), dtype=torch.bfloat16, device="cuda")
               for _ in range(3))
    valid = torch.tensor([E // 2], dtype=torch.int32, device="cuda") if E else None
    for step in range(planner.kfi):  # warm-up: every plan built once, kernels loaded
        lvsa.attention(q, k, v, planner, step=step, encoder_valid=valid, backend="cuda")
    torch.cuda.synchronize()
    same, switching = [], []
    for i in range(calls):
        for step, bucket in ((i, switching), (i, same)):  # a new step, then the same step again
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            lvsa.attention(q, k, v, planner, step=step, encoder_valid=valid, backend="cuda")
            bucket.append(time.perf_counter() - t0)
    torch.cuda.synchronize()

    def stats(xs):
        xs = sorted(xs)
        return {"median_us": statistics.median(xs) * 1e6, "p90_us": xs[int(0.9 * (len(xs) - 1))] * 1e6}

    return {"case": case, "kfi": planner.kfi, "new_step": stats(switching), "same_step": stats(same)}


def profile(case, calls: int) -> None:
    T, P, E, side, heads = CASES[case]
    geometry = lvsa.Geometry(T, P, E, side)
    planner = lvsa.Planner(geometry, lvsa.PatternConfig(window=3, reference=21))
    q, k, v = (torch.randn((1, geometry.seq_len, heads, 128), dtype=torch.bfloat16, device="cuda")
               for _ in range(3))
    lvsa.attention(q, k, v, planner, step=0, backend="cuda")
    torch.cuda.synchronize()
    profiler = cProfile.Profile()
    for _ in range(calls):
        torch.cuda.synchronize()
        profiler.enable()
        lvsa.attention(q, k, v, planner, step=0, backend="cuda")
        profiler.disable()
    torch.cuda.synchronize()
    print(f"host profile of {calls} same-step calls, {case} (cumulative seconds):")
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(18)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--name", default="host_overhead")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    if args.profile:
        profile("wan_T121", args.calls)
    card = torch.cuda.get_device_name()
    rows = [host_times(case, args.calls) for case in CASES]
    date = _dt.date.today().isoformat()
    out = Path(args.out) / f"{args.name}_{card.replace(' ', '_')}_{date}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"card": card, "date": date, "torch": torch.__version__, "rows": rows}, indent=2))
    print(f"host time per lvsa.attention call (cuda backend), {card}, {date} -> {out}")
    print(f"{'case':<20} {'new step median':>16} {'p90':>8} {'same step median':>17} {'p90':>8}")
    for r in rows:
        print(f"{r['case']:<20} {r['new_step']['median_us']:>14.1f}us {r['new_step']['p90_us']:>6.1f}us "
              f"{r['same_step']['median_us']:>15.1f}us {r['same_step']['p90_us']:>6.1f}us")


if __name__ == "__main__":
    main()
