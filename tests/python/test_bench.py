"""``lvsa bench`` compares LVSA with the fastest dense attention the device has (PyTorch SDPA
on the CPU), never with LVSA's own kernel on a dense plan, and reports every method."""

import json

import pytest

torch = pytest.importorskip("torch")

from lvsa import bench  # noqa: E402


def test_speedup_is_over_the_fastest_dense_method(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--device", "cpu", "--frames", "41", "161", "--tokens-per-frame", "8", "--heads", "1",
                       "--repeats", "1", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert [r["latent_frames"] for r in result["rows"]] == [11, 41]
    for row in result["rows"]:
        assert set(row["dense_ms"]) == {"sdpa"} and row["baseline"] == "sdpa"
        assert row["baseline_ms"] == min(row["dense_ms"].values())
        assert row["speedup"] == pytest.approx(row["baseline_ms"] / row["sparse_ms"])
        assert row["efficiency"] == pytest.approx(row["speedup"] * row["density"])
        assert row["lvsa_dense_plan_ms"] > 0 and row["max_error"] < 1e-5
    assert result["rows"][1]["kfi"] > 1 and result["rows"][1]["density"] < 1
    table = capsys.readouterr().out
    assert "speedup over the fastest dense attention measured" in table and "sdpa ms" in table
