"""fp8 scores (``precision="fp8"``): q and k rounded to float8 e4m3 so that S = Q K^T runs at the
fp8 tensor rate of Hopper; v, the probabilities and the output keep bfloat16.

One scale per (batch, head), as FlashAttention-3's fp8 path uses: e4m3 is a floating-point
format, so a per-head scale only has to keep the head's largest value below e4m3's maximum
(448); every other value keeps e4m3's relative precision (3 mantissa bits) whatever its size.
The kernel multiplies the two descale factors into the softmax scale, which costs nothing per
score.

k is smoothed first (SageAttention's step): its mean over the tokens is subtracted per (batch,
head). That changes every score of a query by the same amount, q · mean, which softmax ignores,
so the attention is the same; but the rounding error of a score grows with |k|, and a bias that
all keys share would add to it. Measured on the CPU with Gaussian inputs and a shared bias of
twice their spread: 6.4e-2 relative error of the output without smoothing, 3.9e-2 with it, which
is the error without any bias (docs/perf/cuda_sm90.md, v6).

Encoder padding is never read by the kernels, but its values would enter a head's maximum and
k's mean: they are zeroed first, so that NaN or Inf there cannot reach a scale. Inf or NaN in the
valid tokens of q or k makes that head's scale non-finite and its whole output NaN: unlike the
16-bit path, fp8 scores cannot confine a non-finite input to the rows that attend it.
"""

from __future__ import annotations

from typing import Optional

import torch

E4M3_MAX = 448.0  # largest finite float8_e4m3fn value
HEAD_DIMS = (128,)  # the instantiated fp8-score kernels (src/cuda/CMakeLists.txt)
DTYPES = (torch.bfloat16,)


def inputs_reason(dtype, head_dim) -> Optional[str]:
    """Why fp8 scores cannot take inputs of ``dtype`` and ``head_dim`` (None: they can)."""
    if dtype not in DTYPES:
        return f"precision 'fp8' takes bfloat16 q, k and v, got {dtype}"
    if head_dim not in HEAD_DIMS:
        return f"precision 'fp8' takes head_dim {' or '.join(map(str, HEAD_DIMS))}, got {head_dim}"
    return None


def padding_mask(plan, batch: int, seq: int, encoder_valid: Optional[torch.Tensor], device) -> Optional[torch.Tensor]:
    """``[B, seq]`` True at the padded encoder tokens of a sequence of ``seq`` tokens (the whole
    sequence, or the video tokens only, which hold none); None when nothing is padded."""
    g = plan.geometry
    if encoder_valid is None or g.encoder_len == 0 or seq != g.seq_len:
        return None
    pos = torch.arange(seq, device=device)
    first_pad = g.encoder_begin + encoder_valid.to(device=device, dtype=torch.int64)
    return (pos[None, :] >= first_pad[:, None]) & (pos[None, :] < g.encoder_begin + g.encoder_len)


def quantize(x: torch.Tensor, pad: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``x`` ``[B, S, H, D]`` as contiguous float8_e4m3fn values and float32 descale factors
    ``[B, H]``: x ≈ values * descale[b, h] (zeros where ``pad``)."""
    if pad is not None:
        x = x.masked_fill(pad[:, :, None, None], 0)
    # The max-abs reduction, then the quotient (float32: a 16-bit x divided by float32 factors
    # promotes, with no float32 copy of x) and the cast.
    amax = torch.linalg.vector_norm(x, ord=float("inf"), dim=(1, 3)).float()
    # An all-zero head keeps a positive factor: its values quantise to zeros either way.
    descale = amax.clamp_min(torch.finfo(torch.float32).tiny) / E4M3_MAX
    values = (x / descale[:, None, :, None]).to(torch.float8_e4m3fn)
    return values.contiguous(), descale.contiguous()


def smoothed(k: torch.Tensor, pad: Optional[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """``k`` less its mean over the tokens per (batch, head), and that mean ``[B, 1, Hkv, D]`` in
    k's dtype; padded tokens (``pad``) are zeroed first, so they hold zeros in both."""
    if pad is not None:
        k = k.masked_fill(pad[:, :, None, None], 0)
    mean = k.mean(dim=1, keepdim=True, dtype=torch.float32).to(k.dtype)
    return k - mean, mean


def quantize_scores(q: torch.Tensor, k: torch.Tensor, plan, encoder_valid: Optional[torch.Tensor]):
    """q and k as the fp8-score kernels take them, encoder padding zeroed: ``(q values, q descale,
    k values, k descale, k mean)`` with q ≈ q values · q descale and k ≈ k values · k descale + k mean
    (``[B, Hkv, D]`` float32, the mean over the valid tokens' sequence rounded to k's dtype)."""
    B = q.shape[0]
    q_pad = padding_mask(plan, B, q.shape[1], encoder_valid, q.device)
    k_pad = padding_mask(plan, B, k.shape[1], encoder_valid, k.device)
    k_smoothed, k_mean = smoothed(k, k_pad)
    q8, q_descale = quantize(q, q_pad)
    k8, k_descale = quantize(k_smoothed, k_pad)
    return q8, q_descale, k8, k_descale, k_mean[:, 0].float()


def add_mean_scores(lse: torch.Tensor, q: torch.Tensor, k_mean: torch.Tensor, scale: float) -> torch.Tensor:
    """The log-sum-exp ``[B, Hq, Sq]`` of the scores of k from that of the smoothed k's, which the
    kernel returns: each row's lse grows by its query's score against k's mean, scale · q · mean,
    from the 16-bit q (the mean's scores need not carry e4m3's rounding). Rows without keys (padded
    encoder queries, whose q may hold anything) stay -inf."""
    group = q.shape[2] // k_mean.shape[1]
    mean = k_mean.repeat_interleave(group, dim=1)  # of each query head's key head
    shift = scale * torch.einsum("bshd,bhd->bhs", q.float(), mean)
    return torch.where(lse == float("-inf"), lse, lse + shift)


def dequantize(values: torch.Tensor, descale: torch.Tensor) -> torch.Tensor:
    """What the kernel computes with: float32 ``values * descale`` (the tests' oracle input)."""
    return values.float() * descale[:, None, :, None]
