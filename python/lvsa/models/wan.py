"""Wan 2.1 / 2.2 (T2V, I2V, A14B, TI2V-5B): ``WanTransformer3DModel``.

Each block's ``attn1`` is self-attention over the video tokens only (LVSA), ``attn2`` is
cross-attention to text (and image, for I2V) and stays dense. Wan 2.2 A14B pipelines carry two
experts (``transformer``, ``transformer_2``); the installer patches every transformer component,
so both get LVSA. The processor mirrors ``WanAttnProcessor`` for a self-attention call.

Image-to-video leaves ``attn1`` a plain video self-attention: Wan 2.1 / 2.2 I2V add the frame
mask and the conditioning video's latents as input channels (36 = 16 + 4 + 16), Wan 2.1 I2V's
CLIP image tokens reach only ``attn2`` (its added K/V projections), and Wan 2.2 TI2V-5B puts the
image in as the first latent frame, with timestep 0 on its tokens (per-token timesteps).
"""

from __future__ import annotations

import torch
from diffusers.models.transformers.transformer_wan import (
    WanAttnProcessor,
    WanTransformer3DModel,
    _get_qkv_projections,
)

from .. import prologue
from ..plan import preset
from ..rope import PrecomputedTables, Rope
from ..model_facts import ModelFacts
from ._adapter import Adapter, LVSAProcessor, forward_input, spatial_grid


def _apply_rotary_emb(x: torch.Tensor, freqs_cos: torch.Tensor, freqs_sin: torch.Tensor) -> torch.Tensor:
    """Wan's RoPE on interleaved pairs, as in ``WanAttnProcessor`` (where it is a local function)."""
    x1, x2 = x.unflatten(-1, (-1, 2)).unbind(-1)
    cos = freqs_cos[..., 0::2]
    sin = freqs_sin[..., 1::2]
    out = torch.empty_like(x)
    out[..., 0::2] = x1 * cos - x2 * sin
    out[..., 1::2] = x1 * sin + x2 * cos
    return out.type_as(x)


class WanLVSAProcessor(LVSAProcessor):
    model_processor_runs_sharded = True  # WanAttnProcessor hands its parallel config to diffusers' Ulysses

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, rotary_emb=None):
        reason = self.model_processor_reason()
        if reason is None and (encoder_hidden_states is not None or attention_mask is not None):
            reason = "attn1 was called with encoder states or a mask; LVSA expects plain video self-attention"
        if reason is not None:
            return self.run_model_processor(reason, attn, hidden_states, encoder_hidden_states,
                                            attention_mask, rotary_emb)

        query, key, value = _get_qkv_projections(attn, hidden_states, None)
        fused = prologue.qk(self.runtime, query, key, attn.norm_q, attn.norm_k, attn.heads, rotary_emb)
        if fused is not None:
            query, key = fused
        else:
            query = attn.norm_q(query).unflatten(2, (attn.heads, -1))
            key = attn.norm_k(key).unflatten(2, (attn.heads, -1))
            if rotary_emb is not None:
                query = _apply_rotary_emb(query, *rotary_emb)
                key = _apply_rotary_emb(key, *rotary_emb)
        value = value.unflatten(2, (attn.heads, -1))

        geometry = self.geometry(hidden_states.shape[1])
        hidden_states = self.attend(query, key, value, geometry)
        hidden_states = hidden_states.flatten(2, 3).type_as(query)
        hidden_states = attn.to_out[0](hidden_states)
        return attn.to_out[1](hidden_states)


class WanAdapter(Adapter):
    family = "wan"
    transformer_class = WanTransformer3DModel
    model_processor_class = WanAttnProcessor
    text_to_video = {"WanPipeline": 16.0}
    image_to_video = {"WanImageToVideoPipeline": 16.0}
    also_take_an_image = "Wan 2.2 TI2V-5B (a WanPipeline with expand_timesteps)"

    def facts(self, transformer, pipe):
        # TI2V-5B is the Wan transformer trained with the 48-channel (16x spatial) VAE; A14B is the
        # pipeline with two experts; the 14B and 1.3B Wan 2.1 differ in heads. All but TI2V-5B
        # share reference 21.
        if transformer.config.in_channels == 48:
            name = "wan2.2-ti2v-5b"
        elif pipe is not None and getattr(pipe, "transformer_2", None) is not None:
            name = "wan2.2-a14b"
        elif transformer.config.num_attention_heads == 40:
            name = "wan2.1-14b"
        else:
            name = "wan2.1-1.3b"
        return ModelFacts.from_preset(preset(name))

    def attention_modules(self, transformer):
        return [(f"blocks.{i}.attn1", block.attn1) for i, block in enumerate(transformer.blocks)]

    def video_grid(self, transformer, args, kwargs):
        _, _, frames, height, width = forward_input("hidden_states", 0, args, kwargs).shape
        p_t, p_h, p_w = transformer.config.patch_size
        return frames // p_t, spatial_grid(height, width, p_h, p_w)

    def processor(self, runtime, model_processor):
        return WanLVSAProcessor(runtime, model_processor)

    def rope(self, transformer):
        # WanRotaryPosEmbed's default theta; its tables are precomputed over rope_max_seq_len positions.
        return Rope(10000.0, transformer.rope.t_dim, PrecomputedTables())

    def parallel_plan(self, transformer):
        return type(transformer)._cp_plan  # diffusers' own

    def image_pipeline(self, checkpoint):
        # TI2V-5B is saved as a text-to-video pipeline; the image-to-video one takes its image.
        if checkpoint.get("_class_name") == "WanPipeline" and checkpoint.get("expand_timesteps"):
            return "WanImageToVideoPipeline"
        return super().image_pipeline(checkpoint)

    def image_arguments(self, pipe, image, last_image):
        if last_image is None:
            return {"image": image}
        transformer = pipe.transformer or pipe.transformer_2
        if pipe.config.expand_timesteps:
            raise ValueError("Wan 2.2 TI2V-5B conditions on the first frame only (WanImageToVideoPipeline with "
                             "expand_timesteps ignores a last frame)")
        if transformer.config.image_dim is not None and transformer.config.pos_embed_seq_len is None:
            # Its image embedder takes one CLIP image; FLF2V's has positions for two.
            raise ValueError("this Wan 2.1 I2V checkpoint conditions on the first frame only; first and last frame "
                             "need Wan2.1-FLF2V-14B or Wan 2.2 I2V A14B")
        return {"image": image, "last_image": last_image}


ADAPTERS = [WanAdapter()]
