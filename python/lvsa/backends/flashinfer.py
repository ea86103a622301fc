"""FlashInfer backend (``backend="flashinfer"``, extra ``lvsa[flashinfer]``): LVSA's pattern
run by FlashInfer's block-sparse attention. Explicit only: ``auto`` never picks it; it is the
peer the ``cuda`` kernels are measured against, and a choice where FlashInfer is installed.

One frame is one block (R = C = P): the video-to-video pattern is a BSR matrix of T x T blocks,
row f holding the frames ``plan.attended(f)``. ``BlockSparseAttentionWrapper.plan`` runs once
per (plan, device, dtype, heads, head_dim, scale) and the wrapper is kept in ``plan.cache``, so
the steps that share a rotation offset share it; each wrapper owns its int workspace (where
FlashInfer keeps the plan), the float workspace is one per device.

Batch: the pattern is the same for every batch entry, so one wrapper planned over one entry
(M = N = T·P) runs once per entry on views of q, k and v. A block-diagonal BSR over B·T·P rows
would launch once, but needs the video tokens of all entries packed contiguously (a copy of q,
k and v whenever encoder tokens sit between them) and a plan per batch size; at video lengths
one entry already fills the GPU.

Encoder tokens are no whole block: the ``encoder_valid[b]`` valid encoder tokens of entry b are
a dense term (``single_prefill_with_kv_cache``) merged into the block-sparse result by
log-sum-exp (``merge_state_in_place``); padding is never a key. Encoder queries (joint models)
attend densely to all video tokens and the valid encoder tokens, one dense term per contiguous
key range, merged the same way; padded encoder query rows are zeros with lse -inf. A frame that
attends no frame gets the encoder term alone (zeros and lse -inf without one): its rows are
reset after the block-sparse run, whatever the kernel leaves for an empty row.

FlashInfer's lse is base 2 (its kernels and ``merge_state`` work with exp2/log2); it is
converted to the natural log of LVSA's contract. Reading ``encoder_valid`` costs one host sync
per call: FlashInfer takes kernel lengths as host values. The shared float workspace makes
concurrent calls on several streams of one device unsafe. Kernels are JIT-compiled by
FlashInfer on first use (scripts/flashinfer_prebuild.py builds them ahead of time).

:func:`block_layout` and :func:`row_groups` are the whole layout (pure Python, no GPU, no
FlashInfer): tests/python checks that they cover exactly the pattern's mask.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ._common import allocate_outputs, capability_reason

_DTYPES = (torch.float16, torch.bfloat16)
_HEAD_DIMS = (64, 128)
MIN_CAPABILITY = (8, 0)
_FLOAT_WORKSPACE_BYTES = 128 << 20  # FlashInfer's recommended size (split-k partial results)
_LN2 = math.log(2.0)
_INSTALL = "pip install 'lvsa[flashinfer]' (the flashinfer-python package)"


# --- layout (pure Python) --------------------------------------------------------------------

@dataclass(frozen=True)
class BlockLayout:
    """The video-to-video pattern as a BSR matrix of one batch entry: block row f (query frame
    f, ``block`` rows) holds the key blocks ``indices[indptr[f]:indptr[f + 1]]``."""

    indptr: tuple[int, ...]
    indices: tuple[int, ...]
    block: int  # R = C = tokens per frame
    size: int   # M = N = T·P

    @property
    def empty_frames(self) -> tuple[int, ...]:
        """Query frames that attend no frame."""
        return tuple(f for f in range(len(self.indptr) - 1) if self.indptr[f] == self.indptr[f + 1])


def block_layout(plan) -> BlockLayout:
    g = plan.geometry
    indptr, indices = [0], []
    for f in range(g.frames):
        indices += plan.attended(f)
        indptr.append(len(indices))
    return BlockLayout(tuple(indptr), tuple(indices), g.tokens_per_frame, g.video_tokens)


@dataclass(frozen=True)
class RowGroup:
    """Query rows ``rows`` ([begin, end) in q's sequence) of one batch entry: the block-sparse
    video term when ``sparse``, and dense attention to each key range of ``dense``."""

    rows: tuple[int, int]
    sparse: bool
    dense: tuple[tuple[int, int], ...]


def _coalesce(ranges):
    merged = []
    for begin, end in sorted(ranges):
        if merged and merged[-1][1] == begin:
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((begin, end))
    return tuple(merged)


def row_groups(geometry, q_len: int, valid: int) -> list[RowGroup]:
    """What each query row of a batch entry with ``valid`` valid encoder tokens attends, for q of
    ``q_len`` rows (the whole sequence or the video only). Rows in no group (padded encoder
    queries) attend nothing."""
    g = geometry
    full = q_len == g.seq_len
    q_video = g.video_begin if full else 0
    encoder = ((g.encoder_begin, g.encoder_begin + valid),) if valid else ()
    groups = [RowGroup((q_video, q_video + g.video_tokens), True, encoder)]
    if full and valid:
        video = (g.video_begin, g.video_begin + g.video_tokens)
        groups.append(RowGroup((g.encoder_begin, g.encoder_begin + valid), False, _coalesce((video, *encoder))))
    return groups


# --- availability ----------------------------------------------------------------------------

def package_reason() -> str | None:
    """Why FlashInfer cannot be imported here (None: it can); the benchmarks say "not installed"."""
    try:
        import flashinfer  # noqa: F401
    except ImportError as error:
        return f"backend 'flashinfer' needs FlashInfer: {_INSTALL} ({error})"
    return None


_device_reasons: dict[int, str | None] = {}


def _device_reason(device) -> str | None:
    """Why this GPU cannot run FlashInfer's kernels; asked of the driver once per device."""
    if not torch.cuda.is_available():
        return "backend 'flashinfer': torch sees no CUDA device (driver missing or no GPU visible)"
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index not in _device_reasons:
        _device_reasons[index] = capability_reason("flashinfer", device, torch.cuda.get_device_capability(index),
                                                   MIN_CAPABILITY)
    return _device_reasons[index]


def unavailable_reason(device, dtype=None, head_dim=None) -> str | None:
    # The inputs first, then the installation, then the GPU: all but the last need no GPU.
    if device.type != "cuda":
        return f"backend 'flashinfer' needs CUDA tensors, got {device}"
    if dtype is not None and dtype not in _DTYPES:
        return f"backend 'flashinfer' takes float16 or bfloat16, got {dtype}"
    if head_dim is not None and head_dim not in _HEAD_DIMS:
        return f"backend 'flashinfer' takes head_dim {' or '.join(map(str, _HEAD_DIMS))}, got {head_dim}"
    return package_reason() or _device_reason(device)


# --- execution -------------------------------------------------------------------------------

_float_workspaces: dict[int, torch.Tensor] = {}


def _float_workspace(device) -> torch.Tensor:
    buffer = _float_workspaces.get(device.index)
    if buffer is None:
        buffer = _float_workspaces[device.index] = torch.empty(_FLOAT_WORKSPACE_BYTES, dtype=torch.uint8,
                                                               device=device)
    return buffer


class _Sparse:
    """A plan's block-sparse term on one device for one kind of input: the planned wrapper (None
    when no frame attends any frame) and the rows of the frames that attend none."""

    def __init__(self, fi, plan, device, dtype, heads, kv_heads, head_dim, scale):
        layout = block_layout(plan)
        self.wrapper = None
        if layout.indices:
            self.wrapper = fi.BlockSparseAttentionWrapper(_float_workspace(device))
            # Host tensors: FlashInfer reads them on the host anyway, so planning never syncs.
            self.wrapper.plan(torch.tensor(layout.indptr, dtype=torch.int32),
                              torch.tensor(layout.indices, dtype=torch.int32), layout.size, layout.size,
                              layout.block, layout.block, heads, kv_heads, head_dim, sm_scale=scale,
                              q_data_type=dtype, kv_data_type=dtype, o_data_type=dtype)
        P = layout.block
        empty = [r for f in layout.empty_frames for r in range(f * P, (f + 1) * P)]
        self.empty_rows = torch.tensor(empty, dtype=torch.long, device=device) if empty else None

    def run(self, q, k, v, out, lse2):
        """Writes the term into ``out`` [T·P, Hq, D] and, when given, its base-2 lse ``lse2``."""
        if self.wrapper is None:
            out.zero_()
            if lse2 is not None:
                lse2.fill_(float("-inf"))
            return
        self.wrapper.run(q, k, v, out=out, lse=lse2, return_lse=lse2 is not None)
        if self.empty_rows is not None:
            out.index_fill_(0, self.empty_rows, 0)
            if lse2 is not None:
                lse2.index_fill_(0, self.empty_rows, float("-inf"))


def _sparse(fi, plan, device, q, k, scale) -> _Sparse:
    _, _, heads, head_dim = q.shape
    key = ("flashinfer", device.index, q.dtype, heads, k.shape[2], head_dim, scale)
    term = plan.cache.get(key)
    if term is None:
        term = plan.cache[key] = _Sparse(fi, plan, device, q.dtype, heads, k.shape[2], head_dim, scale)
    return term


def _tokens(x, b, begin, end):
    """Rows [begin, end) of batch entry b as the [n, H, D] FlashInfer takes; a view of
    contiguous inputs, a copy of any other layout."""
    rows = x[b, begin:end]
    return rows if rows.is_contiguous() else rows.contiguous()


def run(q, k, v, plan, encoder_valid, scale, return_lse):
    import flashinfer as fi

    device = q.device
    if device.type != "cuda" or k.device != device or v.device != device:
        raise ValueError(f"lvsa: flashinfer backend: q, k and v must be on one CUDA device, got {q.device}, "
                         f"{k.device} and {v.device}")
    if device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    g = plan.geometry
    B, Sq, Hq, _ = q.shape
    out, lse = allocate_outputs(q, return_lse)
    valid = [g.encoder_len] * B if encoder_valid is None else [int(n) for n in encoder_valid.tolist()]
    scale = q.shape[-1] ** -0.5 if scale is None else float(scale)
    sparse = _sparse(fi, plan, device, q, k, scale)
    with torch.cuda.device(device):
        for b in range(B):
            covered = 0
            for group in row_groups(g, Sq, valid[b]):
                begin, end = group.rows
                qr = _tokens(q, b, begin, end)
                o = out[b, begin:end]
                want_lse = return_lse or bool(group.dense and (group.sparse or len(group.dense) > 1))
                lse2 = torch.empty((end - begin, Hq), dtype=torch.float32, device=device) if want_lse else None
                dense = [(_tokens(k, b, *keys), _tokens(v, b, *keys)) for keys in group.dense]
                if group.sparse:
                    vb, ve = g.video_begin, g.video_begin + g.video_tokens
                    sparse.run(qr, _tokens(k, b, vb, ve), _tokens(v, b, vb, ve), o, lse2)
                else:  # the first dense term writes the output, as the sparse one does
                    o_t, s_t = fi.single_prefill_with_kv_cache(qr, *dense.pop(0), sm_scale=scale, return_lse=True)
                    o.copy_(o_t)
                    if lse2 is not None:
                        lse2.copy_(s_t)
                for keys, values in dense:
                    o_t, s_t = fi.single_prefill_with_kv_cache(qr, keys, values, sm_scale=scale, return_lse=True)
                    fi.merge_state_in_place(o, lse2, o_t, s_t)
                if return_lse:
                    lse[b, :, begin:end] = (lse2 * _LN2).transpose(0, 1)
                covered += end - begin
            if covered < Sq:  # padded encoder query rows: they attend nothing
                pad = slice(g.encoder_begin + valid[b], g.encoder_begin + g.encoder_len)
                out[b, pad] = 0
                if return_lse:
                    lse[b, :, pad] = float("-inf")
    return out, lse
