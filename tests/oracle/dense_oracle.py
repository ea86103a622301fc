"""The independent oracle every backend is compared with: masked dense attention in float64, its
mask built from the frame pattern (``plan.attended``), not from the key ranges the kernels walk.

Works on CPU and CUDA tensors alike (everything stays on q's device), and on a subset of query
rows and heads, so that it also serves real sizes (S ~ 10^5) on a GPU. tests/python and
tests/gpu put this folder on sys.path (their conftest.py)."""

from __future__ import annotations

import torch


def frame_mask(plan) -> torch.Tensor:
    """Bool [T, T]: which key frames each query frame attends."""
    T = plan.geometry.frames
    m = torch.zeros((T, T), dtype=torch.bool)
    for f in range(T):
        m[f, plan.attended(f)] = True
    return m


def key_mask(plan, rows: torch.Tensor, q_len: int, valid: int, fmask: torch.Tensor | None = None) -> torch.Tensor:
    """Bool [len(rows), Sk] on rows' device: which keys each query row (an index into q's
    sequence of ``q_len`` tokens) may see, with ``valid`` encoder tokens not padding (spec §4).
    Padded encoder query rows see no key at all."""
    g = plan.geometry
    T, P, E = g.frames, g.tokens_per_frame, g.encoder_len
    fmask = frame_mask(plan) if fmask is None else fmask
    device = rows.device
    video_only = E > 0 and q_len == g.video_tokens
    qv = 0 if video_only else g.video_begin
    is_video = (rows >= qv) & (rows < qv + T * P)
    enc_row_valid = ~is_video & ((rows - g.encoder_begin) < valid)
    mask = torch.zeros((rows.numel(), g.seq_len), dtype=torch.bool, device=device)
    vb = g.video_begin
    frames = ((rows - qv) // P).clamp(0, T - 1)
    video_keys = fmask.to(device)[frames].repeat_interleave(P, dim=1)  # [R, T*P]
    video_keys = torch.where(enc_row_valid[:, None], torch.ones_like(video_keys), video_keys)
    video_keys &= (is_video | enc_row_valid)[:, None]
    mask[:, vb:vb + T * P] = video_keys
    if E:
        eb = g.encoder_begin
        mask[:, eb:eb + valid] = (is_video | enc_row_valid)[:, None]
    return mask


def _valid_counts(plan, encoder_valid, batch: int) -> list[int]:
    E = plan.geometry.encoder_len
    return [E] * batch if encoder_valid is None else [int(n) for n in encoder_valid]


def pattern_mask(plan, q_len: int, encoder_valid=None, batch: int = 1) -> torch.Tensor:
    """Bool [B, Sq, Sk] (CPU) of the pairs a plan allows, for every query row."""
    rows = torch.arange(q_len)
    fmask = frame_mask(plan)
    return torch.stack([key_mask(plan, rows, q_len, n, fmask) for n in _valid_counts(plan, encoder_valid, batch)])


def masked_dense(q, k, v, plan, encoder_valid=None, scale=None, rows=None, heads=None, chunk=256):
    """float64 out [B, R, len(heads), D] and lse [B, len(heads), R] for query rows ``rows``
    (default all) and query heads ``heads`` (default all); rows without keys give zeros and
    lse -inf. GQA: query head h reads key/value head h // (Hq // Hkv)."""
    B, Sq, Hq, D = q.shape
    group = Hq // k.shape[2]
    device = q.device
    rows = torch.arange(Sq, device=device) if rows is None else rows.to(device)
    heads = list(range(Hq)) if heads is None else list(heads)
    scale = D ** -0.5 if scale is None else scale
    fmask = frame_mask(plan)
    kv_heads = [h // group for h in heads]
    out = torch.empty((B, rows.numel(), len(heads), D), dtype=torch.float64, device=device)
    lse = torch.empty((B, len(heads), rows.numel()), dtype=torch.float64, device=device)
    for b, valid in enumerate(_valid_counts(plan, encoder_valid, B)):
        kb = k[b][:, kv_heads].double().permute(1, 0, 2)  # [H, Sk, D]
        vb = v[b][:, kv_heads].double().permute(1, 0, 2)
        for c0 in range(0, rows.numel(), chunk):
            r = rows[c0:c0 + chunk]
            m = key_mask(plan, r, Sq, valid, fmask)  # [R, Sk]
            qb = q[b, r][:, heads].double().permute(1, 0, 2)  # [H, R, D]
            s = torch.matmul(qb, kb.transpose(1, 2)) * scale
            s = s.masked_fill(~m[None], float("-inf"))
            l = torch.logsumexp(s, dim=-1)  # [H, R]
            w = torch.exp(s - l.nan_to_num(neginf=0.0)[..., None])
            out[b, c0:c0 + chunk] = torch.matmul(w, vb).permute(1, 0, 2)
            lse[b, :, c0:c0 + chunk] = l
    return out, lse


def sdpa_masked(q, k, v, plan, encoder_valid=None, scale=None, rows=None, heads=None, chunk=1024):
    """The same masked attention through torch SDPA in q's dtype (what a user would write),
    as a second, same-precision reference. Rows without keys come back as NaN; callers
    exclude them."""
    import torch.nn.functional as F

    B, Sq, Hq, D = q.shape
    group = Hq // k.shape[2]
    rows = torch.arange(Sq, device=q.device) if rows is None else rows.to(q.device)
    heads = list(range(Hq)) if heads is None else list(heads)
    fmask = frame_mask(plan)
    kv_heads = [h // group for h in heads]
    out = torch.empty((B, rows.numel(), len(heads), D), dtype=q.dtype, device=q.device)
    for b, valid in enumerate(_valid_counts(plan, encoder_valid, B)):
        kb = k[b][:, kv_heads].permute(1, 0, 2)[None]
        vb = v[b][:, kv_heads].permute(1, 0, 2)[None]
        for c0 in range(0, rows.numel(), chunk):
            r = rows[c0:c0 + chunk]
            m = key_mask(plan, r, Sq, valid, fmask)
            qb = q[b, r][:, heads].permute(1, 0, 2)[None]
            o = F.scaled_dot_product_attention(qb, kb, vb, attn_mask=m[None, None], scale=scale)
            out[b, c0:c0 + chunk] = o[0].permute(1, 0, 2)
    return out


def compare(got, ref):
    """(relative L2 error, max abs error) of got vs a float64 reference; NaN-safe."""
    diff = got.double() - ref
    rel = (diff.norm() / ref.norm().clamp_min(1e-30)).item()
    return rel, diff.abs().max().item()
