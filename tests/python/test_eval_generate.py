"""``lvsa generate --eval`` scores the video it just wrote, and ``lvsa eval --batch DIR`` pairs the
runs of a folder by their real sidecars: a tiny random Wan pipeline, saved and loaded back, is
run dense and with LVSA on the same settings, and the LVSA run is scored against the dense one."""

import csv
import json

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("cv2")
pytest.importorskip("torchmetrics")

import tiny_pipelines  # noqa: E402
from lvsa.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    return tiny_pipelines.wan(tmp_path_factory.mktemp("models") / "wan")


def _generate(model, out, *extra):
    return main(["generate", "--model", str(model), "--prompt", "a red fox runs", "--num-frames", "33", "--height",
                 "16", "--width", "32", "--steps", "2", "--output-dir", str(out), *extra])


def test_generate_eval_and_batch_pairing(wan, tmp_path, capsys):
    assert _generate(wan, tmp_path, "--eval") == 0
    out = capsys.readouterr().out
    report_path = tmp_path / "eval" / "wan-33f-seed0" / "report.json"
    assert f"wan-33f-seed0.mp4: composite" in out and str(report_path.with_suffix(".html")) in out
    report = json.loads(report_path.read_text())
    assert report["prompt"] == "a red fox runs" and report["reference"] is None
    assert report["info"]["frames"] == 33 and report["info"]["width"] == 32 and report["info"]["height"] == 16

    assert _generate(wan, tmp_path, "--lvsa", "--reference-latent-frames", "4", "--window-size", "4") == 0
    assert _generate(wan, tmp_path, "--seed", "1") == 0  # a dense run of another seed: no one's reference
    capsys.readouterr()
    assert main(["eval", "--batch", str(tmp_path), "--out", str(tmp_path / "batch")]) == 0
    with (tmp_path / "batch" / "summary.csv").open() as handle:
        rows = {row["video"].rsplit("/", 1)[-1]: row for row in csv.DictReader(handle)}
    assert set(rows) == {"wan-33f-seed0.mp4", "wan-33f-seed0-lvsa.mp4", "wan-33f-seed1.mp4"}
    assert rows["wan-33f-seed0-lvsa.mp4"]["reference"] == str(tmp_path / "wan-33f-seed0.mp4")
    assert rows["wan-33f-seed0.mp4"]["reference"] == "" and rows["wan-33f-seed1.mp4"]["reference"] == ""
    assert rows["wan-33f-seed0-lvsa.mp4"]["ssim"] != ""
    lvsa_report = json.loads((tmp_path / "batch" / "wan-33f-seed0-lvsa" / "report.json").read_text())
    assert lvsa_report["prompt"] == "a red fox runs" and "reference" in lvsa_report["groups"]


def test_eval_needs_a_video(wan, tmp_path, capsys):
    assert _generate(wan, tmp_path, "--eval", "--output-latent") == 2
    assert "--eval scores a video; --output-latent writes none" in capsys.readouterr().err
