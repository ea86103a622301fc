"""Native CUDA backend (``lvsa._cuda``): block-sparse kernels for sm80+ GPUs.

Runs on the caller's current CUDA stream and allocates outputs with PyTorch. Each plan's key
ranges are uploaded into a fixed-capacity device buffer per (device, geometry): stepping to
another plan of the same geometry is a stream-ordered copy of a few KB from pinned memory,
allocates nothing and leaves every kernel argument unchanged, so a CUDA graph captured at
one step replays the next step's pattern once that plan has been made resident (by one eager
call, or :func:`prepare`). Uploading during graph capture is refused: the captured copy would
re-install the old plan on every replay.
"""

from __future__ import annotations

import numpy as np
import torch

from .. import _cuda
from ._common import allocate_outputs

_DTYPES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}
_HEAD_DIMS = (64, 128)


def unavailable_reason(device, dtype=None, head_dim=None) -> str | None:
    if device.type != "cuda":
        return f"backend 'cuda' needs CUDA tensors, got {device}"
    if _cuda.device_count() == 0:
        return "backend 'cuda': lvsa._cuda sees no CUDA device (driver missing or no GPU visible)"
    if dtype is not None and dtype not in _DTYPES:
        return f"backend 'cuda' takes float16 or bfloat16, got {dtype}"
    if head_dim is not None and head_dim not in _HEAD_DIMS:
        return f"backend 'cuda' takes head_dim {' or '.join(map(str, _HEAD_DIMS))}, got {head_dim}"
    return None


class _DevicePlan:
    """Fixed-capacity plan buffer of one geometry on one device, and which plan it holds."""

    def __init__(self, device: torch.device, frames: int):
        self.capacity = _cuda.worst_case_capacity(frames)
        self.buffer = torch.zeros(_cuda.packed_plan_size(frames, self.capacity), dtype=torch.int32,
                                  device=device)
        self.resident = None  # key of the plan the buffer holds (after the queued upload)


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


def prepare(plan, device) -> tuple:
    """Makes ``plan`` the resident plan of its geometry on ``device`` (queued on the current
    stream) and returns ``(ranges, device_buffer)``. Call it before capturing a CUDA graph."""
    device = torch.device(device)
    index = _device_index(device)
    slot_key = (index, plan.geometry)
    dp = _device_plans.get(slot_key)
    if dp is None:
        if torch.cuda.is_current_stream_capturing():
            raise RuntimeError("lvsa: cuda backend: the first call for this geometry happens during CUDA "
                               "graph capture; run one eager call (or lvsa.backends.cuda.prepare) first")
        with torch.cuda.device(index):
            dp = _device_plans[slot_key] = _DevicePlan(torch.device("cuda", index), plan.geometry.frames)
    if dp.resident != plan.key and torch.cuda.is_current_stream_capturing():
        # Checked before anything else: even pinning the host copy is not capture-safe.
        raise RuntimeError(
            "lvsa: cuda backend: the plan changed during CUDA graph capture; make the plan resident "
            "before capturing (one eager call, or lvsa.backends.cuda.prepare(plan, device)), and "
            "before each replay of a later step")
    ranges, packed = _host_plan(plan, dp.capacity)
    if dp.resident != plan.key:
        dp.buffer.copy_(packed, non_blocking=True)
        dp.resident = plan.key
    return ranges, dp.buffer


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
    ranges, buffer = prepare(plan, q.device)
    out, lse = allocate_outputs(q, return_lse)
    valid_ptr = 0
    if encoder_valid is not None:
        encoder_valid = encoder_valid.to(device=q.device, dtype=torch.int32).contiguous()
        valid_ptr = encoder_valid.data_ptr()
    stream = torch.cuda.current_stream(q.device).cuda_stream
    _cuda.attention(ranges, _device_index(q.device), buffer.data_ptr(), _tensor(q), _tensor(k), _tensor(v),
                    _tensor(out), dtype, lse.data_ptr() if lse is not None else 0, valid_ptr,
                    float(scale or 0.0), stream)
    return out, lse
