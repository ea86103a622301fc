"""The CUDA backend against float64 masked-dense attention built from plan.attended(f), and
against masked-dense SDPA in the same dtype, on fresh random data with NaN-poisoned outputs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402

from lvsa import Geometry, PatternConfig, Planner  # noqa: E402

# Without the CUDA module (a build without nvcc) this file is skipped, not an import error.
cuda_backend = pytest.importorskip("lvsa.backends.cuda", exc_type=ImportError)

from dense_oracle import compare, masked_dense, sdpa_masked  # noqa: E402
from lvsa_fixtures import poisoned_outputs  # noqa: E402

DEV = torch.device("cuda")
# Relative L2 error of the output vs float64: bf16 carries 8 bits of mantissa, fp16 11.
REL_TOL = {torch.bfloat16: 1.2e-2, torch.float16: 2e-3}


def _poisoned_run(q, k, v, plan, valid, scale, return_lse=True, backend=cuda_backend):
    """``backend.run()`` with its output allocation poisoned: every element must be written."""
    with poisoned_outputs():
        return backend.run(q, k, v, plan, valid, scale, return_lse)


@dataclass
class Case:
    name: str
    T: int
    P: int
    E: int = 0
    side: str = "none"
    window: int = 1
    kfi: object = "auto"
    reference: int = 5
    step: int = 0
    B: int = 1
    Hq: int = 2
    Hkv: int = 2
    D: int = 64
    video_only: bool = False
    valid: list | None = None
    layout: str = "dense"  # dense | packed_qkv | heads_first
    dtypes: tuple = (torch.bfloat16, torch.float16)
    extra: dict = field(default_factory=dict)


CASES = [
    Case("wan_like_oddP", T=9, P=37, D=128, step=1),
    Case("wan_like_d64", T=13, P=64, D=64, step=2),
    Case("hunyuan_like_enc_after_padded", T=7, P=40, E=29, side="after", kfi=3, B=2, Hq=3, Hkv=3,
         D=128, valid=[11, 29], step=1),
    Case("cogvideox_like_enc_before", T=6, P=33, E=20, side="before", kfi=2, valid=[7], D=64),
    Case("enc_before_zero_valid", T=5, P=29, E=16, side="before", kfi=2, valid=[0], D=128),
    Case("video_only_queries", T=6, P=30, E=17, side="after", kfi=2, valid=[5], video_only=True, D=128),
    Case("video_only_enc_before", T=6, P=30, E=17, side="before", kfi=2, valid=[17], video_only=True),
    Case("gqa_2_to_1", T=8, P=50, Hq=4, Hkv=2, kfi=3, D=128),
    Case("gqa_packed_qkv", T=8, P=50, Hq=6, Hkv=1, kfi=3, D=64, layout="packed_qkv"),
    Case("w0_globals_only", T=10, P=25, window=0, kfi=3),
    Case("t1_encoder_after", T=1, P=150, E=40, side="after", valid=[13], D=128),
    Case("t1_all_padded", T=1, P=150, E=40, side="after", valid=[0]),
    Case("batch3_h1", T=7, P=45, B=3, Hq=1, Hkv=1, kfi=2, D=128, step=3),
    Case("heads_first_layout", T=7, P=45, Hq=2, Hkv=2, kfi=2, D=128, layout="heads_first"),
    Case("multi_tile_frames_b2", T=12, P=300, E=200, side="before", window=2, kfi=4, B=2, D=128,
         valid=[200, 57], layout="packed_qkv"),
    Case("no_expand_no_rotate", T=11, P=70, kfi=4, step=5, D=64, extra=dict(expand=False, rotate=False)),
    # Frames of >= 128 rows: query tiles with rows of two frames, each frame's rows masked to its keys.
    Case("frame_pairs_P150", T=9, P=150, D=128, step=1),
    Case("frame_pairs_enc_after_padded", T=7, P=130, E=29, side="after", kfi=3, B=2, D=64, valid=[11, 29]),
    Case("frame_pairs_no_expand_enc_before", T=11, P=140, E=20, side="before", window=2, kfi=4, step=2, D=128,
         valid=[13], extra=dict(expand=False)),
    Case("frame_pairs_video_only_gqa", T=8, P=150, E=17, side="after", kfi=3, Hq=4, Hkv=2, D=128,
         video_only=True, valid=[5]),
]


def _make(case: Case, dtype):
    g = Geometry(case.T, case.P, case.E, case.side)
    cfg = PatternConfig(window=case.window, keyframe_interval=case.kfi, reference=case.reference,
                        **case.extra)
    plan = Planner(g, cfg).step(case.step)
    S = g.seq_len
    B, Hq, Hkv, D = case.B, case.Hq, case.Hkv, case.D
    if case.layout == "packed_qkv":
        qkv = torch.randn((B, S, Hq + 2 * Hkv, D), dtype=dtype, device=DEV)
        q, k, v = qkv[:, :, :Hq], qkv[:, :, Hq:Hq + Hkv], qkv[:, :, Hq + Hkv:]
    elif case.layout == "heads_first":
        q = torch.randn((B, Hq, S, D), dtype=dtype, device=DEV).transpose(1, 2)
        k = torch.randn((B, Hkv, S, D), dtype=dtype, device=DEV).transpose(1, 2)
        v = torch.randn((B, Hkv, S, D), dtype=dtype, device=DEV).transpose(1, 2)
    else:
        q = torch.randn((B, S, Hq, D), dtype=dtype, device=DEV)
        k = torch.randn((B, S, Hkv, D), dtype=dtype, device=DEV)
        v = torch.randn((B, S, Hkv, D), dtype=dtype, device=DEV)
    if case.video_only:
        q = q[:, g.video_begin:g.video_begin + g.video_tokens]
    valid = None if case.valid is None else torch.tensor(case.valid, dtype=torch.int32, device=DEV)
    return plan, q, k, v, valid


def _check(plan, q, k, v, valid, out, lse, dtype, rows=None, heads=None, scale=None):
    ref, ref_lse = masked_dense(q, k, v, plan, valid, scale, rows=rows, heads=heads)
    r = torch.arange(q.shape[1], device=DEV) if rows is None else rows
    h = list(range(q.shape[2])) if heads is None else list(heads)
    got = out[:, r][:, :, h]
    assert torch.isfinite(got).all(), "unwritten (NaN) or non-finite output"
    rel, max_abs = compare(got, ref)
    assert rel < REL_TOL[dtype], f"rel L2 {rel:.3e} (max abs {max_abs:.3e})"
    # Same-precision reference: LVSA must be about as accurate as masked SDPA in this dtype.
    sd = sdpa_masked(q, k, v, plan, valid, scale, rows=r, heads=h)
    live = torch.isfinite(ref_lse).permute(0, 2, 1)  # [B, R, H]
    if live.any():
        sd_rel, _ = compare(sd[live], ref[live])
        lv_rel, _ = compare(got[live], ref[live])
        assert lv_rel <= max(2.0 * sd_rel, 2e-3), f"lvsa {lv_rel:.3e} vs sdpa {sd_rel:.3e}"
    # Rows without keys (padded encoder queries): zeros and lse -inf, exactly.
    dead = ~live
    if dead.any():
        assert (got[dead] == 0).all()
    if lse is not None:
        l = lse[:, h][:, :, r]
        fin = torch.isfinite(ref_lse)
        assert torch.equal(torch.isneginf(l), ~fin), "lse -inf pattern differs"
        if fin.any():
            assert (l[fin].double() - ref_lse[fin]).abs().max().item() < 2e-3
    return rel


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
def test_against_reference(case, dtype):
    plan, q, k, v, valid = _make(case, dtype)
    out, lse = _poisoned_run(q, k, v, plan, valid, None, True)
    _check(plan, q, k, v, valid, out, lse, dtype)
    # Without lse the same kernel runs with the lse store off; outputs must be identical.
    out2, none = cuda_backend.run(q, k, v, plan, valid, None, False)
    assert none is None
    assert torch.equal(out, out2)


def test_custom_scale():
    case = Case("scale", T=6, P=40, kfi=2, D=128)
    plan, q, k, v, valid = _make(case, torch.bfloat16)
    out, lse = cuda_backend.run(q, k, v, plan, valid, 0.3, True)
    _check(plan, q, k, v, valid, out, lse, torch.bfloat16, scale=0.3)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bf16", "fp16"])
@pytest.mark.parametrize("D", [64, 128])
# 8 frames of 88 tokens are 4 whole 176-key tiles, which the sm90 kernels without the frame-pair
# code run at both widths (choose_kernel; at 246 keys D = 128 takes a 160-key kernel with it).
@pytest.mark.parametrize("frames, tokens", [(6, 41), (8, 88)], ids=["246keys", "704keys"])
def test_kfi1_equals_dense(dtype, D, frames, tokens):
    g = Geometry(frames, tokens)
    plan = Planner(g, PatternConfig(window=1, keyframe_interval=1)).step(0)
    q, k, v = (torch.randn((2, g.seq_len, 3, D), dtype=dtype, device=DEV) for _ in range(3))
    out, _ = cuda_backend.run(q, k, v, plan, None, None, False)
    dense = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
    ref, _ = masked_dense(q, k, v, plan)
    rel, _ = compare(out, ref)
    rel_dense, _ = compare(dense.transpose(1, 2), ref)
    assert rel < REL_TOL[dtype] and rel <= max(2 * rel_dense, 2e-3)


def test_through_lvsa_attention_op():
    import lvsa

    g = Geometry(7, 40, 29, "after")
    planner = Planner(g, PatternConfig(window=1, keyframe_interval=3, reference=5))
    q, k, v = (torch.randn((2, g.seq_len, 2, 128), dtype=torch.bfloat16, device=DEV) for _ in range(3))
    out = lvsa.attention(q, k, v, planner, step=1, encoder_valid=[11, 29], backend="cuda")
    out = out[0] if isinstance(out, tuple) else out
    valid = torch.tensor([11, 29], dtype=torch.int32, device=DEV)
    ref, _ = masked_dense(q, k, v, planner.step(1), valid)
    rel, _ = compare(out, ref)
    assert rel < REL_TOL[torch.bfloat16]


# ---- real sizes ----------------------------------------------------------------------------

def _sample_rows(plan, q_len, frames):
    """First tile, the short last tile and a middle slice of some frames, plus encoder rows
    around the valid/padded boundary: every kind of tile, without a full O(S^2) reference."""
    g = plan.geometry
    P = g.tokens_per_frame
    qv = 0 if (g.encoder_len and q_len == g.video_tokens) else g.video_begin
    rows = []
    for f in frames:
        base = qv + f * P
        rows += list(range(base, base + 130)) + list(range(base + P - 40, base + P))
        rows += list(range(base + P // 2, base + P // 2 + 16))
    if g.encoder_len and q_len == g.seq_len:
        rows += list(range(g.encoder_begin, g.encoder_begin + min(g.encoder_len, 700)))
    return torch.tensor(sorted(set(rows)), device=DEV)


REAL = [
    # name, T, P, E, side, reference, heads, valid
    ("wan480p_T21", 21, 1560, 0, "none", 21, 12, None),
    ("wan480p_T81", 81, 1560, 0, "none", 21, 12, None),
    ("hunyuan15_T33_enc600", 33, 1590, 1985, "after", 33, 16, 600),
    ("hunyuan15_T49_enc600", 49, 1590, 1985, "after", 33, 16, 600),
]


@pytest.mark.parametrize("name,T,P,E,side,R,H,valid", REAL, ids=[r[0] for r in REAL])
def test_real_sizes(name, T, P, E, side, R, H, valid):
    dtype = torch.bfloat16
    g = Geometry(T, P, E, side)
    plan = Planner(g, PatternConfig(reference=R)).step(1)
    q, k, v = (torch.randn((1, g.seq_len, H, 128), dtype=dtype, device=DEV) for _ in range(3))
    vt = None if valid is None else torch.tensor([valid], dtype=torch.int32, device=DEV)
    out, lse = _poisoned_run(q, k, v, plan, vt, None, True)
    assert torch.isfinite(out).all()
    if E:  # padded encoder query rows: zeros, lse -inf
        pad = slice(g.encoder_begin + valid, g.encoder_begin + E)
        assert (out[:, pad] == 0).all() and torch.isneginf(lse[:, :, pad]).all()
    rows = _sample_rows(plan, q.shape[1], sorted({0, 1, T // 2, T - 1}))
    _check(plan, q, k, v, vt, out, lse, dtype, rows=rows, heads=[0, H - 1])


def test_padded_encoder_garbage_gets_zero_weight():
    """Padded encoder keys/values holding NaN/Inf must not leak into any output (they are never
    read: rows outside an interval are zero-filled), and padded query rows stay zeros."""
    g = Geometry(7, 150, 90, "after")
    plan = Planner(g, PatternConfig(window=1, keyframe_interval=3, reference=5)).step(1)
    dtype = torch.bfloat16
    q, k, v = (torch.randn((2, g.seq_len, 2, 128), dtype=dtype, device=DEV) for _ in range(3))
    valid = torch.tensor([17, 64], dtype=torch.int32, device=DEV)
    clean_k, clean_v = k.clone(), v.clone()
    for b, n in enumerate([17, 64]):
        pad = slice(g.encoder_begin + n, g.encoder_begin + g.encoder_len)
        k[b, pad] = float("nan")
        v[b, pad, :, ::2] = float("inf")
        v[b, pad, :, 1::2] = float("nan")
        clean_k[b, pad] = 0
        clean_v[b, pad] = 0
    out, lse = _poisoned_run(q, k, v, plan, valid, None, True)
    assert torch.isfinite(out).all()
    _check(plan, q, clean_k, clean_v, valid, out, lse, dtype)


def test_auto_dispatch(monkeypatch):
    """LVSA_CUDA_KERNEL=auto runs exactly the sm90 kernel on an H100/H200, sm80 elsewhere (the
    kernels are deterministic, so equal bits identify the kernel)."""
    hopper = torch.cuda.get_device_capability() == (9, 0)
    g = Geometry(5, 300, 40, "after")
    plan = Planner(g, PatternConfig(window=1, keyframe_interval=2, reference=5)).step(1)
    q, k, v = (torch.randn((1, g.seq_len, 2, 128), dtype=torch.bfloat16, device=DEV) for _ in range(3))
    valid = torch.tensor([23], dtype=torch.int32, device=DEV)
    outs = {}
    for fam in ("auto", "sm80") + (("sm90",) if hopper else ()):
        monkeypatch.setenv("LVSA_CUDA_KERNEL", fam)
        cuda_backend.release_device_plans()  # the variable is read when the device plan is set up
        outs[fam] = cuda_backend.run(q, k, v, plan, valid, None, True)
    expect = "sm90" if hopper else "sm80"
    assert torch.equal(outs["auto"][0], outs[expect][0]) and torch.equal(outs["auto"][1], outs[expect][1])


def test_bad_kernel_family_is_refused(monkeypatch):
    plan, g = _small()
    q = torch.randn((1, g.seq_len, 2, 64), dtype=torch.bfloat16, device=DEV)
    monkeypatch.setenv("LVSA_CUDA_KERNEL", "sm70")
    cuda_backend.release_device_plans()
    with pytest.raises(ValueError, match="LVSA_CUDA_KERNEL"):
        cuda_backend.run(q, q, q, plan, None, None, False)


@pytest.mark.skipif(torch.cuda.is_available() and torch.cuda.get_device_capability() == (9, 0),
                    reason="sm90 runs here")
def test_sm90_refused_off_hopper(monkeypatch):
    plan, g = _small()
    q = torch.randn((1, g.seq_len, 2, 64), dtype=torch.bfloat16, device=DEV)
    monkeypatch.setenv("LVSA_CUDA_KERNEL", "sm90")
    cuda_backend.release_device_plans()
    with pytest.raises(ValueError, match="sm90|sm_90a"):
        cuda_backend.run(q, q, q, plan, None, None, False)


# ---- CUDA graphs ---------------------------------------------------------------------------

def test_graph_capture_replay_across_step_change():
    g = Geometry(11, 45, 13, "after")
    planner = Planner(g, PatternConfig(window=1, keyframe_interval=3, reference=5))
    p0, p1 = planner.step(0), planner.step(1)
    assert p0.key != p1.key and [p0.attended(f) for f in range(11)] != [p1.attended(f) for f in range(11)]
    q, k, v = (torch.randn((1, g.seq_len, 2, 128), dtype=torch.bfloat16, device=DEV) for _ in range(3))
    valid = torch.tensor([9], dtype=torch.int32, device=DEV)

    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        cuda_backend.run(q, k, v, p0, valid, None, True)  # warm-up makes p0 resident
    torch.cuda.current_stream().wait_stream(s)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        static_out, static_lse = cuda_backend.run(q, k, v, p0, valid, None, True)
        # A different plan of the same geometry inside capture must be refused, not captured.
        with pytest.raises(RuntimeError, match="graph capture"):
            cuda_backend.run(q, k, v, p1, valid, None, True)

    static_out.fill_(float("nan"))
    graph.replay()
    _check(p0, q, k, v, valid, static_out, static_lse, torch.bfloat16)

    # Step change: one eager call makes p1 resident (no allocation of plan buffers), then the
    # same graph computes p1's pattern; fresh inputs are copied into the captured tensors.
    buffers_before = {id(dp.buffer) for dp in cuda_backend._device_plans.values()}
    cuda_backend.run(q, k, v, p1, valid, None, False)
    assert {id(dp.buffer) for dp in cuda_backend._device_plans.values()} == buffers_before
    for t in (q, k, v):
        t.copy_(torch.randn_like(t))
    static_out.fill_(float("nan"))
    graph.replay()
    torch.cuda.synchronize()
    _check(p1, q, k, v, valid, static_out, static_lse, torch.bfloat16)


# ---- several streams -----------------------------------------------------------------------

def test_two_streams_at_different_steps_share_the_plan_buffer_safely():
    """Two requests on two streams at different denoising steps use the one resident buffer of
    their geometry: each stream's kernels must see its own step's plan. The kernels are long
    (tens of thousands of tokens) so that an unordered upload by one stream would land while
    the other stream's kernel still reads the buffer. Compared bit for bit with the same calls
    made one after another on one stream (the kernels are deterministic)."""
    g = Geometry(32, 1024, 0, "none")
    planner = Planner(g, PatternConfig(window=1, keyframe_interval=4, reference=5))
    plans = [planner.step(i) for i in range(4)]
    assert len({tuple(tuple(p.attended(f)) for f in range(g.frames)) for p in plans}) == 4
    q, k, v = (torch.randn((1, g.seq_len, 8, 128), dtype=torch.bfloat16, device=DEV) for _ in range(3))
    rounds = [(i % 4, (i + 2) % 4) for i in range(6)]  # (step of stream 0, step of stream 1)

    serial = [[cuda_backend.run(q, k, v, plans[s], None, None, True) for s in steps] for steps in rounds]
    torch.cuda.synchronize()

    streams = [torch.cuda.Stream(), torch.cuda.Stream()]
    for s in streams:
        s.wait_stream(torch.cuda.current_stream())
    concurrent = []
    for steps in rounds:
        outs = []
        for stream, step in zip(streams, steps):
            with torch.cuda.stream(stream):
                outs.append(cuda_backend.run(q, k, v, plans[step], None, None, True))
        concurrent.append(outs)
    for s in streams:
        torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    for r, steps in enumerate(rounds):
        for i, step in enumerate(steps):
            (out, lse), (ref, ref_lse) = concurrent[r][i], serial[r][i]
            assert torch.equal(out, ref) and torch.equal(lse, ref_lse), f"round {r}, stream {i}, step {step}"
    rows = torch.randperm(g.seq_len, device=DEV)[:48].sort().values
    for step in range(4):  # the serial results are right (sampled rows), and differ per step
        out, lse = next(serial[r][i] for r, steps in enumerate(rounds) for i, st in enumerate(steps) if st == step)
        _check(plans[step], q, k, v, None, out, lse, torch.bfloat16, rows=rows, heads=[0, 5])
    assert not torch.equal(serial[0][0][0], serial[0][1][0])


# ---- errors --------------------------------------------------------------------------------

def _small():
    g = Geometry(4, 32)
    plan = Planner(g, PatternConfig(window=1, reference=3)).step(0)
    return plan, g


def test_error_dtype():
    plan, g = _small()
    q = torch.randn((1, g.seq_len, 2, 64), dtype=torch.float32, device=DEV)
    with pytest.raises(ValueError, match="float16 or bfloat16"):
        cuda_backend.run(q, q, q, plan, None, None, False)


def test_error_head_dim():
    plan, g = _small()
    q = torch.randn((1, g.seq_len, 2, 96), dtype=torch.bfloat16, device=DEV)
    with pytest.raises(ValueError, match="head_dim"):
        cuda_backend.run(q, q, q, plan, None, None, False)


def test_error_noncontiguous_head_dim():
    plan, g = _small()
    q = torch.randn((1, g.seq_len, 2, 128), dtype=torch.bfloat16, device=DEV)[..., ::2]
    with pytest.raises(ValueError, match="contiguous last"):
        cuda_backend.run(q, q, q, plan, None, None, False)


def test_error_misaligned_rows():
    plan, g = _small()
    base = torch.randn((1, g.seq_len, 2, 64 + 4), dtype=torch.bfloat16, device=DEV)
    q = base[..., :64]  # rows 136 bytes apart: not 16-byte aligned
    with pytest.raises(ValueError, match="16-byte"):
        cuda_backend.run(q, q, q, plan, None, None, False)


def test_error_wrong_sequence_length():
    plan, g = _small()
    q = torch.randn((1, g.seq_len + 1, 2, 64), dtype=torch.bfloat16, device=DEV)
    with pytest.raises(ValueError, match="sequence length"):
        cuda_backend.run(q, q, q, plan, None, None, False)


def test_error_tensors_off_the_gpu():
    """The backend's device check is what lets the C++ side skip its pointer queries: a tensor
    elsewhere must be this error, never a launch on a host pointer."""
    plan, g = _small()
    q = torch.randn((1, g.seq_len, 2, 64), dtype=torch.bfloat16, device=DEV)
    with pytest.raises(ValueError, match="CUDA device"):
        cuda_backend.run(q, q.cpu(), q, plan, None, None, False)
    with pytest.raises(ValueError, match="CUDA device"):
        cuda_backend.run(q.cpu(), q.cpu(), q.cpu(), plan, None, None, False)


def test_kernel_family_is_read_when_the_device_plan_is_set_up(monkeypatch, cuda_kernel):
    """LVSA_CUDA_KERNEL is read once per (device, geometry), not per call; releasing the device
    plans makes the next call read it again."""
    plan, g = _small()
    q = torch.randn((1, g.seq_len, 2, 64), dtype=torch.bfloat16, device=DEV)
    cuda_backend.run(q, q, q, plan, None, None, False)
    family = cuda_backend._device_plans[(q.device.index, g)].family
    assert cuda_kernel == "auto" or family.name == cuda_kernel
    monkeypatch.setenv("LVSA_CUDA_KERNEL", "sm70")  # would be refused, were it read here
    cuda_backend.run(q, q, q, plan, None, None, False)
    cuda_backend.release_device_plans()
    with pytest.raises(ValueError, match="LVSA_CUDA_KERNEL must be auto, sm80 or sm90"):
        cuda_backend.run(q, q, q, plan, None, None, False)


@pytest.mark.parametrize("case, dispatched", [
    (Case("dense_plan", T=4, P=64, reference=8, D=128, Hq=4, Hkv=2), True),
    (Case("dense_plan_encoder_before", T=3, P=40, E=20, side="before", reference=8, D=64), True),
    (Case("dense_plan_padded_encoder", T=3, P=40, E=20, side="after", reference=8, valid=[7], D=128), False),
    (Case("sparse_plan", T=9, P=37, D=128, step=1), False),
], ids=lambda x: getattr(x, "name", str(x)))
@pytest.mark.parametrize("auto_family", ["sm80", "sm90"])
def test_auto_runs_a_dense_plan_on_dense_sdpa_and_says_so(monkeypatch, case, dispatched, auto_family):
    """LVSA_CUDA_KERNEL=auto: where auto picks the sm80 kernel, a dense plan without encoder
    padding is dense attention, run by PyTorch's SDPA (said once); any other plan, the sm90
    kernel (faster than cuDNN on dense plans) or a named kernel family runs LVSA's kernel. The
    family auto resolves to is forced, so that an H100/H200 covers both rules."""
    if auto_family == "sm90" and torch.cuda.get_device_capability() != (9, 0):
        pytest.skip("the sm90 kernel needs compute capability 9.0")
    monkeypatch.setenv("LVSA_CUDA_KERNEL", "auto")
    resolve = cuda_backend._cuda.choose_kernel_family
    monkeypatch.setattr(cuda_backend._cuda, "choose_kernel_family",
                        lambda index, request: resolve(index, auto_family))
    cuda_backend.release_device_plans()
    said = []
    monkeypatch.setattr(cuda_backend, "say_once", lambda message, level=20: said.append(message))
    plan, q, k, v, valid = _make(case, torch.bfloat16)
    assert (plan.frame_density == 1.0) == case.name.startswith("dense_plan")
    out, _ = _poisoned_run(q, k, v, plan, valid, None, return_lse=False)
    _check(plan, q, k, v, valid, out, None, torch.bfloat16)
    assert bool(said) == (dispatched and auto_family == "sm80"), said
    cuda_backend.release_device_plans()
