"""``lvsa.prologue``: when a processor takes the fused QK prologue, and that its reference (the
GPU kernel's oracle in tests/gpu/test_prologue_cuda.py) computes what the models' own norm and
RoPE ops compute, for Wan (``torch.nn.RMSNorm`` across heads) and HunyuanVideo
1.5 (diffusers' per-head ``RMSNorm``, ``apply_rotary_emb``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

import lvsa  # noqa: E402
from lvsa import prologue  # noqa: E402
from lvsa.models.wan import _apply_rotary_emb  # noqa: E402


def _close_to_one_rounding(actual, expected):
    ulp = torch.finfo(actual.dtype).eps
    torch.testing.assert_close(actual.float(), expected.float(), rtol=2 * ulp,
                               atol=2 * ulp * expected.abs().max().item())


def test_reference_equals_wan_ops():
    from diffusers.models.transformers.transformer_wan import WanRotaryPosEmbed

    heads, head_dim = 2, 128
    g = torch.Generator().manual_seed(0)
    rope = WanRotaryPosEmbed(head_dim, (1, 2, 2), max_seq_len=64)
    cos, sin = rope(torch.zeros(1, 4, 5, 6, 8))  # [1, S, 1, D]: 5 frames x 3 x 4 tokens
    rows = cos.shape[1]
    norm = torch.nn.RMSNorm(heads * head_dim, eps=1e-6).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(heads * head_dim, generator=g) + 0.5)
    x = (torch.randn(2, rows, heads * head_dim, generator=g) * 3).to(torch.bfloat16)

    with torch.no_grad():
        model = _apply_rotary_emb(norm(x).unflatten(2, (heads, -1)), cos, sin)
        ours = prologue.reference(x, norm.weight, norm.eps, heads * head_dim, heads, cos[0, :, 0], sin[0, :, 0])
    assert ours.shape == model.shape
    _close_to_one_rounding(ours, model)
    assert not torch.equal(ours, norm(x).unflatten(2, (heads, -1)))  # RoPE did something


def test_reference_equals_hunyuan_video_ops():
    from diffusers.models.embeddings import apply_rotary_emb
    from diffusers.models.normalization import RMSNorm

    heads, head_dim, rows = 3, 64, 40
    g = torch.Generator().manual_seed(1)
    angles = (torch.rand(rows, head_dim // 2, generator=g) * 10).repeat_interleave(2, dim=1)
    cos, sin = angles.cos(), angles.sin()
    norm = RMSNorm(head_dim, eps=1e-6).to(torch.bfloat16)
    with torch.no_grad():
        norm.weight.copy_(torch.rand(head_dim, generator=g) + 0.5)
    x = (torch.randn(1, rows, heads * head_dim, generator=g) * 3).to(torch.bfloat16)

    with torch.no_grad():
        model = apply_rotary_emb(norm(x.unflatten(2, (heads, -1))), (cos, sin), sequence_dim=1)
        ours = prologue.reference(x, norm.weight, norm.eps, head_dim, heads, cos, sin)
    _close_to_one_rounding(ours, model)


class _Runtime:
    def __init__(self, backend="auto", mode="fused"):
        self.backend, self.prologue = backend, mode


def test_fused_only_for_cuda_tensors_and_norms_it_computes_exactly():
    x = torch.randn(1, 8, 256, dtype=torch.bfloat16)
    norm = torch.nn.RMSNorm(256).to(torch.bfloat16)
    assert not prologue.fuses(_Runtime(), x, norm, 2, None)  # CPU tensors: the model's ops
    assert prologue._rms_norm_parts(torch.nn.LayerNorm(256)) is None
    assert prologue._rms_norm_parts(torch.nn.Identity()) is None
    assert prologue._rms_norm_parts(norm)[2] == 256
    assert prologue._tables((torch.zeros(8, 128), torch.zeros(8, 128)), 8, 128) is not None
    assert prologue._tables((torch.zeros(8, 64), torch.zeros(8, 64)), 8, 128) is None  # not head_dim wide


def test_prologue_knob_is_checked(monkeypatch):
    from tiny_diffusers import wan

    model = wan().transformer
    with pytest.raises(ValueError, match="prologue must be one of fused, model, got 'kernel'"):
        lvsa.enable(model, prologue="kernel")
    monkeypatch.setenv("LVSA_PROLOGUE", "model")
    handle = lvsa.enable(model)
    assert {r.prologue for r in handle.runtimes.values()} == {"model"}
    handle.disable()
