"""Tiny random diffusers *pipelines* of each family, saved with ``save_pretrained``, for the
``lvsa generate`` tests.

Every component is the real diffusers / transformers class at a toy size: transformer, VAE,
scheduler, and a text encoder with a tokenizer built here from an in-memory vocabulary, so a
pipeline folder loads through ``DiffusionPipeline.from_pretrained`` like a downloaded one, with
no network. Frame counts and sizes follow each tiny VAE's real compression factors.
"""

from __future__ import annotations

from pathlib import Path

import torch

# Characters the tiny T5-style tokenizers know (anything else is <unk>): enough for prompts.
_PIECES = list("abcdefghijklmnopqrstuvwxyz0123456789.,!?'-") + ["▁" + c for c in "abcdefghijklmnopqrstuvwxyz"]


def _t5_tokenizer():
    """A Unigram T5 tokenizer (the class Wan and CogVideoX load) over a few dozen pieces."""
    from transformers import T5Tokenizer

    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)] + [(p, -1.0) for p in _PIECES]
    return T5Tokenizer(vocab=vocab, extra_ids=0)


def _qwen_tokenizer():
    """A byte-level BPE Qwen2 tokenizer with no merges: every byte is a token, any text encodes."""
    from transformers import Qwen2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {c: i for i, c in enumerate(bytes_to_unicode().values())}
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = Qwen2Tokenizer(vocab=vocab, merges=[])
    # HunyuanVideo 1.5 formats the prompt with the tokenizer's chat template (Qwen's layout).
    tokenizer.chat_template = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
    return tokenizer


def _wan_transformer(seed: int, in_channels: int = 16, out_channels: int = 16, **image):
    from diffusers import WanTransformer3DModel

    torch.manual_seed(seed)
    return WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=in_channels,
        out_channels=out_channels, text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
        qk_norm="rms_norm_across_heads", rope_max_seq_len=64, **image)


def _wan_parts(z_dim: int = 16) -> dict:
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=z_dim, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True], latents_mean=[0.0] * z_dim,
                           latents_std=[1.0] * z_dim)
    tokenizer = _t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                               num_heads=2, relative_attention_num_buckets=8))
    return dict(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae,
                scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))


def wan(folder: Path, two_experts: bool = False) -> Path:
    """Wan 2.1 (or, with ``two_experts``, Wan 2.2 A14B-style with ``transformer_2``): VAE 8x
    spatial, 4x temporal; patch (1, 2, 2); temporal RoPE of 8 dims (4 frequencies)."""
    from diffusers import WanPipeline

    pipe = WanPipeline(**_wan_parts(), transformer=_wan_transformer(0),
                       transformer_2=_wan_transformer(1) if two_experts else None,
                       boundary_ratio=0.5 if two_experts else None)
    pipe.save_pretrained(folder)
    return folder


def wan_i2v(folder: Path, two_experts: bool = False) -> Path:
    """Wan 2.1 I2V (CLIP image tokens that only cross-attention sees, through attn2's added K/V),
    or with ``two_experts`` Wan 2.2 I2V A14B (no image encoder): both take the noise, a 4-channel
    frame mask and the conditioning video's latents as 16 + 4 + 16 input channels."""
    from diffusers import WanImageToVideoPipeline
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModel

    image = {}
    if not two_experts:
        torch.manual_seed(0)
        image = dict(image_encoder=CLIPVisionModel(CLIPVisionConfig(
            hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=32,
            patch_size=16, projection_dim=16)),
            image_processor=CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}))
    # added_kv_proj_dim is the transformer's width (heads x head dim), as in Wan 2.1 I2V.
    conditioning = {} if two_experts else dict(image_dim=16, added_kv_proj_dim=48)
    pipe = WanImageToVideoPipeline(**_wan_parts(), **image, transformer=_wan_transformer(0, 36, **conditioning),
                                   transformer_2=_wan_transformer(1, 36) if two_experts else None,
                                   boundary_ratio=0.5 if two_experts else None)
    pipe.save_pretrained(folder)
    return folder


def wan_ti2v(folder: Path) -> Path:
    """Wan 2.2 TI2V-5B: a ``WanPipeline`` checkpoint with ``expand_timesteps`` and the 48-channel
    latent; given an image, ``WanImageToVideoPipeline`` puts it in as the first latent frame."""
    from diffusers import WanPipeline

    pipe = WanPipeline(**_wan_parts(z_dim=48), transformer=_wan_transformer(0, 48, 48), expand_timesteps=True)
    pipe.save_pretrained(folder)
    return folder


