"""HunyuanVideo 1.5: ``HunyuanVideo15Transformer3DModel``.

Dual-stream joint attention: each block's ``attn`` projects the video with ``to_q/k/v`` and the
encoder tokens (image, byT5 and text, reordered by the transformer so the valid tokens come
first) with ``add_q/k/v_proj``, and attends over ``cat([video, encoder])``. The model passes a
per-token validity vector and builds a full S x S boolean mask from it; LVSA instead takes the
per-batch count of valid encoder tokens (padding gets exactly zero weight), so nothing of size
S x S is built. The token refiner's text-only attention is not touched.
"""

from __future__ import annotations

import torch
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_hunyuan_video15 import (
    HunyuanVideo15AttnProcessor2_0,
    HunyuanVideo15Transformer3DModel,
)

from .. import prologue
from ..parallel.plans import Gather, Split, rope_tables
from ..plan import preset
from ..rope import OutputTables, Rope
from ..model_facts import ModelFacts
from ._adapter import Adapter, LVSAProcessor, forward_input, spatial_grid


_NOT_A_PREFIX = "the encoder mask's valid tokens are not a prefix of the encoder tokens"


def valid_lengths_and_check(mask: torch.Tensor, encoder_len: int, seq_len: int):
    """Per-batch valid encoder token counts from the model's validity mask (``[B, E]`` for the
    encoder tokens, or ``[B, S]`` with the video part all valid), and a bool tensor saying
    whether LVSA can express the mask: the video all valid, the valid encoder tokens a prefix."""
    if mask.shape[1] not in (encoder_len, seq_len):
        raise ValueError(f"lvsa: HunyuanVideo 1.5 attention mask has {mask.shape[1]} tokens; expected the "
                         f"{encoder_len} encoder tokens or the whole sequence of {seq_len}")
    mask = mask.bool()
    video, encoder = mask[:, :mask.shape[1] - encoder_len], mask[:, mask.shape[1] - encoder_len:]
    valid = encoder.sum(dim=1)
    prefix = torch.arange(encoder_len, device=mask.device)[None, :] < valid[:, None]
    return valid, video.all() & (encoder == prefix).all()


def encoder_valid_lengths(mask: torch.Tensor, encoder_len: int, seq_len: int):
    """The valid lengths of :func:`valid_lengths_and_check`, or None when LVSA cannot express the mask."""
    valid, expressible = valid_lengths_and_check(mask, encoder_len, seq_len)
    return valid if bool(expressible) else None


class HunyuanVideo15LVSAProcessor(LVSAProcessor):
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        args = (attn, hidden_states, encoder_hidden_states, attention_mask, image_rotary_emb)
        reason = self.model_processor_reason()
        if reason is not None:
            return self.run_model_processor(reason, *args)

        encoder_len = 0 if encoder_hidden_states is None else encoder_hidden_states.shape[1]
        geometry = self.geometry(hidden_states.shape[1], encoder_len, "after")
        valid, checks = None, []
        if attention_mask is not None and torch.compiler.is_compiling():
            # A graph cannot branch on the mask's values: the attention op checks them when it runs.
            valid, expressible = valid_lengths_and_check(attention_mask, encoder_len, geometry.seq_len)
            checks = [(expressible, _NOT_A_PREFIX)]
        elif attention_mask is not None:
            # The mask is the same tensor for every block of a forward: derive the lengths once.
            memo = self.runtime.memo.get("encoder_valid")
            if memo is None or memo[0] is not attention_mask:
                memo = (attention_mask, encoder_valid_lengths(attention_mask, encoder_len, geometry.seq_len))
                self.runtime.memo["encoder_valid"] = memo
            valid = memo[1]
            if valid is None:
                return self.run_model_processor(_NOT_A_PREFIX, *args)

        # 1-4: projections, QK norms, RoPE on the video stream, encoder stream: as the model does.
        query, key = attn.to_q(hidden_states), attn.to_k(hidden_states)
        fused = prologue.qk(self.runtime, query, key, attn.norm_q, attn.norm_k, attn.heads, image_rotary_emb)
        if fused is not None:
            query, key = fused
        else:
            query = attn.norm_q(query.unflatten(2, (attn.heads, -1)))
            key = attn.norm_k(key.unflatten(2, (attn.heads, -1)))
            if image_rotary_emb is not None:
                query = apply_rotary_emb(query, image_rotary_emb, sequence_dim=1)
                key = apply_rotary_emb(key, image_rotary_emb, sequence_dim=1)
        value = attn.to_v(hidden_states).unflatten(2, (attn.heads, -1))
        if encoder_hidden_states is not None:
            encoder_query = attn.add_q_proj(encoder_hidden_states).unflatten(2, (attn.heads, -1))
            encoder_key = attn.add_k_proj(encoder_hidden_states).unflatten(2, (attn.heads, -1))
            encoder_value = attn.add_v_proj(encoder_hidden_states).unflatten(2, (attn.heads, -1))
            if attn.norm_added_q is not None:
                encoder_query = attn.norm_added_q(encoder_query)
            if attn.norm_added_k is not None:
                encoder_key = attn.norm_added_k(encoder_key)
            query = torch.cat([query, encoder_query], dim=1)
            key = torch.cat([key, encoder_key], dim=1)
            value = torch.cat([value, encoder_value], dim=1)

        # 5. Attention: the pattern for video queries, dense for encoder queries, padding excluded.
        hidden_states = self.attend(query, key, value, geometry, encoder_valid=valid, checks=checks)
        hidden_states = hidden_states.flatten(2, 3).to(query.dtype)

        # 6. Output projections.
        if encoder_hidden_states is not None:
            hidden_states, encoder_hidden_states = (hidden_states[:, :-encoder_len], hidden_states[:, -encoder_len:])
            if getattr(attn, "to_out", None) is not None:
                hidden_states = attn.to_out[0](hidden_states)
                hidden_states = attn.to_out[1](hidden_states)
            if getattr(attn, "to_add_out", None) is not None:
                encoder_hidden_states = attn.to_add_out(encoder_hidden_states)
        return hidden_states, encoder_hidden_states


