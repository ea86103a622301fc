"""Portable backend built from PyTorch ops only: runs wherever PyTorch runs.

Video queries are processed a chunk of query frames at a time: each frame's key frames are
gathered (frame-granular ``index_select``, no per-token index tensors) next to the encoder
tokens, and one ``scaled_dot_product_attention`` call serves the whole chunk, so a layer
costs a few calls, not one per frame. Slots of frames with fewer attended frames and
encoder padding are masked out, so they get exactly zero weight. The chunk size bounds the
gathered K/V to ``LVSA_TORCH_CHUNK_BYTES`` (default 1 GiB).
"""

from __future__ import annotations

import os

import torch
import torch.nn.functional as F

from . import _common

_CHUNK_BYTES = int(os.environ.get("LVSA_TORCH_CHUNK_BYTES", str(1 << 30)))


def unavailable_reason(device, dtype=None, head_dim=None) -> str | None:
    return None


def _frame_slots(plan, device):
    """[T, N] key-frame index per query frame, [T, N] slot validity (None when every frame
    attends to the same number of frames), and whether some frame attends to no frame at all.

    A masked slot still multiplies its value by a weight of 0, and 0 * NaN is NaN, so unused
    slots repeat a frame the query attends anyway: a NaN in a frame it does not attend cannot
    reach it. A frame attending no frame has nothing to repeat; its slots are zeroed instead."""
    key = ("torch", device)
    cached = plan.cache.get(key)
    if cached is None:
        lists = [plan.attended(f) for f in range(plan.geometry.frames)]
        width = max(1, max(len(x) for x in lists))
        index = torch.zeros((len(lists), width), dtype=torch.long)
        valid = torch.zeros((len(lists), width), dtype=torch.bool)
        for f, frames in enumerate(lists):
            if frames:
                index[f] = frames[0]
                index[f, : len(frames)] = torch.tensor(frames, dtype=torch.long)
            valid[f, : len(frames)] = True
        ragged = not bool(valid.all())
        empty = not all(lists)
        cached = plan.cache[key] = (index.to(device), valid.to(device) if ragged else None, empty)
    return cached


