"""Temporal, dynamics and spatial metrics on synthetic H.264 videos: known answers (a pan of one
pixel a frame moves one pixel a frame in one direction; flicker of amplitude a shows as 2a), and
the direction each sub-score must move when flicker, jitter or blur is added."""

import numpy as np
import pytest

pytest.importorskip("cv2")
pytest.importorskip("skimage")
pytest.importorskip("av")

import synthetic_videos as sv  # noqa: E402
from lvsa.eval import dynamics, flow, piqe, reader, spatial, temporal  # noqa: E402


def _metrics(frames, tmp_path, name="video"):
    video = reader.read(sv.write(frames, tmp_path / f"{name}.mp4"))
    flows = flow.farneback(video.grey)
    found = {}
    for group, _ in (temporal.evaluate(video.grey, flows), dynamics.evaluate(flows), spatial.evaluate(video.frames)):
        found.update(group["metrics"])
    return found


@pytest.fixture(scope="module")
def pan_metrics(tmp_path_factory):
    return _metrics(sv.pan(), tmp_path_factory.mktemp("pan"))


def test_smooth_pan_is_smooth_and_moves_one_pixel_a_frame_one_way(pan_metrics):
    assert pan_metrics["flow_smoothness"]["score"] > 0.9
    assert pan_metrics["warp_error"]["score"] > 0.9 and pan_metrics["warp_jumps"]["value"] == 0
    assert pan_metrics["flicker"]["score"] > 0.9
    assert pan_metrics["motion_magnitude"]["value"] == pytest.approx(1.0, abs=0.1)
    assert pan_metrics["direction_entropy"]["value"] < 0.05


def test_jitter_lowers_smoothness_only(pan_metrics, tmp_path):
    image = sv.texture(0)
    shake = np.random.default_rng(1).integers(0, 4, (48, 2))
    frames = np.stack([image[40 + dy:104 + dy, t + dx:t + dx + 64] for t, (dy, dx) in enumerate(shake)])
    jittery = _metrics(frames, tmp_path)
    assert jittery["flow_smoothness"]["score"] < 0.3 < pan_metrics["flow_smoothness"]["score"]
    assert jittery["direction_entropy"]["value"] > 0.5


def test_flicker_lowers_the_flicker_and_warp_scores_and_has_the_expected_size(pan_metrics, tmp_path):
    amplitude = 10.0
    flickering = _metrics(sv.flicker(sv.pan(), amplitude), tmp_path)
    assert flickering["flicker"]["score"] < 0.1 < 0.9 < pan_metrics["flicker"]["score"]
    assert flickering["warp_error"]["score"] < pan_metrics["warp_error"]["score"]
    # The residual's block means alternate between +2a and -2a: half their change is 2a.
    assert flickering["flicker"]["value"] == pytest.approx(2 * amplitude / 255, rel=0.15)
    assert flickering["flow_smoothness"]["score"] > 0.8  # the motion itself stays steady


def test_blur_lowers_sharpness(pan_metrics, tmp_path):
    blurred = _metrics(sv.blur(sv.pan()), tmp_path)
    assert blurred["sharpness"]["value"] < 0.5 * pan_metrics["sharpness"]["value"]
    assert blurred["sharpness"]["score"] < pan_metrics["sharpness"]["score"]


def test_laplacian_variance_by_hand():
    grey = np.random.default_rng(0).integers(0, 256, (20, 24)).astype(np.uint8)
    padded = np.pad(grey.astype(np.float64), 1, mode="reflect")  # OpenCV's default border: reflect-101
    laplacian = (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * padded[1:-1, 1:-1])
    assert spatial.laplacian_variance(grey) == pytest.approx(laplacian.var(), rel=1e-9)


def test_banding_finds_a_coarsely_quantised_gradient():
    ramp = np.linspace(100, 110, 128)  # 10 grey levels over 128 pixels: 1-level steps every ~12 pixels
    banded = np.tile(ramp.round(), (64, 1)).astype(np.uint8)
    dithered = np.clip(ramp + np.random.default_rng(0).normal(0, 2, (64, 128)), 0, 255).round().astype(np.uint8)
    assert spatial.banding(banded) > 0.45  # the rows are terraces; the columns are flat (no steps)
    assert spatial.banding(dithered) < 0.02
    assert spatial.banding(np.full((64, 128), 128, np.uint8)) == 0.0  # flat is not banded
    assert spatial.banding(sv.texture(0)[:, :, 0]) < 0.02


def test_piqe_flat_or_blurred_away_is_worst():
    assert piqe.piqe(np.full((64, 64), 128.0)) == 100.0  # no active block at all
    import cv2

    clean = sv.texture(0)[:128, :128, 0].astype(np.float64)
    assert 20.0 < piqe.piqe(clean) < piqe.piqe(cv2.GaussianBlur(clean, (0, 0), 2.0)) <= 100.0
    with pytest.raises(ValueError, match="at least 16x16"):
        piqe.piqe(np.zeros((8, 40)))


def test_piqe_mscn_by_hand():
    grey = np.random.default_rng(0).integers(0, 256, (32, 32)).astype(np.float64)
    radius, sigma = 3, 7 / 6
    taps = np.exp(-np.arange(-radius, radius + 1) ** 2 / (2 * sigma ** 2))
    window = np.outer(taps, taps) / np.outer(taps, taps).sum()
    padded, padded_sq = (np.pad(x, radius, mode="edge") for x in (grey, grey * grey))

    def local(x):
        return np.array([[np.sum(window * x[i:i + 7, j:j + 7]) for j in range(32)] for i in range(32)])

    mean = local(padded)
    spread = np.sqrt(np.abs(local(padded_sq) - mean ** 2))
    np.testing.assert_allclose(piqe.mscn(grey), (grey - mean) / (spread + 1), atol=1e-6)
