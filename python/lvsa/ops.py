"""``lvsa.attention``: the one entry point to every backend, as a PyTorch operator.

Under ``torch.compile`` every backend runs inside the custom op ``torch.ops.lvsa.sparse_attention``
(with a fake implementation, so ``torch.compile`` traces through it), which also resolves the
backend and checks the ``encoder_valid`` values when it runs: those depend on queries to the
compiled modules and tensor values that a graph cannot hold. Eager calls run the backend
directly, except the compiled backends (cpu, cuda) on inputs that require grad, which go through
the op: it is forward-only (inference), so a backward is an error rather than a silently wrong
gradient.
"""

from __future__ import annotations

import math
import numbers
from typing import Optional, Sequence, Union

import torch

from . import backends
from .backends.quantized_scores import FORMATS
from .plan import Planner, StepPlan, plan_by_id

@torch.library.custom_op("lvsa::sparse_attention", mutates_args=())
def _sparse_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, plan_id: int,
                      encoder_valid: Optional[torch.Tensor], scale: float, backend: str, strict: bool,
                      return_lse: bool, traced: bool, precision: str) -> tuple[torch.Tensor, torch.Tensor]:
    plan = plan_by_id(plan_id)
    if traced:  # what an eager call settles before the op: `backend` is the requested name here
        backend = _resolve_backend(backend, precision, q, strict)
        if encoder_valid is not None:
            _check_encoder_valid_values(encoder_valid, plan.geometry.encoder_len)
    out, lse = _run(backend, precision, q, k, v, plan, encoder_valid, scale, return_lse)
    return out, (lse if lse is not None else q.new_empty((0,), dtype=torch.float32))


@_sparse_attention.register_fake
def _(q, k, v, plan_id, encoder_valid, scale, backend, strict, return_lse, traced, precision):
    B, Sq, H, _ = q.shape
    lse_shape = (B, H, Sq) if return_lse else (0,)
    # Contiguous, as every backend allocates it, whatever the strides of q.
    return q.new_empty(q.shape), q.new_empty(lse_shape, dtype=torch.float32)


def _setup_context(ctx, inputs, output):
    pass


def _no_backward(ctx, *grads):
    raise RuntimeError("lvsa.attention is forward-only (inference); it has no backward")


def forward_only(op) -> None:
    """Make a backward through the custom op ``op`` an error."""
    op.register_autograd(_no_backward, setup_context=_setup_context)


forward_only(_sparse_attention)


PRECISIONS = ("default", *FORMATS)  # the inputs' dtype, or quantised scores


def backend_for(backend: str, precision: str) -> str:
    """The backend to ask for at ``precision``: quantised scores (fp8, int8, int8-fp8) exist only in the cuda
    backend, so ``auto`` means ``cuda`` for them (an error where it cannot run, never a silent
    16-bit fallback), and any other backend is refused."""
    if precision == "default":
        return backend
    if backend not in ("auto", "cuda"):
        raise ValueError(f"lvsa: precision {precision!r} runs on the cuda backend only, got backend {backend!r}")
    return "cuda"


def _resolve_backend(backend: str, precision: str, q: torch.Tensor, strict: bool) -> str:
    """The backend that runs."""
    return backends.resolve(backend_for(backend, precision), q.device, strict=strict, dtype=q.dtype,
                            head_dim=q.shape[-1])


def _run(backend: str, precision: str, q, k, v, plan, encoder_valid, scale, return_lse):
    module = backends.load(backend)
    if precision != "default":
        return module.run(q, k, v, plan, encoder_valid, scale, return_lse, precision=precision)
    return module.run(q, k, v, plan, encoder_valid, scale, return_lse)


