"""Compiled CUDA backend (``lvsa._cuda``): block-sparse kernels for sm80+ GPUs.

Runs on the caller's current CUDA stream and allocates outputs with PyTorch. Each plan's key
ranges are uploaded into a fixed-capacity device buffer per (device, geometry): stepping to
another plan of the same geometry is a stream-ordered copy of a few KB from pinned memory,
allocates nothing and leaves every kernel argument unchanged, so a CUDA graph captured at
one step replays the next step's pattern once that plan has been made resident (by one eager
call, or :func:`prepare`). Uploading during graph capture is refused: the captured copy would
re-install the old plan on every replay. Requests on several streams at different steps share
the buffer safely: events order each upload after the other streams' kernels that still read
the previous plan (see ``_DevicePlan``).

With ``LVSA_CUDA_KERNEL=auto`` (the default) on a card that runs the sm80 kernel, a dense plan
(the training length and shorter: every frame attends every frame) without encoder padding runs
PyTorch's cuDNN/flash SDPA instead, said once: the sm80 kernel is slower there. The sm90 kernel
runs dense plans itself: 1.06-1.15x cuDNN on an H200 (2026-12-03, docs/perf/cuda_sm90.md v10).

A plan crosses into C++ once: the planner's packed layout is written straight into the pinned
host copy (``plan.core.pack_into``), and each call hands ``plan.core`` and the device
buffer to ``lvsa._cuda.attention``. ``LVSA_CUDA_KERNEL`` (auto, sm80, sm90) is read when a
geometry's device plan is set up, and the resolved kernel family is passed with every call;
:func:`release_device_plans` drops the device plans, so that the next call reads it again.
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from .. import _cuda, _native
from .._log import say_once
from . import _common, quantized_scores

_DTYPES = {torch.bfloat16: "bfloat16", torch.float16: "float16"}
_DTYPE_NAMES = {**_DTYPES, torch.float32: "float32"}  # float32 for the C++ contract's message
_HEAD_DIMS = (64, 128)
MIN_CAPABILITY = (8, 0)  # the kernels use sm80 instructions (cp.async, bf16 mma.sync)


def capability_reason(device, capability: tuple[int, int]) -> str | None:
    """Why a GPU of compute ``capability`` cannot run the kernels (None: it can)."""
    return _common.capability_reason("cuda", device, capability, MIN_CAPABILITY)


_device_reasons: dict[int, str | None] = {}


def _device_reason(device) -> str | None:
    """Why the GPU ``device`` cannot run the kernels; asked of the driver once per device index,
    since the backend choice runs on every call."""
    if device.index in _device_reasons:
        return _device_reasons[device.index]
    if _cuda.device_count() == 0:
        reason = "backend 'cuda': lvsa._cuda sees no CUDA device (driver missing or no GPU visible)"
    else:
        reason = capability_reason(device, torch.cuda.get_device_capability(device))
    if device.index is not None:  # torch.device("cuda") follows the current device: not cached
        _device_reasons[device.index] = reason
    return reason


def unavailable_reason(device, dtype=None, head_dim=None) -> str | None:
    if device.type != "cuda":
        return f"backend 'cuda' needs CUDA tensors, got {device}"
    reason = _device_reason(device)
    if reason:
        return reason
    return inputs_reason(dtype, head_dim)


def inputs_reason(dtype=None, head_dim=None) -> str | None:
    """Why the kernels do not take inputs of ``dtype`` and ``head_dim`` (None: they do); asks no GPU."""
    if dtype is not None and dtype not in _DTYPES:
        return f"backend 'cuda' takes float16 or bfloat16, got {dtype}"
    if head_dim is not None and head_dim not in _HEAD_DIMS:
        return f"backend 'cuda' takes head_dim {' or '.join(map(str, _HEAD_DIMS))}, got {head_dim}"
    return None


class _DevicePlan:
    """Fixed-capacity plan buffer of one geometry on one device, which plan it holds, the
    stream work that reads or writes it, and the kernel family its calls run.

    Streams share the buffer (a graph captured on one stream replays what an eager call on
    another made resident), so its uses are ordered by events: an upload waits for every other
    stream's kernels still reading the previous plan, and a stream that reads a plan another
    stream uploaded waits for that upload, once. Calls on one stream never wait; streams at
    different steps take turns with the buffer (correct, though each turn re-uploads)."""

    def __init__(self, index: int, frames: int):
        request = os.environ.get("LVSA_CUDA_KERNEL", "auto")
        self.family = _cuda.choose_kernel_family(index, request)
        # auto with the sm80 family: a dense plan runs the dense SDPA kernels (see _dense); the sm90
        # kernel, and a named family, always run LVSA's.
        self.dense_to_sdpa = request.strip().lower() in ("", "auto") and self.family.name == "sm80"
        self.capacity = _native.worst_case_capacity(frames)
        self.buffer = torch.zeros(_native.packed_plan_size(frames, self.capacity), dtype=torch.int32,
                                  device=torch.device("cuda", index))
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


def release_device_plans() -> None:
    """Frees every geometry's device plan once the device is done with it. The next call per
    geometry allocates a new one and reads ``LVSA_CUDA_KERNEL`` again (tests and benchmarks
    switch kernel families this way). CUDA graphs captured before keep pointing at the freed
    buffers: capture them again."""
    for index in {index for index, _ in _device_plans}:
        torch.cuda.synchronize(index)
    _device_plans.clear()


def _device_index(device: torch.device) -> int:
    return device.index if device.index is not None else torch.cuda.current_device()


def _host_plan(plan, capacity: int) -> torch.Tensor:
    """The plan in its packed device layout, in pinned memory (so that the upload is
    stream-ordered, without a host sync): written by the planner's C++ once per plan."""
    key = ("cuda", capacity)
    packed = plan.cache.get(key)
    if packed is None:
        packed = torch.zeros(_native.packed_plan_size(plan.geometry.frames, capacity), dtype=torch.int32,
                             pin_memory=True)  # zeros: the slots past the plan's intervals are copied too
        plan.core.pack_into(packed, capacity)
        plan.cache[key] = packed
    return packed