def _attend(q, k, v, mask, scale, want_lse):
    """Attention on [N, H, L, D] tensors with a [N, 1, 1, Lk] (or None) boolean key mask.
    Rows without any key give zeros and lse -inf."""
    if want_lse:
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        lse = torch.logsumexp(scores, dim=-1)
        weights = torch.exp(scores - lse.unsqueeze(-1).clamp_min(torch.finfo(torch.float32).min))
        out = torch.matmul(weights, v.float()).to(q.dtype)
        return out, lse
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=scale, enable_gqa=True)
    if mask is not None:  # all-masked rows come back NaN from SDPA
        out = torch.where(mask.any(-1, keepdim=True), out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out, None


def _expand_kv_heads(k, heads):
    """GQA for the explicit path: repeat K/V heads up to the query head count."""
    return k if k.shape[1] == heads else k.repeat_interleave(heads // k.shape[1], dim=1)


def run(q, k, v, plan, encoder_valid, scale, return_lse):
    g = plan.geometry
    B, Sq, Hq, D = q.shape
    Hkv = k.shape[2]
    T, P, E = g.frames, g.tokens_per_frame, g.encoder_len
    out, lse = _common.allocate_outputs(q, return_lse)
    qh, kh, vh = (x.transpose(1, 2) for x in (q, k, v))  # [B, H, S, D] views
    if return_lse:
        kh, vh = _expand_kv_heads(kh, Hq), _expand_kv_heads(vh, Hq)
    heads_kv = kh.shape[1]
    q_video_begin = g.video_begin if Sq == g.seq_len else 0

    enc_k = kh[:, :, g.encoder_begin : g.encoder_begin + E]
    enc_v = vh[:, :, g.encoder_begin : g.encoder_begin + E]
    enc_mask = None
    if E > 0 and encoder_valid is not None:
        enc_mask = torch.arange(E, device=q.device)[None, :] < encoder_valid.to(q.device).long()[:, None]
        # A masked weight is 0, but 0 * inf/NaN is not: padding must not be read at all.
        keep = enc_mask[:, None, :, None]
        enc_k, enc_v = (torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
                        for x in (enc_k, enc_v))

    index, slot_valid, empty_frames = _frame_slots(plan, q.device)
    N = index.shape[1]
    video_k = kh[:, :, g.video_begin : g.video_begin + T * P].unflatten(2, (T, P))
    video_v = vh[:, :, g.video_begin : g.video_begin + T * P].unflatten(2, (T, P))
    per_frame_bytes = 2 * B * heads_kv * (N * P + E) * D * q.element_size()
    chunk = max(1, min(T, _CHUNK_BYTES // max(per_frame_bytes, 1)))

    for f0 in range(0, T, chunk):
        f1 = min(T, f0 + chunk)
        C = f1 - f0
        idx = index[f0:f1].reshape(-1)

        def gather(video, enc):
            x = video.index_select(2, idx).reshape(B, heads_kv, C, N * P, D)
            if E > 0:
                x = torch.cat([x, enc.unsqueeze(2).expand(B, heads_kv, C, E, D)], dim=3)
            return x.transpose(1, 2).reshape(B * C, heads_kv, N * P + E, D)

        kc, vc = gather(video_k, enc_k), gather(video_v, enc_v)
        qc = qh[:, :, q_video_begin + f0 * P : q_video_begin + f1 * P].unflatten(2, (C, P))
        qc = qc.transpose(1, 2).reshape(B * C, Hq, P, D)

        mask = None
        if slot_valid is not None or enc_mask is not None:
            slots = (slot_valid[f0:f1] if slot_valid is not None
                     else torch.ones((C, N), dtype=torch.bool, device=q.device))
            video_mask = slots.repeat_interleave(P, dim=1).expand(B, C, N * P)
            parts = [video_mask]
            if E > 0:
                enc = enc_mask if enc_mask is not None else torch.ones((B, E), dtype=torch.bool, device=q.device)
                parts.append(enc[:, None, :].expand(B, C, E))
            mask = torch.cat(parts, dim=2).reshape(B * C, 1, 1, N * P + E)
            if empty_frames:
                keep = mask.reshape(B * C, 1, N * P + E, 1)
                kc, vc = (x.masked_fill(~keep, 0) for x in (kc, vc))

        o, l = _attend(qc, kc, vc, mask, scale, return_lse)
        rows = slice(q_video_begin + f0 * P, q_video_begin + f1 * P)
        out[:, rows] = o.reshape(B, C, Hq, P, D).permute(0, 1, 3, 2, 4).reshape(B, C * P, Hq, D)
        if return_lse:
            lse[:, :, rows] = l.reshape(B, C, Hq, P).permute(0, 2, 1, 3).reshape(B, Hq, C * P)

    if Sq == g.seq_len and E > 0:
        video = slice(g.video_begin, g.video_begin + T * P)
        order = (lambda video_part, enc: [enc, video_part]) if g.encoder_side == "before" else (
            lambda video_part, enc: [video_part, enc])
        keys = torch.cat(order(kh[:, :, video], enc_k), dim=2)
        values = torch.cat(order(vh[:, :, video], enc_v), dim=2)
        _encoder_queries(qh, keys, values, out, lse, g, enc_mask, scale, return_lse)
    return out, lse


def _encoder_queries(qh, kh, vh, out, lse, g, enc_mask, scale, return_lse):
    """Joint-attention models: encoder queries attend densely to all video tokens and the valid
    encoder tokens; padded encoder query rows are zeros (lse -inf)."""
    B, E = qh.shape[0], g.encoder_len
    rows = slice(g.encoder_begin, g.encoder_begin + E)
    mask = None
    if enc_mask is not None:
        key_valid = torch.ones((B, g.seq_len), dtype=torch.bool, device=qh.device)
        key_valid[:, rows] = enc_mask
        mask = key_valid[:, None, None, :]
    o, l = _attend(qh[:, :, rows], kh, vh, mask, scale, return_lse)
    if enc_mask is not None:
        o = o.masked_fill(~enc_mask[:, None, :, None], 0)
        if return_lse:
            l = l.masked_fill(~enc_mask[:, None, :], float("-inf"))
    out[:, rows] = o.transpose(1, 2)
    if return_lse:
        lse[:, :, rows] = l
