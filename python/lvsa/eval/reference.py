"""Full reference: the video against a dense run of the same seed and settings, frame by frame —
PSNR, SSIM and MS-SSIM (torchmetrics) — and where along the video it drifts away from dense.
SSIM is averaged over the pixels whose 11 x 11 window lies inside the frame (Wang et al.'s
convention, scikit-image's too); MS-SSIM is torchmetrics' own (its means include the border)."""

from __future__ import annotations

import math

import numpy as np

from .measure import measure
from .reader import EvalError, Video

PSNR_FLOOR, PSNR_CEILING = 20.0, 40.0  # dB mapped to scores 0 and 1
DRIFT_LEVELS = (0.9, 0.7, 0.5)  # the first frame whose SSIM falls below each of these is reported
_CHUNK = 16  # frames per torchmetrics call (bounds memory at high resolutions)
# MS-SSIM's five scale weights (Wang, Simoncelli, Bovik 2003); small frames use the first ones.
_MS_SSIM_BETAS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
_KERNEL = 11
_BORDER = (_KERNEL - 1) // 2


def check_pair(video: Video, reference: Video) -> None:
    if video.size != reference.size:
        raise EvalError(f"--reference {reference.path} is {reference.size[0]}x{reference.size[1]}, but "
                        f"{video.path} is {video.size[0]}x{video.size[1]}: compare runs of the same size")
    if not math.isclose(video.fps, reference.fps, rel_tol=1e-3):
        raise EvalError(f"--reference {reference.path} plays at {reference.fps:g} fps, but {video.path} at "
                        f"{video.fps:g} fps: compare runs of the same frame rate")
    if video.count != reference.count:
        raise EvalError(f"--reference {reference.path} has {reference.count} frames, but {video.path} has "
                        f"{video.count}: compare runs of the same length")


def psnr(frames: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per-frame PSNR (dB) over all RGB samples, peak 255; infinite for identical frames."""
    error = ((frames.astype(np.float64) - reference.astype(np.float64)) ** 2).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return np.where(error == 0, np.inf, 10 * np.log10(255.0 ** 2 / np.maximum(error, 1e-300)))


def ms_ssim_betas(height: int, width: int) -> tuple[float, ...]:
    """The MS-SSIM scale weights that fit: each halving must leave more than the 11-pixel window
    (torchmetrics needs a side > (11 - 1) * 2^(scales - 1)); renormalised to sum to 1."""
    scales = len(_MS_SSIM_BETAS)
    while scales > 1 and min(height, width) <= (_KERNEL - 1) * 2 ** (scales - 1):
        scales -= 1
    betas = _MS_SSIM_BETAS[:scales]
    return tuple(beta / sum(betas) for beta in betas)


def ssim_curves(frames: np.ndarray, reference: np.ndarray, device: str = "cpu") -> tuple[np.ndarray, np.ndarray, int]:
    """Per-frame SSIM and MS-SSIM of RGB frames in [0, 1] (Gaussian 11 x 11 window, sigma 1.5), in
    float32 on ``device`` (torchmetrics convolves with the full 2-D window: a GPU makes long HD
    videos quick, a CPU takes about a second a frame at 480p)."""
    import torch
    from torchmetrics.functional.image import multiscale_structural_similarity_index_measure as ms_ssim
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    betas = ms_ssim_betas(*frames.shape[1:3])
    ssims, ms_ssims = [], []
    for start in range(0, len(frames), _CHUNK):
        a, b = (torch.from_numpy(x[start:start + _CHUNK]).to(device).permute(0, 3, 1, 2).float() / 255.0
                for x in (frames, reference))
        # Averaged over the pixels whose whole window lies in the frame, as in Wang et al.'s reference
        # code (and scikit-image); torchmetrics' own mean also counts the reflection-padded border.
        _, maps = ssim(a, b, data_range=1.0, reduction="none", return_full_image=True)
        ssims.append(maps[..., _BORDER:-_BORDER, _BORDER:-_BORDER].mean(dim=(1, 2, 3)))
        ms_ssims.append(ms_ssim(a, b, data_range=1.0, reduction="none", betas=betas, normalize="relu"))
    return torch.cat(ssims).cpu().numpy(), torch.cat(ms_ssims).cpu().numpy(), len(betas)


def drift(ssim: np.ndarray) -> dict:
    """The first frame whose SSIM falls below each level, and SSIM over the first and last quarter."""
    quarter = max(1, len(ssim) // 4)
    below = {f"first_frame_below_{level:g}": next((int(t) for t in np.flatnonzero(ssim < level)), None)
             for level in DRIFT_LEVELS}
    return {"ssim_first_quarter": float(ssim[:quarter].mean()), "ssim_last_quarter": float(ssim[-quarter:].mean()),
            **below}


def evaluate(video: Video, reference: Video, device: str = "cpu") -> tuple[dict, dict]:
    check_pair(video, reference)
    decibels = psnr(video.frames, reference.frames)
    ssim, ms_ssim, scales = ssim_curves(video.frames, reference.frames, device)
    # Mean PSNR from the mean squared error, so one identical frame does not make it infinite.
    mean_error = float(np.mean(255.0 ** 2 / 10 ** (decibels / 10)))
    mean_psnr = math.inf if mean_error == 0 else 10 * math.log10(255.0 ** 2 / mean_error)
    metrics = {
        "psnr": measure(mean_psnr, (min(mean_psnr, 1e9) - PSNR_FLOOR) / (PSNR_CEILING - PSNR_FLOOR), "dB"),
        "ssim": measure(ssim.mean(), ssim.mean(), "SSIM"),
        "ms_ssim": measure(ms_ssim.mean(), ms_ssim.mean(), "MS-SSIM", scales=scales),
    }
    group = {"reference": str(reference.path), "metrics": metrics, "drift": drift(ssim)}
    return group, {"psnr": decibels.tolist(), "ssim": ssim.tolist(), "ms_ssim": ms_ssim.tolist()}
