"""CogVideoX 1.0 / 1.5: ``CogVideoXTransformer3DModel``.

Each block's ``attn1`` is joint attention over ``cat([text, video])`` with shared projections
(text first). Its processor calls ``F.scaled_dot_product_attention`` directly instead of
diffusers' dispatcher, so a processor swap is the only way in. CogVideoX 1.5 patches two latent
frames into one token frame (``patch_size_t = 2``): the planner's frames are token frames, and
the 1.5 preset's reference is in those units (81 video frames = 21 latent = 11 token frames).
"""

from __future__ import annotations

import torch
from diffusers.models.attention_processor import CogVideoXAttnProcessor2_0
from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.cogvideox_transformer_3d import CogVideoXTransformer3DModel

from ..parallel.plans import Gather, Split, rope_tables
from ..plan import preset
from ..rope import InputTables, Rope
from ..model_facts import ModelFacts
from ._adapter import Adapter, LVSAProcessor, forward_input, spatial_grid


class CogVideoXLVSAProcessor(LVSAProcessor):
    def __call__(self, attn, hidden_states, encoder_hidden_states, attention_mask=None, image_rotary_emb=None):
        reason = self.model_processor_reason()
        if reason is None and attention_mask is not None:
            reason = "attn1 was called with an attention mask, which CogVideoX pipelines never pass"
        if reason is not None:
            return self.run_model_processor(reason, attn, hidden_states, encoder_hidden_states,
                                            attention_mask, image_rotary_emb)

        text_len = encoder_hidden_states.size(1)
        geometry = self.geometry(hidden_states.shape[1], text_len, "before")
        hidden_states = torch.cat([encoder_hidden_states, hidden_states], dim=1)
        batch_size = hidden_states.shape[0]

        # Projections, QK norms and RoPE on the video part, in the model's [B, H, S, D] layout.
        query = attn.to_q(hidden_states)
        key = attn.to_k(hidden_states)
        value = attn.to_v(hidden_states)
        head_dim = key.shape[-1] // attn.heads
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        if attn.norm_q is not None:
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)
        if image_rotary_emb is not None:
            query[:, :, text_len:] = apply_rotary_emb(query[:, :, text_len:], image_rotary_emb)
            if not attn.is_cross_attention:
                key[:, :, text_len:] = apply_rotary_emb(key[:, :, text_len:], image_rotary_emb)

        # LVSA takes [B, S, H, D] with any strides: the transposes are views.
        hidden_states = self.attend(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                    geometry)
        hidden_states = hidden_states.reshape(batch_size, -1, attn.heads * head_dim)
        hidden_states = attn.to_out[0](hidden_states)
        hidden_states = attn.to_out[1](hidden_states)
        encoder_hidden_states, hidden_states = hidden_states.split(
            [text_len, hidden_states.size(1) - text_len], dim=1)
        return hidden_states, encoder_hidden_states


def _rope_grid(transformer, args, kwargs):
    """(token frames, tokens per frame) of the latents the RoPE tables passed with them cover."""
    _, latent_frames, _, height, width = kwargs["hidden_states"].shape
    p = transformer.config.patch_size
    return latent_frames // (transformer.config.patch_size_t or 1), spatial_grid(height, width, p, p)


# The pipeline passes the RoPE tables ([S, D]) to the transformer; the blocks carry text and video
# as two streams and concatenate them only inside attention and the feed-forward.
_PARALLEL_PLAN = {
    "": {"image_rotary_emb": rope_tables(0, 2)},
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}


class CogVideoXAdapter(Adapter):
    family = "cogvideox"
    transformer_class = CogVideoXTransformer3DModel
    model_processor_class = CogVideoXAttnProcessor2_0
    text_to_video = {"CogVideoXPipeline": 8.0}
    # The image's latent frame (then zeros) joins the noise as channels: attention is unchanged.
    image_to_video = {"CogVideoXImageToVideoPipeline": 8.0}

    def facts(self, transformer, pipe):
        config = transformer.config
        if config.patch_size_t is not None:
            name = "cogvideox1.5-5b"
        elif config.num_attention_heads == 30:
            name = "cogvideox-2b"
        else:
            name = "cogvideox-5b"
        return ModelFacts.from_preset(preset(name))

    def attention_modules(self, transformer):
        return [(f"transformer_blocks.{i}.attn1", block.attn1) for i, block in enumerate(transformer.transformer_blocks)]

    def video_grid(self, transformer, args, kwargs):
        # CogVideoX takes latents as [B, F, C, H, W] (frames before channels).
        _, frames, _, height, width = forward_input("hidden_states", 0, args, kwargs).shape
        p, p_t = transformer.config.patch_size, transformer.config.patch_size_t or 1
        if frames % p_t:
            raise ValueError(f"lvsa: CogVideoX with patch_size_t={p_t} needs a multiple of {p_t} latent frames, "
                             f"got {frames} (its pipelines pad the latents to one)")
        return frames // p_t, spatial_grid(height, width, p, p)

    def processor(self, runtime, model_processor):
        return CogVideoXLVSAProcessor(runtime, model_processor)

    def rope(self, transformer):
        if not transformer.config.use_rotary_positional_embeddings:
            raise ValueError("lvsa.riflex: this CogVideoX model (CogVideoX-2b) uses sin-cos position embeddings, "
                             "not RoPE; RIFLEx does not apply")
        # get_3d_rotary_pos_embed: theta 10000, the first head_dim / 4 dims are temporal; the
        # pipeline computes the tables and passes them to the transformer.
        return Rope(10000.0, transformer.config.attention_head_dim // 4,
                    InputTables("image_rotary_emb", _rope_grid))

    def parallel_plan(self, transformer):
        return _PARALLEL_PLAN


ADAPTERS = [CogVideoXAdapter()]
