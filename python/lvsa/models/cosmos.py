"""Cosmos 2 / 2.5 (Predict, Transfer): ``CosmosTransformer3DModel``.

Each block's ``attn1`` is self-attention over the video tokens (LVSA); ``attn2`` is
cross-attention to text (and image context) and stays dense. Image- and video-to-world
conditioning keeps the layout: the conditioning latent frames are marked by ``condition_mask``
and get their own timestep, which makes the modulation per token (split with the video under
Ulysses). The same class also serves
Cosmos 1.0 (text/video-to-world), whose tokenizer compresses time differently and for which no
reference horizon is known: there the user has to give ``reference``.
"""

from __future__ import annotations

from diffusers.models.embeddings import apply_rotary_emb
from diffusers.models.transformers.transformer_cosmos import CosmosAttnProcessor2_0, CosmosTransformer3DModel

from ..parallel.plans import Gather, Split, rope_tables
from ..plan import preset
from ..rope import OutputTables, Rope
from ..model_facts import ModelFacts
from ._adapter import Adapter, LVSAProcessor, forward_input, spatial_grid

# Pipelines of Cosmos 1.0, whose transformer is this class too but whose horizon is not Cosmos 2.5's.
_COSMOS_1_PIPELINES = ("CosmosTextToWorldPipeline", "CosmosVideoToWorldPipeline")


class CosmosLVSAProcessor(LVSAProcessor):
    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, image_rotary_emb=None):
        reason = self.model_processor_reason()
        if reason is None and (encoder_hidden_states is not None or attention_mask is not None):
            reason = "attn1 was called with encoder states or a mask; LVSA expects plain video self-attention"
        if reason is not None:
            return self.run_model_processor(reason, attn, hidden_states, encoder_hidden_states,
                                            attention_mask, image_rotary_emb)

        # Projections, QK norms and RoPE in the model's [B, H, S, D] layout, as CosmosAttnProcessor2_0.
        query = attn.to_q(hidden_states).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        key = attn.to_k(hidden_states).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        value = attn.to_v(hidden_states).unflatten(2, (attn.heads, -1)).transpose(1, 2)
        query = attn.norm_q(query)
        key = attn.norm_k(key)
        if image_rotary_emb is not None:
            query = apply_rotary_emb(query, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)
            key = apply_rotary_emb(key, image_rotary_emb, use_real=True, use_real_unbind_dim=-2)

        # The model repeats K/V heads for grouped-query attention; LVSA takes the groups as they are.
        geometry = self.geometry(hidden_states.shape[1])
        hidden_states = self.attend(query.transpose(1, 2), key.transpose(1, 2), value.transpose(1, 2),
                                    geometry)
        hidden_states = hidden_states.flatten(2, 3).type_as(query)
        hidden_states = attn.to_out[0](hidden_states)
        return attn.to_out[1](hidden_states)


def _rope_grid(rope, args, kwargs):
    """(frames, tokens per frame, positions per frame) of the video rope.forward(hidden_states, fps)
    covers: a call given ``fps`` counts positions in frames at the model's base fps."""
    _, _, frames, height, width = (args[0] if args else kwargs["hidden_states"]).shape
    p_t, p_h, p_w = rope.patch_size
    fps = kwargs.get("fps", args[1] if len(args) > 1 else None)
    return frames // p_t, spatial_grid(height, width, p_h, p_w), rope.base_fps / fps if fps else 1.0


def _columns(rope):
    # Table layout [t, h, w, t, h, w] (rotate-half): frequency j on columns j and half + j.
    half = rope.dim_t // 2 + rope.dim_h // 2 + rope.dim_w // 2
    return lambda j: [j, half + j]


# Per-frame timesteps (video-to-world conditioning) make the modulation per token ([B, S, C], built
# inside forward and passed to every block and to norm_out), and so are the learnable position
# embedding and ControlNet residuals (Transfer); a plain [B, C] modulation has 2 dims and passes
# unsplit.
_PARALLEL_PLAN = {
    "learnable_pos_embed": {0: Split(split_dim=1, expected_dims=3, split_output=True)},
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "transformer_blocks.*": {"image_rotary_emb": rope_tables(0, 2),
                             "embedded_timestep": Split(split_dim=1, expected_dims=3),
                             "temb": Split(split_dim=1, expected_dims=3),
                             "controlnet_residual": Split(split_dim=1, expected_dims=3)},
    "norm_out": {"embedded_timestep": Split(split_dim=1, expected_dims=3),
                 "temb": Split(split_dim=1, expected_dims=3)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}


class CosmosAdapter(Adapter):
    family = "cosmos"
    transformer_class = CosmosTransformer3DModel
    model_processor_class = CosmosAttnProcessor2_0
    text_to_video = {"Cosmos2_5_PredictBasePipeline": 16.0}
    also_take_an_image = "Cosmos 2.5 Predict (Cosmos2_5_PredictBasePipeline)"

    def facts(self, transformer, pipe):
        if pipe is not None and type(pipe).__name__ in _COSMOS_1_PIPELINES:
            return None
        return ModelFacts.from_preset(preset("cosmos-2.5"))

    def attention_modules(self, transformer):
        return [(f"transformer_blocks.{i}.attn1", block.attn1) for i, block in enumerate(transformer.transformer_blocks)]

    def video_grid(self, transformer, args, kwargs):
        _, _, frames, height, width = forward_input("hidden_states", 0, args, kwargs).shape
        p_t, p_h, p_w = transformer.config.patch_size
        return frames // p_t, spatial_grid(height, width, p_h, p_w)

    def processor(self, runtime, model_processor):
        return CosmosLVSAProcessor(runtime, model_processor)

    def rope(self, transformer):
        rope = transformer.rope
        return Rope(10000.0 * rope.t_ntk_factor, rope.dim_t, OutputTables(_rope_grid), _columns(rope))

    def parallel_plan(self, transformer):
        return _PARALLEL_PLAN

    def image_pipeline(self, checkpoint):
        name = checkpoint.get("_class_name")
        return name if name in self.text_to_video else None  # Predict takes text, an image or a video

    def image_arguments(self, pipe, image, last_image):
        if last_image is not None:
            raise ValueError(f"{type(pipe).__name__} conditions on leading frames only, not on a last frame")
        # Its Video2World mode with one conditioning frame: its Image2World mode needs torchvision to
        # read the image; both encode the image alone into the first latent frame (the VAE is causal)
        # and condition on that frame only.
        return {"video": [image], "num_latent_conditional_frames": 1}


ADAPTERS = [CosmosAdapter()]
