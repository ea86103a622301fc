"""How a served model lays out one self-attention call's tokens, read from what vLLM-Omni
passes: the sequence LVSA attends (video tokens first, then any encoder tokens), where
sequence-parallel padding sits (excluded: it gets no weight and its output rows are zeros),
and how many encoder tokens are valid (padding gets exactly zero weight).

Under Ulysses the backend sees the whole sequence for its head shard, so everything here is
read from global quantities (the latent grid, the padding vLLM-Omni recorded) and the pattern
does not depend on the degree. Metadata that is missing is :class:`NotServed` (the layer runs
the dense backend, said once; strict mode: an error); metadata that contradicts itself is a
``ValueError``: never a guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from lvsa.plan import Geometry


class NotServed(Exception):
    """This call is valid for vLLM-Omni but LVSA cannot take it (the reason is the message)."""


@dataclass(frozen=True)
class Layout:
    geometry: Geometry
    gap: int                                 # SP padding tokens right after the video tokens
    encoder_valid: Optional[list[int]] = None  # valid encoder tokens per batch entry (None: all)

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` [B, S, H, D] without the padding: the sequence LVSA attends."""
        g = self.geometry
        video = g.video_tokens
        if self.gap == 0:
            return t[:, :g.seq_len]
        if g.encoder_len == 0:
            return t[:, :video]
        return torch.cat([t[:, :video], t[:, video + self.gap:]], dim=1)

    def unpack(self, out: torch.Tensor, seq_len: int) -> torch.Tensor:
        """LVSA's output back in the call's layout, zeros on the padding rows."""
        g = self.geometry
        if out.shape[1] == seq_len:
            return out
        video = g.video_tokens
        zeros = out.new_zeros((out.shape[0], seq_len - out.shape[1], *out.shape[2:]))
        return torch.cat([out[:, :video], zeros, out[:, video:]], dim=1)


def _sp_padding(context) -> int:
    """Padding tokens vLLM-Omni's sequence parallelism appended to the video sequence (0 without)."""
    config = getattr(context, "omni_diffusion_config", None)
    if config is None or (config.parallel_config.sequence_parallel_size or 1) <= 1 or not context.sp_active:
        return 0
    return int(context.sp_padding_size)


def from_video_layout(request, q: torch.Tensor, metadata, context) -> Layout:
    """Wan: the transformer block passes ``video_layout`` with the latent grid (T, H, W) of the
    whole video; the tokens are the video alone, then any SP padding."""
    layout = getattr(metadata, "video_layout", None) if metadata is not None else None
    if layout is None or layout.latent_grid is None:
        raise NotServed("vLLM-Omni passed no video_layout (latent grid) with this self-attention call")
    if layout.video_spans:
        raise NotServed(f"the call has {len(layout.video_spans)} video spans (a packed multi-video layout)")
    if layout.prefix_len:
        raise NotServed(f"the video tokens follow a {layout.prefix_len}-token prefix")
    T, H, W = (int(n) for n in layout.latent_grid)
    video = T * H * W
    if layout.used_len is not None and layout.used_len != video:
        raise ValueError(f"lvsa: vLLM-Omni's video_layout is inconsistent: used_len {layout.used_len} but latent_grid "
                         f"{(T, H, W)} has {video} tokens")
    S = q.shape[1]
    padding = _sp_padding(context)
    if S != video + padding:
        raise ValueError(f"lvsa: self-attention sees {S} tokens but video_layout's latent_grid {(T, H, W)} gives "
                         f"{video} video tokens + {padding} sequence-parallel padding")
    return Layout(Geometry(T, H * W), padding)


def from_key_mask(request, q: torch.Tensor, metadata, context) -> Layout:
    """HunyuanVideo 1.5: the attention call gets ``[video | SP padding | encoder]`` and, when any
    encoder token is padding, a 2-D key mask; the model passes no layout, so the grid is the one
    the transformer's input gave (published by the plugin's wrapper). vLLM-Omni puts the valid
    encoder tokens first (image, ByT5, then Qwen text), which is the order LVSA takes."""
    if request.grid is None:
        raise NotServed("the transformer's input grid is unknown: attention was called outside the transformer's "
                        "forward")
    T, P = request.grid
    video = T * P
    S = q.shape[1]
    padding = _sp_padding(context)
    encoder = S - video - padding
    if encoder < 0:
        raise ValueError(f"lvsa: self-attention sees {S} tokens, fewer than the transformer input's {T} x {P} = "
                         f"{video} video tokens + {padding} sequence-parallel padding")
    mask = getattr(metadata, "attn_mask", None) if metadata is not None else None
    geometry = Geometry(T, P, encoder, "after" if encoder else "none")
    if mask is None:
        return Layout(geometry, padding)
    B = q.shape[0]
    if mask.dim() != 2 or tuple(mask.shape) != (B, S):
        raise NotServed(f"the attention mask has shape {tuple(mask.shape)}; LVSA reads a [batch, keys] = "
                        f"{(B, S)} key mask")
    mask = mask.bool()
    keys = mask[:, video + padding:]
    valid = keys.sum(dim=1)
    # One host read for both: the valid counts, and whether the mask is "all video, then valid
    # encoder tokens first" (anything else cannot be a count of valid tokens).
    prefix = torch.arange(encoder, device=mask.device) < valid[:, None]
    ok = mask[:, :video].all(dim=1) & (keys == prefix).all(dim=1)
    counts, oks = torch.stack([valid, ok.long()]).tolist()
    if not all(oks):
        raise NotServed("the key mask is not 'every video token, then the valid encoder tokens first'")
    return Layout(geometry, padding, counts)


READERS = {"video_layout": from_video_layout, "key_mask": from_key_mask}
