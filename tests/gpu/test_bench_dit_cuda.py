"""``lvsa bench --dit`` on the GPU at a tiny model of each family (--smoke, bf16): every method
and mode the lead's benchmark run uses runs, FlexAttention computes LVSA's output with LVSA's
mask, dense attention on the valid tokens computes the model's masked output, and the
--max-memory search returns a length."""

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")

from lvsa.bench import dit, dit_models  # noqa: E402
from lvsa_fixtures import dit_forward  # noqa: E402

DEV = torch.device("cuda")
PATTERN = dict(reference=4)
TOLERANCE = dict(atol=6e-2, rtol=2e-2)  # bf16, as tests/python/tiny_diffusers.py
COMMON = ["--smoke", "--device", "cuda", "--frames", "41", "--reference", "4", "--repeats", "1"]


def _rows(tmp_path, *args):
    assert dit.main([*COMMON, *args, "--out", str(tmp_path)]) == 0
    [path] = tmp_path.glob("dit_*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("model, methods", [
    ("wan2.1-1.3b", ["dense-cudnn", "dense-flash", "diffusers", "flex", "lvsa-cuda", "lvsa-torch",
                     "dense-cudnn:compile", "lvsa-cuda:compile"]),
    # Its attention is masked (padded text): flash SDPA takes no mask, so dense-valid stands in.
    ("hunyuanvideo-1.5-480p", ["diffusers", "flex", "lvsa-cuda", "dense-valid-cudnn", "dense-valid-flash",
                               "lvsa-cuda:compile"]),
])
def test_every_method_runs(tmp_path, model, methods):
    result = _rows(tmp_path, "--model", model, "--methods", *methods)
    for row in result["rows"]:
        assert "error" not in row, row
        assert row["forward_ms"] > 0 and row["peak_gb"] > 0 and row["kfi"] > 1
    assert result["card"] == torch.cuda.get_device_name(DEV)


def _output(spec, transformer, data, method):
    return dit_forward(spec, transformer, data, method, PATTERN).float()


def test_flex_is_lvsa_and_dense_valid_is_the_model():
    spec = dit_models.model("hunyuanvideo-1.5-480p")
    transformer = dit_models.build(spec, DEV, torch.bfloat16, smoke=True)
    data = dit_models.inputs(spec, transformer, 41, DEV, torch.bfloat16, smoke=True)
    torch.testing.assert_close(_output(spec, transformer, data, "flex"),
                               _output(spec, transformer, data, "lvsa-torch"), **TOLERANCE)
    torch.testing.assert_close(_output(spec, transformer, data, "dense-valid-cudnn"),
                               _output(spec, transformer, data, "diffusers"), **TOLERANCE)


def test_max_memory_search_finds_the_top_when_everything_fits(tmp_path):
    result = _rows(tmp_path, "--methods", "lvsa-cuda", "--max-memory", "4", "--max-frames", "81")
    [search] = result["max_memory"]
    assert search["max_frames"] == 81 and all(p["error"] is None for p in search["probes"])


def test_profile_files_lvsa_kernels_by_kind(tmp_path):
    result = _rows(tmp_path, "--methods", "lvsa-cuda", "dense-cudnn", "--profile")
    for row in result["rows"]:
        kinds = row["profile"]["kinds_ms"]
        assert kinds["attention"] > 0 and kinds["gemm"] > 0, row["profile"]
        assert abs(sum(kinds.values()) - row["profile"]["total_ms"]) < 0.1
    lvsa_row = next(r for r in result["rows"] if r["method"] == "lvsa-cuda")
    assert lvsa_row["profile"]["kinds_ms"].get("prologue", 0) > 0  # the fused QK prologue ran, and is filed apart
