"""Loop and freeze detection on synthetic H.264 videos with known properties: a frozen frame, a
loop of k frames (the detector must find k), a pan that freezes part-way, and a smooth pan that
must pass every detector."""

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("skimage")
pytest.importorskip("av")

import synthetic_videos as sv  # noqa: E402
from lvsa.eval import flow, loop, reader  # noqa: E402


def _loop_group(frames, tmp_path, name="video"):
    video = reader.read(sv.write(frames, tmp_path / f"{name}.mp4"))
    group, curves = loop.evaluate(video.grey, flow.farneback(video.grey))
    return group, curves


def test_smooth_pan_passes_every_detector(tmp_path):
    group, curves = _loop_group(sv.pan(), tmp_path)
    assert group["state"] == "moving" and group["period_frames"] is None
    assert group["score"] > 0.9
    assert all(entry["score"] > 0.9 for entry in group["metrics"].values()), group["metrics"]
    assert len(curves["consecutive_ssim"]) == 47 and curves["self_similarity"].shape == (48, 48)


def test_frozen_video_scores_zero(tmp_path):
    group, _ = _loop_group(sv.frozen(), tmp_path)
    metrics = group["metrics"]
    assert group["state"] == "frozen" and group["score"] < 0.05
    assert metrics["near_duplicate_ratio"]["value"] == 1.0 and metrics["near_duplicate_ratio"]["score"] == 0.0
    assert metrics["static_tail"]["frames"] == 48 and metrics["static_tail"]["score"] == 0.0


@pytest.mark.parametrize("period", [6, 8, 12])
def test_loop_scores_low_and_its_period_is_found(period, tmp_path):
    group, _ = _loop_group(sv.looping(period), tmp_path)
    metrics = group["metrics"]
    assert group["state"] == "looping" and group["period_frames"] == period
    assert group["score"] < 0.35
    # Each periodicity detector sees it, and all agree on the period.
    assert metrics["self_similarity_cycles"]["period_frames"] == period
    assert metrics["self_similarity_cycles"]["value"] == pytest.approx((48 - period) / 48)
    assert metrics["autocorrelation"]["period_frames"] == period and metrics["autocorrelation"]["score"] < 0.1
    assert metrics["flow_periodicity"]["period_frames"] == period and metrics["flow_periodicity"]["score"] < 0.5
    assert metrics["near_duplicate_ratio"]["value"] == 0.0  # a loop is not a freeze


def test_freeze_at_the_end_is_a_static_tail(tmp_path):
    moving = sv.pan(32)
    frames = np.concatenate([moving, np.repeat(moving[-1:], 16, axis=0)])
    group, _ = _loop_group(frames, tmp_path)
    tail = group["metrics"]["static_tail"]
    assert tail["frames"] == 17  # the last moving frame and its 16 copies
    assert tail["score"] == pytest.approx(1 - 17 / 48)
    assert group["metrics"]["near_duplicate_ratio"]["value"] == pytest.approx(16 / 47)


def test_self_similarity_is_the_mean_thumbnail_difference():
    rng = np.random.default_rng(3)
    thumbs = rng.random((5, 16))
    distance = loop.self_similarity(thumbs)
    expected = np.array([[np.mean(np.abs(a - b)) for b in thumbs] for a in thumbs])
    np.testing.assert_allclose(distance, expected, rtol=1e-12)
