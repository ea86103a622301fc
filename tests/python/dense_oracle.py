"""Masked dense attention in float64, built from the frame pattern (not from the key ranges):
the independent oracle every backend is compared with."""

import torch


def pattern_mask(plan, q_len, encoder_valid=None, batch=1):
    """Boolean [B, Sq, Sk] mask of the pairs a plan allows (spec §4)."""
    g = plan.geometry
    T, P, E = g.frames, g.tokens_per_frame, g.encoder_len
    Sk = g.seq_len
    frame_mask = torch.zeros((T, T), dtype=torch.bool)
    for f in range(T):
        frame_mask[f, plan.attended(f)] = True
    video = frame_mask.repeat_interleave(P, 0).repeat_interleave(P, 1)  # [T*P, T*P]
    valid = torch.full((batch,), E) if encoder_valid is None else torch.as_tensor(encoder_valid)
    enc_key = torch.arange(E)[None, :] < valid[:, None]  # [B, E]
    mask = torch.zeros((batch, Sk, Sk), dtype=torch.bool)
    vs, es = g.video_begin, g.encoder_begin
    mask[:, vs:vs + T * P, vs:vs + T * P] = video
    mask[:, vs:vs + T * P, es:es + E] = enc_key[:, None, :]
    if E:
        mask[:, es:es + E, vs:vs + T * P] = True
        mask[:, es:es + E, es:es + E] = enc_key[:, None, :]
        mask[:, es:es + E] &= enc_key[:, :, None]  # padded encoder query rows: no keys at all
    if q_len == g.video_tokens and E:
        mask = mask[:, vs:vs + T * P]
    return mask


def masked_dense(q, k, v, mask, scale=None):
    """float64 attention with a [B, Sq, Sk] mask; rows without keys give zeros and lse -inf."""
    q, k, v = (x.double() for x in (q, k, v))
    group = q.shape[2] // k.shape[2]
    k = k.repeat_interleave(group, dim=2)
    v = v.repeat_interleave(group, dim=2)
    scale = scale if scale is not None else q.shape[-1] ** -0.5
    s = torch.einsum("bqhd,bkhd->bhqk", q, k) * scale
    s = s.masked_fill(~mask[:, None], float("-inf"))
    lse = torch.logsumexp(s, dim=-1)
    w = torch.exp(s - lse.unsqueeze(-1).nan_to_num(neginf=0.0))
    out = torch.einsum("bhqk,bkhd->bqhd", w, v)
    return out, lse
