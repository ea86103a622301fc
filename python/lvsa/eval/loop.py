"""Loop and freeze: the failure of dense attention past its training horizon, where a video
stops moving or repeats a stretch of itself. Five detectors, each a score in [0, 1] (1: no sign
of it), and ``loop_quality``, their geometric mean: one clear failure pulls it to zero.

- near-duplicate ratio: share of consecutive frame pairs with SSIM >= ``DUPLICATE_SSIM``;
- self-similarity cycles: share of frames that come back to an earlier frame after the video
  moved away from it (the detected period is the smallest lag at which most frames do);
- flow periodicity: how much of the motion signal's power sits on one harmonic comb;
- autocorrelation: the highest peak of the frames' temporal autocorrelation past its first dip;
- static tail: share of the video in a final run of near-duplicate frames.
"""

from __future__ import annotations

import numpy as np

from .measure import measure

DUPLICATE_SSIM = 0.99  # consecutive frames this alike are the same picture (H.264 noise included)
THUMB_SIDE = 32  # self-similarity and autocorrelation compare frames at this size
RETURN_RATIO = 0.2  # a frame "comes back" when it is within 20% of how far the video had moved away
AWAY_MIN = 0.02  # ... and the video had moved away by at least this mean grey level difference
PERIOD_SHARE = 0.5  # the period: the smallest lag at which at least half the frames come back
PERIOD_EVIDENCE = 0.5  # flow periodicity and autocorrelation name a period only from this value up
STATIC_TAIL_MIN = 3  # a final run of fewer identical frames is not a freeze
FLAT_MOTION_PX = 0.02  # a motion signal varying less than this (px/frame) has no periodicity to find
FLAT_PIXELS = 1.0 / 255.0  # frames varying less than one grey level over time have no autocorrelation


def consecutive_ssim(grey: np.ndarray) -> np.ndarray:
    from skimage.metrics import structural_similarity

    return np.array([structural_similarity(grey[t], grey[t + 1], data_range=1.0) for t in range(len(grey) - 1)])


def thumbnails(grey: np.ndarray) -> np.ndarray:
    """[F, THUMB_SIDE * THUMB_SIDE] frame thumbnails (area averaging evens out codec noise)."""
    import cv2

    return np.stack([cv2.resize(frame, (THUMB_SIDE, THUMB_SIDE), interpolation=cv2.INTER_AREA).ravel()
                     for frame in grey])


def self_similarity(thumbs: np.ndarray) -> np.ndarray:
    """[F, F] mean absolute grey difference between every two frames' thumbnails."""
    return np.stack([np.abs(thumbs - thumb).mean(axis=1) for thumb in thumbs])


def cycles(distance: np.ndarray) -> dict:
    count = len(distance)
    returns = np.zeros((count, count), dtype=bool)  # returns[t, u]: frame u comes back to frame t
    for t in range(count - 2):
        row = distance[t, t + 1:]
        away = np.maximum.accumulate(row)  # how far the video got from frame t before each later frame
        back = (away >= AWAY_MIN) & (row <= RETURN_RATIO * away)
        back[0] = False  # the next frame cannot "come back"
        returns[t, t + 1:] = back
    revisiting = returns.any(axis=0)
    period = None
    for lag in range(2, count - 3):  # at least four pairs at the lag
        if np.diagonal(returns, lag).mean() >= PERIOD_SHARE:
            period = lag
            break
    share = float(revisiting.mean())
    return measure(share, 1.0 - share, "share of frames", period_frames=period)


def _harmonic_share(power: np.ndarray, pad: int, pairs: int, period: int) -> float:
    """Share of ``power`` (a ``pad``-times zero-padded spectrum of ``pairs`` samples) within half a
    native bin of the harmonics of ``pairs / period`` cycles."""
    native = pairs / period  # the fundamental, in native bins
    comb = np.zeros(len(power), dtype=bool)
    for harmonic in np.arange(native, pairs / 2 + 1e-9, native):
        centre = harmonic * pad
        comb[max(1, int(np.ceil(centre - pad / 2))):int(np.floor(centre + pad / 2)) + 1] = True
    return float(power[comb].sum() / power.sum())


