"""Quantised scores on the CPU: the quantiser the cuda backend runs before its kernels with fp8 or
int8 scores (lvsa.backends.quantized_scores), and how lvsa.attention and lvsa.enable take
precision="fp8" / "int8". The kernels themselves are tested on the GPU
(tests/gpu/test_quantized_scores_cuda.py)."""

from __future__ import annotations

import pytest
import torch

import lvsa
from lvsa import Geometry, PatternConfig, Planner
from lvsa.backends import quantized_scores


def test_quantize_keeps_e4m3_relative_precision_with_one_scale_per_head():
    x = torch.randn(2, 300, 3, 128, dtype=torch.bfloat16)
    x[1, :, 2] *= 1e-3  # a head a thousand times smaller keeps its own scale
    values, descale = quantized_scores.quantize(x, None)
    assert values.dtype == torch.float8_e4m3fn and values.is_contiguous() and values.shape == x.shape
    assert descale.dtype == torch.float32 and descale.shape == (2, 3)
    # The largest value of every head maps onto e4m3's maximum.
    assert torch.equal(values.float().abs().amax(dim=(1, 3)), torch.full((2, 3), quantized_scores.E4M3_MAX))
    assert torch.allclose(descale, x.float().abs().amax(dim=(1, 3)) / quantized_scores.E4M3_MAX)
    # Round to nearest with 3 mantissa bits: at most 2^-4 relative error on normal values.
    back = quantized_scores.dequantize(values, descale)
    normal = values.float().abs() >= 2.0 ** -6
    rel = ((back - x.float()).abs() / x.float().abs())[normal]
    assert rel.max().item() <= 2.0 ** -4 + 1e-6
    # Subnormals (below 2^-6 of the scaled range) still round within half their spacing, 2^-10.
    sub = ~normal
    assert ((back - x.float()).abs()[sub] <= 2.0 ** -10 * descale[:, None, :, None].expand_as(x)[sub] + 1e-12).all()


def test_quantize_int8_rounds_to_the_nearest_step_of_amax_over_127():
    x = torch.randn(2, 300, 3, 128, dtype=torch.bfloat16)
    x[1, :, 2] *= 1e-3
    values, descale = quantized_scores.quantize(x, None, "int8")
    assert values.dtype == torch.int8 and values.is_contiguous() and values.shape == x.shape
    assert torch.equal(values.abs().amax(dim=(1, 3)), torch.full((2, 3), 127, dtype=torch.int8))
    assert values.min() >= -127  # symmetric: -128 never appears
    assert torch.allclose(descale, x.float().abs().amax(dim=(1, 3)) / quantized_scores.INT8_MAX)
    # An absolute error of at most half a step, whatever the value's size.
    back = quantized_scores.dequantize(values, descale)
    step = descale[:, None, :, None].expand_as(back)
    assert ((back - x.float()).abs() <= (0.5 + 1e-4) * step).all()  # and the float32 product's rounding
    # Ties round to even, as the CUDA quantiser's __float2int_rn does.
    ties = torch.tensor([0.5, 1.5, 2.5, -0.5, -2.5, 127.0]).reshape(1, 6, 1, 1).expand(1, 6, 1, 8)
    assert quantized_scores.FORMATS["int8"].cast(ties.float())[0, :, 0, 0].tolist() == [0, 2, 2, 0, -2, 127]


@pytest.mark.parametrize("precision", ["fp8", "int8"])
def test_an_all_zero_head_keeps_a_positive_scale(precision):
    x = torch.randn(1, 40, 2, 128)
    x[:, :, 1] = 0
    values, descale = quantized_scores.quantize(x, None, precision)
    assert (descale > 0).all()
    assert (values[:, :, 1].float() == 0).all()


def _plan(E=7, side="after"):
    return Planner(Geometry(3, 10, E, side), PatternConfig(reference=2)).step(0)


@pytest.mark.parametrize("precision", ["fp8", "int8"])
@pytest.mark.parametrize("side", ["after", "before"])
def test_padded_encoder_tokens_are_zeroed_and_never_reach_the_scale(side, precision):
    plan = _plan(side=side)
    g = plan.geometry
    valid = torch.tensor([3, 7], dtype=torch.int32)
    mask = quantized_scores.padding_mask(plan, 2, g.seq_len, valid, torch.device("cpu"))
    expected = torch.zeros(2, g.seq_len, dtype=torch.bool)
    expected[0, g.encoder_begin + 3:g.encoder_begin + 7] = True
    assert torch.equal(mask, expected)
    x = torch.randn(2, g.seq_len, 2, 128)
    clean = x.masked_fill(mask[:, :, None, None], 0)
    x[mask] = float("nan")
    x[0, g.encoder_begin + 4, 0, 0] = float("inf")
    values, descale = quantized_scores.quantize(x, mask, precision)
    assert torch.isfinite(values.float()).all() and torch.isfinite(descale).all()
    ref_values, ref_descale = quantized_scores.quantize(clean, None, precision)
    assert torch.equal(descale, ref_descale)
    assert torch.equal(values.float(), ref_values.float())


