"""Quantised scores (``precision="fp8"`` or ``"int8"``): q and k rounded to float8 e4m3 or to int8
so that S = Q K^T runs at the 8-bit tensor rate of Hopper; v, the probabilities and the output
keep bfloat16. ``precision="int8-fp8"`` quantises P · V too (SageAttention2's split): int8 scores,
and v and the probabilities in e4m3 (``quantize_values``).

One scale per (batch, head) that maps the head's largest value to the format's largest (448 for
e4m3, FlashAttention-3's fp8 choice; 127 for int8). e4m3 is a floating-point format, so every
other value keeps its relative precision (3 mantissa bits) whatever its size; int8 keeps an
absolute step of amax / 127, which for values spread like attention inputs is more accurate
(2.5x in the CPU emulation, 2.1x in the kernels' outputs on an H200: docs/perf/cuda_sm90.md, v6
and v7), at the same tensor rate. The kernel multiplies the two
descale factors into the softmax scale, which costs nothing per score; int8 products
accumulate exactly in int32.

k is smoothed first (SageAttention's step): its mean over the tokens is subtracted per (batch,
head). That changes every score of a query by the same amount, q · mean, which softmax ignores,
so the attention is the same; but the rounding error of a score grows with |k|, and a bias that
all keys share would add to it. Measured on the CPU with Gaussian inputs and a shared bias of
twice their spread: 6.4e-2 relative error of the output without smoothing, 3.9e-2 with it, which
is the error without any bias (docs/perf/cuda_sm90.md, v6).

Encoder padding is never read by the attention kernels, but its values would enter a head's
maximum and k's mean: the CUDA pre-pass never reads it either, and the PyTorch reference zeroes it
first, so that NaN or Inf there cannot reach a scale (a padded token counts as zeros in k's mean).
Inf or NaN in the valid tokens of q or k makes that head's scale non-finite and its whole output
NaN: unlike the 16-bit path, quantised scores cannot confine a non-finite input to the rows that
attend it.

fp8 values: v in e4m3 with one scale per (batch, head) (amax / 448), and P as e4m3 of 256 · p (the
kernel shifts the row max by 8 in the exp2 domain, so probabilities keep e4m3's normal range down to
2^-14 and the row sum carries the same factor). 8-bit wgmma takes only K-major operands, so the
pre-pass writes v transposed, ``[B, Hkv, D, row]`` with rows of ``row_keys(S)`` keys, and within
each aligned group of 16 keys in the order the kernel's probabilities come in (``VALUE_ORDER``).
Measured on an H200 (docs/perf/cuda_sm90.md, v8): 1.26x the 16-bit kernel at Wan 2.1 T = 121
against int8 scores' 1.15x, at twice int8 scores' error (e4m3's 3 mantissa bits on v and P).
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch

E4M3_MAX = 448.0  # largest finite float8_e4m3fn value
INT8_MAX = 127.0  # symmetric: -128 is never used
HEAD_DIMS = (128,)  # the instantiated kernels with quantised scores (src/cuda/CMakeLists.txt)
DTYPES = (torch.bfloat16,)


class Format(NamedTuple):
    """One quantised-score format: the values' dtype, the largest value a head's maximum maps to,
    the name the CUDA kernels give the dtype, and the values' short name (log lines)."""
    dtype: torch.dtype
    max: float
    kernel_dtype: str
    short: str

    def cast(self, scaled: torch.Tensor) -> torch.Tensor:
        """``scaled`` (float32, |x| <= max) in this format: e4m3 rounds to nearest; int8 rounds to
        the nearest integer, ties to even, as the CUDA quantiser's __float2int_rn."""
        if self.dtype == torch.int8:
            return scaled.round().clamp(-self.max, self.max).to(torch.int8)
        return scaled.to(self.dtype)


