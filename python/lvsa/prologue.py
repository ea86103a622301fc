"""The QK prologue ahead of LVSA's CUDA kernels: a processor's RMSNorm and RoPE of q and k in one
pass over both tensors (``lvsa._cuda.norm_rope``), instead of the model's chain of elementwise ops.

The model's own ops make several full-size float32 round trips through memory per tensor. At
Wan 2.1 1.3B and 121 latent frames (H200, 2026-12-01) the first kernel, one per tensor, took 38 ms
of GPU time a forward and the other elementwise and copy kernels shrank by 330 ms: the forward
went from 3.55 s to 3.31 s. Today's kernel takes q and k in one launch, 23.5 ms a forward
(2026-12-03; docs/perf/prologue.md). It writes the ``[B, S, H, D]`` layout the attention kernels
read. A norm group the kernel does not reduce (one that neither divides 256 features nor is a
multiple of 256) keeps the model's ops.

It is taken where the attention runs on a GPU backend, cuda or flashinfer (the ``torch``
backend is the portable path and keeps the model's ops) and the layer's norm and tables are of a form the kernel
computes as the model does: an RMSNorm (``torch.nn.RMSNorm`` or diffusers') without bias,
with a weight of the tensor's dtype or none, and RoPE tables on interleaved pairs, ``[S, D]``
or ``[1, S, 1, D]``, of any float dtype. ``prologue="model"`` (``LVSA_PROLOGUE=model``) keeps
the model's ops everywhere, for comparison. The decision reads only shapes, dtypes and module
attributes, so a compiled processor traces it; the kernel is the custom op
``torch.ops.lvsa.norm_rope``, opaque to the compiler.

The output equals the model's ops within one rounding of the dtype: the norm's sum of squares
is reduced in another order, and the rotation runs in float32 whatever the tables' dtype
(float64 tables are rounded to float32; with bfloat16 tables, which a model cast whole with
``.to(torch.bfloat16)`` has, the model's ops round every product to bfloat16, the kernel not).
"""

from __future__ import annotations

from typing import Optional

import torch

from . import backends
from ._log import say_once
from .ops import forward_only

def _rms_norm_parts(norm) -> Optional[tuple[Optional[torch.Tensor], float, int]]:
    """(weight, eps, features) of an RMSNorm the kernel computes as the module does, else None."""
    if isinstance(norm, torch.nn.RMSNorm):
        features = norm.normalized_shape
        if len(features) != 1:
            return None
        eps = norm.eps if norm.eps is not None else torch.finfo(norm.weight.dtype if norm.weight is not None
                                                                else torch.float32).eps
        return norm.weight, float(eps), int(features[0])
    from diffusers.models.normalization import RMSNorm  # noqa: PLC0415 - only the adapters' processors call this

    if isinstance(norm, RMSNorm) and getattr(norm, "bias", None) is None:
        features = norm.dim if isinstance(norm.dim, int) else (norm.dim[0] if len(norm.dim) == 1 else None)
        return (norm.weight, float(norm.eps), int(features)) if features else None
    return None


def _tables(tables, rows: int, head_dim: int):
    """The (cos, sin) tables as [rows, head_dim] views, or None when they are not of that form."""
    if tables is None or len(tables) != 2:
        return None
    out = []
    for t in tables:
        if not isinstance(t, torch.Tensor) or not t.is_floating_point():
            return None
        if t.dim() == 4 and t.shape[0] == 1 and t.shape[2] == 1:
            t = t[0, :, 0]
        if t.dim() != 2 or tuple(t.shape) != (rows, head_dim) or t.stride(1) != 1:
            return None
        out.append(t)
    return out


def _fusion(runtime, x: torch.Tensor, norm, heads: int, tables):
    """What the fused prologue of :func:`fuses` needs to run on ``x``: ``(weight, eps, group,
    tables)`` with the tables as [S, D] views (or None), else None."""
    if runtime.prologue != "fused" or runtime.backend not in ("auto", "cuda", "flashinfer") or not x.is_cuda:
        return None
    if x.dim() != 3 or x.shape[-1] % heads or x.stride(-1) != 1:
        return None
    head_dim = x.shape[-1] // heads
    if torch.compiler.is_compiling():
        # Asking the driver cannot be traced: the op checks the device when it runs.
        cuda = backends._LOADED["cuda"]  # the module, or why it is not built
        if isinstance(cuda, str) or cuda.inputs_reason(x.dtype, head_dim) is not None:
            return None
    elif backends.unavailable_reason("cuda", x.device, x.dtype, head_dim) is not None:
        return None  # LVSA's CUDA kernels cannot run on these tensors
    parts = _rms_norm_parts(norm)
    if parts is None:
        return None
    weight, eps, features = parts
    if weight is not None and weight.dtype != x.dtype:
        return None
    if features not in (head_dim, x.shape[-1]) or (256 % features and features % 256):
        return None  # the kernel reduces a group that divides a warp's 256 features or is whole chunks of them
    if tables is None:
        return weight, eps, features, None
    views = _tables(tables, x.shape[1], head_dim)
    return None if views is None else (weight, eps, features, views)


