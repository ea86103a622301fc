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


def wan(folder: Path, two_experts: bool = False) -> Path:
    """Wan 2.1 (or, with ``two_experts``, Wan 2.2 A14B-style with ``transformer_2``): VAE 8x
    spatial, 4x temporal; patch (1, 2, 2); temporal RoPE of 8 dims (4 frequencies)."""
    from diffusers import AutoencoderKLWan, FlowMatchEulerDiscreteScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    def transformer(seed):
        torch.manual_seed(seed)
        return WanTransformer3DModel(
            patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=24, in_channels=16, out_channels=16,
            text_dim=16, freq_dim=32, ffn_dim=32, num_layers=2, cross_attn_norm=True,
            qk_norm="rms_norm_across_heads", rope_max_seq_len=64)

    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True])
    tokenizer = _t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = UMT5EncoderModel(UMT5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                               num_heads=2, relative_attention_num_buckets=8))
    pipe = WanPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer(0),
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0),
                       transformer_2=transformer(1) if two_experts else None,
                       boundary_ratio=0.5 if two_experts else None)
    pipe.save_pretrained(folder)
    return folder


def cogvideox(folder: Path) -> Path:
    """CogVideoX 1.0 (5B-style, rotary positions): VAE 8x spatial, 4x temporal; patch 2."""
    from diffusers import AutoencoderKLCogVideoX, CogVideoXDDIMScheduler, CogVideoXPipeline, CogVideoXTransformer3DModel
    from transformers import T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = CogVideoXTransformer3DModel(
        num_attention_heads=2, attention_head_dim=16, in_channels=4, out_channels=4, time_embed_dim=2,
        text_embed_dim=16, num_layers=2, sample_width=2, sample_height=2, sample_frames=9, patch_size=2,
        temporal_compression_ratio=4, max_text_seq_length=226, use_rotary_positional_embeddings=True)
    torch.manual_seed(0)
    vae = AutoencoderKLCogVideoX(
        in_channels=3, out_channels=3, down_block_types=("CogVideoXDownBlock3D",) * 4,
        up_block_types=("CogVideoXUpBlock3D",) * 4, block_out_channels=(8, 8, 8, 8), latent_channels=4,
        layers_per_block=1, norm_num_groups=2, temporal_compression_ratio=4)
    tokenizer = _t5_tokenizer()
    torch.manual_seed(0)
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=16, d_kv=8, d_ff=32, num_layers=1,
                                           num_heads=2, relative_attention_num_buckets=8))
    CogVideoXPipeline(tokenizer=tokenizer, text_encoder=text_encoder, vae=vae, transformer=transformer,
                      scheduler=CogVideoXDDIMScheduler()).save_pretrained(folder)
    return folder


def hunyuan_video(folder: Path) -> Path:
    """HunyuanVideo 1.5: VAE 4x spatial, 2x temporal (the sizes diffusers' own tests use);
    patch 1; Qwen2.5-VL text encoder and a byT5 encoder, both tiny."""
    from diffusers import (AutoencoderKLHunyuanVideo15, FlowMatchEulerDiscreteScheduler, HunyuanVideo15Pipeline,
                           HunyuanVideo15Transformer3DModel)
    from diffusers.guiders import ClassifierFreeGuidance
    from transformers import ByT5Tokenizer, Qwen2_5_VLTextConfig, Qwen2_5_VLTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    transformer = HunyuanVideo15Transformer3DModel(
        in_channels=9, out_channels=4, num_attention_heads=2, attention_head_dim=16, num_layers=2,
        num_refiner_layers=1, mlp_ratio=2.0, patch_size=1, patch_size_t=1, text_embed_dim=16, text_embed_2_dim=16,
        image_embed_dim=12, rope_axes_dim=(8, 4, 4), target_size=16, task_type="t2v")
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
    HunyuanVideo15Pipeline(
        transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(shift=7.0),
        text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
        guider=ClassifierFreeGuidance(guidance_scale=1.0)).save_pretrained(folder)
    return folder


BUILDERS = {"wan": wan, "cogvideox": cogvideox, "hunyuan_video": hunyuan_video}
