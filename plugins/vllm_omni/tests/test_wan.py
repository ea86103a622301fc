"""vLLM-Omni's real Wan 2.2 transformer (a tiny configuration, CPU tensors) with LVSA on its
self-attention equals the same model whose self-attention is masked dense attention with the
LVSA pattern, at every rotation offset and for two requests of different lengths."""

from __future__ import annotations

import logging

import pytest
import torch
from omni_cpu import LVSA_SELF, building, diffusion_config, forward_context
from reference import init_weights, patch_self_attention

from lvsa.model_facts import ModelFacts
from lvsa.plan import preset

FACTS = ModelFacts.from_preset(preset("wan2.1-1.3b"))
HEIGHT, WIDTH = 4, 6  # latent size: 2 x 3 = 6 tokens per frame after the 2x2 patch


def wan(vllm_config, attention, sequence_parallel=1):
    from vllm_omni.diffusion.models.wan2_2.wan2_2_transformer import WanTransformer3DModel

    od = diffusion_config(attention, sequence_parallel)
    with building(vllm_config, od):
        model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16,
                                      in_channels=4, out_channels=4, text_dim=32, freq_dim=32, ffn_dim=64,
                                      num_layers=2, rope_max_seq_len=64)
    init_weights(model)
    return model.eval(), od


def inputs(frames, seed, height=HEIGHT, width=WIDTH):
    g = torch.Generator().manual_seed(seed)
    return dict(hidden_states=torch.randn(1, 4, frames, height, width, generator=g),
                timestep=torch.tensor([500.0]), encoder_hidden_states=torch.randn(1, 7, 32, generator=g))


def run(model, vllm_config, od, args, step):
    with torch.no_grad(), forward_context(vllm_config, od, step):
        return model(**args, return_dict=False)[0]


def serving():
    from lvsa_vllm_omni import request, served

    return request.serving(served.PIPELINES[0], FACTS)


@pytest.mark.parametrize("frames", [5, 7])  # two consecutive requests of different lengths
def test_wan_equals_the_model_with_the_lvsa_mask_at_every_offset(vllm_config, sparse_knobs, frames):
    from reference import lvsa_config
    from lvsa.plan import Geometry, Planner

    lvsa_model, od = wan(vllm_config, LVSA_SELF)
    kfi = Planner(Geometry(frames, 6), lvsa_config(FACTS)).kfi
    assert kfi > 1, "the test pattern must be sparse"
    args = inputs(frames, seed=frames)
    dense = run(wan(vllm_config, None)[0], vllm_config, od, args, 0)
    reference, _ = wan(vllm_config, None)
    patch_self_attention(reference, (frames, 6), FACTS)
    outputs = []
    for step in range(kfi + 1):
        expected = run(reference, vllm_config, od, args, step)
        with serving():
            got = run(lvsa_model, vllm_config, od, args, step)
        torch.testing.assert_close(got, expected, atol=2e-4, rtol=2e-4)
        assert not torch.allclose(got, dense, atol=1e-3), "sparse must differ from dense attention"
        outputs.append(got)
    assert not torch.allclose(outputs[0], outputs[1]), "the keyframe grid must rotate with the step"
    torch.testing.assert_close(outputs[0], outputs[kfi])  # offset = step mod kfi


def test_identical_requests_attend_identically(vllm_config, sparse_knobs):
    model, od = wan(vllm_config, LVSA_SELF)
    args = inputs(5, seed=1)
    with serving():
        first = [run(model, vllm_config, od, args, step) for step in range(3)]
    with serving():
        second = [run(model, vllm_config, od, args, step) for step in range(3)]
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_outside_a_served_pipeline_it_runs_dense_and_says_why(vllm_config, sparse_knobs, monkeypatch, caplog):
    monkeypatch.setenv("LVSA_STRICT", "0")
    model, od = wan(vllm_config, LVSA_SELF)
    dense, _ = wan(vllm_config, None)
    args = inputs(5, seed=2)
    with caplog.at_level(logging.WARNING, logger="lvsa"):
        got = run(model, vllm_config, od, args, 0)
    torch.testing.assert_close(got, run(dense, vllm_config, od, args, 0))
    assert "using the dense backend" in caplog.text and "no served pipeline is running" in caplog.text


def test_missing_metadata_is_an_error_in_strict_mode(vllm_config, sparse_knobs):
    model, od = wan(vllm_config, LVSA_SELF)
    args = inputs(5, seed=3)
    with serving(), pytest.raises(RuntimeError, match="strict mode: .*no denoise_step_idx"):
        run(model, vllm_config, od, args, None)