def fuses(runtime, x: torch.Tensor, norm, heads: int, tables) -> bool:
    """Whether the processor of ``runtime`` runs the fused prologue on the projection ``x``
    ([B, S, heads x D]) with ``norm`` and RoPE ``tables``: the attention runs a GPU backend (cuda,
    flashinfer), LVSA's CUDA kernels run on these tensors, and the norm and tables have a form
    the kernel takes."""
    return _fusion(runtime, x, norm, heads, tables) is not None


def qk(runtime, query: torch.Tensor, key: torch.Tensor, norm_q, norm_k, heads: int, tables):
    """``(rope(norm_q(query)), rope(norm_k(key)))`` as ``[B, S, heads, D]``, in one CUDA kernel
    when :func:`fuses` takes both projections and they have one shape and norm group (else one
    kernel each); None when it does not take them (the processor runs the model's ops)."""
    fq = _fusion(runtime, query, norm_q, heads, tables)
    fk = _fusion(runtime, key, norm_k, heads, tables) if fq is not None else None
    if fk is None:
        return None
    cos = sin = None
    if tables is not None:  # shared by q and k: converted once
        cos, sin = (t.to(torch.float32) for t in fq[3])
    (wq, eps_q, group_q, _), (wk, eps_k, group_k, _) = fq, fk
    if query.shape == key.shape and group_q == group_k:
        q, k = _norm_rope([query, key], [wq, wk], [eps_q, eps_k], group_q, heads, cos, sin)
        return q, k
    return (_norm_rope([query], [wq], [eps_q], group_q, heads, cos, sin)[0],
            _norm_rope([key], [wk], [eps_k], group_k, heads, cos, sin)[0])


def reference(x, weight, eps: float, group: int, heads: int, cos, sin) -> torch.Tensor:
    """What the kernel computes, in PyTorch ops: the tests' oracle."""
    B, S, width = x.shape
    xf = x.float().reshape(B, S, width // group, group)
    y = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)
    if weight is not None:
        y = y * weight.float()
    y = y.to(x.dtype).float().reshape(B, S, heads, width // heads)
    if cos is None:
        return y.to(x.dtype)
    c, s = cos.float()[None, :, None], sin.float()[None, :, None]
    even, odd = y[..., 0::2], y[..., 1::2]
    out = torch.empty_like(y)
    out[..., 0::2] = even * c[..., 0::2] - odd * s[..., 0::2]
    out[..., 1::2] = odd * c[..., 1::2] + even * s[..., 1::2]
    return out.to(x.dtype)


@torch.library.custom_op("lvsa::norm_rope", mutates_args=())
def _norm_rope(xs: list[torch.Tensor], weights: list[Optional[torch.Tensor]], eps: list[float], group: int,
               heads: int, cos: Optional[torch.Tensor], sin: Optional[torch.Tensor]) -> list[torch.Tensor]:
    """The prologue of one input, or of q and k of one shape in one launch (sharing the tables'
    reads): ``[rope(norm_i(x_i)) for each i]`` as ``[B, S, heads, D]`` tensors."""
    B, S, width = xs[0].shape
    head_dim = width // heads
    reason = backends.unavailable_reason("cuda", xs[0].device, xs[0].dtype, head_dim)
    if reason is not None:  # only a compiled processor gets here (see fuses): the same math in PyTorch ops
        say_once(f"QK prologue: PyTorch ops, not the fused kernel: {reason}")
        return [reference(x, w, e, group, heads, cos, sin) for x, w, e in zip(xs, weights, eps)]
    from . import _cuda  # noqa: PLC0415 - built, or the reason above says not

    outs = [x.new_empty((B, S, heads, head_dim)) for x in xs]
    say_once(f"QK prologue: RMSNorm over {group} features and "
             f"{'RoPE' if cos is not None else 'no RoPE'} fused in one CUDA kernel (lvsa._cuda.norm_rope)")
    if cos is not None:
        cos, sin = cos.contiguous(), sin.contiguous()
    inputs = []
    for x, out, weight, e in zip(xs, outs, weights, eps):
        weight = weight.contiguous() if weight is not None else None
        inputs.append((x.data_ptr(), x.stride(0), x.stride(1), out.data_ptr(),
                       weight.data_ptr() if weight is not None else 0, e))
    x = xs[0]
    _cuda.norm_rope(x.device.index if x.device.index is not None else torch.cuda.current_device(), inputs,
                    cos.data_ptr() if cos is not None else 0, sin.data_ptr() if sin is not None else 0,
                    cos.stride(0) if cos is not None else 0, B, S, heads, head_dim, group,
                    str(x.dtype).removeprefix("torch."),
                    torch.cuda.current_stream(x.device).cuda_stream)
    return outs


@_norm_rope.register_fake
def _(xs, weights, eps, group, heads, cos, sin):
    B, S, width = xs[0].shape
    return [x.new_empty((B, S, heads, width // heads)) for x in xs]


forward_only(_norm_rope)
