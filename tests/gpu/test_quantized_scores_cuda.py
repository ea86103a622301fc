"""Quantised scores (precision="fp8" or "int8", the sm90 kernels) and int8 scores with fp8 values
(precision="int8-fp8"): against float64 masked-dense attention on the dequantised q, k (and v)
(what the kernel is given: the kernel's own error, at the bfloat16 level, or with fp8 values at
e4m3's rounding of P), and against the exact result of the bfloat16 inputs (the error the
quantisation adds), on fresh random data with NaN-poisoned outputs. The sm80 family refuses them."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import lvsa  # noqa: E402
from lvsa import Geometry, PatternConfig, Planner  # noqa: E402

cuda_backend = pytest.importorskip("lvsa.backends.cuda", exc_type=ImportError)
from lvsa.backends import quantized_scores  # noqa: E402

from dense_oracle import compare, masked_dense  # noqa: E402
from lvsa_fixtures import poisoned_outputs, wan_head_dim_128  # noqa: E402

DEV = torch.device("cuda")
# Against the dequantised inputs: P and O in bfloat16, as the 16-bit path; with fp8 values P in
# e4m3 (each probability within 2^-4, 3.6 % r.m.s.).
KERNEL_TOL = {"fp8": 1.2e-2, "int8": 1.2e-2, "int8-fp8": 6e-2}
# Against the exact result of the bfloat16 inputs: e4m3 keeps 3 mantissa bits, so every score
# carries an error of a few percent of |q||k|; int8 an absolute step of amax / 127. The exact
# attention of the dequantised inputs is 3.8e-2 (e4m3) and 1.5e-2 (int8) from it on Gaussian data
# (CPU, bench/score_precision.py); the kernel adds bfloat16's rounding of P and O. fp8 values
# add e4m3's rounding of v and P: 3.9e-2 with int8 scores in the same emulation.
EXACT_TOL = {"fp8": 6e-2, "int8": 3e-2, "int8-fp8": 7e-2}
PRECISIONS = list(EXACT_TOL)


def _poisoned_run(q, k, v, plan, valid, precision, return_lse=True):
    with poisoned_outputs():
        return cuda_backend.run(q, k, v, plan, valid, None, return_lse, precision=precision)


# name, T, P, E, side, kfi, B, Hq, Hkv, valid, video_only
CASES = [
    ("wan_like_oddP", 9, 37, 0, "none", "auto", 1, 2, 2, None, False),
    ("hunyuan_like_enc_after_padded", 7, 40, 29, "after", 3, 2, 3, 3, [11, 29], False),
    ("enc_before_padded", 6, 33, 20, "before", 2, 1, 2, 2, [7], False),
    ("video_only_queries", 6, 30, 17, "after", 2, 1, 2, 2, [5], True),
    ("gqa_4_to_1", 8, 50, 0, "none", 3, 1, 4, 1, None, False),
    ("full_key_tiles_b2", 6, 400, 0, "none", 3, 2, 2, 2, None, False),
    ("dense_plan", 6, 41, 0, "none", 1, 1, 2, 2, None, False),
    ("frame_pairs_enc_after_padded", 7, 150, 29, "after", 3, 1, 2, 2, [11], False),
]


def _make(T, P, E, side, kfi, B, Hq, Hkv, valid, video_only, step=1):
    g = Geometry(T, P, E, side)
    plan = Planner(g, PatternConfig(window=1, keyframe_interval=kfi, reference=5)).step(step)
    S = g.seq_len
    q = torch.randn((B, S, Hq, 128), dtype=torch.bfloat16, device=DEV)
    k = torch.randn((B, S, Hkv, 128), dtype=torch.bfloat16, device=DEV)
    v = torch.randn((B, S, Hkv, 128), dtype=torch.bfloat16, device=DEV)
    if video_only:
        q = q[:, g.video_begin:g.video_begin + g.video_tokens]
    vt = None if valid is None else torch.tensor(valid, dtype=torch.int32, device=DEV)
    return plan, q, k, v, vt


def _kernel_inputs(q, k, v, plan, valid, precision):
    """What the kernel computes with: q, the smoothed k and v (with fp8 values), dequantised; and what
    it adds to lse, the scores against k's mean ``[B, Hq, Sq]``."""
    x = quantized_scores.quantize_scores_cuda(q, k, plan, valid, q.shape[-1] ** -0.5, precision)
    if precision in quantized_scores.FP8_VALUES:
        v = quantized_scores.dequantize_values(quantized_scores.quantize_values_cuda(v, plan, valid), v.shape[1])
    return (quantized_scores.dequantize(x.q, x.q_descale), quantized_scores.dequantize(x.k, x.k_descale), v,
            x.mean_scores)