def _slot(plan, index: int) -> _DevicePlan:
    slot_key = (index, plan.geometry)
    dp = _device_plans.get(slot_key)
    if dp is None:
        if torch.cuda.is_current_stream_capturing():
            raise RuntimeError("lvsa: cuda backend: the first call for this geometry happens during CUDA "
                               "graph capture; run one eager call (or lvsa.backends.cuda.prepare) first")
        with torch.cuda.device(index):
            dp = _device_plans[slot_key] = _DevicePlan(index, plan.geometry.frames)
    return dp


def _prepare(plan, index: int, stream: torch.cuda.Stream, capturing: bool) -> _DevicePlan:
    dp = _slot(plan, index)
    if dp.resident != plan.key and capturing:
        # Checked before anything else: even pinning the host copy is not capture-safe.
        raise RuntimeError(
            "lvsa: cuda backend: the plan changed during CUDA graph capture; make the plan resident "
            "before capturing (one eager call, or lvsa.backends.cuda.prepare(plan, device)), and "
            "before each replay of a later step")
    dp.use(plan.key, _host_plan(plan, dp.capacity), stream, capturing)
    return dp


def prepare(plan, device) -> _DevicePlan:
    """Makes ``plan`` the resident plan of its geometry on ``device`` for work queued next on the
    current stream, and returns that geometry's device plan. Call it before capturing a CUDA
    graph (and before each replay of a later step)."""
    index = _device_index(torch.device(device))
    return _prepare(plan, index, torch.cuda.current_stream(index), torch.cuda.is_current_stream_capturing())


def _tensor(t: torch.Tensor):
    return (t.data_ptr(), t.shape, t.stride())


def _runs_dense(plan, dp: _DevicePlan, encoder_valid, return_lse) -> bool:
    """A plan in which every query frame attends every frame, with every encoder token valid, is
    plain dense attention: where the sm80 kernel would run (0.6x cuDNN), PyTorch's cuDNN or flash
    SDPA kernel runs it instead. The sm90 kernel is faster than cuDNN there (1.06-1.15x at the
    models' training lengths, H200, docs/perf/cuda_sm90.md) and runs it itself."""
    return dp.dense_to_sdpa and plan.frame_density == 1.0 and encoder_valid is None and not return_lse


