"""What runs on a GPU is what the log says: the backend is chosen with the tensors' dtype and
head_dim (float32 or an odd head size runs the torch backend, and the engagement line says so
with the reason), and a GPU older than Ampere gets the torch fallback with its reason (strict:
an error) instead of a CUDA launch error."""

from __future__ import annotations

import logging

import pytest

torch = pytest.importorskip("torch")
cuda_backend = pytest.importorskip("lvsa.backends.cuda", exc_type=ImportError)

import lvsa  # noqa: E402
import lvsa._log  # noqa: E402
from lvsa import backends  # noqa: E402
from lvsa.models import Runtime  # noqa: E402

DEV = torch.device("cuda")


@pytest.fixture
def log(monkeypatch):
    monkeypatch.setattr(lvsa._log, "_said", set())
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    logging.getLogger("lvsa").addHandler(handler)
    yield records
    logging.getLogger("lvsa").removeHandler(handler)


def _attend(dtype, head_dim, strict=False):
    runtime = Runtime("test transformer", "given", lvsa.PatternConfig(window=1, reference=3), "auto", strict)
    q, k, v = (torch.randn((1, 8 * 16, 2, head_dim), dtype=dtype, device=DEV) for _ in range(3))
    with lvsa.denoising_step(1):
        runtime.begin_forward((8, 16))
        out = runtime.attend(q, k, v, runtime.geometry(8 * 16))
        runtime.end_forward()
    return runtime, out


@pytest.mark.parametrize("dtype, head_dim, why", [
    (torch.float32, 128, "takes float16 or bfloat16, got torch.float32"),
    (torch.bfloat16, 24, "takes head_dim 64 or 128, got 24"),
])
def test_engagement_line_says_torch_when_the_kernels_cannot_take_the_inputs(log, dtype, head_dim, why):
    runtime, out = _attend(dtype, head_dim)
    assert list(runtime.backends_used) == ["torch"] and why in runtime.backends_used["torch"]
    line = next(m for m in log if m.startswith("test transformer: T=8"))
    assert line.endswith(f"backend torch (auto fell back: backend 'cuda' {why})"), line
    assert torch.isfinite(out).all()
    with pytest.raises(RuntimeError, match=f"strict mode.*{why}"):
        _attend(dtype, head_dim, strict=True)


def test_engagement_line_says_cuda_when_the_kernels_run(log):
    runtime, _ = _attend(torch.bfloat16, 128)
    assert runtime.backends_used == {"cuda": None}
    assert next(m for m in log if m.startswith("test transformer: T=8")).endswith("backend cuda")


def test_pre_ampere_gpu_falls_back_to_torch_with_the_reason(log, monkeypatch):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (7, 5))
    monkeypatch.setattr(cuda_backend, "_device_reasons", {})  # asked once per device: ask again
    name, reason = backends.choose("auto", DEV, dtype=torch.bfloat16, head_dim=128)
    assert name == "torch" and "compute capability 8.0 or newer" in reason and "is 7.5" in reason
    with pytest.raises(RuntimeError, match="strict mode.*compute capability 8.0"):
        backends.choose("auto", DEV, strict=True, dtype=torch.bfloat16, head_dim=128)
    with pytest.raises(RuntimeError, match="compute capability 8.0"):
        backends.choose("cuda", DEV, dtype=torch.bfloat16, head_dim=128)
    runtime, out = _attend(torch.bfloat16, 128)
    assert list(runtime.backends_used) == ["torch"] and torch.isfinite(out).all()
