"""The reference the plugin is judged against: each self-attention layer of an identical model
computes masked dense attention in float64, its mask built from the LVSA frame pattern (the
oracle's, from ``plan.attended``) and ANDed with the key mask vLLM-Omni passed (padding)."""

from __future__ import annotations

import torch
from dense_oracle import pattern_mask
from lvsa import settings
from lvsa.plan import Geometry, Planner


def lvsa_config(facts):
    return settings.resolve(settings.gather({}), facts, facts.name).config


def masked_attention(q, k, v, allowed, scale):
    """float64 softmax(q k^T * scale) v over the allowed [B, Sq, Sk] pairs; [B, S, H, D] layout."""
    q, k, v = (t.double().transpose(1, 2) for t in (q, k, v))
    scores = (q @ k.transpose(-1, -2)) * scale
    scores = scores.masked_fill(~allowed[:, None], float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2)


def init_weights(model, seed=0):
    """vLLM's layers allocate their weights uninitialised: fill every parameter reproducibly."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)


def patch_self_attention(model, grid, facts, encoder_side="after"):
    """Make every self-attention layer of ``model`` run the reference for the video grid
    ``grid`` = (T, P) at the forward context's step; the sequence after the video is the encoder."""
    from vllm_omni.diffusion.attention.layer import Attention
    from vllm_omni.diffusion.forward_context import get_forward_context

    T, P = grid
    config = lvsa_config(facts)

    def forward(q, k, v, metadata=None):
        B, S = q.shape[:2]
        E = S - T * P
        step = get_forward_context().denoise_step_idx
        plan = Planner(Geometry(T, P, E, encoder_side if E else "none"), config).step(step)
        allowed = pattern_mask(plan, S, None, B)
        mask = getattr(metadata, "attn_mask", None)
        if mask is not None:
            allowed = allowed & mask.bool()[:, None, :]
        return masked_attention(q, k, v, allowed, q.shape[-1] ** -0.5).to(q.dtype)

    layers = [m for m in model.modules() if isinstance(m, Attention) and m.role == "self"]
    assert layers
    for layer in layers:
        layer.attention.forward = forward
