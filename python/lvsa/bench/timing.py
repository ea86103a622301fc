"""GPU time of a callable, as the benchmark scripts measure it (bench/attention.py, bench/prologue.py)."""

from __future__ import annotations

import time

import torch


def time_ms(fn, min_reps=3, max_reps=50, budget_s=1.5, warmup_s=1.0):
    """Median GPU time of ``fn`` in ms, and every rep's, after warming up for ``warmup_s`` (at least
    one call); reps adapt to the op's length. The warm-up matters on H100/H200: right after another
    kernel family ran, a kernel was seen 10-20 % slower for about a second (clock/power transient).

    The reps are queued back to back, each between two CUDA events, as a model queues its layers:
    a call's host time (Python, launch; for ``lvsa.attention`` 0.3-0.7 ms, bench/host_overhead.py)
    overlaps the previous call's kernels, so what is timed is the GPU's. Timed one call at a time
    instead, the stream idles while the host prepares each call and that wait counts too. A call
    whose host time exceeds its GPU time is still timed with it (the queue runs dry)."""
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
    events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)) for _ in range(reps)]
    for begin, finish in events:
        begin.record()
        fn()
        finish.record()
    events[-1][1].synchronize()
    times = sorted(begin.elapsed_time(finish) for begin, finish in events)
    return times[len(times) // 2], times
