"""The released transformers the DiT benchmark builds: their diffusers configs (the values the
checkpoints' ``transformer/config.json`` carry, written here so nothing is downloaded), video
size, text inputs and scheduler, and how to build one with random weights on the device and
make its forward inputs for a video length.

Where a value is not certain from the released configs it says so; none of those changes the
attention work (heads, head size, tokens), which the LVSA presets fix and ``check_geometry``
compares with.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from .. import _native
from ..plan import preset


@dataclass(frozen=True)
class Text:
    """One encoder input: ``tokens`` x ``dim`` embeddings, ``valid`` of them real (the rest padding,
    masked by the model) when the model takes a mask; None: no mask (every token attends)."""

    tokens: int
    dim: int
    valid: int | None = None


@dataclass(frozen=True)
class DiTModel:
    name: str
    preset: str                  # the LVSA preset with this model's geometry
    transformer: str             # the diffusers class
    config: dict                 # its released config
    height: int
    width: int
    texts: tuple[Text, ...]
    scheduler: tuple[str, dict]  # the pipeline's scheduler class and its config
    train_frames: int            # the video length it was trained at
    published_frames: tuple[int, ...]  # the lengths LVSA's results are quoted at
    smoke: dict = field(default_factory=dict)  # config overrides for --smoke: a tiny model of the family
    smoke_size: tuple[int, int] = (32, 32)
    smoke_texts: tuple[Text, ...] = ()

    @property
    def family(self) -> str:
        return preset(self.preset)["family"]


_FLOW_WAN_480 = ("FlowMatchEulerDiscreteScheduler", dict(shift=3.0))  # Wan's sample_shift at 480p
_FLOW_WAN_720 = ("FlowMatchEulerDiscreteScheduler", dict(shift=5.0))  # and at 720p
_WAN_TINY = dict(num_attention_heads=2, attention_head_dim=64, text_dim=16, ffn_dim=64, num_layers=2)

WAN_2_1_1_3B = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                    out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30, cross_attn_norm=True,
                    qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
WAN_2_1_14B = dict(WAN_2_1_1_3B, num_attention_heads=40, ffn_dim=13824, num_layers=40)

# HunyuanVideo 1.5 text to video: the transformer's defaults are the 480p release but for the task
# (and target_size, 960 at 720p). Text: 1000 Qwen2.5-VL tokens (a typical prompt fills ~120), 256
# byT5 tokens (filled only by quoted text in the prompt: none here), 729 SigLIP image tokens that
# text-to-video passes as zeros, which the model masks out.
HUNYUAN_1_5 = dict(in_channels=65, out_channels=32, num_attention_heads=16, attention_head_dim=128, num_layers=54,
                   num_refiner_layers=2, mlp_ratio=4.0, patch_size=1, patch_size_t=1, qk_norm="rms_norm",
                   text_embed_dim=3584, text_embed_2_dim=1472, image_embed_dim=1152, rope_theta=256.0,
                   rope_axes_dim=(16, 56, 56), target_size=640, task_type="t2v")
_HUNYUAN_TEXTS = (Text(1000, 3584, 120), Text(256, 1472, 0), Text(729, 1152, 0))
# The shift of HunyuanVideo 1.5's flow-matching scheduler: 5 at 480p and 7 at 720p in its
# pipeline configs, as far as known here (the step cost does not depend on it).
_FLOW_HUNYUAN_480 = ("FlowMatchEulerDiscreteScheduler", dict(shift=5.0))
_FLOW_HUNYUAN_720 = ("FlowMatchEulerDiscreteScheduler", dict(shift=7.0))

# CogVideoX 1.5 5B (THUDM/CogVideoX1.5-5B). sample_height/width 300 as in its config, as far as
# known here (they only set the RoPE grid's base size). 226 T5 tokens, no mask.
COGVIDEOX_1_5_5B = dict(num_attention_heads=48, attention_head_dim=64, in_channels=16, out_channels=16,
                        time_embed_dim=512, text_embed_dim=4096, num_layers=42, flip_sin_to_cos=True, freq_shift=0,
                        sample_width=300, sample_height=300, sample_frames=81, patch_size=2, patch_size_t=2,
                        temporal_compression_ratio=4, max_text_seq_length=226, activation_fn="gelu-approximate",
                        timestep_activation_fn="silu", norm_elementwise_affine=True, norm_eps=1e-5,
                        spatial_interpolation_scale=1.875, temporal_interpolation_scale=1.0,
                        use_rotary_positional_embeddings=True, use_learned_positional_embeddings=False,
                        patch_bias=False)
# The pipeline takes CogVideoX's DDIM or DPM scheduler; DPM's step needs the previous prediction,
# DDIM's is the common one and costs the same (nothing, next to a forward).
_COGVIDEOX_DDIM = ("CogVideoXDDIMScheduler", dict(prediction_type="v_prediction", rescale_betas_zero_snr=True,
                                                  timestep_spacing="trailing", snr_shift_scale=1.0))

# Cosmos Predict 2.5 2B: Qwen2.5-VL embeddings of every layer (100352 channels) projected to 1024;
# the condition mask is a 17th input channel. concat_padding_mask is on in the release but needs
# torchvision (not a dependency): off here, which drops one input channel of the patch embedding.
# rope_scale (1, 3, 3) as far as known here (it scales positions, not work).
COSMOS_2_5_2B = dict(in_channels=17, out_channels=16, num_attention_heads=16, attention_head_dim=128, num_layers=28,
                     mlp_ratio=4.0, text_embed_dim=1024, adaln_lora_dim=256, max_size=(128, 240, 240),
                     patch_size=(1, 2, 2), rope_scale=(1.0, 3.0, 3.0), concat_padding_mask=False,
                     extra_pos_embed_type=None, use_crossattn_projection=True, crossattn_proj_in_channels=100352,
                     encoder_hidden_states_channels=1024)
_COSMOS_UNIPC = ("UniPCMultistepScheduler", dict(use_flow_sigmas=True, prediction_type="flow_prediction"))

# Lengths: Wan and HunyuanVideo 1.5 at those of the published claims; CogVideoX 1.5 and Cosmos 2.5
# (no published claim) at 1x, 2x, 4x (and 6x) their training length.
MODELS = {m.name: m for m in [
    DiTModel("wan2.1-1.3b", "wan2.1-1.3b", "WanTransformer3DModel", WAN_2_1_1_3B, 480, 832, (Text(512, 4096),),
             _FLOW_WAN_480, 81, (81, 161, 321, 481), _WAN_TINY, smoke_texts=(Text(7, 16),)),
    DiTModel("wan2.1-14b", "wan2.1-14b", "WanTransformer3DModel", WAN_2_1_14B, 720, 1280, (Text(512, 4096),),
             _FLOW_WAN_720, 81, (81, 161, 321, 481), _WAN_TINY, smoke_texts=(Text(7, 16),)),
    DiTModel("hunyuanvideo-1.5-480p", "hunyuanvideo-1.5", "HunyuanVideo15Transformer3DModel", HUNYUAN_1_5, 480, 848,
             _HUNYUAN_TEXTS, _FLOW_HUNYUAN_480, 129, (65, 129, 193, 257),
             dict(num_attention_heads=2, attention_head_dim=64, num_layers=2, num_refiner_layers=1, mlp_ratio=2.0,
                  text_embed_dim=16, text_embed_2_dim=8, image_embed_dim=12, rope_axes_dim=(16, 24, 24)),
             (32, 32), (Text(6, 16, 4), Text(3, 8, 1), Text(2, 12, 0))),
    DiTModel("hunyuanvideo-1.5-720p", "hunyuanvideo-1.5", "HunyuanVideo15Transformer3DModel",
             dict(HUNYUAN_1_5, target_size=960), 720, 1280, _HUNYUAN_TEXTS, _FLOW_HUNYUAN_720, 129,
             (65, 129, 193, 257)),
    DiTModel("cogvideox1.5-5b", "cogvideox1.5-5b", "CogVideoXTransformer3DModel", COGVIDEOX_1_5_5B, 768, 1360,
             (Text(226, 4096),), _COGVIDEOX_DDIM, 81, (81, 161, 321, 481),
             dict(num_attention_heads=2, attention_head_dim=64, time_embed_dim=2, text_embed_dim=8, num_layers=2,
                  sample_width=4, sample_height=4, max_text_seq_length=6),
             smoke_texts=(Text(6, 8),)),
    DiTModel("cosmos-2.5-2b", "cosmos-2.5", "CosmosTransformer3DModel", COSMOS_2_5_2B, 704, 1280, (Text(512, 100352),),
             _COSMOS_UNIPC, 93, (93, 185, 369, 553),
             dict(num_attention_heads=2, attention_head_dim=64, num_layers=2, mlp_ratio=2, text_embed_dim=16,
                  adaln_lora_dim=4, max_size=(64, 16, 16), crossattn_proj_in_channels=24,
                  encoder_hidden_states_channels=16),
             smoke_texts=(Text(7, 24),)),
]}


def model(name: str) -> DiTModel:
    if name not in MODELS:
        raise SystemExit(f"lvsa bench --dit: unknown --model {name!r}; known: {', '.join(MODELS)}")
    return MODELS[name]


def build(spec: DiTModel, device: torch.device, dtype: torch.dtype, smoke: bool) -> torch.nn.Module:
    """The transformer with random weights, built on ``device`` (never on the CPU for a GPU run)
    and cast as ``from_pretrained(torch_dtype=dtype)`` loads it: parameters in ``dtype`` but for
    the modules the class keeps in float32."""
    import diffusers

    torch.manual_seed(0)
    with torch.device(device):
        transformer = getattr(diffusers, spec.transformer)(**{**spec.config, **(spec.smoke if smoke else {})})
    keep = transformer._keep_in_fp32_modules or []
    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if not any(part in keep for part in name.split(".")):
                param.data = param.data.to(dtype)
    return transformer.eval().requires_grad_(False)


@dataclass(frozen=True)
class Layout:
    """The attention's token layout at one length: token frames T, tokens per frame P, and the
    encoder tokens in the self-attention (all, and valid), on which side of the video."""

    token_frames: int
    latent_frames: int
    latent_size: tuple[int, int]
    tokens_per_frame: int
    encoder_len: int
    encoder_valid: int
    encoder_side: str


def layout(spec: DiTModel, frames: int, smoke: bool) -> Layout:
    p = preset(spec.preset)
    token_frames = _native.clip_token_frames(frames, p["vae_temporal"], p["patch"][0])
    height, width = spec.smoke_size if smoke else (spec.height, spec.width)
    h, w = height // p["vae_spatial"], width // p["vae_spatial"]
    texts = spec.smoke_texts if smoke else spec.texts
    # Wan and Cosmos attend to the text in cross-attention only; HunyuanVideo and CogVideoX join it.
    side = {"hunyuan_video": "after", "cogvideox": "before"}.get(spec.family, "none")
    encoder = sum(t.tokens for t in texts) if side != "none" else 0
    valid = sum(t.tokens if t.valid is None else t.valid for t in texts) if encoder else 0
    # CogVideoX 1.5 pads the latent frames to whole temporal patches, as its pipeline does.
    return Layout(token_frames, token_frames * p["patch"][0], (h, w), (h // p["patch"][1]) * (w // p["patch"][2]),
                  encoder, valid, side)


@dataclass
class Inputs:
    """What one length needs: the latents to denoise, the forward kwargs for latents, a timestep
    and whether the prompt is the conditional one (CFG runs both), and the token layout."""

    latents: torch.Tensor
    forward: Callable[[torch.Tensor, torch.Tensor, bool], dict]
    layout: Layout


def inputs(spec: DiTModel, transformer, frames: int, device, dtype, smoke: bool) -> Inputs:
    """Random latents and text embeddings for a ``frames``-frame video (the pipeline's shapes)."""
    p = preset(spec.preset)
    lay = layout(spec, frames, smoke)
    latent_frames, (h, w) = lay.latent_frames, lay.latent_size
    gen = torch.Generator(device="cpu").manual_seed(1)

    def randn(*shape):
        return torch.randn(*shape, generator=gen).to(device, dtype)

    texts = spec.smoke_texts if smoke else spec.texts
    # Conditional and unconditional prompts: different embeddings, the same shapes.
    embeds = {cond: [randn(1, t.tokens, t.dim) for t in texts] for cond in (True, False)}
    masks = [None if t.valid is None else (torch.arange(t.tokens, device=device) < t.valid).long()[None]
             for t in texts]
    channels = transformer.config.out_channels
    family = spec.family

    if family == "wan":
        latents = randn(1, channels, latent_frames, h, w)

        def forward(x, t, cond):
            return dict(hidden_states=x, timestep=t.expand(1), encoder_hidden_states=embeds[cond][0])
    elif family == "hunyuan_video":
        latents = randn(1, channels, latent_frames, h, w)
        # Text to video: the conditioning latents and their mask are zeros (extra input channels).
        extra = torch.zeros(1, transformer.config.in_channels - channels, latent_frames, h, w, device=device,
                            dtype=dtype)

        def forward(x, t, cond):
            text, byt5, image = embeds[cond]
            # As HunyuanVideo15Pipeline calls it: the timestep in the latents' dtype (its embedder
            # does not cast a float32 timestep to the weights' dtype).
            return dict(hidden_states=torch.cat([x, extra], dim=1), timestep=t.expand(1).to(dtype),
                        encoder_hidden_states=text,
                        encoder_attention_mask=masks[0], encoder_hidden_states_2=byt5,
                        encoder_attention_mask_2=masks[1], image_embeds=torch.zeros_like(image))
    elif family == "cogvideox":
        from diffusers import CogVideoXPipeline

        latents = randn(1, latent_frames, channels, h, w)
        # The pipeline computes CogVideoX's RoPE tables; borrow its method rather than copy it.
        pipe = CogVideoXPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=transformer, scheduler=None)
        s = p["vae_spatial"]
        rope = pipe._prepare_rotary_positional_embeddings(h * s, w * s, latent_frames, device)

        def forward(x, t, cond):
            return dict(hidden_states=x, timestep=t.expand(1), encoder_hidden_states=embeds[cond][0],
                        image_rotary_emb=rope)
    elif family == "cosmos":
        latents = randn(1, channels, latent_frames, h, w)
        condition = torch.zeros(1, 1, latent_frames, h, w, device=device, dtype=dtype)  # text to world: none
        s = p["vae_spatial"]
        padding = torch.zeros(1, 1, h * s, w * s, device=device, dtype=dtype)

        def forward(x, t, cond):
            # The pipeline passes the flow sigma (t / 1000) as the timestep.
            return dict(hidden_states=x, timestep=(t / 1000).expand(1), encoder_hidden_states=embeds[cond][0],
                        condition_mask=condition, padding_mask=padding)
    else:
        raise ValueError(f"lvsa bench --dit: no inputs for the family {family!r}")
    return Inputs(latents, forward, lay)


def scheduler(spec: DiTModel):
    import diffusers

    name, config = spec.scheduler
    return getattr(diffusers, name)(**config)


def check_geometry(spec: DiTModel, transformer) -> None:
    """The config's heads and head size are the preset's: the benchmark times the geometry LVSA plans."""
    p, c = preset(spec.preset), transformer.config
    if (c.num_attention_heads, c.attention_head_dim) != (p["heads"], p["head_dim"]):
        raise AssertionError(f"{spec.name}: config has {c.num_attention_heads} heads x {c.attention_head_dim}, the "
                             f"preset {spec.preset} {p['heads']} x {p['head_dim']}")