def _rope_grid(rope, args, kwargs):
    """(frames, tokens per frame, positions per frame) of the video rope.forward(hidden_states) covers."""
    _, _, frames, height, width = (args[0] if args else kwargs["hidden_states"]).shape
    return frames // rope.patch_size_t, spatial_grid(height, width, rope.patch_size, rope.patch_size), 1.0


# RoPE covers the video tokens ([S, D] tables); the blocks carry the video and the encoder tokens
# as two streams, so splitting the video stream at the first block suffices.
_PARALLEL_PLAN = {
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "transformer_blocks.*": {"freqs_cis": rope_tables(0, 2)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}


class HunyuanVideo15Adapter(Adapter):
    family = "hunyuan_video"
    transformer_class = HunyuanVideo15Transformer3DModel
    model_processor_class = HunyuanVideo15AttnProcessor2_0
    text_to_video = {"HunyuanVideo15Pipeline": 24.0}
    # The SigLIP image tokens join the encoder stream, valid and first (the prefix LVSA takes); the
    # image's latent frame and a mask join the noise as channels.
    image_to_video = {"HunyuanVideo15ImageToVideoPipeline": 24.0}

    def facts(self, transformer, pipe):
        return ModelFacts.from_preset(preset("hunyuanvideo-1.5"))

    def attention_modules(self, transformer):
        return [(f"transformer_blocks.{i}.attn", block.attn) for i, block in enumerate(transformer.transformer_blocks)]

    def video_grid(self, transformer, args, kwargs):
        _, _, frames, height, width = forward_input("hidden_states", 0, args, kwargs).shape
        p_t, p = transformer.config.patch_size_t, transformer.config.patch_size
        return frames // p_t, spatial_grid(height, width, p, p)

    def processor(self, runtime, model_processor):
        return HunyuanVideo15LVSAProcessor(runtime, model_processor)

    def rope(self, transformer):
        return Rope(float(transformer.rope.theta), int(transformer.rope.rope_dim[0]), OutputTables(_rope_grid))

    def parallel_plan(self, transformer):
        return _PARALLEL_PLAN

    def image_size(self, pipe, width, height):
        if type(pipe).__name__ not in self.image_to_video:
            return None
        # The pipeline picks the bucket of its target size closest to the image's aspect ratio.
        return tuple(pipe.video_processor.calculate_default_height_width(height, width, pipe.target_size))

    def guidance_arguments(self, pipe, guidance):
        # The pipeline takes its guidance scale from its guider component, not from an argument.
        pipe.guider = pipe.guider.new(guidance_scale=guidance)
        return {}


ADAPTERS = [HunyuanVideo15Adapter()]
