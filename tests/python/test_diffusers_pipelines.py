"""``lvsa.enable`` on real diffusers pipelines assembled from tiny random components (prompt
embeddings passed directly, latents returned): the keyframe grid rotates exactly as spec §5
says — step ``i`` uses offset ``i mod kfi``, the classifier-free-guidance calls of a step share
``i`` (two calls per step in Wan, Cosmos and HunyuanVideo 1.5's guider, one doubled batch in
CogVideoX), a second call starts again at step 0 — both Wan 2.2 experts are patched, and
``disable`` gives the pipeline back exactly as it was.
"""

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
from diffusers import (  # noqa: E402
    AutoencoderKLHunyuanVideo15,
    AutoencoderKLWan,
    CogVideoXDDIMScheduler,
    CogVideoXPipeline,
    Cosmos2_5_PredictBasePipeline,
    FlowMatchEulerDiscreteScheduler,
    HunyuanVideo15Pipeline,
    UniPCMultistepScheduler,
    WanPipeline,
)
from diffusers.guiders import ClassifierFreeGuidance  # noqa: E402

import lvsa  # noqa: E402
import tiny_diffusers as td  # noqa: E402

STEPS = 5   # > kfi (3), so the grid wraps around within one call
LAYERS = 2  # self-attention layers of every tiny transformer


def _embeds(batch, length, dim, seed):
    return td.to_device(torch.randn(batch, length, dim, generator=torch.Generator().manual_seed(seed)))


def _wan(two_experts=False):
    experts = dict(transformer_2=td.wan().transformer, boundary_ratio=0.9) if two_experts else {}
    pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=td.wan().transformer,
                       scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), **experts)
    # No VAE: 4x temporal, 8x spatial, so 29 frames of 32x32 are 8 latent frames of 4x4.
    call = dict(prompt_embeds=_embeds(1, 7, 16, 1), negative_prompt_embeds=_embeds(1, 7, 16, 2),
                num_frames=(td.FRAMES - 1) * 4 + 1, height=32, width=32, guidance_scale=5.0)
    return pipe, call, 2  # transformer calls per step: conditional and unconditional


def _cogvideox():
    pipe = CogVideoXPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=td.cogvideox().transformer,
                             scheduler=CogVideoXDDIMScheduler())
    call = dict(prompt_embeds=_embeds(1, 6, 8, 1), negative_prompt_embeds=_embeds(1, 6, 8, 2),
                num_frames=(td.FRAMES - 1) * 4 + 1, height=32, width=32, guidance_scale=5.0)
    return pipe, call, 1  # CFG as one doubled batch


def _hunyuan_video():
    latent = 4
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo15(
        in_channels=3, out_channels=3, latent_channels=latent, block_out_channels=(16, 16), layers_per_block=1,
        spatial_compression_ratio=4, temporal_compression_ratio=2, downsample_match_channel=False,
        upsample_match_channel=False)
    transformer = td.hunyuan_video(in_channels=2 * latent + 1, out_channels=latent).transformer
    pipe = HunyuanVideo15Pipeline(transformer=transformer, vae=vae, scheduler=FlowMatchEulerDiscreteScheduler(),
                                  text_encoder=None, tokenizer=None, text_encoder_2=None, tokenizer_2=None,
                                  guider=ClassifierFreeGuidance(guidance_scale=5.0))
    ones = td.to_device(torch.ones(1, 6, dtype=torch.long))
    padded = ones.clone()
    padded[:, 4:] = 0
    call = dict(prompt_embeds=_embeds(1, 6, 16, 1), prompt_embeds_mask=ones,
                negative_prompt_embeds=_embeds(1, 6, 16, 2), negative_prompt_embeds_mask=padded,
                prompt_embeds_2=_embeds(1, 3, 8, 3), prompt_embeds_mask_2=ones[:, :3],
                negative_prompt_embeds_2=_embeds(1, 3, 8, 4), negative_prompt_embeds_mask_2=ones[:, :3],
                num_frames=(td.FRAMES - 1) * 2 + 1, height=8, width=8)  # VAE 2x temporal, 4x spatial
    return pipe, call, 2  # the CFG guider runs the transformer twice per step


