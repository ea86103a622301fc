"""``lvsa eval --device cuda``: SSIM and MS-SSIM against a reference computed on the GPU match
the CPU's, and the whole command runs there."""

import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchmetrics")
pytest.importorskip("cv2")

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))  # synthetic_videos

import synthetic_videos as sv  # noqa: E402
from lvsa.cli import main  # noqa: E402
from lvsa.eval import reference  # noqa: E402


def test_ssim_on_the_gpu_matches_the_cpu():
    frames = sv.pan(20, size=192)  # five MS-SSIM scales
    noisy = np.clip(frames + np.random.default_rng(0).normal(0, 10, frames.shape), 0, 255).astype(np.uint8)
    cpu = reference.ssim_curves(frames, noisy, "cpu")
    gpu = reference.ssim_curves(frames, noisy, "cuda")
    assert cpu[2] == gpu[2] == 5
    np.testing.assert_allclose(gpu[0], cpu[0], atol=1e-4)
    np.testing.assert_allclose(gpu[1], cpu[1], atol=1e-4)


def test_lvsa_eval_on_cuda(tmp_path):
    video = sv.write(sv.looping(8, 32), tmp_path / "loop.mp4")
    dense = sv.write(sv.pan(32), tmp_path / "dense.mp4")
    assert main(["eval", str(video), "--reference", str(dense), "--device", "cuda", "--out", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "loop" / "report.html").is_file()