def cogvideox(folder: Path, image: bool = False, v1_5: bool = False) -> Path:
    """CogVideoX 1.0 (5B-style, rotary positions): VAE 8x spatial, 4x temporal; patch 2. With
    ``image``, the image-to-video pipeline: the image's latent frame (then zeros) concatenated to
    the noise as channels, and for 1.0 the learned positional embedding of the I2V 5B checkpoint
    (fixed to one size); ``v1_5``: CogVideoX 1.5 (temporal patch 2, the I2V ``ofs`` embedding)."""
    from diffusers import (AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXImageToVideoPipeline,
                           CogVideoXPipeline, CogVideoXTransformer3DModel)
    from transformers import T5Config, T5EncoderModel

    variant = {}
    if v1_5:
        variant = dict(patch_size_t=2, ofs_embed_dim=2 if image else None, sample_height=4, sample_width=4)
    elif image:  # sample size = the latent of the 16x32 video the tests generate
        variant = dict(use_learned_positional_embeddings=True, sample_height=2, sample_width=4)
    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(**{
        **dict(num_attention_heads=2, attention_head_dim=16, in_channels=8 if image else 4, out_channels=4,
               time_embed_dim=2, text_embed_dim=16, num_layers=2, sample_width=2, sample_height=2, sample_frames=9,
               patch_size=2, temporal_compression_ratio=4, max_text_seq_length=226,
               use_rotary_positional_embeddings=True), **variant})
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    tokenizer = _t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                           num_heads=2, relative_attention_num_buckets=8))
    pipeline = CogVideoXImageToVideoPipeline if image else CogVideoXPipeline
    pipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
             scheduler=CogVideoXDDIMScheduler()).save_pretrained(folder)
    return folder


def hunyuan_video(folder: Path, image: bool = False) -> Path:
    """HunyuanVideo 1.5: VAE 4x spatial, 2x temporal (the sizes diffusers' own tests use);
    patch 1; Qwen2.5-VL text encoder and a byT5 encoder, both tiny. With ``image``, the
    image-to-video pipeline: a tiny SigLIP encoder whose image tokens join the encoder stream
    (valid, ahead of the texts), and the image's latent frame and a mask as input channels."""
    from diffusers import (AutoencoderKLHunyuanVideo15, FlowMatchEulerDiscreteScheduler,
                           HunyuanVideo15ImageToVideoPipeline, HunyuanVideo15Pipeline,
                           HunyuanVideo15Transformer3DModel)
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import (ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, SiglipImageProcessor,
                              SiglipVisionConfig, SiglipVisionModel, T5Config, T5EncoderModel)

    torch.manual_seed(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=16,
        image_embed_dim=12, rope_axes_dim=(8, 4, 4), target_size=16, task_type="i2v" if image else "t2v")
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16), layers_per_block=1,
        spatial_compression_ratio=4, temporal_compression_ratio=2, downsample_match_channel=False,
        upsample_match_channel=False)
    tokenizer = _qwen_tokenizer()
    torch.manual_seed(0)
    text_encoder = Qwen2_5_VLTextModel(Qwen2_5_VLTextConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=16, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, rope_theta=1000000.0,
        rope_scaling={"mrope_section": [1, 1, 2], "rope_type": "default", "type": "default"}))
    tokenizer_2 = ByT5Tokenizer()
    torch.manual_seed(0)
    text_encoder_2 = T5EncoderModel(T5Config(vocab_size=len(tokenizer_2), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                             num_heads=2, relative_attention_num_buckets=8))
    parts = dict(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
                 text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2,
                 tokenizer_2=tokenizer_2, guider=ClassifierFreeGuidance(guidance_scale=1.0))
    if not image:
        HunyuanVideo15Pipeline(**parts).save_pretrained(folder)
        return folder
    torch.manual_seed(0)
    image_encoder = SiglipVisionModel(SiglipVisionConfig(
        hidden_size=12, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2, image_size=16, patch_size=8))
    HunyuanVideo15ImageToVideoPipeline(
        **parts, image_encoder=image_encoder,
        feature_extractor=SiglipImageProcessor(size={"height": 16, "width": 16})).save_pretrained(folder)
    return folder


BUILDERS = {"wan": wan, "cogvideox": cogvideox, "hunyuan_video": hunyuan_video}
# Image-to-video checkpoints (lvsa generate --image), by the family their pipeline belongs to.
IMAGE_BUILDERS = {
    "wan_i2v": wan_i2v,
    "wan22_i2v": lambda folder: wan_i2v(folder, two_experts=True),
    "wan_ti2v": wan_ti2v,
    "cogvideox_i2v": lambda folder: cogvideox(folder, image=True),
    "cogvideox1.5_i2v": lambda folder: cogvideox(folder, image=True, v1_5=True),
    "hunyuan_video_i2v": lambda folder: hunyuan_video(folder, image=True),
}
