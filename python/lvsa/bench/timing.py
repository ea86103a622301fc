"""GPU time of a callable, as the benchmark scripts measure it (bench/attention.py, bench/prologue.py)."""

from __future__ import annotations

import time

import torch


def time_ms(fn, min_reps=3, max_reps=50, budget_s=1.5, warmup_s=1.0):
    """Median of CUDA-event timings after warming up for `warmup_s` (at least one call); reps
    adapt to the op's length. The warm-up matters on H100/H200: right after another kernel
    family ran, a kernel was seen 10-20 % slower for about a second (clock/power transient)."""
    fn()
    torch.cuda.synchronize()
    t_warm = time.perf_counter()
    while time.perf_counter() - t_warm < warmup_s:
        fn()
        torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    first = start.elapsed_time(end)
    reps = int(max(min_reps, min(max_reps, budget_s * 1000 / max(first, 1e-3))))
    times = []
    for _ in range(reps):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    times.sort()
    return times[len(times) // 2], times
