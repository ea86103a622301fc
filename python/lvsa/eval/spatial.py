"""Spatial quality per frame: sharpness (variance of the Laplacian), PIQE (``piqe.py``) and banding
(flat terraces separated by steps of a few grey levels: a smooth gradient quantised too coarsely).

BRISQUE is not offered: its one package (``brisque``) needs ``libsvm-official``, which ships only
as source to compile, and its trained model fails with the numpy 2.4 this project installs.
"""

from __future__ import annotations

import numpy as np

from .measure import measure
from .piqe import piqe
from .reader import sample_indices

SHARPNESS = 100.0  # Laplacian variance (grey levels^2) at which the sharpness score is 1 - 1/e
SAMPLED_FRAMES = 32  # PIQE and banding look at this many frames spread over the video
TERRACE_STEP = 3  # a step of 1..3 grey levels between two flat runs is a band edge
TERRACE_RUN = 6  # ... when both runs are at least this many pixels long
BANDING_FULL = 0.5  # banded share of the frame at which the banding score reaches 0


def luma(frame: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)


def laplacian_variance(grey: np.ndarray) -> float:
    import cv2

    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def _terraced_share(grey: np.ndarray) -> float:
    """Share of pixels in flat runs along rows that end in a small step into another flat run."""
    values = grey.astype(np.int16)
    rows, width = values.shape
    change = values[:, 1:] != values[:, :-1]
    run = np.concatenate([np.zeros((rows, 1), dtype=np.int64), np.cumsum(change, axis=1)], axis=1)
    run += (np.arange(rows) * width)[:, None]  # run ids unique over the whole image
    length = np.bincount(run.ravel())
    step = np.abs(values[:, 1:] - values[:, :-1])
    left, right = run[:, :-1], run[:, 1:]
    terrace = change & (step <= TERRACE_STEP) & (length[left] >= TERRACE_RUN) & (length[right] >= TERRACE_RUN)
    banded = np.unique(np.concatenate([left[terrace], right[terrace]]))
    return float(length[banded].sum() / values.size)


def banding(grey: np.ndarray) -> float:
    """Terraced share along rows and along columns, averaged."""
    return 0.5 * (_terraced_share(grey) + _terraced_share(grey.T))


def evaluate(frames: np.ndarray) -> tuple[dict, dict]:
    greys = [luma(frame) for frame in frames]
    sharpness = np.array([laplacian_variance(grey) for grey in greys])
    sampled = sample_indices(len(frames), SAMPLED_FRAMES)
    piqe_scores = np.array([piqe(greys[i]) for i in sampled])
    banded = np.array([banding(greys[i]) for i in sampled])
    metrics = {
        "sharpness": measure(sharpness.mean(), 1.0 - np.exp(-sharpness.mean() / SHARPNESS), "Laplacian variance"),
        "piqe": measure(piqe_scores.mean(), 1.0 - piqe_scores.mean() / 100.0, "PIQE (0 best, 100 worst)",
                        frames=len(sampled)),
        "banding": measure(banded.mean(), 1.0 - banded.mean() / BANDING_FULL, "share of pixels", frames=len(sampled)),
    }
    return {"metrics": metrics}, {"sharpness": sharpness.tolist(), "piqe": piqe_scores.tolist(),
                                  "piqe_frames": sampled.tolist()}