def flow_periodicity(flows: np.ndarray) -> dict:
    """Periodicity of the motion signal (mean dx, mean dy and mean speed per frame pair): the best
    harmonic comb's share of the signal's power, above the share white noise would put there."""
    pairs = len(flows)
    if pairs < 8:
        return measure(None, None, "excess power share", period_frames=None, note="fewer than 8 frame pairs")
    speed = np.hypot(flows[..., 0], flows[..., 1])
    signal = np.stack([flows[..., 0].mean(axis=(1, 2)), flows[..., 1].mean(axis=(1, 2)), speed.mean(axis=(1, 2))])
    time = np.arange(pairs)
    detrended = np.stack([channel - np.polyval(np.polyfit(time, channel, 1), time) for channel in signal])
    if detrended.std(axis=1).max() < FLAT_MOTION_PX:
        return measure(0.0, 1.0, "excess power share", period_frames=None, note="motion does not vary")
    pad = 8
    power = (np.abs(np.fft.rfft(detrended, n=pairs * pad, axis=1)) ** 2).sum(axis=0)
    power[:pad // 2] = 0.0  # what is left of the mean after detrending
    best, best_period = 0.0, None
    for period in range(2, pairs // 2 + 1):
        harmonics = int(np.floor((pairs / 2) / (pairs / period) + 1e-9))
        chance = harmonics / (pairs / 2)  # white noise spreads evenly over pairs / 2 native bins
        excess = (_harmonic_share(power, pad, pairs, period) - chance) / (1.0 - chance)
        if excess > best:
            best, best_period = excess, period
    return measure(best, 1.0 - best, "excess power share",
                   period_frames=best_period if best >= PERIOD_EVIDENCE else None)


def autocorrelation(thumbs: np.ndarray) -> dict:
    """Peak of the mean per-pixel temporal autocorrelation (pixels' linear trends removed) after
    its first local minimum, over lags up to half the video."""
    count = len(thumbs)
    time = np.arange(count)
    if count < 8:
        return measure(None, None, "correlation", period_frames=None, note="fewer than 8 frames")
    coefficients = np.polynomial.polynomial.polyfit(time, thumbs, 1)  # [2, pixels]
    residual = thumbs - (coefficients[0] + np.outer(time, coefficients[1]))
    if residual.std(axis=0).max() < FLAT_PIXELS:
        return measure(0.0, 1.0, "correlation", period_frames=None, note="frames do not vary")
    energy = (residual ** 2).sum(axis=0).sum() / count
    lags = np.arange(1, count // 2 + 1)
    curve = np.array([(residual[lag:] * residual[:-lag]).sum() / (count - lag) / energy for lag in lags])
    dips = [i for i in range(1, len(curve) - 1) if curve[i] <= curve[i - 1] and curve[i] <= curve[i + 1]]
    if not dips:
        return measure(0.0, 1.0, "correlation", period_frames=None, note="no dip: the correlation only decays")
    after = dips[0] + 1 + int(np.argmax(curve[dips[0] + 1:])) if dips[0] + 1 < len(curve) else dips[0]
    peak = max(0.0, float(curve[after]))
    period = int(lags[after]) if peak >= PERIOD_EVIDENCE else None
    return measure(peak, 1.0 - peak, "correlation", period_frames=period)


def static_tail(duplicate: np.ndarray, count: int) -> dict:
    """Frames in the final run of near-duplicate pairs, as a share of the video."""
    run = 0
    for is_duplicate in duplicate[::-1]:
        if not is_duplicate:
            break
        run += 1
    frames = run + 1 if run else 0
    if frames < STATIC_TAIL_MIN:
        frames = 0
    return measure(frames / count, 1.0 - frames / count, "share of frames", frames=frames)


def evaluate(grey: np.ndarray, flows: np.ndarray) -> tuple[dict, dict]:
    """(group, curves) for the loop-and-freeze group."""
    ssim = consecutive_ssim(grey)
    duplicate = ssim >= DUPLICATE_SSIM
    ratio = float(duplicate.mean()) if len(duplicate) else 0.0
    thumbs = thumbnails(grey)
    distance = self_similarity(thumbs)
    metrics = {
        "near_duplicate_ratio": measure(ratio, 1.0 - ratio, "share of frame pairs", threshold_ssim=DUPLICATE_SSIM),
        "self_similarity_cycles": cycles(distance),
        "flow_periodicity": flow_periodicity(flows),
        "autocorrelation": autocorrelation(thumbs),
        "static_tail": static_tail(duplicate, len(grey)),
    }
    scores = [entry["score"] for entry in metrics.values() if entry["score"] is not None]
    quality = float(np.prod(scores) ** (1.0 / len(scores)))
    if ratio >= 0.5:
        state, period = "frozen", None
    else:
        period = metrics["self_similarity_cycles"]["period_frames"]
        state = "looping" if period is not None else "moving"
    group = {"score": quality, "state": state, "period_frames": period, "metrics": metrics}
    return group, {"consecutive_ssim": ssim.tolist(), "self_similarity": distance}
