"""Full-reference metrics against a dense run: a video against itself is identical (infinite
PSNR, SSIM and MS-SSIM 1); values match independent computations (PSNR by hand, scikit-image's
SSIM); a mismatched reference (size, frame rate, length) is refused before anything runs."""

import math

import numpy as np
import pytest

pytest.importorskip("torchmetrics")
pytest.importorskip("skimage")
pytest.importorskip("av")

import synthetic_videos as sv  # noqa: E402
from lvsa.eval import reader, reference  # noqa: E402
from lvsa.eval.reader import EvalError  # noqa: E402


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("reference")
    frames = sv.pan(24)
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 12, frames.shape), 0, 255).astype(np.uint8)
    return {name: reader.read(sv.write(f, folder / f"{name}.mp4"))
            for name, f in (("pan", frames), ("noisy", noisy), ("blurred", sv.blur(frames)))}


def test_a_video_against_itself_is_identical(videos):
    group, curves = reference.evaluate(videos["pan"], videos["pan"])
    metrics = group["metrics"]
    assert metrics["psnr"]["value"] == math.inf and metrics["psnr"]["score"] == 1.0
    assert all(value == math.inf for value in curves["psnr"])
    assert metrics["ssim"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert metrics["ms_ssim"]["value"] == pytest.approx(1.0, abs=1e-6)
    assert group["drift"]["first_frame_below_0.9"] is None


def test_psnr_by_hand(videos):
    a, b = videos["pan"].frames, videos["noisy"].frames
    for t in (0, 11, 23):
        squared = sum((int(x) - int(y)) ** 2 for x, y in zip(a[t].ravel().tolist(), b[t].ravel().tolist()))
        expected = 10 * math.log10(255 ** 2 / (squared / a[t].size))
        assert reference.psnr(a[t:t + 1], b[t:t + 1])[0] == pytest.approx(expected, rel=1e-9)


def test_ssim_matches_scikit_image(videos):
    from skimage.metrics import structural_similarity

    a, b = videos["pan"].frames, videos["blurred"].frames
    ssim, ms_ssim, scales = reference.ssim_curves(a, b)
    assert scales == 3  # 64 pixels fit three 11-pixel MS-SSIM scales
    for t in (0, 10, 23):
        # Wang et al.'s SSIM: Gaussian window sigma 1.5 (11 taps), population covariances, per channel.
        expected = structural_similarity(a[t], b[t], channel_axis=2, gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=255)
        assert ssim[t] == pytest.approx(expected, abs=1e-5)
    assert (ms_ssim < 1).all() and (ssim < 1).all()


def test_worse_copies_score_lower(videos):
    noisy, _ = reference.evaluate(videos["noisy"], videos["pan"])
    blurred, _ = reference.evaluate(videos["blurred"], videos["pan"])
    for group in (noisy, blurred):
        metrics = group["metrics"]
        assert 15 < metrics["psnr"]["value"] < 40
        assert 0 < metrics["ssim"]["value"] < 0.95 and 0 < metrics["ms_ssim"]["value"] < 0.99


def test_ms_ssim_scales_fit_the_frame():
    assert len(reference.ms_ssim_betas(480, 832)) == 5
    assert len(reference.ms_ssim_betas(64, 64)) == 3
    assert sum(reference.ms_ssim_betas(64, 64)) == pytest.approx(1.0)


def test_drift_names_the_frame_where_it_diverges():
    ssim = np.array([0.99, 0.98, 0.95, 0.85, 0.6, 0.4, 0.3, 0.3])
    found = reference.drift(ssim)
    assert found["first_frame_below_0.9"] == 3 and found["first_frame_below_0.7"] == 4
    assert found["first_frame_below_0.5"] == 5
    assert found["ssim_first_quarter"] == pytest.approx(0.985) and found["ssim_last_quarter"] == pytest.approx(0.3)


@pytest.mark.parametrize("change, message", [
    (dict(size=32), "is 32x32, but .* is 64x64"),
    (dict(fps=30.0), "plays at 30 fps, but .* at 24 fps"),
    (dict(frames=20), "has 20 frames, but .* has 24"),
])
def test_mismatched_reference_is_refused(videos, tmp_path, change, message):
    frames = sv.pan(change.get("frames", 24), size=change.get("size", 64))
    other = reader.read(sv.write(frames, tmp_path / "other.mp4", fps=change.get("fps", 24.0)), "--reference")
    with pytest.raises(EvalError, match="--reference .*" + message):
        reference.evaluate(videos["pan"], other)