def _check(plan, q, k, v, valid, out, lse, precision, rows=None, heads=None):
    """Relative L2 errors (kernel, quantised scores) of out against the dequantised and the exact result."""
    r = torch.arange(q.shape[1], device=DEV) if rows is None else rows
    h = list(range(q.shape[2])) if heads is None else list(heads)
    got = out[:, r][:, :, h]
    assert torch.isfinite(got).all(), "unwritten (NaN) or non-finite output"
    q_deq, k_deq, v_deq, mean_scores = _kernel_inputs(q, k, v, plan, valid, precision)
    ref, ref_lse = masked_dense(q_deq, k_deq, v_deq, plan, valid, rows=rows, heads=heads)
    ref_lse = ref_lse + mean_scores[:, h][:, :, r].double()
    kernel_rel, kernel_max = compare(got, ref)
    assert kernel_rel < KERNEL_TOL[precision], \
        f"against the dequantised inputs: rel L2 {kernel_rel:.3e} (max {kernel_max:.3e})"
    exact, _ = masked_dense(q, k, v, plan, valid, rows=rows, heads=heads)
    quantized_rel, _ = compare(got, exact)
    assert quantized_rel < EXACT_TOL[precision], f"against the exact result: rel L2 {quantized_rel:.3e}"
    dead = ~torch.isfinite(ref_lse).permute(0, 2, 1)
    if dead.any():  # padded encoder query rows: zeros, lse -inf
        assert (got[dead] == 0).all()
    if lse is not None:
        got_lse = lse[:, h][:, :, r]
        fin = torch.isfinite(ref_lse)
        assert torch.equal(torch.isneginf(got_lse), ~fin), "lse -inf pattern differs"
        if fin.any():
            assert (got_lse[fin].double() - ref_lse[fin]).abs().max().item() < 2e-3
    return kernel_rel, quantized_rel


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cuda_quantiser_matches_the_pytorch_reference(case, precision):
    """quantize_scores_cuda (the kernels the backend runs) against quantize_scores (PyTorch ops), with
    NaN in the padded encoder rows, which neither may read: q's values and scale exactly; k's mean
    within one bfloat16 step (its float32 sum adds in another order), its scale and values as close
    as that allows; the mean's scores to float32 rounding."""
    plan, q, k, v, valid = _make(*case[1:])
    pad = quantized_scores.padding_mask(plan, q.shape[0], k.shape[1], valid, DEV)
    if pad is not None:
        k = k.masked_fill(pad[:, :, None, None], float("nan"))
        if q.shape[1] == k.shape[1]:
            q = q.masked_fill(pad[:, :, None, None], float("nan"))
    k = k + 0.5 * torch.randn_like(k[:, :1])  # a bias the keys of a head share: the mean is not ~0
    scale = q.shape[-1] ** -0.5
    got = quantized_scores.quantize_scores_cuda(q, k, plan, valid, scale, precision)
    ref = quantized_scores.quantize_scores(q, k, plan, valid, scale, precision)
    fmt = quantized_scores.FORMATS[precision]
    assert got.q.dtype == got.k.dtype == fmt.dtype and got.q.is_contiguous() and got.k.is_contiguous()
    assert torch.equal(got.q.view(torch.uint8), ref.q.view(torch.uint8))
    assert torch.equal(got.q_descale, ref.q_descale)
    step = ref.k_mean.abs() * 2.0 ** -7 + 1e-30  # one bfloat16 step of the mean
    assert ((got.k_mean - ref.k_mean).abs() <= step).all()
    torch.testing.assert_close(got.k_descale, ref.k_descale, rtol=1e-2, atol=0)
    same = (got.k.view(torch.uint8) == ref.k.view(torch.uint8)).float().mean().item()
    assert same > 0.97, f"{same:.2%} of k's {precision} values agree"
    # k back from its parts: the format's rounding of k - mean, which was rounded to bfloat16 first
    # (2^-9 relative): for e4m3 2^-4 relative (2^-10 of the scale at subnormals), for int8 half a
    # step of the scale.
    mean = got.k_mean[:, None]
    back = quantized_scores.dequantize(got.k, got.k_descale) + mean
    step = got.k_descale[:, None, :, None]
    if precision == "fp8":
        bound = (2.0 ** -4 + 2.0 ** -8) * (k.float() - mean).abs() + 2.0 ** -9 * step
    else:
        bound = 2.0 ** -8 * (k.float() - mean).abs() + (0.5 + 1e-3) * step
    live = torch.ones_like(back, dtype=torch.bool) if pad is None else ~pad[:, :, None, None].expand_as(back)
    assert ((back - k.float()).abs() <= bound)[live].all()
    assert torch.isfinite(got.mean_scores).all()  # padded query rows: zero, whatever their q holds
    torch.testing.assert_close(got.mean_scores, ref.mean_scores.nan_to_num(0), rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_cuda_value_quantiser_matches_the_pytorch_reference(case):
    """quantize_values_cuda against quantize_values, with NaN in the padded encoder tokens, which
    neither may read: the same scale and bytes (keys permuted within groups of 16, zeros past the
    keys and at the padding), and v back from them within e4m3's rounding."""
    plan, q, k, v, valid = _make(*case[1:])
    S = v.shape[1]
    pad = quantized_scores.padding_mask(plan, v.shape[0], S, valid, DEV)
    if pad is not None:
        v = v.masked_fill(pad[:, :, None, None], float("nan"))
    got = quantized_scores.quantize_values_cuda(v, plan, valid)
    ref = quantized_scores.quantize_values(v, plan, valid)
    row = quantized_scores.row_keys(S)
    assert got.v.shape == (v.shape[0], v.shape[2], v.shape[3], row) and got.v.dtype == torch.float8_e4m3fn
    assert torch.equal(got.v_descale, ref.v_descale)
    assert torch.equal(got.v.view(torch.uint8), ref.v.view(torch.uint8))
    keys = torch.arange(row, device=DEV)
    keys = keys - keys % 16 + torch.tensor(quantized_scores.VALUE_ORDER, device=DEV)[keys % 16]
    assert (got.v.view(torch.uint8)[..., keys >= S] == 0).all()  # the tail: e4m3 zeros
    back = quantized_scores.dequantize_values(got, S)
    live = torch.ones_like(back, dtype=torch.bool) if pad is None else ~pad[:, :, None, None].expand_as(back)
    bound = 2.0 ** -4 * v.float().abs() + 2.0 ** -10 * got.v_descale[:, None, :, None]
    assert ((back - v.float()).abs() <= bound)[live].all()
    assert (back[~live] == 0).all()


@pytest.mark.parametrize("precision", PRECISIONS)
def test_cuda_quantiser_carries_a_non_finite_token_into_its_head(precision):
    """NaN or Inf in an unpadded token of q or k makes its head's scale non-finite (so the head's
    output, never a finite wrong one), as the reference's reductions do; the other heads keep theirs."""
    plan, q, k, v, valid = _make(6, 33, 20, "before", 2, 1, 2, 2, [7], False)
    for x, value in ((q, float("nan")), (k, float("inf")), (k, float("nan"))):
        y = x.clone()
        y[0, plan.geometry.video_begin + 3, 1, 5] = value
        a, b = (q, y) if x is k else (y, k)
        got = quantized_scores.quantize_scores_cuda(a, b, plan, valid, precision=precision)
        descale = got.k_descale if x is k else got.q_descale
        assert not torch.isfinite(descale[0, 1]) and torch.isfinite(descale[0, 0])


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_against_reference(case, precision, cuda_kernel):
    plan, q, k, v, valid = _make(*case[1:])
    if cuda_kernel != "sm90":
        with pytest.raises(ValueError, match=f"precision '{precision}' runs on the sm90 kernels"):
            cuda_backend.run(q, k, v, plan, valid, None, False, precision=precision)
        return
    out, lse = _poisoned_run(q, k, v, plan, valid, precision)
    _check(plan, q, k, v, valid, out, lse, precision)
    out2, _ = cuda_backend.run(q, k, v, plan, valid, None, False, precision=precision)
    assert torch.equal(out, out2)  # the lse store off changes nothing else


REAL = [
    # name, T, P, E, side, reference, heads, valid
    ("wan480p_T81", 81, 1560, 0, "none", 21, 12, None),
    ("hunyuan15_T49_enc600", 49, 1590, 1985, "after", 33, 16, 600),
]


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("name,T,P,E,side,R,H,valid", REAL, ids=[r[0] for r in REAL])
def test_real_sizes(name, T, P, E, side, R, H, valid, precision, cuda_kernel):
    if cuda_kernel != "sm90":
        pytest.skip("quantised scores run on the sm90 kernels (refusal: test_against_reference)")
    g = Geometry(T, P, E, side)
    plan = Planner(g, PatternConfig(reference=R)).step(1)
    q, k, v = (torch.randn((1, g.seq_len, H, 128), dtype=torch.bfloat16, device=DEV) for _ in range(3))
    vt = None if valid is None else torch.tensor([valid], dtype=torch.int32, device=DEV)
    out, lse = _poisoned_run(q, k, v, plan, vt, precision)
    assert torch.isfinite(out).all()
    P_ = g.tokens_per_frame
    rows = []
    for f in sorted({0, 1, T // 2, T - 1}):
        base = g.video_begin + f * P_
        rows += list(range(base, base + 130)) + list(range(base + P_ - 40, base + P_))
    if E:
        rows += list(range(g.encoder_begin, g.encoder_begin + 700))
    _check(plan, q, k, v, vt, out, lse, precision, rows=torch.tensor(sorted(set(rows)), device=DEV),
           heads=[0, H - 1])


@pytest.mark.parametrize("precision", PRECISIONS)
def test_padded_encoder_garbage_stays_out(precision, cuda_kernel):
    """NaN and Inf in the padded encoder tokens must neither reach the per-head scales nor any output."""
    if cuda_kernel != "sm90":
        pytest.skip("quantised scores run on the sm90 kernels")
    plan, q, k, v, valid = _make(7, 40, 29, "after", 3, 2, 2, 2, [11, 29], False)
    g = plan.geometry
    pad = slice(g.encoder_begin + 11, g.encoder_begin + g.encoder_len)
    for t, value in ((q, float("nan")), (k, float("inf")), (v, float("nan"))):
        t[0, pad] = value
    out, lse = _poisoned_run(q, k, v, plan, valid, precision)
    assert torch.isfinite(out).all()
    assert torch.isneginf(lse[0, :, pad]).all()  # padded query rows, whatever their q holds
    clean = [x.clone() for x in (q, k, v)]
    for t in clean:
        t[0, pad] = 0
    ref, ref_lse = cuda_backend.run(*clean, plan, valid, None, True, precision=precision)
    assert torch.equal(out, ref) and torch.equal(lse, ref_lse)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_through_lvsa_attention(precision, cuda_kernel):
    """lvsa.attention(precision=...) runs the quantised-score kernel on auto, and refuses other backends."""
    plan, q, k, v, valid = _make(9, 37, 0, "none", "auto", 1, 2, 2, None, False)
    with pytest.raises(ValueError, match=f"precision '{precision}' runs on the cuda backend only"):
        lvsa.attention(q, k, v, plan, precision=precision, backend="torch")
    if cuda_kernel != "sm90":
        with pytest.raises(ValueError, match="sm90"):
            lvsa.attention(q, k, v, plan, precision=precision)
        return
    out = lvsa.attention(q, k, v, plan, precision=precision)
    ref, _ = cuda_backend.run(q, k, v, plan, None, None, False, precision=precision)
    assert torch.equal(out, ref)
    bf16 = lvsa.attention(q, k, v, plan)
    assert not torch.equal(out, bf16)  # the scores really were quantised
    compiled = torch.compile(lambda a, b, c: lvsa.attention(a, b, c, plan, precision=precision), fullgraph=True)
    assert torch.equal(compiled(q, k, v), out)


@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("dtype, D, match", [
    (torch.float16, 128, "takes bfloat16"),
    (torch.bfloat16, 64, "takes head_dim 128"),
])
def test_unsupported_inputs_are_refused(dtype, D, match, precision, cuda_kernel):
    plan = Planner(Geometry(3, 20), PatternConfig(reference=2)).step(0)
    q, k, v = (torch.randn((1, 60, 2, D), dtype=dtype, device=DEV) for _ in range(3))
    with pytest.raises(ValueError, match=match):
        lvsa.attention(q, k, v, plan, precision=precision, backend="cuda")


def test_enabled_wan_with_quantized_scores_says_so_and_stays_close(monkeypatch, cuda_kernel):
    """lvsa.enable(precision="fp8" / "int8") on a Wan transformer: both enable lines say so, and the
    output moves from the 16-bit one's by about what the quantised scores cost in one attention
    (bounded loosely)."""
    pytest.importorskip("diffusers")
    if cuda_kernel != "sm90":
        pytest.skip("quantised scores run on the sm90 kernels")
    from lvsa.models import _runtime

    said = []
    monkeypatch.setattr(_runtime, "say_once", lambda message, level=20: said.append(message))
    model, inputs = wan_head_dim_128(DEV, torch.bfloat16)
    pattern = dict(window=1, n_first=1, keyframe_interval=3, reference=4, backend="cuda", strict=True)
    outputs = {}
    for precision in ("default", *PRECISIONS):
        handle = lvsa.enable(model, precision=precision, **pattern)
        assert handle.summary().endswith(quantized_scores.note(precision))
        with torch.no_grad(), lvsa.denoising_step(1):
            outputs[precision] = model(**inputs)[0].float()
        handle.disable()
    assert any("fp8 scores (q and k in e4m3)" in line for line in said), said
    assert any("int8 scores (q and k in int8)" in line for line in said), said
    assert any("int8 scores, fp8 P.V (q and k in int8, v and P in e4m3)" in line for line in said), said
    relative = {p: float((outputs[p] - outputs["default"]).norm() / outputs["default"].norm()) for p in PRECISIONS}
    # Not a bound derived from the error per attention (it compounds over the layers): a sanity
    # limit, and the measured values in the message.
    assert all(0 < r < 0.1 for r in relative.values()), f"quantised scores move the output by {relative}"


def test_cuda_quantiser_refuses_what_it_cannot_read():
    """Wrong dtype or device from Python, and a head_dim or layout the kernels cannot take from the
    C++ checks, each a clear error naming it."""
    from lvsa import _cuda

    plan = Planner(Geometry(3, 20), PatternConfig(reference=2)).step(0)
    q = torch.randn((1, 60, 2, 128), dtype=torch.bfloat16, device=DEV)
    with pytest.raises(ValueError, match="takes bfloat16 CUDA tensors, got q torch.float16"):
        quantized_scores.quantize_scores_cuda(q.half(), q, plan, None)
    with pytest.raises(ValueError, match="got k torch.bfloat16 on cpu"):
        quantized_scores.quantize_scores_cuda(q, q.cpu(), plan, None)
    stream = torch.cuda.current_stream().cuda_stream
    descale = torch.ones((1, 2), dtype=torch.float32, device=DEV)
    out = torch.empty(q.shape, dtype=torch.int8, device=DEV)
    with pytest.raises(ValueError, match="quantised scores are float8_e4m3 or int8, got int4"):
        _cuda.score_quantize(DEV.index or 0, (q.data_ptr(), q.shape, q.stride()), 0, 0, 0, descale.data_ptr(), 0, 0,
                             1, 1.0, 0, out.data_ptr(), "int4", stream)
    sums = torch.empty((3, 1, 1, 2, 128), dtype=torch.float32, device=DEV)
    for x, match in ((torch.randn((1, 60, 2, 12), dtype=torch.bfloat16, device=DEV), "head_dim must be 8 x"),
                     (torch.randn((1, 60, 2, 136), dtype=torch.bfloat16, device=DEV)[..., 4:132], "16-byte aligned")):
        with pytest.raises(ValueError, match=match):
            _cuda.score_stats(DEV.index or 0, (x.data_ptr(), x.shape, x.stride()), 0, 0, 0, sums[0].data_ptr(),
                              sums[1].data_ptr(), sums[2].data_ptr(), stream)
