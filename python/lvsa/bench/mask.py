"""A plan's attention mask as the benchmarks need it: the pairs it keeps, and the same mask as a
FlexAttention ``BlockMask`` (the FlexAttention column of bench/attention.py and of the DiT
benchmark, so both time FlexAttention on exactly the mask LVSA computes).

``valid`` is the number of valid encoder tokens (HunyuanVideo 1.5 pads its text): the padding
is neither attended nor attends, as in LVSA's ``encoder_valid``.
"""

from __future__ import annotations

from typing import Sequence

import torch

from ..plan import StepPlan


def kept_pairs(plan: StepPlan, valid: int) -> int:
    """(query, key) pairs the plan attends, over the video tokens and ``valid`` encoder tokens."""
    g = plan.geometry
    P = g.tokens_per_frame
    offs, rb, re_ = plan.range_offsets, plan.range_begin, plan.range_end
    video = sum(int((re_[offs[f]:offs[f + 1]] - rb[offs[f]:offs[f + 1]]).sum()) for f in range(g.frames))
    pairs = P * (video + g.frames * valid)
    pairs += valid * (g.video_tokens + valid)  # valid encoder queries attend densely
    return pairs


def mask_mod(plan: StepPlan, valid: Sequence[int], device):
    """The plan's mask as a FlexAttention ``mask_mod(b, h, q_index, k_index)`` for a batch whose
    row ``b`` has ``valid[b]`` valid encoder tokens."""
    g = plan.geometry
    T, P, S = g.frames, g.tokens_per_frame, g.seq_len
    cls = torch.full((S,), T, dtype=torch.int32, device=device)  # class T: encoder token
    cls[g.video_begin:g.video_begin + T * P] = torch.arange(T, device=device, dtype=torch.int32).repeat_interleave(P)
    table = torch.zeros((T + 1, T + 1), dtype=torch.bool)
    for f in range(T):
        table[f, plan.attended(f)] = True
    table[:, T] = True  # every query sees the (valid) encoder tokens
    table[T, :] = True  # encoder queries are dense
    table = table.to(device)
    # Encoder tokens at or past this index of row b are padding.
    enc_end = g.encoder_begin + torch.tensor(list(valid), dtype=torch.int32, device=device)

    def allowed(b, h, qi, ki):
        cq, ck = cls[qi], cls[ki]
        return table[cq, ck] & ((ck < T) | (ki < enc_end[b])) & ((cq < T) | (qi < enc_end[b]))

    return allowed


def block_mask(plan: StepPlan, valid: Sequence[int], device):
    """:func:`mask_mod` as a ``BlockMask`` over the whole sequence (padding included, masked out)."""
    from torch.nn.attention.flex_attention import create_block_mask

    S = plan.geometry.seq_len
    return create_block_mask(mask_mod(plan, valid, device), len(valid), None, S, S, device=device, _compile=True)


_compiled_flex = None


def flex_attention(q, k, v, mask, scale=None):
    """FlexAttention on ``[B, H, S, D]`` tensors, compiled once (eager FlexAttention materialises
    the scores and is no baseline anyone would run)."""
    global _compiled_flex
    if _compiled_flex is None:
        from torch.nn.attention.flex_attention import flex_attention as flex

        _compiled_flex = torch.compile(flex, dynamic=False)
    return _compiled_flex(q, k, v, block_mask=mask, scale=scale)
