"""PIQE, the Perception-based Image Quality Evaluator (Venkatanath N. et al., "Blind image quality
evaluation using perception based features", NCC 2015), written here from the paper: it has no
trained parameters, and the ``pypiqe`` package requires the GUI build of OpenCV (``opencv-python``),
which cannot sit next to ``opencv-python-headless`` (both install the ``cv2`` module).

The image's mean-subtracted contrast-normalised (MSCN) coefficients are cut into 16 x 16 blocks;
blocks whose coefficient variance exceeds 0.1 are the spatially active ones a viewer looks at.
An active block scores 1 when one of its edges has a 6-pixel segment with almost no activity
(standard deviation below 0.1: a blocking or sudden artifact), else its variance when it looks
like noise (its standard deviation sigma exceeds 2 * beta, beta = |sigma - r| / max(sigma, r),
r the ratio of the spread of its two middle columns to that of the rest), else 0. The score is
100 * (sum of block scores + 1) / (active blocks + 1): 0 is pristine, 100 (also for an image
with no active block, such as a flat one) is the worst. On test images it lands within about 12
points of ``pypiqe`` (a port of MATLAB's ``piqe``); it is not bit-identical to either.
"""

from __future__ import annotations

import numpy as np

BLOCK = 16
ACTIVITY = 0.1  # MSCN variance above which a block is spatially active
IMPAIRED_STD = 0.1  # an edge segment this flat in an active block is a noticeable artifact
SEGMENT = 6  # edge segment length
CENTRE = slice(BLOCK // 2 - 1, BLOCK // 2 + 1)  # the block's two middle columns


def mscn(grey: np.ndarray) -> np.ndarray:
    """MSCN coefficients of ``grey`` in [0, 255]: a 7 x 7 Gaussian window (sigma 7/6), constant 1."""
    import cv2

    image = grey.astype(np.float64)
    mean = cv2.GaussianBlur(image, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
    spread = np.sqrt(np.abs(cv2.GaussianBlur(image * image, (7, 7), 7 / 6, borderType=cv2.BORDER_REPLICATE)
                            - mean * mean))
    return (image - mean) / (spread + 1.0)


def _has_artifact(blocks: np.ndarray) -> np.ndarray:
    """[N] whether any edge of each [N, 16, 16] block has a 6-pixel segment this flat."""
    edges = np.stack([blocks[:, 0], blocks[:, -1], blocks[:, :, 0], blocks[:, :, -1]], axis=1)  # [N, 4, 16]
    segments = np.lib.stride_tricks.sliding_window_view(edges, SEGMENT, axis=2)  # [N, 4, 11, 6]
    return (segments.std(axis=3, ddof=1) < IMPAIRED_STD).any(axis=(1, 2))


def _is_noisy(blocks: np.ndarray, variances: np.ndarray) -> np.ndarray:
    """[N] the noise criterion: sigma > 2 |sigma - r| / max(sigma, r), r = centre / surround spread."""
    centre = blocks[:, :, CENTRE].reshape(len(blocks), BLOCK * 2)
    surround = np.concatenate([blocks[:, :, :CENTRE.start], blocks[:, :, CENTRE.stop:]], axis=2)
    surround = surround.reshape(len(blocks), BLOCK * (BLOCK - 2))
    spread_surround = surround.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sigma, ratio = np.sqrt(variances), centre.std(axis=1, ddof=1) / spread_surround
        noisy = sigma > 2 * np.abs(sigma - ratio) / np.maximum(sigma, ratio)
    return noisy & (spread_surround > 0)


def piqe(grey: np.ndarray) -> float:
    """PIQE score in [0, 100] of a ``grey`` image in [0, 255] at least 16 x 16 pixels."""
    height, width = (side - side % BLOCK for side in grey.shape)
    if height == 0 or width == 0:
        raise ValueError(f"PIQE needs an image of at least {BLOCK}x{BLOCK} pixels, got {grey.shape}")
    coefficients = mscn(grey)[:height, :width]
    blocks = coefficients.reshape(height // BLOCK, BLOCK, width // BLOCK, BLOCK).swapaxes(1, 2)
    blocks = blocks.reshape(-1, BLOCK, BLOCK)
    variances = blocks.var(axis=(1, 2), ddof=1)
    active = variances > ACTIVITY
    blocks, variances = blocks[active], variances[active]
    artifact = _has_artifact(blocks)
    scores = np.where(artifact, 1.0, np.where(_is_noisy(blocks, variances), np.minimum(variances, 1.0), 0.0))
    return float(100.0 * (scores.sum() + 1.0) / (len(blocks) + 1.0))
