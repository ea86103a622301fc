"""``lvsa eval`` as users run it: reports written where promised (strict JSON with every sub-score,
HTML, PNGs, a CSV for several videos or a batch), a batch CSV with relative paths, and bad inputs
(missing or empty or unreadable files, mismatched references, conflicting options) refused with
one clear line and exit status 2."""

import json

import pytest

pytest.importorskip("cv2")
pytest.importorskip("torchmetrics")
pytest.importorskip("av")

import synthetic_videos as sv  # noqa: E402
from lvsa.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clips")
    return {name: sv.write(frames, folder / f"{name}.mp4")
            for name, frames in (("pan", sv.pan(24)), ("frozen", sv.frozen(24)), ("loop", sv.looping(6, 24)))}


def _strict_json(path):
    def refuse(constant):
        raise AssertionError(f"{path} holds {constant}, which is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_one_video_against_itself(clips, tmp_path, capsys):
    assert main(["eval", str(clips["pan"]), "--reference", str(clips["pan"]), "--out", str(tmp_path)]) == 0
    folder = tmp_path / "pan"
    assert {p.name for p in folder.iterdir()} == {"report.json", "report.html", "contact_sheet.png",
                                                   "self_similarity.png", "reference_strip.png"}
    assert not (tmp_path / "summary.csv").exists()  # one video: no summary
    report = _strict_json(folder / "report.json")
    assert report["groups"]["reference"]["metrics"]["psnr"]["value"] == "inf"
    assert report["groups"]["reference"]["metrics"]["ssim"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert set(report["groups"]) == {"loop", "temporal", "dynamics", "spatial", "reference"}
    for group in report["groups"].values():
        for entry in group["metrics"].values():
            assert {"value", "score", "unit"} <= set(entry)
    assert report["info"] == {"frames": 24, "fps": 24.0, "width": 64, "height": 64, "analysis_size": [64, 64],
                              "analysis_side": 256}
    # Without model weights their groups drop out and the other weights renormalise to 1.
    assert sum(report["composite"]["weights"].values()) == pytest.approx(1.0)
    assert report["composite"]["weights"]["loop"] == pytest.approx(0.30 / 0.85)
    assert len(report["curves"]["ssim"]) == 24 and len(report["curves"]["consecutive_ssim"]) == 23
    out = capsys.readouterr().out
    assert f"{clips['pan']}: composite" in out and f"report: {folder / 'report.html'}" in out


def test_several_videos_get_a_summary_csv_and_verdicts(clips, tmp_path):
    import csv

    assert main(["eval", *(str(clips[n]) for n in ("pan", "frozen", "loop")), "--out", str(tmp_path)]) == 0
    with (tmp_path / "summary.csv").open() as handle:
        rows = {row["video"]: row for row in csv.DictReader(handle)}
    pan, frozen, loop = (rows[str(clips[n])] for n in ("pan", "frozen", "loop"))
    assert pan["loop_state"] == "moving" and float(pan["loop_quality"]) > 0.9
    assert frozen["verdict"].startswith("poor: frozen") and float(frozen["loop_quality"]) < 0.05
    assert loop["verdict"].startswith("poor: loops every 6 frames") and loop["period_frames"] == "6"
    assert float(pan["composite"]) > float(loop["composite"]) and float(pan["composite"]) > float(frozen["composite"])
    assert {"near_duplicate_ratio", "near_duplicate_ratio_score", "flicker_score", "piqe"} <= set(pan)


def test_batch_csv_with_relative_paths(clips, tmp_path):
    listing = clips["pan"].parent / "runs.csv"
    listing.write_text("video,reference,prompt\nloop.mp4,pan.mp4,a fox\nfrozen.mp4,,\n")
    assert main(["eval", "--batch", str(listing), "--out", str(tmp_path)]) == 0
    loop = _strict_json(tmp_path / "loop" / "report.json")
    assert loop["reference"] == str(clips["pan"]) and loop["prompt"] == "a fox"
    assert _strict_json(tmp_path / "frozen" / "report.json")["reference"] is None
    assert (tmp_path / "summary.csv").read_text().count("\n") == 3  # header and two runs


def test_default_report_folder_is_next_to_the_video(clips, capsys):
    assert main(["eval", str(clips["loop"])]) == 0
    assert (clips["loop"].parent / "eval" / "loop" / "report.html").is_file()


def _error(argv, capsys) -> str:
    assert main(["eval", *argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lvsa eval: error: "), captured.err
    return lines[0]


def test_bad_inputs_are_one_clear_line(clips, tmp_path, capsys):
    assert "video " + str(tmp_path / "nope.mp4") + " does not exist" in _error([str(tmp_path / "nope.mp4")], capsys)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video")
    assert "is not a video FFmpeg can read" in _error([str(text)], capsys)
    empty = sv.empty(tmp_path / "empty.avi")
    assert f"video {empty} has no frames" in _error([str(empty)], capsys)
    streamless = sv.empty(tmp_path / "streamless.mp4")
    assert f"video {streamless} has no video stream" in _error([str(streamless)], capsys)
    single = sv.write(sv.pan(1), tmp_path / "single.mp4")
    assert "has 1 frame; lvsa eval needs at least 2" in _error([str(single)], capsys)
    small = sv.write(sv.pan(4, size=8), tmp_path / "small.mp4")
    assert "is 8x8; lvsa eval needs frames of at least 16x16" in _error([str(small)], capsys)
    assert f"--reference {tmp_path / 'gone.mp4'} does not exist" in _error(
        [str(clips["pan"]), "--reference", str(tmp_path / "gone.mp4"), "--out", str(tmp_path)], capsys)
    faster = sv.write(sv.pan(24), tmp_path / "faster.mp4", fps=30)
    assert "plays at 30 fps, but" in _error([str(clips["pan"]), "--reference", str(faster), "--out", str(tmp_path)],
                                            capsys)
    bigger = sv.write(sv.pan(24, size=32), tmp_path / "smaller.mp4")
    assert "is 32x32, but" in _error([str(clips["pan"]), "--reference", str(bigger), "--out", str(tmp_path)], capsys)


def test_conflicting_or_missing_options(clips, tmp_path, capsys):
    assert "give one or more VIDEO files, or --batch" in _error([], capsys)
    assert "drop the VIDEO arguments, --reference and --prompt" in _error(
        [str(clips["pan"]), "--batch", str(tmp_path)], capsys)
    assert f"--batch {tmp_path / 'none'} does not exist" in _error(["--batch", str(tmp_path / "none")], capsys)
    assert "no lvsa generate sidecar with a video" in _error(["--batch", str(tmp_path)], capsys)
    listing = tmp_path / "bad.csv"
    listing.write_text("path\nx.mp4\n")
    assert "a header naming a 'video' column" in _error(["--batch", str(listing)], capsys)
    twin = tmp_path / "twin"
    twin.mkdir()
    copy = twin / "pan.mp4"
    copy.write_bytes(clips["pan"].read_bytes())
    assert "would share the report folder" in _error([str(clips["pan"]), str(copy), "--out", str(tmp_path)], capsys)
    assert "--device nonsense is not a torch device" in _error([str(clips["pan"]), "--device", "nonsense"], capsys)
