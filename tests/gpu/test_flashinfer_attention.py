"""The FlashInfer backend against float64 masked-dense attention and masked SDPA: the cases of
the CUDA backend's tests (test_cuda_attention.py, at head_dim 128, the size whose kernels
scripts/flashinfer_prebuild.py builds), a pattern in which no frame attends any frame, and plan
reuse across rotation offsets. Skipped without FlashInfer (extra lvsa[flashinfer])."""

from __future__ import annotations

import dataclasses

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("flashinfer", reason="FlashInfer is not installed (pip install 'lvsa[flashinfer]')")

import flashinfer  # noqa: E402

from lvsa import Geometry, PatternConfig, Planner, backends  # noqa: E402
from lvsa.backends import flashinfer as flashinfer_backend  # noqa: E402

from dense_oracle import masked_dense  # noqa: E402
from test_cuda_attention import CASES, DEV, Case, _check, _make, _poisoned_run  # noqa: E402

# The kernel families of lvsa's own CUDA backend do not apply here: one run per test.
@pytest.fixture(autouse=True)
def cuda_kernel():
    yield None


FLASHINFER_CASES = [dataclasses.replace(c, D=128) for c in CASES] + [
    Case("no_frame_attended_enc_after", T=6, P=40, E=20, side="after", window=0, kfi=None, B=2, Hq=2, Hkv=1,
         D=128, valid=[7, 0], extra=dict(n_first=0)),
    Case("no_frame_attended_no_encoder", T=5, P=32, window=0, kfi=None, D=128, extra=dict(n_first=0)),
]
DTYPES = [torch.bfloat16, torch.float16]


@pytest.mark.parametrize("case", FLASHINFER_CASES, ids=[c.name for c in FLASHINFER_CASES])
@pytest.mark.parametrize("dtype", DTYPES, ids=["bf16", "fp16"])
def test_against_reference(case, dtype):
    plan, q, k, v, valid = _make(case, dtype)
    out, lse = _poisoned_run(q, k, v, plan, valid, None, True, backend=flashinfer_backend)
    _check(plan, q, k, v, valid, out, lse, dtype)
    out2, none = _poisoned_run(q, k, v, plan, valid, None, False, backend=flashinfer_backend)
    assert none is None
    _check(plan, q, k, v, valid, out2, None, dtype)


def test_custom_scale():
    plan, q, k, v, valid = _make(Case("scale", T=6, P=40, E=9, side="after", kfi=2, D=128, valid=[5]),
                                 torch.bfloat16)
    out, lse = flashinfer_backend.run(q, k, v, plan, valid, 0.3, True)
    _check(plan, q, k, v, valid, out, lse, torch.bfloat16, scale=0.3)


def test_plans_are_reused_across_steps_with_the_same_offset(monkeypatch):
    """One wrapper plan per offset: a later step at an offset seen before reuses that offset's
    wrapper, and every step (fresh inputs each) is right for its own pattern."""
    planned = []
    plan_wrapper = flashinfer.BlockSparseAttentionWrapper.plan

    def counted(self, *args, **kwargs):
        planned.append(self)
        return plan_wrapper(self, *args, **kwargs)

    monkeypatch.setattr(flashinfer.BlockSparseAttentionWrapper, "plan", counted)
    g = Geometry(11, 48, 13, "after")
    planner = Planner(g, PatternConfig(window=1, keyframe_interval=3, reference=5))
    patterns = {o: [planner.step(o).attended(f) for f in range(g.frames)] for o in range(3)}
    assert len({str(p) for p in patterns.values()}) == 3
    valid = torch.tensor([9, 13], dtype=torch.int32, device=DEV)
    wrappers = {}
    for step in range(7):
        plan = planner.step(step)
        q, k, v = (torch.randn((2, g.seq_len, 2, 128), dtype=torch.bfloat16, device=DEV) for _ in range(3))
        out, lse = _poisoned_run(q, k, v, plan, valid, None, True, backend=flashinfer_backend)
        _check(plan, q, k, v, valid, out, lse, torch.bfloat16)
        (term,) = [t for key, t in plan.cache.items() if key[0] == "flashinfer"]
        assert wrappers.setdefault(plan.offset, term.wrapper) is term.wrapper
    assert len(planned) == 3 and set(planned) == set(wrappers.values())


def test_through_lvsa_attention_and_auto_keeps_cuda():
    import lvsa

    assert backends.resolve("auto", DEV, dtype=torch.bfloat16, head_dim=128) == "cuda"
    g = Geometry(7, 40, 29, "after")
    planner = Planner(g, PatternConfig(window=1, keyframe_interval=3, reference=5))
    q, k, v = (torch.randn((2, g.seq_len, 2, 128), dtype=torch.bfloat16, device=DEV) for _ in range(3))
    out, lse = lvsa.attention(q, k, v, planner, step=1, encoder_valid=[11, 29], backend="flashinfer",
                              return_lse=True)
    valid = torch.tensor([11, 29], dtype=torch.int32, device=DEV)
    _check(planner.step(1), q, k, v, valid, out, lse, torch.bfloat16)
    ref, _ = masked_dense(q, k, v, planner.step(1), valid)
    cuda_out = lvsa.attention(q, k, v, planner, step=1, encoder_valid=[11, 29], backend="cuda")
    assert (out.double() - ref).norm() <= 2 * (cuda_out.double() - ref).norm() + 1e-3 * ref.norm()


def test_inputs_it_cannot_take_are_refused():
    with pytest.raises(RuntimeError, match="takes float16 or bfloat16"):
        backends.choose("flashinfer", DEV, dtype=torch.float32, head_dim=128)
    with pytest.raises(RuntimeError, match="takes head_dim 64 or 128"):
        backends.choose("flashinfer", DEV, dtype=torch.bfloat16, head_dim=96)
    assert backends.unavailable_reason("flashinfer", DEV, torch.bfloat16, 128) is None