def _emulated(q, k, v, plan, valid=None, return_lse=False, precision="fp8"):
    """What the kernel with quantised scores computes, in float32 on the reference backend: attention
    of the dequantised q against the smoothed dequantised k, and its lse with the mean's scores added back."""
    x = quantized_scores.quantize_scores(q, k, plan, valid, q.shape[-1] ** -0.5, precision)
    out, lse = lvsa.attention(quantized_scores.dequantize(x.q, x.q_descale), quantized_scores.dequantize(x.k, x.k_descale),
                              v.float(), plan, encoder_valid=valid, backend="reference", return_lse=True)
    lse = quantized_scores.add_mean_scores(lse, x.mean_scores)
    return (out, lse) if return_lse else out


def _relative(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


# The error bound of each format on these inputs (about 2.5x apart, docs/perf/cuda_sm90.md v6).
_ERROR_BOUND = {"fp8": 5e-2, "int8": 2.5e-2}


@pytest.mark.parametrize("precision", ["fp8", "int8"])
def test_smoothing_k_leaves_attention_and_lse_as_they_are_and_removes_a_shared_bias_from_the_error(precision):
    torch.manual_seed(3)
    plan = Planner(Geometry(6, 40, 9, "after"), PatternConfig(window=1, keyframe_interval=2, reference=2)).step(1)
    S = plan.geometry.seq_len
    q, v = torch.randn(2, S, 4, 128), torch.randn(2, S, 2, 128)
    k = torch.randn(2, S, 2, 128) + 2.0 * torch.randn(2, 1, 2, 128)  # a bias all keys share, per head
    valid = torch.tensor([9, 5], dtype=torch.int32)
    q, k, v = (x.bfloat16() for x in (q, k, v))
    exact, exact_lse = lvsa.attention(q.float(), k.float(), v.float(), plan, encoder_valid=valid,
                                      backend="reference", return_lse=True)
    x = quantized_scores.quantize_scores(q, k, plan, valid, precision=precision)
    k_mean = x.k_mean
    assert k_mean.shape == (2, 2, 128) and x.mean_scores is None
    # The smoothing itself is exact: attention against k - mean is attention against k.
    smoothed, smoothed_lse = lvsa.attention(q.float(), k.float() - k_mean[:, None], v.float(), plan,
                                            encoder_valid=valid, backend="reference", return_lse=True)
    assert _relative(smoothed, exact) < 1e-5
    fixed = quantized_scores.add_mean_scores(smoothed_lse, quantized_scores.mean_scores(q, k_mean, 128 ** -0.5))
    live = torch.isfinite(exact_lse)
    assert torch.equal(torch.isfinite(fixed), live)
    assert (fixed[live] - exact_lse[live]).abs().max() < 1e-4  # the mean's scores put back: exact
    out, lse = _emulated(q, k, v, plan, valid, return_lse=True, precision=precision)
    assert torch.equal(torch.isfinite(lse), live)
    garbage = q.clone()
    garbage[~live.permute(0, 2, 1)] = float("nan")  # padded query rows may hold anything
    garbage_scores = quantized_scores.mean_scores(garbage, k_mean, 128 ** -0.5)
    assert torch.equal(quantized_scores.add_mean_scores(smoothed_lse, garbage_scores).isneginf(), ~live)
    lse_error = (lse[live] - exact_lse[live]).abs().max().item()
    assert lse_error < 0.1, lse_error  # the rounding of the smoothed scores
    # Without smoothing the shared bias adds to every score's rounding error.
    unsmoothed = lvsa.attention(quantized_scores.dequantize(x.q, x.q_descale),
                                quantized_scores.dequantize(*quantized_scores.quantize(k, quantized_scores.padding_mask(
                                    plan, 2, S, valid, torch.device("cpu")), precision)),
                                v.float(), plan, encoder_valid=valid, backend="reference")
    assert _relative(out, exact) < 0.7 * _relative(unsmoothed, exact)
    assert _relative(out, exact) < _ERROR_BOUND[precision]


def test_value_order_is_where_a_kernel_thread_holds_its_probabilities():
    """fp8 values: a thread of the kernel holds the scores of columns 2t, 2t + 1, 8 + 2t and 9 + 2t of
    each group of 16 (t = lane % 4, the wgmma accumulator layout) and packs them as the e4m3 A
    operand's columns 4t .. 4t + 3, so V's row at position 4t + c must be that key."""
    held = [[2 * t, 2 * t + 1, 8 + 2 * t, 9 + 2 * t] for t in range(4)]
    assert quantized_scores.VALUE_ORDER == tuple(key for keys in held for key in keys)
    assert sorted(quantized_scores.VALUE_ORDER) == list(range(16))
    assert [quantized_scores.row_keys(n) for n in (1, 16, 17, 188760)] == [16, 16, 32, 188768]


@pytest.mark.parametrize("side", ["after", "before"])
def test_quantize_values_transposes_permutes_and_zeroes_the_padding(side):
    """quantize_values: v ``[B, S, H, D]`` as e4m3 ``[B, H, D, row_keys(S)]``, one scale per (batch,
    head) from the unpadded tokens, keys in VALUE_ORDER within each group of 16, zeros at the padding
    and past S; dequantize_values inverts the layout exactly."""
    plan = _plan(side=side)
    g = plan.geometry
    v = torch.randn(2, g.seq_len, 3, 128, dtype=torch.bfloat16)
    valid = torch.tensor([2, g.encoder_len])
    pad = quantized_scores.padding_mask(plan, 2, g.seq_len, valid, v.device)
    v[pad] = float("nan")  # never read
    got = quantized_scores.quantize_values(v, plan, valid)
    row = quantized_scores.row_keys(g.seq_len)
    assert got.v.dtype == torch.float8_e4m3fn and got.v.shape == (2, 3, 128, row) and got.v.is_contiguous()
    clean = v.masked_fill(pad[:, :, None, None], 0)
    values, descale = quantized_scores.quantize(clean, None)
    assert torch.equal(got.v_descale, descale)
    order = quantized_scores.VALUE_ORDER
    for j in (0, 5, 16 + 7, row - 1):  # position j of a row holds key 16 (j // 16) + order[j % 16]
        key = j - j % 16 + order[j % 16]
        expect = values[:, key].float() if key < g.seq_len else torch.zeros(2, 3, 128)
        assert torch.equal(got.v[..., j].float(), expect)
    back = quantized_scores.dequantize_values(got, g.seq_len)
    assert torch.equal(back, quantized_scores.dequantize(values, descale))
    assert (back[pad] == 0).all()
    assert got.kernel_tensor(g.seq_len)[1:] == ((2, g.seq_len, 3, 128), (3 * 128 * row, 1, 128 * row, row))


def test_padding_mask_is_none_without_padding_or_encoder_rows():
    plan = _plan()
    g = plan.geometry
    cpu = torch.device("cpu")
    assert quantized_scores.padding_mask(plan, 1, g.seq_len, None, cpu) is None
    assert quantized_scores.padding_mask(plan, 1, g.video_tokens, torch.tensor([3]), cpu) is None  # video-only q
    assert quantized_scores.padding_mask(_plan(E=0, side="none"), 1, 30, None, cpu) is None


def test_inputs_reason_names_what_quantized_scores_take():
    for precision in quantized_scores.FORMATS:
        assert quantized_scores.inputs_reason(torch.bfloat16, 128, precision) is None
        assert f"precision '{precision}' takes bfloat16" in quantized_scores.inputs_reason(torch.float16, 128, precision)
        assert "takes head_dim 128" in quantized_scores.inputs_reason(torch.bfloat16, 64, precision)


def test_attention_refuses_quantized_scores_off_the_cuda_backend():
    plan = Planner(Geometry(3, 20), PatternConfig(reference=2)).step(0)
    q = torch.randn(1, 60, 2, 128, dtype=torch.bfloat16)
    with pytest.raises(ValueError, match="precision must be one of default, fp8, int8, int8-fp8, got 'fp4'"):
        lvsa.attention(q, q, q, plan, precision="fp4")
    for precision in quantized_scores.FORMATS:
        for backend in ("torch", "cpu", "reference", "flashinfer"):
            with pytest.raises(ValueError, match=f"precision '{precision}' runs on the cuda backend only, "
                                                 f"got backend '{backend}'"):
                lvsa.attention(q, q, q, plan, precision=precision, backend=backend)
        # auto means cuda for quantised scores: CPU tensors are an error, never a 16-bit fallback.
        with pytest.raises(RuntimeError, match="backend 'cuda'"):
            lvsa.attention(q, q, q, plan, precision=precision)
    # The default precision is what ran before: the same result as not passing it.
    assert torch.equal(lvsa.attention(q, q, q, plan, precision="default", backend="cpu"),
                       lvsa.attention(q, q, q, plan, backend="cpu"))


def test_enable_takes_the_precision_knob(monkeypatch):
    from tiny_diffusers import wan

    model = wan().transformer
    with pytest.raises(ValueError, match="precision must be one of default, fp8, int8, int8-fp8, got 'fp4'"):
        lvsa.enable(model, precision="fp4")
    with pytest.raises(ValueError, match="precision 'int8' runs on the cuda backend only, got backend 'torch'"):
        lvsa.enable(model, precision="int8", backend="torch")
    for precision, says in (("fp8", "fp8 scores"), ("int8", "int8 scores"), ("int8-fp8", "int8 scores, fp8 P.V")):
        monkeypatch.setenv("LVSA_PRECISION", precision)
        handle = lvsa.enable(model)
        assert {r.precision for r in handle.runtimes.values()} == {precision}
        assert handle.summary().endswith(f"backend auto, {says}")  # the line lvsa.enable says
        handle.disable()
    monkeypatch.delenv("LVSA_PRECISION")
    handle = lvsa.enable(model)
    assert {r.precision for r in handle.runtimes.values()} == {"default"}
    handle.disable()