class _NoGuardrail(torch.nn.Module):
    """Stands in for NVIDIA's guardrail (the ``cosmos_guardrail`` package, not a test dependency),
    which the Cosmos pipeline insists on for its license. With embeddings for prompts and latents
    for output the pipeline only moves it between devices and reads its device and dtype."""

    dtype = torch.float32

    def __init__(self):
        super().__init__()
        self.register_buffer("anchor", torch.zeros(()))

    @property
    def device(self):
        return self.anchor.device


def _cosmos():
    latent = 4
    torch.manual_seed(0)
    vae = AutoencoderKLWan(base_dim=3, z_dim=latent, dim_mult=[1, 1, 1, 1], num_res_blocks=1,
                           temperal_downsample=[False, True, True], latents_mean=[0.0] * latent,
                           latents_std=[1.0] * latent)
    pipe = Cosmos2_5_PredictBasePipeline(
        text_encoder=None, tokenizer=None, transformer=td.cosmos().transformer, vae=vae,
        scheduler=UniPCMultistepScheduler(use_flow_sigmas=True, prediction_type="flow_prediction"),
        safety_checker=_NoGuardrail())
    call = dict(prompt_embeds=_embeds(1, 7, 16, 1), negative_prompt_embeds=_embeds(1, 7, 16, 2),
                num_frames=(td.FRAMES - 1) * 4 + 1, height=32, width=32, guidance_scale=5.0)
    return pipe, call, 2


PIPELINES = {"wan": _wan, "cogvideox": _cogvideox, "hunyuan_video": _hunyuan_video, "cosmos": _cosmos}


def _run(pipe, call, seed=0):
    generator = torch.Generator(td.DEVICE).manual_seed(seed)
    with torch.no_grad():
        return pipe(**call, num_inference_steps=STEPS, output_type="latent", generator=generator,
                    return_dict=False)[0]


@pytest.mark.parametrize("family", list(PIPELINES))
def test_pattern_rotates_with_the_denoising_step(family, offsets):
    pipe, call, calls_per_step = PIPELINES[family]()
    pipe.to(td.DEVICE)
    lvsa.enable(pipe, **td.SPARSE)
    expected = [step % 3 for step in range(STEPS) for _ in range(calls_per_step * LAYERS)]
    _run(pipe, call)
    assert offsets == expected
    offsets.clear()
    _run(pipe, call)  # a new request starts again at step 0
    assert offsets == expected


def test_wan22_both_experts_patched_and_disable_restores(offsets):
    pipe, call, _ = _wan(two_experts=True)
    pipe.to(td.DEVICE)
    experts = {"transformer": pipe.transformer, "transformer_2": pipe.transformer_2}
    originals = {name: {n: p for n, p in t.attn_processors.items()} for name, t in experts.items()}
    unpatched = _run(pipe, call)

    used = {name: 0 for name in experts}
    hooks = [t.register_forward_pre_hook(lambda m, a, name=name: used.__setitem__(name, used[name] + 1))
             for name, t in experts.items()]
    handle = lvsa.enable(pipe, **td.SPARSE)
    assert handle.model == "wan2.2-a14b" and handle.settings.config.reference == 4
    assert {name: len(layers) for name, layers in handle.layers.items()} == {"transformer": 2, "transformer_2": 2}
    for name, transformer in experts.items():
        for block in transformer.blocks:
            assert type(block.attn1.processor).__name__ == "WanLVSAProcessor"
            assert type(block.attn2.processor).__name__ == "WanAttnProcessor"  # cross-attention stays dense
    sparse = _run(pipe, call)
    for hook in hooks:
        hook.remove()
    assert used["transformer"] > 0 and used["transformer_2"] > 0  # both experts ran ...
    assert offsets == [step % 3 for step in range(STEPS) for _ in range(2 * LAYERS)]  # ... on one step count
    assert (sparse - unpatched).abs().max() > 1e-4

    lvsa.disable(pipe)
    assert type(pipe) is WanPipeline and not hasattr(pipe, "_lvsa_handle")
    for name, transformer in experts.items():
        assert all(p is originals[name][n] for n, p in transformer.attn_processors.items())
        assert not transformer._forward_pre_hooks and not transformer._forward_hooks
    torch.testing.assert_close(_run(pipe, call), unpatched, atol=0, rtol=0)
