"""The fused QK prologue (``lvsa._cuda.norm_rope``): RMSNorm + RoPE of one projection, or of q
and k together, in one kernel, against ``lvsa.prologue.reference`` (whose equality with the models' own ops
tests/python/test_prologue.py checks) on fresh random inputs, with the output's memory poisoned
so unwritten elements show; and a whole Wan transformer with the fused prologue equal to the
same model with the model's own ops.

Tolerance: the kernel and the reference round the norm's output and the rotation to the dtype
once each, both from float32; they differ only in the order of the sum of squares and in
rsqrt's last bits, so an element differs by at most one rounding (bf16: 2^-8 relative).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("lvsa.backends.cuda", exc_type=ImportError)
if not torch.cuda.is_available():
    pytest.skip("needs a CUDA GPU", allow_module_level=True)

import lvsa  # noqa: E402
from lvsa import prologue  # noqa: E402
from lvsa_fixtures import wan_head_dim_128  # noqa: E402

DEV = torch.device("cuda")


def _tables(rows, head_dim, generator):
    angles = torch.rand(rows, head_dim // 2, generator=generator, dtype=torch.float64) * 20.0
    angles = angles.repeat_interleave(2, dim=1)  # one frequency per interleaved pair, as the models build them
    return angles.cos().float().to(DEV), angles.sin().float().to(DEV)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("inputs", [1, 2])
@pytest.mark.parametrize("batch, rows, heads, head_dim, group, weighted, rope", [
    (2, 300, 12, 128, 12 * 128, True, True),   # Wan 1.3B: norm across heads (6 vectors a lane)
    (1, 257, 40, 128, 40 * 128, True, True),   # Wan 14B: 20 vectors a lane
    (1, 33, 192, 128, 192 * 128, True, True),  # a row of 48 KB: 2 tokens a block with q and k
    (2, 129, 16, 128, 128, True, True),        # HunyuanVideo 1.5 / Cosmos: per-head norm
    (1, 40, 48, 64, 64, True, True),           # CogVideoX width: per-head norm
    (1, 77, 3, 64, 64, True, True),            # head_dim 64, a partial last chunk of vectors
    (2, 65, 6, 128, 256, True, True),          # a group of 2 chunks, 3 groups a row
    (2, 65, 2, 128, 256, False, False),        # no weight, no RoPE
])
def test_kernel_equals_reference(dtype, inputs, batch, rows, heads, head_dim, group, weighted, rope):
    g = torch.Generator().manual_seed(rows + inputs)
    width = heads * head_dim
    # q and k as chunks of a fused QKV projection: rows strided by 3 x width.
    qkv = (torch.randn(batch, rows, 3 * width, generator=g) * 3.0).to(DEV, dtype)
    xs = [qkv[..., :width], qkv[..., width:2 * width]][:inputs]
    weights = [(torch.rand(group, generator=g) + 0.5).to(DEV, dtype) if weighted else None for _ in xs]
    eps = [1e-6, 1e-5][:inputs]
    cos, sin = _tables(rows, head_dim, g) if rope else (None, None)

    poison = torch.full((inputs, batch, rows, heads, head_dim), float("nan"), dtype=dtype, device=DEV)
    del poison  # the caching allocator hands this NaN-filled block to the outputs next
    outs = prologue._norm_rope(xs, weights, eps, group, heads, cos, sin)
    assert len(outs) == inputs
    for x, weight, e, out in zip(xs, weights, eps, outs):
        expected = prologue.reference(x, weight, e, group, heads, cos, sin)
        assert out.shape == (batch, rows, heads, head_dim) and out.is_contiguous()
        assert torch.isfinite(out).all(), "unwritten (poisoned) elements"
        ulp = torch.finfo(dtype).eps
        torch.testing.assert_close(out.float(), expected.float(), rtol=2 * ulp,
                                   atol=2 * ulp * expected.abs().max().item())
        differ = (out != expected).float().mean().item()
        assert differ < 0.02, f"{differ:.1%} of elements differ from the reference (expected a few last-bit ties)"


def test_kernel_refuses_a_group_it_cannot_reduce():
    # (tests/cuda/test_arguments.cpp checks the kernel's other refusals, without a GPU)
    x = torch.randn(1, 4, 2 * 128, device=DEV, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="norm group of 96 features"):
        prologue._norm_rope([x], [None], [1e-6], 96, 2, None, None)


def test_a_norm_across_heads_the_kernel_cannot_reduce_keeps_the_models_ops():
    class Runtime:
        backend, prologue = "cuda", "fused"

    # 512 features: 2 chunks of 256; 384: 1.5 chunks; 192 (3 heads of 64): 24 of a warp's 32 lanes
    for heads, head_dim, fused in ((4, 128, True), (3, 128, False), (3, 64, False), (4, 64, True)):
        x = torch.randn(1, 8, heads * head_dim, device=DEV, dtype=torch.bfloat16)
        norm = torch.nn.RMSNorm(heads * head_dim, device=DEV, dtype=torch.bfloat16)
        assert prologue.fuses(Runtime(), x, norm, heads, None) == fused, (heads, head_dim)


def test_wan_with_the_fused_prologue_equals_the_model_ops(monkeypatch):
    pytest.importorskip("diffusers")
    said = []
    monkeypatch.setattr(prologue, "say_once", lambda message, level=20: said.append(message))
    model, inputs = wan_head_dim_128(DEV, torch.bfloat16)
    pattern = dict(window=1, n_first=1, keyframe_interval=3, reference=4, backend="cuda", strict=True)
    outputs = {}
    for mode in ("model", "fused"):
        handle = lvsa.enable(model, prologue=mode, **pattern)
        with torch.no_grad(), lvsa.denoising_step(1):
            outputs[mode] = model(**inputs)[0].float()
        handle.disable()
        assert any("fused in one CUDA kernel" in line for line in said) == (mode == "fused"), said
    relative = float((outputs["fused"] - outputs["model"]).norm() / outputs["model"].norm())
    assert relative < 1e-2, f"fused prologue moves the output by {relative:.2%} (bf16 rounding is ~0.4 %)"
