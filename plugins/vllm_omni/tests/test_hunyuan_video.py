"""vLLM-Omni's real HunyuanVideo 1.5 transformer (tiny configuration, CPU tensors, padded text of
different valid lengths per batch entry) with LVSA equals the model whose self-attention is
masked dense attention with the LVSA pattern AND vLLM-Omni's key mask; the grid comes from the
transformer's input and the step from the pipeline's own loop (the pipeline records none)."""

from __future__ import annotations

import pytest
import torch
from omni_cpu import LVSA_SELF, building, diffusion_config, forward_context
from reference import init_weights, patch_self_attention

from lvsa.model_facts import ModelFacts
from lvsa.plan import preset

FACTS = ModelFacts.from_preset(preset("hunyuanvideo-1.5"))
HEIGHT, WIDTH = 2, 3  # patch 1: P = 6 tokens per latent frame


def hunyuan(vllm_config, attention, sequence_parallel=1):
    from vllm_omni.diffusion.models.hunyuan_video.hunyuan_video_15_transformer import (
        HunyuanVideo15Transformer3DModel)

    od = diffusion_config(attention, sequence_parallel)
    with building(vllm_config, od):
        model = HunyuanVideo15Transformer3DModel(od, in_channels=5, out_channels=2, num_attention_heads=2,
                                                 attention_head_dim=16, num_layers=2, num_refiner_layers=1,
                                                 mlp_ratio=2.0, text_embed_dim=24, text_embed_2_dim=20,
                                                 image_embed_dim=12, rope_axes_dim=(4, 6, 6), task_type="t2v")
    init_weights(model)
    return model.eval(), od


def inputs(frames, seed, text_valid=(5, 2), byt5_valid=(2, 4), height=HEIGHT, width=WIDTH):
    """Batch 2: Qwen text of 8 tokens and ByT5 of 4, each entry with its own valid count (valid
    first, as the tokenizers pad; 7 and 6 valid in all, so the second entry has padding), and no
    image (T2V: the image tokens are all padding)."""
    g = torch.Generator().manual_seed(seed)
    B = len(text_valid)

    def mask(length, valid):
        return torch.stack([torch.arange(length) < n for n in valid]).long()

    return dict(hidden_states=torch.randn(B, 5, frames, height, width, generator=g),
                timestep=torch.tensor([500.0] * B),
                encoder_hidden_states=torch.randn(B, 8, 24, generator=g), encoder_attention_mask=mask(8, text_valid),
                encoder_hidden_states_2=torch.randn(B, 4, 20, generator=g),
                encoder_attention_mask_2=mask(4, byt5_valid), image_embeds=torch.zeros(B, 3, 12))


def run(model, vllm_config, od, args, step):
    with torch.no_grad(), forward_context(vllm_config, od, step):
        return model(**args, return_dict=False)[0]


def serving():
    from lvsa_vllm_omni import request, served

    return request.serving(served.PIPELINES[2], FACTS)


@pytest.mark.parametrize("frames", [5, 7])
def test_hunyuan_video_equals_the_model_with_the_lvsa_mask(vllm_config, sparse_knobs, frames):
    model, od = hunyuan(vllm_config, LVSA_SELF)
    reference, _ = hunyuan(vllm_config, None)
    patch_self_attention(reference, (frames, HEIGHT * WIDTH), FACTS)
    dense, _ = hunyuan(vllm_config, None)
    args = inputs(frames, seed=frames)
    outputs = []
    for step in range(4):
        with serving():
            got = run(model, vllm_config, od, args, step)
        torch.testing.assert_close(got, run(reference, vllm_config, od, args, step), atol=2e-4, rtol=2e-4)
        assert not torch.allclose(got, run(dense, vllm_config, od, args, step), atol=1e-3)
        outputs.append(got)
    assert not torch.allclose(outputs[0], outputs[1])
    torch.testing.assert_close(outputs[0], outputs[3])  # kfi 3


def test_the_step_comes_from_the_pipelines_own_loop(vllm_config, sparse_knobs):
    """HunyuanVideo15Pipeline records no step: the plugin counts the loop's scheduler steps, so
    both classifier-free-guidance calls of a step share it and every request starts at 0."""
    from diffusers import FlowMatchEulerDiscreteScheduler
    from lvsa_vllm_omni import request, served
    from vllm_omni.diffusion.forward_context import get_forward_context
    from vllm_omni.diffusion.models.hunyuan_video.pipeline_hunyuan_video_1_5 import HunyuanVideo15Pipeline

    model, od = hunyuan(vllm_config, LVSA_SELF)
    # The pipeline's own CFG and scheduler-step methods, on a pipeline holding the tiny model.
    pipe = HunyuanVideo15Pipeline.__new__(HunyuanVideo15Pipeline)
    torch.nn.Module.__init__(pipe)
    pipe.transformer, pipe.scheduler = model, FlowMatchEulerDiscreteScheduler()
    args = inputs(5, seed=5)
    seen = []
    real_forward = type(model).forward

    def recording(self, *a, **kw):
        seen.append(get_forward_context().denoise_step_idx)
        return real_forward(self, *a, **kw)

    def loop():
        pipe.scheduler.set_timesteps(3)
        latents = torch.randn(2, 2, 5, HEIGHT, WIDTH)
        for t in pipe.scheduler.timesteps:
            kwargs = dict(args, hidden_states=torch.cat([latents, args["hidden_states"][:, 2:]], dim=1),
                          timestep=t.expand(2), return_dict=False)
            noise = pipe.predict_noise_maybe_with_cfg(True, 5.0, kwargs, kwargs)
            latents = pipe.scheduler_step_maybe_with_cfg(noise, t, latents, do_true_cfg=True)
        return latents

    type(model).forward = recording
    try:
        with torch.no_grad(), forward_context(vllm_config, od):
            for _ in range(2):  # two requests
                with request.serving(served.PIPELINES[2], FACTS, pipe):
                    loop()
    finally:
        type(model).forward = real_forward
    assert seen == [0, 0, 1, 1, 2, 2] * 2
