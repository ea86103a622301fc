"""What the plugin wraps and which model's facts each request gets: Wan's variants as LVSA's
adapter tells them apart (A14B by its second expert, TI2V-5B by its 48 latent channels), both
A14B experts running LVSA under one request, and subclasses of served pipelines not served."""

from __future__ import annotations

import pytest
import torch
from omni_cpu import LVSA_SELF, building, diffusion_config

import test_wan as wan
from reference import init_weights, patch_self_attention


def _pipe(cls, **components):
    pipe = cls.__new__(cls)
    torch.nn.Module.__init__(pipe)
    for name, module in components.items():
        setattr(pipe, name, module)
    return pipe


def _wan(vllm_config, in_channels=4, attention=LVSA_SELF):
    from vllm_omni.diffusion.models.wan2_2.wan2_2_transformer import WanTransformer3DModel

    with building(vllm_config, diffusion_config(attention)):
        model = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=16,
                                      in_channels=in_channels, out_channels=4, text_dim=32, freq_dim=32,
                                      ffn_dim=64, num_layers=1, rope_max_seq_len=64)
    init_weights(model)
    return model.eval()


def test_wan_variants_get_their_presets(vllm_config):
    from lvsa_vllm_omni import served
    from vllm_omni.diffusion.models.wan2_2.pipeline_wan2_2 import Wan22Pipeline

    t2v = served.PIPELINES[0]
    assert t2v.pipeline_class() is Wan22Pipeline
    small = _wan(vllm_config)
    assert t2v.facts(_pipe(Wan22Pipeline, transformer=small, transformer_2=None)).name == "wan2.1-1.3b"
    assert t2v.facts(_pipe(Wan22Pipeline, transformer=small, transformer_2=small)).name == "wan2.2-a14b"
    ti2v = _wan(vllm_config, in_channels=48)
    assert t2v.facts(_pipe(Wan22Pipeline, transformer=ti2v, transformer_2=None)).name == "wan2.2-ti2v-5b"


def test_a_served_pipelines_forward_opens_a_request_and_a_subclass_does_not(vllm_config):
    from lvsa_vllm_omni import request, served
    from vllm_omni.diffusion.models.wan2_2.pipeline_wan2_2 import Wan22Pipeline
    from vllm_omni.diffusion.models.wan2_2.pipeline_wan2_2_vace import Wan22VACEPipeline

    request.install()
    assert all(getattr(p.pipeline_class().forward, "__lvsa_wrapped__", False) for p in served.PIPELINES)
    # The wrapper around a stand-in for the pipeline's own forward, which reports the request it runs in.
    forward = request._pipeline_forward(served.PIPELINES[0], Wan22Pipeline)(lambda self: request.current())
    small = _wan(vllm_config)
    seen = forward(_pipe(Wan22Pipeline, transformer=small, transformer_2=None))
    assert seen.pipeline is served.PIPELINES[0] and seen.facts.name == "wan2.1-1.3b"
    assert forward(_pipe(Wan22VACEPipeline, transformer=small, transformer_2=None)) is None
    assert request.current() is None


def test_both_a14b_experts_run_lvsa(vllm_config, sparse_knobs):
    from lvsa_vllm_omni import request, served
    from vllm_omni.diffusion.models.wan2_2.pipeline_wan2_2 import Wan22Pipeline

    experts = [_wan(vllm_config), _wan(vllm_config)]
    with torch.no_grad():
        for p in experts[1].parameters():
            p.mul_(-1.0)  # a different second expert
    pipe = _pipe(Wan22Pipeline, transformer=experts[0], transformer_2=experts[1])
    entry = served.PIPELINES[0]
    facts = entry.facts(pipe)
    args = wan.inputs(5, seed=4)
    od = diffusion_config(LVSA_SELF)
    for expert in experts:
        reference = _wan(vllm_config, attention=None)
        reference.load_state_dict(expert.state_dict())
        patch_self_attention(reference, (5, 6), facts)
        with request.serving(entry, facts, pipe):
            got = wan.run(expert, vllm_config, od, args, 1)
        torch.testing.assert_close(got, wan.run(reference, vllm_config, od, args, 1), atol=2e-4, rtol=2e-4)


@pytest.mark.parametrize("precision", ["fp8", "int8", "int8-fp8"])
def test_the_precision_knob_reaches_the_served_runtime(vllm_config, sparse_knobs, monkeypatch, precision):
    """LVSA_PRECISION=fp8, int8 or int8-fp8 gives the served model's runtime quantised inputs (run on the cuda
    backend, so a request on another backend is refused when the runtime is made, before any
    attention)."""
    from lvsa_vllm_omni import backend, served
    from vllm_omni.diffusion.models.wan2_2.pipeline_wan2_2 import Wan22Pipeline

    facts = served.PIPELINES[0].facts(_pipe(Wan22Pipeline, transformer=_wan(vllm_config), transformer_2=None))
    monkeypatch.setenv("LVSA_PRECISION", precision)
    monkeypatch.setenv("LVSA_BACKEND", "cuda")
    assert backend._runtime(facts).precision == precision
    monkeypatch.setenv("LVSA_BACKEND", "torch")
    with pytest.raises(ValueError, match=f"precision '{precision}' runs on the cuda backend only"):
        backend._runtime(facts)
