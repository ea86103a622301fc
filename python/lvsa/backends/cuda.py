"""Native CUDA backend (``lvsa._cuda``): block-sparse kernels for sm80+ GPUs.

Runs on the caller's current CUDA stream and allocates outputs with PyTorch. Each plan's key
ranges are uploaded into a fixed-capacity device buffer per (device, geometry): stepping to
another plan of the same geometry is a stream-ordered copy of a few KB from pinned memory,
allocates nothing and leaves every kernel argument unchanged, so a CUDA graph captured at
one step replays the next step's pattern once that plan has been made resident (by one eager
call, or :func:`prepare`). Uploading during graph capture is refused: the captured copy would
re-install the old plan on every replay. Requests on several streams at different steps share
the buffer safely: events order each upload after the other streams' kernels that still read
the previous plan (see ``_DevicePlan``).
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _cuda
from ._common import allocate_outputs

_DTYPES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}
_HEAD_DIMS = (64, 128)
MIN_CAPABILITY = (8, 0)  # the kernels use sm80 instructions (cp.async, bf16 mma.sync)


def capability_reason(device, capability: tuple[int, int]) -> str | None:
    """Why a GPU of compute ``capability`` cannot run the kernels (None: it can)."""
    if tuple(capability) >= MIN_CAPABILITY:
        return None
    return (f"backend 'cuda' needs compute capability {MIN_CAPABILITY[0]}.{MIN_CAPABILITY[1]} or newer "
            f"(Ampere+); {device} is {capability[0]}.{capability[1]}")


def unavailable_reason(device, dtype=None, head_dim=None) -> str | None:
    if device.type != "cuda":
        return f"backend 'cuda' needs CUDA tensors, got {device}"
    if _cuda.device_count() == 0:
        return "backend 'cuda': lvsa._cuda sees no CUDA device (driver missing or no GPU visible)"
    reason = capability_reason(device, torch.cuda.get_device_capability(device))
    if reason:
        return reason
    if dtype is not None and dtype not in _DTYPES:
        return f"backend 'cuda' takes float16 or bfloat16, got {dtype}"
    if head_dim is not None and head_dim not in _HEAD_DIMS:
        return f"backend 'cuda' takes head_dim {' or '.join(map(str, _HEAD_DIMS))}, got {head_dim}"
    return None


class _DevicePlan:
    """Fixed-capacity plan buffer of one geometry on one device, which plan it holds, and the
    stream work that reads or writes it.

    Streams share the buffer (a graph captured on one stream replays what an eager call on
    another made resident), so its uses are ordered by events: an upload waits for every other
    stream's kernels still reading the previous plan, and a stream that reads a plan another
    stream uploaded waits for that upload, once. Calls on one stream never wait; streams at
    different steps take turns with the buffer (correct, though each turn re-uploads)."""

    def __init__(self, device: torch.device, frames: int):
        self.capacity = _cuda.worst_case_capacity(frames)
        self.buffer = torch.zeros(_cuda.packed_plan_size(frames, self.capacity), dtype=torch.int32,
                                  device=device)
        self.resident = None  # key of the plan the buffer holds (after the queued upload)
        self.writer = None    # stream that queued that upload, and the event recorded after it
        self.written = None
        self.readers: dict[int, torch.cuda.Event] = {}  # stream -> after its last kernel on this plan

    def use(self, plan_key, packed: torch.Tensor, stream: torch.cuda.Stream, capturing: bool) -> None:
        """Make ``plan_key`` resident for work queued next on ``stream``."""
        sid = stream.cuda_stream
        if self.resident != plan_key:
            # Write after the other streams' reads (and after another stream's upload, which a
            # prepare() without a kernel leaves unread).
            for reader, done in self.readers.items():
                if reader != sid:
                    stream.wait_event(done)
            if self.writer not in (None, sid):
                stream.wait_event(self.written)
            self.buffer.copy_(packed, non_blocking=True)
            self.resident, self.writer, self.readers = plan_key, sid, {}
            self.written = torch.cuda.Event()
            self.written.record(stream)
        elif not capturing and self.writer not in (None, sid) and sid not in self.readers:
            stream.wait_event(self.written)  # inside a capture the eager upload is already complete

    def used(self, stream: torch.cuda.Stream, capturing: bool) -> None:
        """Record that the kernel just queued on ``stream`` reads the resident plan."""
        if capturing:  # a captured kernel runs at replay, ordered by whoever replays the graph
            return
        done = self.readers.get(stream.cuda_stream)
        if done is None:
            done = self.readers[stream.cuda_stream] = torch.cuda.Event()
        done.record(stream)


_device_plans: dict = {}


def _device_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _host_plan(plan, capacity: int):
    """The plan's packed ranges: a ``_cuda.Ranges`` (validation) and a pinned int32 tensor
    (upload source), built once per plan."""
    key = ("cuda", capacity)
    cached = plan.cache.get(key)
    if cached is None:
        g = plan.geometry
        ranges = _cuda.Ranges(g.frames, g.tokens_per_frame, g.encoder_len, g.encoder_side,
                              np.ascontiguousarray(plan.range_offsets, dtype=np.int32),
                              np.ascontiguousarray(plan.range_begin, dtype=np.int64),
                              np.ascontiguousarray(plan.range_end, dtype=np.int64), capacity)
        packed = torch.from_numpy(np.array(ranges.packed, dtype=np.int32, copy=True))
        if torch.cuda.is_available():
            packed = packed.pin_memory()  # lets the upload be stream-ordered, no host sync
        cached = plan.cache[key] = (ranges, packed)
    return cached


def _slot(plan, device) -> _DevicePlan:
    index = _device_index(torch.device(device))
    slot_key = (index, plan.geometry)
    dp = _device_plans.get(slot_key)
    if dp is None:
        if torch.cuda.is_current_stream_capturing():
            raise RuntimeError("lvsa: cuda backend: the first call for this geometry happens during CUDA "
                               "graph capture; run one eager call (or lvsa.backends.cuda.prepare) first")
        with torch.cuda.device(index):
            dp = _device_plans[slot_key] = _DevicePlan(torch.device("cuda", index), plan.geometry.frames)
    return dp


def prepare(plan, device) -> tuple:
    """Makes ``plan`` the resident plan of its geometry on ``device`` for work queued next on the
    current stream, and returns ``(ranges, device_plan)``. Call it before capturing a CUDA graph
    (and before each replay of a later step)."""
    dp = _slot(plan, device)
    capturing = torch.cuda.is_current_stream_capturing()
    if dp.resident != plan.key and capturing:
        # Checked before anything else: even pinning the host copy is not capture-safe.
        raise RuntimeError(
            "lvsa: cuda backend: the plan changed during CUDA graph capture; make the plan resident "
            "before capturing (one eager call, or lvsa.backends.cuda.prepare(plan, device)), and "
            "before each replay of a later step")
    ranges, packed = _host_plan(plan, dp.capacity)
    dp.use(plan.key, packed, torch.cuda.current_stream(_device_index(torch.device(device))), capturing)
    return ranges, dp


def _tensor(t: torch.Tensor):
    return (t.data_ptr(), list(t.shape), list(t.stride()))


def run(q, k, v, plan, encoder_valid, scale, return_lse):
    dtype = _DTYPES.get(q.dtype)
    if dtype is None:
        raise ValueError(f"lvsa: cuda backend: q has dtype {q.dtype}; the CUDA kernels take float16 or "
                         "bfloat16 (use backend='torch' for float32)")
    if q.shape[-1] not in _HEAD_DIMS:
        raise ValueError(f"lvsa: cuda backend: head_dim {q.shape[-1]} is not supported; the CUDA kernels "
                         f"support {', '.join(map(str, _HEAD_DIMS))}")
    for name, t in (("q", q), ("k", k), ("v", v)):
        if t.device.type != "cuda":
            raise ValueError(f"lvsa: cuda backend: {name} is on {t.device}, expected a CUDA device")
        if t.device != q.device:
            raise ValueError(f"lvsa: cuda backend: {name} is on {t.device} but q is on {q.device}")
    ranges, device_plan = prepare(plan, q.device)
    out, lse = allocate_outputs(q, return_lse)
    valid_ptr = 0
    if encoder_valid is not None:
        encoder_valid = encoder_valid.to(device=q.device, dtype=torch.int32).contiguous()
        valid_ptr = encoder_valid.data_ptr()
    stream = torch.cuda.current_stream(q.device)
    _cuda.attention(ranges, _device_index(q.device), device_plan.buffer.data_ptr(), _tensor(q), _tensor(k),
                    _tensor(v), _tensor(out), dtype, lse.data_ptr() if lse is not None else 0, valid_ptr,
                    float(scale or 0.0), stream.cuda_stream)
    device_plan.used(stream, torch.cuda.is_current_stream_capturing())
    return out, lse