def _dense(q, k, v, scale):
    say_once("cuda backend: a dense plan (every frame attends every frame, no encoder padding) runs PyTorch's "
             "dense SDPA (cuDNN, else flash), faster there than LVSA's sm80 kernel; LVSA_CUDA_KERNEL=sm80 "
             "runs LVSA's kernel there")
    with sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION], set_priority=True):
        out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale,
                                             enable_gqa=k.shape[2] != q.shape[2])
    return out.transpose(1, 2).contiguous(), None


def _quantized_inputs(q, k, plan, encoder_valid, family, lse_scale, precision):
    """``quantized_scores.quantize_scores_cuda`` of q and k, after checking that the sm90 kernels can run them."""
    reason = quantized_scores.inputs_reason(q.dtype, q.shape[-1], precision)
    if reason is None and family.name != "sm90":
        reason = (f"precision {precision!r} runs on the sm90 kernels (H100/H200), but {q.device} runs the "
                  f"{family.name} kernels")
    if reason:
        raise ValueError(f"lvsa: cuda backend: {reason}")
    return quantized_scores.quantize_scores_cuda(q, k, plan, encoder_valid, lse_scale, precision)


def run(q, k, v, plan, encoder_valid, scale, return_lse, precision: str = "default"):
    """``precision="fp8"`` or ``"int8"``: scores from q and k in float8 e4m3 or int8; ``"int8-fp8"``:
    int8 scores and P . V in e4m3 (``quantized_scores``; sm90, bfloat16, head_dim 128)."""
    # lvsa.attention has checked the inputs; the C++ contract checks shapes, dtype, head_dim and
    # layout. This device check is what lets it skip querying every pointer's device.
    device = q.device
    if device.type != "cuda" or k.device != device or v.device != device:
        raise ValueError(f"lvsa: cuda backend: q, k and v must be on one CUDA device, got {q.device}, "
                         f"{k.device} and {v.device}")
    index = device.index
    stream = torch.cuda.current_stream(index)
    capturing = torch.cuda.is_current_stream_capturing()
    quantized = precision in quantized_scores.FORMATS
    if not quantized and _runs_dense(plan, _slot(plan, index), encoder_valid, return_lse):
        return _dense(q, k, v, scale)
    device_plan = _prepare(plan, index, stream, capturing)
    out, lse = _common.allocate_outputs(q, return_lse)
    valid_ptr = 0
    if encoder_valid is not None:
        encoder_valid = encoder_valid.to(device=device, dtype=torch.int32).contiguous()
        valid_ptr = encoder_valid.data_ptr()
    q_in, k_in, v_in, scaled, values = q, k, _tensor(v), None, None
    if quantized:
        lse_scale = (scale or q.shape[-1] ** -0.5) if return_lse else None
        scaled = _quantized_inputs(q, k, plan, encoder_valid, device_plan.family, lse_scale, precision)
        q_in, k_in = scaled.q, scaled.k
    if precision in quantized_scores.FP8_VALUES:
        values = quantized_scores.quantize_values_cuda(v, plan, encoder_valid)
        v_in = values.kernel_tensor(v.shape[1])
    _cuda.attention(plan.core, index, device_plan.buffer.data_ptr(), device_plan.capacity, _tensor(q_in),
                    _tensor(k_in), v_in, _tensor(out), _DTYPE_NAMES.get(v.dtype, str(v.dtype)),
                    lse.data_ptr() if lse is not None else 0, valid_ptr, float(scale or 0.0),
                    stream.cuda_stream, device_plan.family,
                    scaled.q_descale.data_ptr() if quantized else 0, scaled.k_descale.data_ptr() if quantized else 0,
                    quantized_scores.FORMATS[precision].kernel_dtype if quantized else "",
                    values.v_descale.data_ptr() if values is not None else 0,
                    "float8_e4m3" if values is not None else "")
    device_plan.used(stream, capturing)
    if quantized and lse is not None:  # the kernel saw k smoothed
        lse = quantized_scores.add_mean_scores(lse, scaled.mean_scores)
    return out, lse
