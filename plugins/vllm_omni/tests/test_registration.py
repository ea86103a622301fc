"""Registration through vLLM-Omni's plugin loader, selection per role and by the environment
variable, and the refusal of unsupported versions."""

from __future__ import annotations

import pytest
import torch
from omni_cpu import LVSA_SELF, building, diffusion_config, load_plugins


def _layers(vllm_config, attention):
    from vllm_omni.diffusion.attention.layer import Attention

    od = diffusion_config(attention)
    with building(vllm_config, od):
        return (Attention(num_heads=2, head_size=16, causal=False, softmax_scale=0.25, role="self"),
                Attention(num_heads=2, head_size=16, causal=False, softmax_scale=0.25, role="cross"))


def test_the_loader_registers_the_backend(vllm_config):
    from vllm_omni.diffusion.attention.backends.registry import DiffusionAttentionBackendEnum
    from lvsa_vllm_omni.backend import LVSABackend

    assert DiffusionAttentionBackendEnum["LVSA"].get_class() is LVSABackend
    load_plugins()  # vLLM-Omni may load plugins again in the same process
    assert list(DiffusionAttentionBackendEnum.__members__).count("LVSA") == 1


def test_per_role_selection_keeps_cross_attention_on_its_backend(vllm_config):
    self_attn, cross_attn = _layers(vllm_config, LVSA_SELF)
    assert self_attn.attn_backend.get_name() == "LVSA"
    assert self_attn.attention.dense_reason is None
    assert cross_attn.attn_backend.get_name() == "SDPA"


def test_the_environment_variable_selects_lvsa_and_other_roles_run_dense(vllm_config, monkeypatch):
    monkeypatch.setenv("DIFFUSION_ATTENTION_BACKEND", "LVSA")
    self_attn, cross_attn = _layers(vllm_config, None)
    assert self_attn.attn_backend.get_name() == "LVSA"
    assert cross_attn.attn_backend.get_name() == "LVSA"
    assert cross_attn.attention.dense_reason == "role 'cross' is not video self-attention"
    assert cross_attn.attention.dense_backend.get_name() == "SDPA"
    q, k, v = (torch.randn(1, 5, 2, 16) for _ in range(3))
    expected = torch.nn.functional.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)), scale=0.25)
    torch.testing.assert_close(cross_attn.attention.forward(q, k, v), expected.transpose(1, 2))


def test_backend_options_are_refused(vllm_config):
    from lvsa_vllm_omni.backend import LVSAImpl

    with pytest.raises(ValueError, match="LVSA_\\* environment variables"):
        LVSAImpl(2, 16, 0.25, backend_kwargs={"topk": 3})


@pytest.mark.parametrize("installed, culprit", [({"vllm-omni": "0.29.0", "vllm": "0.30.0"}, "vllm-omni 0.30.0"),
                                                ({"vllm-omni": "0.30.0", "vllm": "0.31.0"}, "vllm 0.30.0")])
def test_unsupported_versions_are_named(installed, culprit):
    from lvsa_vllm_omni import versions

    with pytest.raises(RuntimeError, match=f"supports {culprit}"):
        versions.check(installed)


def test_the_loader_refuses_an_unsupported_vllm_omni(vllm_config, monkeypatch):
    from lvsa_vllm_omni import versions

    real = versions.metadata.version
    monkeypatch.setattr(versions.metadata, "version", lambda name: "0.29.1" if name == "vllm-omni" else real(name))
    with pytest.raises(RuntimeError, match="supports vllm-omni 0.30.0; the installed vllm-omni is 0.29.1"):
        load_plugins()
