"""Temporal coherence from the Farneback flow: how steadily the motion changes (flow smoothness),
how well each frame is predicted by warping the next one back along the flow (warp error, and the
pairs where that prediction breaks: jumps), and how much local brightness jitters once motion is
accounted for (flicker)."""

from __future__ import annotations

import numpy as np

from .flow import warp_back
from .measure import measure

SMOOTHNESS_PX = 1.0  # flow change per frame (px) at which the smoothness score is 1/e
WARP_ERROR = 0.05  # mean grey error of the warped prediction at which its score is 1/e
FLICKER = 0.01  # mean change of the blocks' warp residual (grey level) at which its score is 1/e
FLICKER_GRID = 8  # the residual is averaged over an 8 x 8 grid of blocks
JUMP_FACTOR = 3.0  # a pair whose warp error is 3x the median (and above WARP_ERROR) is a jump


def flow_smoothness(flows: np.ndarray) -> tuple[dict, np.ndarray]:
    """Mean end-point difference between consecutive flow fields (the motion's acceleration)."""
    if len(flows) < 2:
        return measure(None, None, "px/frame^2", note="fewer than 3 frames"), np.zeros(0)
    change = np.hypot(*np.moveaxis(np.diff(flows, axis=0), -1, 0)).mean(axis=(1, 2))
    value = float(change.mean())
    return measure(value, np.exp(-value / SMOOTHNESS_PX), "px/frame^2"), change


def warp_residuals(grey: np.ndarray, flows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[F-1, h, w] next frame warped back along the flow minus this frame, and where it is valid."""
    residuals, valid = np.empty_like(grey[:-1]), np.empty(grey[:-1].shape, dtype=bool)
    for t, flow in enumerate(flows):
        predicted, valid[t] = warp_back(grey[t + 1], flow)
        residuals[t] = predicted - grey[t]
    return residuals, valid


def warp_error(residuals: np.ndarray, valid: np.ndarray) -> tuple[dict, dict, np.ndarray]:
    """Mean |residual| over the pixels whose source lies in the frame, per pair; the pairs far
    above the median are jumps (a cut, a teleport, a frame that belongs elsewhere)."""
    if not len(residuals):
        return (measure(None, None, "grey level", note="one frame"), measure(None, None, "pairs", note="one frame"),
                np.zeros(0))
    errors = np.array([np.abs(r[v]).mean() if v.any() else np.abs(r).mean() for r, v in zip(residuals, valid)])
    value = float(errors.mean())
    jumps = np.flatnonzero(errors > max(JUMP_FACTOR * float(np.median(errors)), WARP_ERROR))
    return (measure(value, np.exp(-value / WARP_ERROR), "grey level"),
            measure(len(jumps), None, "pairs", pairs=jumps.tolist()), errors)


def block_means(images: np.ndarray) -> np.ndarray:
    """[N, FLICKER_GRID ** 2] mean of each block of a grid laid over each image."""
    _, height, width = images.shape
    rows = np.array_split(np.arange(height), FLICKER_GRID)
    cols = np.array_split(np.arange(width), FLICKER_GRID)
    return np.stack([images[:, r[0]:r[-1] + 1, c[0]:c[-1] + 1].mean(axis=(1, 2)) for r in rows for c in cols], axis=1)


def flicker(residuals: np.ndarray) -> tuple[dict, np.ndarray]:
    """Mean |d(t+1) - d(t)| / 2 of the block means d of the warp residual: the brightness change
    motion does not explain. A steady fade has a constant residual (no flicker); brightness going
    up and down frame to frame flips its sign every pair."""
    if len(residuals) < 2:
        return measure(None, None, "grey level", note="fewer than 3 frames"), np.zeros(0)
    change = np.abs(np.diff(block_means(residuals), axis=0)).mean(axis=1) / 2
    value = float(change.mean())
    return measure(value, np.exp(-value / FLICKER), "grey level"), change


def evaluate(grey: np.ndarray, flows: np.ndarray) -> tuple[dict, dict]:
    smoothness, change = flow_smoothness(flows)
    residuals, valid = warp_residuals(grey, flows)
    warp, jumps, errors = warp_error(residuals, valid)
    flick, second = flicker(residuals)
    metrics = {"flow_smoothness": smoothness, "warp_error": warp, "warp_jumps": jumps, "flicker": flick}
    return {"metrics": metrics}, {"flow_change": change.tolist(), "warp_error": errors.tolist(),
                                  "flicker": second.tolist()}