_E4M3 = Format(torch.float8_e4m3fn, E4M3_MAX, "float8_e4m3", "e4m3")
_INT8 = Format(torch.int8, INT8_MAX, "int8", "int8")
# The score format of each quantised precision.
FORMATS = {"fp8": _E4M3, "int8": _INT8, "int8-fp8": _INT8}
# The precisions whose P . V runs in e4m3 too (fp8 values).
FP8_VALUES = frozenset({"int8-fp8"})


def note(precision: str, values: bool = False) -> str:
    """What the enable lines add for ``precision``: ", fp8 scores" (with ``values``, also "(q and k in
    e4m3)"), ", int8 scores, fp8 P.V" for int8-fp8, nothing for the default."""
    fmt = FORMATS.get(precision)
    if fmt is None:
        return ""
    if precision in FP8_VALUES:
        return f", {fmt.short} scores, fp8 P.V" + (f" (q and k in {fmt.short}, v and P in e4m3)" if values else "")
    return f", {precision} scores" + (f" (q and k in {fmt.short})" if values else "")


def inputs_reason(dtype, head_dim, precision: str = "fp8") -> Optional[str]:
    """Why ``precision``'s quantised scores cannot take inputs of ``dtype`` and ``head_dim`` (None:
    they can)."""
    if dtype not in DTYPES:
        return f"precision {precision!r} takes bfloat16 q, k and v, got {dtype}"
    if head_dim not in HEAD_DIMS:
        return f"precision {precision!r} takes head_dim {' or '.join(map(str, HEAD_DIMS))}, got {head_dim}"
    return None


def encoder_span(plan, seq: int, encoder_valid: Optional[torch.Tensor]) -> Optional[tuple[int, int]]:
    """``(begin, length)`` of the encoder tokens whose tail ``encoder_valid`` pads, in a sequence of
    ``seq`` tokens (the whole sequence, or the video tokens only, which hold none); None when
    nothing can be padded."""
    g = plan.geometry
    if encoder_valid is None or g.encoder_len == 0 or seq != g.seq_len:
        return None
    return g.encoder_begin, g.encoder_len


def padding_mask(plan, batch: int, seq: int, encoder_valid: Optional[torch.Tensor], device) -> Optional[torch.Tensor]:
    """``[B, seq]`` True at the padded encoder tokens of a sequence of ``seq`` tokens; None when
    nothing is padded (``encoder_span``)."""
    span = encoder_span(plan, seq, encoder_valid)
    if span is None:
        return None
    begin, length = span
    pos = torch.arange(seq, device=device)
    first_pad = begin + encoder_valid.to(device=device, dtype=torch.int64)
    return (pos[None, :] >= first_pad[:, None]) & (pos[None, :] < begin + length)


def _descale(amax: torch.Tensor, top: float) -> torch.Tensor:
    """The factor that maps a head's largest magnitude ``amax`` onto the format's largest value ``top``.
    An all-zero head keeps a positive factor with a finite reciprocal: its values quantise to zeros
    either way."""
    return (amax / top).clamp_min(torch.finfo(torch.float32).tiny)


def quantize(x: torch.Tensor, pad: Optional[torch.Tensor], precision: str = "fp8") -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` ``[B, S, H, D]`` as contiguous values of ``precision``'s format (float8_e4m3fn or int8)
    and float32 descale factors ``[B, H]``: x ≈ values * descale[b, h] (zeros where ``pad``)."""
    fmt = FORMATS[precision]
    if pad is not None:
        x = x.masked_fill(pad[:, :, None, None], 0)
    # The max-abs reduction, then the product with the scale's reciprocal (float32: a 16-bit x
    # times float32 factors promotes, with no float32 copy of x; a product, as the CUDA kernel
    # computes it, where a division per element would cost more than the pass's memory traffic)
    # and the cast.
    amax = torch.linalg.vector_norm(x, ord=float("inf"), dim=(1, 3)).float()
    descale = _descale(amax, fmt.max)
    values = fmt.cast(x * (1 / descale)[:, None, :, None])
    return values.contiguous(), descale.contiguous()


def smoothed(k: torch.Tensor, pad: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` less its mean over the tokens per (batch, head), and that mean ``[B, 1, Hkv, D]`` in
    k's dtype; padded tokens (``pad``) are zeroed first, so they hold zeros in both."""
    if pad is not None:
        k = k.masked_fill(pad[:, :, None, None], 0)
    mean = k.mean(dim=1, keepdim=True, dtype=torch.float32).to(k.dtype)
    return k - mean, mean