def _check_inputs(q, k, v, plan: StepPlan):
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"lvsa: {name} must be a torch.Tensor, got {type(t).__name__}")
        if t.dim() != 4:
            raise ValueError(f"lvsa: {name} must be [B, S, H, D] (4 dims), got shape {tuple(t.shape)}")
        if 0 in t.shape:  # an empty batch, sequence, head count or head_dim has nothing to attend
            raise ValueError(f"lvsa: {name} must have every size of [B, S, H, D] >= 1, got shape {tuple(t.shape)}")
        if t.device != q.device:
            raise ValueError(f"lvsa: {name} is on {t.device} but q is on {q.device}; all must share a device")
        if t.dtype != q.dtype:
            raise ValueError(f"lvsa: {name} has dtype {t.dtype}, expected q's dtype {q.dtype}")
    if q.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"lvsa: q must be float32, float16 or bfloat16, got {q.dtype}")
    g = plan.geometry
    if k.shape[1] != g.seq_len or v.shape[1] != g.seq_len:
        raise ValueError(f"lvsa: k and v must have seq_len = T*P + encoder_len = {g.seq_len} tokens for "
                         f"this plan (T={g.frames}, P={g.tokens_per_frame}, encoder={g.encoder_len}), "
                         f"got {k.shape[1]} and {v.shape[1]}")
    if q.shape[1] not in (g.seq_len, g.video_tokens):
        raise ValueError(f"lvsa: q must cover the whole sequence ({g.seq_len} tokens) or the video tokens "
                         f"only ({g.video_tokens}), got {q.shape[1]}")
    if k.shape != v.shape:
        raise ValueError(f"lvsa: k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    for dim, what in ((0, "batch size"), (3, "head_dim")):
        if k.shape[dim] != q.shape[dim]:
            raise ValueError(f"lvsa: k and v have {what} {k.shape[dim]}, expected q's {q.shape[dim]}")
    if q.shape[2] % k.shape[2] != 0:
        raise ValueError(f"lvsa: q heads ({q.shape[2]}) must be a multiple of k/v heads ({k.shape[2]})")


def _encoder_valid_tensor(encoder_valid, plan: StepPlan, batch: int, device) -> Optional[torch.Tensor]:
    """``encoder_valid`` as int32 ``[B]`` on ``device``; counts are never rounded or wrapped:
    anything but integers in ``[0, encoder_len]``, one per batch entry, is an error."""
    if encoder_valid is None:
        return None
    E = plan.geometry.encoder_len
    expected = f"an int or a sequence of {batch} ints (valid encoder tokens per batch entry)"
    if isinstance(encoder_valid, (list, tuple)) and any(isinstance(x, bool) for x in encoder_valid):
        raise TypeError(f"lvsa: encoder_valid must be {expected}, got bools {list(encoder_valid)}")
    if isinstance(encoder_valid, bool):
        raise TypeError(f"lvsa: encoder_valid must be {expected}, got the bool {encoder_valid}")
    try:
        t = torch.as_tensor(encoder_valid)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(f"lvsa: encoder_valid must be {expected}, got {encoder_valid!r}") from None
    if t.dtype == torch.bool or t.dtype.is_floating_point or t.dtype.is_complex:
        raise TypeError(f"lvsa: encoder_valid must be {expected}, got {t.dtype} values {t.tolist()}")
    if t.dim() == 0:
        t = t.expand(batch)
    if t.dim() != 1:
        raise ValueError(f"lvsa: encoder_valid must be 1-D, one entry per batch ({batch}), got shape {tuple(t.shape)}")
    if t.numel() != batch:
        raise ValueError(f"lvsa: encoder_valid must have one entry per batch ({batch}), got {t.numel()}")
    if not torch.compiler.is_compiling():  # a traced call checks the values when it runs, in the op
        # Checked before the int32 conversion, which would wrap large counts into range.
        _check_encoder_valid_values(t, E)
    return t.to(device=device, dtype=torch.int32)


def _check_encoder_valid_values(t: torch.Tensor, encoder_len: int) -> None:
    if encoder_len == 0 and bool((t != 0).any()):
        raise ValueError(f"lvsa: encoder_valid must be 0 or None for a plan without encoder tokens, got {t.tolist()}")
    if bool(((t < 0) | (t > encoder_len)).any()):
        raise ValueError(f"lvsa: encoder_valid entries must be in [0, encoder_len = {encoder_len}], got {t.tolist()}")


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    plan: Union[Planner, StepPlan],
    step: Optional[int] = None,
    *,
    encoder_valid: Union[torch.Tensor, Sequence[int], int, None] = None,
    scale: Optional[float] = None,
    return_lse: bool = False,
    backend: str = "auto",
    strict: bool = False,
    precision: str = "default",
):
    """LVSA block-sparse attention.

    Args:
        q: ``[B, Sq, Hq, D]`` queries; ``Sq`` is the whole sequence (``T·P + encoder_len``) or the
            video tokens only (``T·P``, generation queries over text + video keys).
        k, v: ``[B, T·P + encoder_len, Hkv, D]``; ``Hq`` must be a multiple of ``Hkv`` (GQA).
            Any strides; float32, float16 or bfloat16.
        plan: a :class:`Planner` (then ``step`` is required) or a :class:`StepPlan`.
        step: denoising step index (0-based), selects the keyframe rotation.
        encoder_valid: valid encoder tokens per batch (valid first, padding after); padding gets
            exactly zero weight, padded encoder query rows are zeros. ``None``: all valid.
        scale: softmax scale, default ``1/sqrt(D)``.
        return_lse: also return the log-sum-exp ``[B, Hq, Sq]`` (float32, natural log).
        backend: ``auto`` (the compiled backend for the device, else ``torch``), ``cpu``,
            ``cuda``, ``torch``, ``reference``, ``flashinfer`` (FlashInfer's block-sparse
            kernels, extra ``lvsa[flashinfer]``; never chosen by ``auto``).
        strict: with ``auto``, fail instead of falling back when the compiled backend is missing.
        precision: ``default`` (scores in the inputs' dtype), ``fp8`` or ``int8`` (opt-in: q and k
            rounded to float8 e4m3 or int8 with one scale per batch and head, S = Q K^T at the
            8-bit tensor rate, v and the output in bfloat16; the cuda backend's sm90 kernels,
            bfloat16, head_dim 128; int8 is the more accurate at the same rate), or ``int8-fp8``
            (int8 scores, and P . V at the 8-bit rate too, v and the probabilities in e4m3: faster,
            with twice int8's error); see ``lvsa.backends.quantized_scores``.

    Returns ``out`` (``[B, Sq, Hq, D]``, dtype of q), or ``(out, lse)``.

    Bad arguments raise ``ValueError`` (shapes, dtypes, devices, ranges) or ``TypeError`` (wrong
    types) naming the argument, before any work. NaN and Inf follow float softmax: a NaN in q, k
    or v reaches exactly the output rows that attend to it (a NaN query only its own row); Inf
    in v makes those rows non-finite; Inf in q or k gives ±inf scores, +inf making the row NaN
    and -inf giving the key weight 0. Encoder padding (keys, values and queries beyond
    ``encoder_valid``) is never read, so NaN/Inf there cannot leak. Exception: the ``torch``
    backend without ``return_lse`` (PyTorch's SDPA) returns zeros for a +inf-score row in
    bfloat16/float16 on the CPU.
    """
    if isinstance(plan, Planner):
        if step is None:
            raise ValueError("lvsa: attention(plan=Planner) needs step= (the denoising step index)")
        plan = plan.step(step)
    elif isinstance(plan, StepPlan):
        if step is not None:
            raise ValueError("lvsa: step= is only meaningful with a Planner; this StepPlan is one step already")
    else:
        raise TypeError(f"lvsa: plan must be a Planner or StepPlan, got {type(plan).__name__}")
    _check_inputs(q, k, v, plan)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    elif isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"lvsa: scale must be a finite positive number, got {type(scale).__name__} {scale!r}")
    elif not (math.isfinite(scale) and scale > 0):
        raise ValueError(f"lvsa: scale must be a finite positive number, got {scale}")
    for flag, value in (("return_lse", return_lse), ("strict", strict)):
        if not isinstance(value, bool):
            raise TypeError(f"lvsa: {flag} must be True or False, got {type(value).__name__} {value!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"lvsa: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    valid = _encoder_valid_tensor(encoder_valid, plan, q.shape[0], q.device)
    if torch.compiler.is_compiling():
        # Traced, the torch backend would build its gather indexes on a plan's first use (calls
        # into the C++ core, a graph break), and resolving a backend asks the compiled modules
        # about devices.
        out, lse = _sparse_attention(q, k, v, plan.id, valid, float(scale), backend, strict, return_lse, True,
                                     precision)
        return (out, lse) if return_lse else out
    name = _resolve_backend(backend, precision, q, strict)
    # Eager calls run the backend directly: the custom op's dispatch costs ~0.3 ms of host time
    # per call (bench/host_overhead.py --profile), more than the rest of the call. The op is
    # needed only for tracing (above) and to refuse a backward through a compiled backend.
    needs_autograd = torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad)
    if name == "torch" or not needs_autograd:  # autograd differentiates the torch backend
        out, lse = _run(name, precision, q, k, v, plan, valid, float(scale), return_lse)
    else:
        out, lse = _sparse_attention(q, k, v, plan.id, valid, float(scale), name, strict, return_lse, False,
                                     precision)
    return (out, lse) if return_lse else out
