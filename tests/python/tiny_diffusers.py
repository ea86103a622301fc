"""Tiny diffusers models and pipelines with random weights, for the integration tests.

Every family is built from its real diffusers class at a toy size (a couple of heads, two
layers, a 4x4 latent), with inputs of ``FRAMES`` latent frames of ``P`` tokens: more frames than
the reference the tests configure, so that the pattern is sparse. Pipelines get their prompt
embeddings directly (no tokenizer or text encoder) and return latents (no decoding).

``LVSA_TEST_DEVICE=cuda`` runs the same cases on the GPU in bfloat16 (the CUDA kernels' types).
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

# The conftest does this under pytest; torchrun runs test files as scripts (test_parallel.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oracle"))
from dense_oracle import pattern_mask  # noqa: E402

FRAMES = 8          # latent (token) frames of every test video
P = 4               # tokens per latent frame: a 4x4 latent and a 2x2 patch, or 2x2 and no patch
DEVICE = torch.device(os.environ.get("LVSA_TEST_DEVICE", "cpu"))
DTYPE = torch.float32 if DEVICE.type == "cpu" else torch.bfloat16
TOLERANCE = dict(atol=1e-5, rtol=1e-5) if DTYPE == torch.float32 else dict(atol=6e-2, rtol=2e-2)
HEAD_DIM = 64      # tiny models, but a head size the CUDA kernels instantiate
SPARSE = dict(window=1, n_first=1, keyframe_interval=3, reference=4)  # kfi 3: offsets 0, 1, 2
DENSE = dict(reference=FRAMES)                                        # T <= reference: kfi 1


@dataclass
class Case:
    """A tiny transformer, a function making its forward kwargs for a batch, and its geometry."""

    family: str
    transformer: torch.nn.Module
    inputs: Callable[[int], dict]
    encoder_len: int = 0
    encoder_side: str = "none"

    @property
    def batch(self) -> int:
        return 1 if self.family == "cosmos3" else 2  # Cosmos 3 packs one sample per call

    def run(self):
        with torch.no_grad():
            out = self.transformer(**to_device(self.inputs(self.batch)), return_dict=False)[0]
        return torch.stack(out) if isinstance(out, list) else out


def to_device(value):
    """Inputs on the test device, floating point ones in the test dtype."""
    if isinstance(value, torch.Tensor):
        return value.to(DEVICE, DTYPE if value.is_floating_point() else None)
    if isinstance(value, (list, tuple)):
        return type(value)(to_device(v) for v in value)
    if isinstance(value, dict):
        return {k: to_device(v) for k, v in value.items()}
    return value


def _randn(*shape, seed):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def wan(**overrides) -> Case:
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    config = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=HEAD_DIM, in_channels=4,
                  out_channels=4, text_dim=16, freq_dim=256, ffn_dim=32, num_layers=2, cross_attn_norm=True,
                  qk_norm="rms_norm_across_heads", rope_max_seq_len=32)
    model = WanTransformer3DModel(**{**config, **overrides}).eval().to(DEVICE, DTYPE)
    channels = model.config.in_channels

    def inputs(batch):
        return dict(hidden_states=_randn(batch, channels, FRAMES, 4, 4, seed=1),
                    timestep=torch.full((batch,), 500.0), encoder_hidden_states=_randn(batch, 7, 16, seed=2))

    return Case("wan", model, inputs)


def wan_i2v(**overrides) -> Case:
    """Wan 2.1 I2V: noise + frame mask + conditioning latents as channels, and CLIP image tokens
    that only cross-attention sees (attn2's added K/V, as wide as the model)."""
    heads = overrides.get("num_attention_heads", 2)
    case = wan(in_channels=12, image_dim=16, added_kv_proj_dim=heads * HEAD_DIM, **overrides)
    base = case.inputs
    case.inputs = lambda batch: dict(base(batch), encoder_hidden_states_image=_randn(batch, 5, 16, seed=3))
    return case


def wan_ti2v(**overrides) -> Case:
    """Wan 2.2 TI2V-5B given an image: the image is the first latent frame, whose tokens get
    timestep 0 (per-token timesteps, as WanImageToVideoPipeline with expand_timesteps passes)."""
    case = wan(in_channels=48, out_channels=48, **overrides)
    base = case.inputs

    def inputs(batch):
        kwargs = base(batch)
        frames, height, width = kwargs["hidden_states"].shape[2:]
        tokens = frames * (height // 2) * (width // 2)
        timestep = torch.full((batch, tokens), 500.0)
        timestep[:, :tokens // frames] = 0.0
        return dict(kwargs, timestep=timestep)

    case.inputs = inputs
    return case


def hunyuan_video(in_channels: int = 4, out_channels: int = 4, heads: int = 2, image: bool = False) -> Case:
    from diffusers import HunyuanVideo15Transformer3DModel

    torch.manual_seed(0)
    model = HunyuanVideo15Transformer3DModel(
        in_channels=in_channels, out_channels=out_channels, num_attention_heads=heads, attention_head_dim=HEAD_DIM,
        num_layers=2, num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16,
        text_embed_2_dim=8, image_embed_dim=12, rope_axes_dim=(16, 24, 24), target_size=32,
        task_type="i2v" if image else "t2v").eval().to(DEVICE, DTYPE)
    text, byt5, image = 6, 3, 2

    def inputs(batch):
        # Padded text in every batch row but the first: the encoder mask is not all ones.
        text_mask = torch.ones(batch, text, dtype=torch.long)
        text_mask[1:, 4:] = 0
        return dict(hidden_states=_randn(batch, in_channels, FRAMES, 2, 2, seed=1), timestep=torch.full((batch,), 500.0),
                    encoder_hidden_states=_randn(batch, text, 16, seed=2), encoder_attention_mask=text_mask,
                    encoder_hidden_states_2=_randn(batch, byt5, 8, seed=3),
                    encoder_attention_mask_2=torch.ones(batch, byt5, dtype=torch.long),
                    # Text to video: zeros, which the model takes as no image (its tokens invalid);
                    # image to video: SigLIP tokens, valid and ahead of the texts in the encoder stream.
                    image_embeds=_randn(batch, image, 12, seed=4) if image else torch.zeros(batch, image, 12))

    return Case("hunyuan_video", model, inputs, text + byt5 + image, "after")


def hunyuan_video_i2v(heads: int = 2) -> Case:
    """HunyuanVideo 1.5 I2V: image tokens in the encoder stream; the image's latent frame and a
    mask as input channels (2 x 4 + 1)."""
    return hunyuan_video(in_channels=9, heads=heads, image=True)


def cogvideox(patch_size_t=None, heads: int = 2, image: bool = False) -> Case:
    """CogVideoX 1.0 (1.5 with ``patch_size_t=2``); ``image``: its image-to-video model, the
    image's latents concatenated to the noise as channels, with 1.0 I2V's learned positional
    embedding and 1.5 I2V's ``ofs`` embedding."""
    from diffusers import CogVideoXPipeline, CogVideoXTransformer3DModel

    torch.manual_seed(0)
    variant = {}
    if image:
        variant = dict(ofs_embed_dim=2) if patch_size_t else dict(use_learned_positional_embeddings=True)
    model = CogVideoXTransformer3DModel(
        num_attention_heads=heads, attention_head_dim=HEAD_DIM, in_channels=8 if image else 4, out_channels=4,
        time_embed_dim=2, text_embed_dim=8, num_layers=2, sample_width=4, sample_height=4,
        sample_frames=(FRAMES - 1) * 4 + 1, patch_size=2, patch_size_t=patch_size_t, temporal_compression_ratio=4,
        max_text_seq_length=6, use_rotary_positional_embeddings=True, **variant).eval().to(DEVICE, DTYPE)
    channels = model.config.in_channels
    latent_frames = FRAMES * (patch_size_t or 1)
    # The pipeline computes CogVideoX's RoPE tables; borrow its method rather than copy it.
    pipe = CogVideoXPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=model, scheduler=None)
    rope = pipe._prepare_rotary_positional_embeddings(32, 32, latent_frames, torch.device("cpu"))

    def inputs(batch):
        ofs = {"ofs": torch.full((1,), 2.0)} if model.config.ofs_embed_dim else {}  # as the 1.5 I2V pipeline
        return dict(hidden_states=_randn(batch, latent_frames, channels, 4, 4, seed=1),
                    timestep=torch.full((batch,), 500.0), encoder_hidden_states=_randn(batch, 6, 8, seed=2),
                    image_rotary_emb=rope, **ofs)

    return Case("cogvideox", model, inputs, 6, "before")


def cosmos(heads: int = 2, conditioned: bool = False) -> Case:
    """Cosmos 2.5 Predict; ``conditioned``: image-to-world, the first latent frame the image's
    (``condition_mask``) with its own timestep, which makes the modulation per token."""
    from diffusers import CosmosTransformer3DModel

    torch.manual_seed(0)
    model = CosmosTransformer3DModel(
        in_channels=5, out_channels=4, num_attention_heads=heads, attention_head_dim=HEAD_DIM, num_layers=2, mlp_ratio=2,
        text_embed_dim=16, adaln_lora_dim=4, max_size=(16, 16, 16), patch_size=(1, 2, 2),
        rope_scale=(2.0, 1.0, 1.0), extra_pos_embed_type="learnable",
        # concat_padding_mask=True needs torchvision (to resize the mask), not a test dependency.
        concat_padding_mask=False).eval().to(DEVICE, DTYPE)

    def inputs(batch):
        condition, timestep = torch.zeros(batch, 1, FRAMES, 4, 4), torch.full((batch,), 0.5)
        if conditioned:
            condition[:, :, 0] = 1.0
            timestep = torch.full((batch, 1, FRAMES, 1, 1), 0.5)
            timestep[:, :, 0] = 0.0001  # the pipeline's conditional_frame_timestep
        return dict(hidden_states=_randn(batch, 4, FRAMES, 4, 4, seed=1), timestep=timestep,
                    encoder_hidden_states=_randn(batch, 7, 16, seed=2), condition_mask=condition,
                    padding_mask=torch.zeros(1, 1, 4, 4), fps=16)

    return Case("cosmos", model, inputs)


def cosmos3(**overrides) -> Case:
    from diffusers.models.transformers.transformer_cosmos3 import Cosmos3OmniTransformer

    torch.manual_seed(0)
    config = dict(head_dim=HEAD_DIM, hidden_size=32, intermediate_size=48, latent_channel=4, latent_patch_size=2,
                  num_attention_heads=4, num_hidden_layers=2, num_key_value_heads=2, patch_latent_dim=16,
                  vocab_size=64, rope_axes_dim=(12, 10, 10), enable_fps_modulation=False)
    model = Cosmos3OmniTransformer(**{**config, **overrides}).eval().to(DEVICE, DTYPE)
    text = 5
    video = FRAMES * P

    def inputs(batch):
        # The packed sequence of one sample: the text, then the video.
        positions = torch.cat([torch.arange(text).expand(3, -1), text + torch.arange(video).expand(3, -1)], dim=1)
        return dict(input_ids=torch.arange(text) + 3, text_indexes=torch.arange(text), position_ids=positions,
                    und_len=text, sequence_length=text + video,
                    vision_tokens=[_randn(1, 4, FRAMES, 4, 4, seed=1)], vision_token_shapes=[(FRAMES, 2, 2)],
                    vision_sequence_indexes=torch.arange(text, text + video),
                    vision_mse_loss_indexes=torch.arange(text, text + video),
                    vision_timesteps=torch.full((video,), 500.0),
                    vision_noisy_frame_indexes=[torch.arange(FRAMES)])

    return Case("cosmos3", model, inputs, text, "before")


CASES = {
    "wan": wan,
    "hunyuan_video": hunyuan_video,
    "cogvideox": cogvideox,
    "cogvideox1.5": lambda: cogvideox(patch_size_t=2),
    "cosmos": cosmos,
    "cosmos3": cosmos3,
}
# Each family's image-to-video (image-to-world) model, conditioned as its pipeline conditions it.
IMAGE_CASES = {
    "wan_i2v": wan_i2v,
    "wan_ti2v": wan_ti2v,
    "hunyuan_video_i2v": hunyuan_video_i2v,
    "cogvideox_i2v": lambda: cogvideox(image=True),
    "cogvideox1.5_i2v": lambda: cogvideox(patch_size_t=2, image=True),
    "cosmos_i2w": lambda: cosmos(conditioned=True),
}


@contextlib.contextmanager
def pattern_masked_sdpa(monkeypatch, plan):
    """Run the model with its own processors and the pattern as a boolean mask: every torch SDPA
    call whose keys are the plan's whole sequence (the self-attention being replaced) gets the
    plan's mask ANDed into its own; other calls (cross-attention, Cosmos 3's causal text stream) run untouched."""
    g = plan.geometry
    sdpa = F.scaled_dot_product_attention

    def masked(query, key, value, attn_mask=None, *args, **kwargs):
        if key.shape[-2] == g.seq_len and query.shape[-2] in (g.seq_len, g.video_tokens):
            mask = pattern_mask(plan, query.shape[-2])[:, None].to(query.device)  # [1, 1, Sq, Sk]
            attn_mask = mask if attn_mask is None else attn_mask.bool() & mask
        return sdpa(query, key, value, attn_mask, *args, **kwargs)

    monkeypatch.setattr(F, "scaled_dot_product_attention", masked)
    try:
        yield
    finally:
        monkeypatch.setattr(F, "scaled_dot_product_attention", sdpa)