class ScoreInputs(NamedTuple):
    """q and k as the kernels with quantised scores take them: q ≈ q · q_descale and k ≈ k · k_descale
    + k_mean (values float8_e4m3fn or int8 ``[B, S, H, D]``, descales float32 ``[B, H]``, k's mean
    float32 ``[B, Hkv, D]``, rounded to k's dtype), and the scores of q against k's mean ``[B, Hq,
    Sq]`` float32 that the lse needs back (None unless asked for)."""
    q: torch.Tensor
    q_descale: torch.Tensor
    k: torch.Tensor
    k_descale: torch.Tensor
    k_mean: torch.Tensor
    mean_scores: Optional[torch.Tensor]


def quantize_scores(q: torch.Tensor, k: torch.Tensor, plan, encoder_valid: Optional[torch.Tensor],
                    lse_scale: Optional[float] = None, precision: str = "fp8") -> ScoreInputs:
    """:class:`ScoreInputs` of q and k in ``precision``'s format in PyTorch ops, on any device,
    encoder padding zeroed: the reference of :func:`quantize_scores_cuda` and the CPU's emulation
    of quantised scores. With ``lse_scale``, also the mean's scores at that softmax scale."""
    B = q.shape[0]
    q_pad = padding_mask(plan, B, q.shape[1], encoder_valid, q.device)
    k_pad = padding_mask(plan, B, k.shape[1], encoder_valid, k.device)
    k_smoothed, k_mean = smoothed(k, k_pad)
    q8, q_descale = quantize(q, q_pad, precision)
    k8, k_descale = quantize(k_smoothed, k_pad, precision)
    k_mean = k_mean[:, 0].float()
    return ScoreInputs(q8, q_descale, k8, k_descale, k_mean,
                       None if lse_scale is None else mean_scores(q, k_mean, lse_scale))


def _rows(x: torch.Tensor) -> tuple:
    """A ``[B, S, H, D]`` tensor as the CUDA quantisers take it: (data_ptr, shape, strides)."""
    return x.data_ptr(), x.shape, x.stride()


