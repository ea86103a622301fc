"""Dynamics: how much the video moves (mean flow speed) and in how many directions (entropy of
the flow directions, descriptive: one steady pan is as valid as a crowd)."""

from __future__ import annotations

import numpy as np

from .measure import measure

MOTION_PX = 1.0  # mean speed (px/frame at the analysis size) at which the motion score is 1 - 1/e
DIRECTION_BINS = 16
MOVING_PX = 0.5  # pixels slower than this have no direction worth counting


def motion_magnitude(flows: np.ndarray) -> tuple[dict, np.ndarray]:
    speed = np.hypot(flows[..., 0], flows[..., 1]).mean(axis=(1, 2))
    if not len(speed):
        return measure(None, None, "px/frame", note="one frame"), speed
    value = float(speed.mean())
    return measure(value, 1.0 - np.exp(-value / MOTION_PX), "px/frame"), speed


def direction_entropy(flows: np.ndarray) -> dict:
    """Shannon entropy of the speed-weighted histogram of flow directions, over log(bins): 0 for
    one direction, 1 for all directions alike."""
    dx, dy = flows[..., 0].ravel(), flows[..., 1].ravel()
    speed = np.hypot(dx, dy)
    moving = speed > MOVING_PX
    if not moving.any():
        return measure(0.0, None, "normalised entropy", note="nothing moves")
    # Bins centred on the directions (right, up, ...), so a straight pan fills one bin, not two.
    width = 2 * np.pi / DIRECTION_BINS
    bins = (np.floor((np.arctan2(dy[moving], dx[moving]) + width / 2) / width) % DIRECTION_BINS).astype(int)
    histogram = np.bincount(bins, weights=speed[moving], minlength=DIRECTION_BINS)
    p = histogram[histogram > 0] / histogram.sum()
    return measure(float(-(p * np.log(p)).sum() / np.log(DIRECTION_BINS)), None, "normalised entropy")


def evaluate(flows: np.ndarray) -> tuple[dict, dict]:
    magnitude, speed = motion_magnitude(flows)
    return ({"metrics": {"motion_magnitude": magnitude, "direction_entropy": direction_entropy(flows)}},
            {"motion": speed.tolist()})
