"""Dense optical flow between consecutive frames (Farneback, OpenCV), computed once per video and
shared by the temporal, dynamics and loop metrics, and the warp of a frame along it."""

from __future__ import annotations

import numpy as np

# OpenCV's documented Farneback example settings: a 3-level pyramid at half scale, 15-pixel
# averaging windows, 3 iterations, a degree-2 polynomial fitted over 5-pixel neighbourhoods.
_FARNEBACK = dict(pyr_scale=0.5, levels=3, winsize=15, iterations=3, poly_n=5, poly_sigma=1.2, flags=0)


def farneback(grey: np.ndarray) -> np.ndarray:
    """[F-1, h, w, 2] flow (dx, dy) in pixels from each frame of ``grey`` [F, h, w] in [0, 1] to the next."""
    import cv2

    frames = (grey * 255.0).round().astype(np.uint8)
    flows = np.empty((max(0, len(frames) - 1), *frames.shape[1:], 2), dtype=np.float32)
    for t in range(len(frames) - 1):
        flows[t] = cv2.calcOpticalFlowFarneback(frames[t], frames[t + 1], None, **_FARNEBACK)
    return flows


def warp_back(following: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``following`` sampled at x + flow(x): the earlier frame as predicted from the later one, and
    the mask of pixels whose source lies inside the frame."""
    import cv2

    height, width = following.shape
    xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    map_x, map_y = xs + flow[..., 0], ys + flow[..., 1]
    warped = cv2.remap(following, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    inside = (map_x >= 0) & (map_x <= width - 1) & (map_y >= 0) & (map_y <= height - 1)
    return warped, inside
