"""Progress and timing of one pipeline call: a bar over the denoising steps and the decode, with
elapsed time and ETA, and the times of each stage and step.

Every diffusers video pipeline drives its denoising loop with ``self.progress_bar(total=steps)``
and calls ``update()`` once per scheduler step, the one hook all families share (HunyuanVideo
1.5 has no step callback). ``Timeline.attach`` gives the pipeline instance its own
``progress_bar``, so the bar's opening marks the end of prompt encoding, each update the end of a
step, and its closing the start of the VAE decode, which lasts until the call returns.
"""

from __future__ import annotations

import contextlib
import resource
import sys
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm


@dataclass
class Timeline:
    """Wall-clock marks of one generation, in seconds, with the peak memory of each stage."""

    device: torch.device
    show: bool = True                                  # draw bars (rank 0 only under torchrun)
    stages: dict = field(default_factory=dict)         # stage -> seconds
    steps: list = field(default_factory=list)          # seconds per denoising step
    peak_memory: dict = field(default_factory=dict)    # stage -> bytes (GPU allocations, or process RSS)
    _mark: float = 0.0
    _decoding: bool = False

    # --- stages --------------------------------------------------------------------------------

    def _sync(self) -> None:
        # GPU work is asynchronous: wait for it so a mark is the end of the work, not of its launch.
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def _memory(self) -> int:
        if self.device.type == "cuda":
            return torch.cuda.max_memory_allocated(self.device)
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kilobytes on Linux

    def start(self, stage: str) -> None:
        self._sync()
        self._mark = time.perf_counter()
        self._stage = stage
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

    def stop(self) -> float:
        self._sync()
        elapsed = time.perf_counter() - self._mark
        self.stages[self._stage] = self.stages.get(self._stage, 0.0) + elapsed
        self.peak_memory[self._stage] = max(self.peak_memory.get(self._stage, 0), self._memory())
        return elapsed

    @contextlib.contextmanager
    def stage(self, name: str):
        self.start(name)
        try:
            yield
        finally:
            self.stop()

    # --- the pipeline call -------------------------------------------------------------------

    @contextlib.contextmanager
    def pipeline_call(self, pipe, decode: bool):
        """Time one call of ``pipe``: prompt encoding, denoising steps, decode (when ``decode``)."""
        self._decode = decode
        pipe.progress_bar = self._denoising_bar
        self.start("encode prompt")
        try:
            yield
        finally:
            del pipe.progress_bar  # the pipeline's own method again
            self.stop()
            if self._decoding:
                self._decode_bar.update(1)
                self._decode_bar.close()
                self._decoding = False

    def _denoising_bar(self, iterable=None, total=None):
        self.stop()  # prompt encoding and latent preparation end where the loop begins
        self.start("denoise")
        return _StepBar(self, total=total)

    def _step_done(self) -> None:
        self._sync()
        now = time.perf_counter()
        self.steps.append(now - self._last_step)
        self._last_step = now

    def _loop_done(self) -> None:
        self.stop()
        if self._decode:
            self.start("decode")
            self._decode_bar = tqdm(total=1, desc="decoding (VAE)", unit="video", file=sys.stderr,
                                    disable=not self.show, bar_format=_BAR)
            self._decoding = True
        else:
            self.start("latent output")


_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [elapsed {elapsed}, ETA {remaining}, {rate_fmt}]"


class _StepBar:
    """What a pipeline gets from ``progress_bar(total=...)``: a context manager with ``update``."""

    def __init__(self, timeline: Timeline, total):
        self.timeline = timeline
        self.bar = tqdm(total=total, desc="denoising", unit="step", file=sys.stderr, disable=not timeline.show,
                        bar_format=_BAR)

    def __enter__(self):
        self.timeline._last_step = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.bar.close()
        if exc[0] is None:
            self.timeline._loop_done()
        return False

    def update(self, n: int = 1) -> None:
        self.timeline._step_done()
        self.bar.update(n)
