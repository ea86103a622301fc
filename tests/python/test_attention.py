"""Every backend on this machine against masked dense attention (float64, from the pattern)."""

import pytest
import torch

import lvsa
from lvsa.backends import _common

from dense_oracle import masked_dense

BACKENDS = ["cpu", "torch", "reference"]
TOL = {torch.float32: 2e-5, torch.float16: 4e-3, torch.bfloat16: 2.5e-2}


@pytest.fixture(autouse=True)
def poisoned_outputs(monkeypatch):
    """Backends allocate their outputs through _common; fill them with NaN so any element a
    backend forgets to write fails the comparison."""
    allocate = _common.allocate_outputs

    def poisoned(q, return_lse):
        out, lse = allocate(q, return_lse)
        out.fill_(float("nan"))
        if lse is not None:
            lse.fill_(float("nan"))
        return out, lse

    monkeypatch.setattr(_common, "allocate_outputs", poisoned)


def _inputs(B, Sq, Sk, Hq, Hkv, D, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn((B, Sq, Hq, D), generator=g).to(dtype)
    k = torch.randn((B, Sk, Hkv, D), generator=g).to(dtype)
    v = torch.randn((B, Sk, Hkv, D), generator=g).to(dtype)
    return q, k, v


# name: (T, P, encoder_len, side, config, B, Hq, Hkv, D, encoder_valid, video_queries_only)
GEOMETRIES = {
    "wan_like": (25, 9, 0, "none", dict(reference=10), 1, 2, 2, 64, None, False),
    "hunyuan_like": (13, 7, 11, "after", dict(reference=5), 2, 2, 2, 64, [11, 4], False),
    "hunyuan_no_text": (13, 7, 11, "after", dict(reference=5), 2, 1, 1, 64, [0, 6], False),
    "cogvideox_like": (11, 10, 6, "before", dict(reference=4), 2, 2, 2, 64, [6, 3], False),
    "cosmos3_video_queries": (12, 6, 9, "before", dict(reference=5), 1, 4, 2, 64, [7], True),
    "gqa_single_kv": (17, 5, 0, "none", dict(reference=6), 1, 4, 1, 128, None, False),
    "globals_only_W0": (20, 6, 4, "after", dict(window=0, n_first=2, reference=6), 1, 2, 2, 64, None, False),
    "dense_kfi1": (9, 13, 0, "none", dict(keyframe_interval=1), 1, 2, 2, 64, None, False),
    "single_frame": (1, 37, 0, "none", dict(), 3, 1, 1, 64, None, False),
    "odd_P_head_dim_128": (23, 37, 5, "after", dict(reference=8), 1, 1, 1, 128, [3], False),
}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(GEOMETRIES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_matches_masked_dense(backend, name, dtype):
    T, P, E, side, cfg, B, Hq, Hkv, D, valid, video_only = GEOMETRIES[name]
    planner = lvsa.Planner(lvsa.Geometry(T, P, E, side), lvsa.PatternConfig(**cfg))
    for step in (0, 1):
        plan = planner.step(step)
        g = plan.geometry
        Sq = g.video_tokens if video_only else g.seq_len
        q, k, v = _inputs(B, Sq, g.seq_len, Hq, Hkv, D, dtype, seed=hash((name, step)) & 0xFFFF)
        out, lse = lvsa.attention(q, k, v, plan, encoder_valid=valid, return_lse=True, backend=backend)
        ref, ref_lse = masked_dense(q, k, v, plan, valid)
        assert out.dtype == dtype and out.shape == q.shape
        assert not torch.isnan(out).any(), "unwritten or NaN output"
        err = (out.double() - ref).abs().max().item()
        assert err < TOL[dtype], f"{backend} {name} {dtype} step {step}: max error {err}"
        finite = torch.isfinite(ref_lse)
        assert torch.equal(torch.isfinite(lse), finite), "lse -inf exactly where a row has no keys"
        assert (lse.double()[finite] - ref_lse[finite]).abs().max().item() < 1e-3


@pytest.mark.parametrize("backend", BACKENDS)
def test_kfi1_equals_plain_dense(backend):
    planner = lvsa.Planner(lvsa.Geometry(6, 11, 5, "after"), lvsa.PatternConfig(keyframe_interval=1))
    q, k, v = _inputs(2, 71, 71, 2, 2, 64, torch.float32, seed=3)
    out = lvsa.attention(q, k, v, planner, step=3, backend=backend)
    dense = torch.nn.functional.scaled_dot_product_attention(*(x.transpose(1, 2) for x in (q, k, v)))
    assert (out - dense.transpose(1, 2)).abs().max().item() < 1e-5


@pytest.mark.parametrize("backend", BACKENDS)
def test_non_contiguous_views_of_packed_qkv(backend):
    plan = lvsa.Planner(lvsa.Geometry(15, 7), lvsa.PatternConfig(reference=5)).step(2)
    packed = torch.randn((2, 105, 3, 4, 64))  # [B, S, (q k v), H, D]
    q, k, v = packed.unbind(2)
    assert not q.is_contiguous()
    out = lvsa.attention(q, k, v, plan, backend=backend)
    ref, _ = masked_dense(q, k, v, plan)
    assert (out.double() - ref).abs().max().item() < 2e-5


def test_auto_picks_cpu():
    plan = lvsa.Planner(lvsa.Geometry(4, 3)).step(0)
    q, k, v = _inputs(1, 12, 12, 1, 1, 64, torch.float32, seed=1)
    ref = lvsa.attention(q, k, v, plan, backend="cpu")
    assert torch.equal(lvsa.attention(q, k, v, plan), ref)


def test_padding_gets_exactly_zero_weight():
    """Changing the padded encoder keys/values must not change any output bit."""
    plan = lvsa.Planner(lvsa.Geometry(12, 5, 8, "after"), lvsa.PatternConfig(reference=4)).step(0)
    q, k, v = _inputs(1, 68, 68, 2, 2, 64, torch.float32, seed=5)
    for backend in BACKENDS:
        a = lvsa.attention(q, k, v, plan, encoder_valid=[3], backend=backend)
        k2, v2 = k.clone(), v.clone()
        k2[:, 63:] = 1e4  # huge padded keys would dominate if they were attended
        v2[:, 63:] = float("nan")
        b = lvsa.attention(q, k2, v2, plan, encoder_valid=[3], backend=backend)
        assert torch.equal(a[:, :63], b[:, :63]), backend
        assert torch.equal(b[:, 63:], torch.zeros_like(b[:, 63:])), "padded query rows are zeros"


def test_compiled_cpu_kernel_checks_too():
    """The C++ layer validates on its own (C API callers have no Python checks)."""
    from lvsa import _native

    plan = lvsa.Planner(lvsa.Geometry(8, 4)).step(0)
    q, k, v = _inputs(1, 32, 32, 2, 2, 64, torch.float32, seed=4)
    out = torch.empty_like(q)
    with pytest.raises(ValueError, match="out"):
        _native.attention_cpu(plan.core, q, k, v, out[:, :16], None, None, 0.125, 1, False)
    with pytest.raises(ValueError, match="k"):
        _native.attention_cpu(plan.core, q, k[:, :16], v, out, None, None, 0.125, 1, False)


def test_cuda_module_takes_the_core_plan_without_a_gpu():
    """lvsa._cuda.attention takes the planner's own plan object (``CorePlan``, bound by lvsa._native):
    here, with no GPU, the call converts every argument and stops, clearly, at selecting the
    device. On a GPU machine tests/gpu run it for real."""
    cuda_module = pytest.importorskip("lvsa._cuda", reason="lvsa built without its CUDA module",
                                      exc_type=ImportError)
    if cuda_module.device_count() > 0:
        pytest.skip("a GPU is visible: tests/gpu cover the call")
    g = lvsa.Geometry(4, 32)
    plan = lvsa.Planner(g, lvsa.PatternConfig(window=1, reference=3)).step(0)
    q = torch.zeros((1, g.seq_len, 2, 64), dtype=torch.bfloat16)
    t = (q.data_ptr(), q.shape, q.stride())
    with pytest.raises(ValueError, match="cannot select cuda:0"):
        cuda_module.attention(plan.core, 0, 0, 1, t, t, t, t, "bfloat16", 0, 0, 0.0, 0,
                              cuda_module.KernelFamily.sm80)


def test_cuda_backend_refuses_pre_ampere_gpus_with_the_reason():
    """A pre-Ampere GPU gets the torch fallback with this reason (strict: an error), not a CUDA
    launch error; the device check itself runs on the GPU machine (tests/gpu)."""
    cuda_backend = pytest.importorskip("lvsa.backends.cuda", reason="lvsa built without its CUDA module",
                                       exc_type=ImportError)
    reason = cuda_backend.capability_reason(torch.device("cuda", 0), (7, 5))
    assert "compute capability 8.0 or newer" in reason and "cuda:0 is 7.5" in reason
    assert cuda_backend.capability_reason(torch.device("cuda", 0), (8, 0)) is None
    assert cuda_backend.capability_reason(torch.device("cuda", 0), (9, 0)) is None


def test_forward_only_under_autograd():
    plan = lvsa.Planner(lvsa.Geometry(4, 3)).step(0)
    q, k, v = _inputs(1, 12, 12, 1, 1, 64, torch.float32, seed=1)
    q.requires_grad_(True)
    out = lvsa.attention(q, k, v, plan, backend="cpu")
    with pytest.raises(RuntimeError, match="forward-only"):
        out.sum().backward()


def test_torch_compile_traces_through_the_op():
    plan = lvsa.Planner(lvsa.Geometry(10, 4), lvsa.PatternConfig(reference=4)).step(1)

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.proj = torch.nn.Linear(64, 3 * 64)

        def forward(self, x):
            q, k, v = self.proj(x).unflatten(-1, (3, 1, 64)).unbind(2)
            return lvsa.attention(q, k, v, plan, backend="cpu").flatten(2)

    block = Block()
    x = torch.randn(1, 40, 64)
    with torch.no_grad():
        eager = block(x)
        compiled = torch.compile(block, fullgraph=True)(x)
    assert (eager - compiled).abs().max().item() < 1e-5


def test_lse_is_natural_log_and_scale_applies():
    plan = lvsa.Planner(lvsa.Geometry(5, 3), lvsa.PatternConfig(keyframe_interval=1)).step(0)
    q, k, v = _inputs(1, 15, 15, 1, 1, 64, torch.float32, seed=9)
    for backend in BACKENDS:
        _, lse = lvsa.attention(q, k, v, plan, scale=0.3, return_lse=True, backend=backend)
        s = torch.einsum("bqhd,bkhd->bhqk", q.double(), k.double()) * 0.3
        assert (lse.double() - torch.logsumexp(s, -1)).abs().max().item() < 1e-4, backend


def test_auto_falls_back_with_the_reason_and_strict_refuses(monkeypatch):
    """A compiled backend that cannot take the inputs is never skipped silently."""
    from lvsa import backends

    monkeypatch.setattr(backends, "unavailable_reason",
                        lambda name, device, dtype=None, head_dim=None:
                        "test: head_dim 24 unsupported" if name == "cpu" and head_dim == 24 else None)
    said = []
    monkeypatch.setattr(backends, "say_once", lambda message, level=20: said.append(message))
    plan = lvsa.Planner(lvsa.Geometry(4, 3)).step(0)
    q, k, v = _inputs(1, 12, 12, 1, 1, 24, torch.float32, seed=1)
    out = lvsa.attention(q, k, v, plan)
    ref, _ = masked_dense(q, k, v, plan)
    assert (out.double() - ref).abs().max().item() < 1e-5
    assert said == ["attention backend auto -> torch for cpu tensors: test: head_dim 24 unsupported"]
    with pytest.raises(RuntimeError, match="strict mode.*head_dim 24"):
        lvsa.attention(q, k, v, plan, strict=True)