class _CudaPrepass:
    """What the CUDA quantisers of q, k and v share: ``lvsa._cuda``, the device and its current
    stream, and the encoder padding as the kernels describe it."""

    def __init__(self, device: torch.device, plan, encoder_valid: Optional[torch.Tensor]):
        from .. import _cuda  # noqa: PLC0415 - the cuda backend's module, built with it

        self.cuda = _cuda
        self.device = device.index if device.index is not None else torch.cuda.current_device()
        self.stream = torch.cuda.current_stream(device).cuda_stream
        self.plan = plan
        self.valid = None if encoder_valid is None else encoder_valid.to(device=device, dtype=torch.int32).contiguous()

    def padding(self, x: torch.Tensor) -> tuple[int, int, int]:
        """x's padded rows: (valid_ptr, begin, length), zeros when nothing is padded."""
        span = encoder_span(self.plan, x.shape[1], self.valid)
        return (0, 0, 0) if span is None else (self.valid.data_ptr(), *span)

    def stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per (batch, head, feature): the sum, min and max of x over its unpadded rows."""
        chunks = -(-x.shape[1] // self.cuda.score_stats_chunk_rows)
        partial = x.new_empty((3, chunks, *x.shape[0:1], *x.shape[2:]), dtype=torch.float32)
        self.cuda.score_stats(self.device, _rows(x), *self.padding(x), partial[0].data_ptr(), partial[1].data_ptr(),
                              partial[2].data_ptr(), self.stream)
        return partial[0].sum(0), partial[1].amin(0), partial[2].amax(0)


def quantize_scores_cuda(q: torch.Tensor, k: torch.Tensor, plan, encoder_valid: Optional[torch.Tensor],
                         lse_scale: Optional[float] = None, precision: str = "fp8") -> ScoreInputs:
    """:func:`quantize_scores` in LVSA's CUDA kernels (``lvsa._cuda.score_stats`` and
    ``score_quantize``: two reads of q and of k, one 8-bit write), as the cuda backend runs it. The
    same values, but for k's mean, whose float32 sum adds in another order (rarely one bfloat16
    rounding step apart, which moves k's values in that feature by as much)."""
    fmt = FORMATS[precision]
    for name, x in (("q", q), ("k", k)):
        if not x.is_cuda or x.dtype != torch.bfloat16:
            raise ValueError(f"lvsa: {precision} scores: the CUDA quantiser takes bfloat16 CUDA tensors, got {name} "
                             f"{x.dtype} on {x.device}")
    run = _CudaPrepass(q.device, plan, encoder_valid)

    def values(x, descale, mean=None, score_mean=None, group=1):
        out = torch.empty(x.shape, dtype=fmt.dtype, device=x.device)
        scores = None
        if score_mean is not None:
            scores = torch.empty((x.shape[0], x.shape[1], x.shape[2]), dtype=torch.float32, device=x.device)
        run.cuda.score_quantize(run.device, _rows(x), *run.padding(x), descale.data_ptr(),
                                0 if mean is None else mean.data_ptr(),
                                0 if score_mean is None else score_mean.data_ptr(), group,
                                float(lse_scale or 0.0), 0 if scores is None else scores.data_ptr(), out.data_ptr(),
                                fmt.kernel_dtype, run.stream)
        return out, scores

    _, q_min, q_max = run.stats(q)
    q_descale = _descale(torch.maximum(q_max.amax(-1), -q_min.amin(-1)), fmt.max)
    k_sum, k_min, k_max = run.stats(k)
    k_mean = (k_sum / k.shape[1]).to(k.dtype).float()  # padded rows count as zeros, as in smoothed()
    # max |bfloat16(k - mean)| over the rows: the largest distance of either extreme from the mean.
    k_amax = torch.maximum(k_max - k_mean, k_mean - k_min).to(k.dtype).float().amax(-1)
    k_descale = _descale(k_amax, fmt.max)
    k8, _ = values(k, k_descale, mean=k_mean.contiguous())
    q8, scores = values(q, q_descale.contiguous(), score_mean=None if lse_scale is None else k_mean.contiguous(),
                        group=q.shape[2] // k.shape[2])
    return ScoreInputs(q8, q_descale, k8, k_descale, k_mean, None if scores is None else scores.permute(0, 2, 1))


def row_keys(seq: int) -> int:
    """Keys per row of fp8 values' transposed v for ``seq`` keys: a whole number of groups of 16 (the
    C++ ``lvsa::value_row_keys``)."""
    return -(-seq // 16) * 16


# fp8 values: the key at each position of an aligned group of 16 (position 4t + c holds key
# 8(c >> 1) + 2t + (c & 1), the order in which a thread of the kernel holds its probabilities).
VALUE_ORDER = tuple(8 * ((p & 3) >> 1) + 2 * (p >> 2) + (p & 1) for p in range(16))


def _value_keys(row: int, device) -> torch.Tensor:
    """``[row]`` the key that each position of a transposed row holds."""
    pos = torch.arange(row, device=device)
    return pos - pos % 16 + torch.tensor(VALUE_ORDER, device=device)[pos % 16]


class ValueInputs(NamedTuple):
    """v as the kernel with fp8 values takes it: float8_e4m3fn ``[B, Hkv, D, row_keys(S)]`` (keys in
    ``VALUE_ORDER``, padding zero) with v ≈ values · v_descale, float32 ``[B, Hkv]``."""
    v: torch.Tensor
    v_descale: torch.Tensor

    def kernel_tensor(self, seq: int) -> tuple[int, tuple, tuple]:
        """(data_ptr, shape, strides) as the C++ contract describes fp8 values: ``[B, seq, Hkv, D]``
        with strides (batch, 1, head, row)."""
        B, H, D, row = self.v.shape
        return self.v.data_ptr(), (B, seq, H, D), (H * D * row, 1, D * row, row)


def quantize_values(v: torch.Tensor, plan, encoder_valid: Optional[torch.Tensor]) -> ValueInputs:
    """:class:`ValueInputs` of ``v`` ``[B, S, Hkv, D]`` in PyTorch ops, on any device: the reference of
    :func:`quantize_values_cuda` (the same bytes)."""
    B, S, H, D = v.shape
    pad = padding_mask(plan, B, S, encoder_valid, v.device)
    values, descale = quantize(v, pad, "fp8")
    row = row_keys(S)
    values = torch.cat([values, values.new_zeros((B, row - S, H, D))], dim=1)  # e4m3 zeros: 0x00
    values = values[:, _value_keys(row, v.device)]
    return ValueInputs(values.permute(0, 2, 3, 1).contiguous(), descale)


def quantize_values_cuda(v: torch.Tensor, plan, encoder_valid: Optional[torch.Tensor]) -> ValueInputs:
    """:func:`quantize_values` in LVSA's CUDA kernels (``lvsa._cuda.score_stats`` for the scale, then
    ``value_quantize``: two reads of v, one transposed 8-bit write)."""
    if not v.is_cuda or v.dtype != torch.bfloat16:
        raise ValueError(f"lvsa: fp8 values: the CUDA quantiser takes a bfloat16 CUDA v, got {v.dtype} on {v.device}")
    B, S, H, D = v.shape
    run = _CudaPrepass(v.device, plan, encoder_valid)
    _, v_min, v_max = run.stats(v)
    descale = _descale(torch.maximum(v_max.amax(-1), -v_min.amin(-1)), E4M3_MAX).contiguous()
    row = row_keys(S)
    out = torch.empty((B, H, D, row), dtype=torch.float8_e4m3fn, device=v.device)
    run.cuda.value_quantize(run.device, _rows(v), *run.padding(v), descale.data_ptr(), row, out.data_ptr(), run.stream)
    return ValueInputs(out, descale)


def dequantize_values(values: ValueInputs, seq: int) -> torch.Tensor:
    """What the kernel computes with: float32 ``[B, seq, Hkv, D]`` from :class:`ValueInputs` (the tests'
    oracle input)."""
    v = values.v.float() * values.v_descale[:, :, None, None]
    row = v.shape[-1]
    out = torch.empty_like(v)
    out[..., _value_keys(row, v.device)] = v
    return out[..., :seq].permute(0, 3, 1, 2)


def mean_scores(q: torch.Tensor, k_mean: torch.Tensor, scale: float) -> torch.Tensor:
    """``[B, Hq, Sq]`` float32: each query's score against its key head's mean, scale · q · mean, from
    the 16-bit q (the mean's scores need not carry the quantised rounding)."""
    group = q.shape[2] // k_mean.shape[1]
    mean = k_mean.repeat_interleave(group, dim=1)  # of each query head's key head
    return scale * torch.einsum("bshd,bhd->bhs", q.float(), mean)


def add_mean_scores(lse: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """The log-sum-exp ``[B, Hq, Sq]`` of the scores of k from that of the smoothed k's, which the
    kernel returns: each row's lse grows by its query's score against k's mean (``mean_scores``).
    Rows without keys (padded encoder queries, whose q may hold anything) stay -inf."""
    return torch.where(lse == float("-inf"), lse, lse + scores)


def dequantize(values: torch.Tensor, descale: torch.Tensor) -> torch.Tensor:
    """What the kernel computes with: float32 ``values * descale`` (the tests' oracle input)."""
    return values.float() * descale[:, None, :, None]
