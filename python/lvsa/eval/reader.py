"""Reading a video for evaluation: every decoded frame as RGB uint8, its frame rate, and the
smaller grey copy most metrics work on (so a score means the same at 480p and at 720p)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

# Flow, loop and flicker metrics run on frames whose longer side is at most this many pixels:
# pixel-valued thresholds (px/frame) then do not depend on the output resolution.
ANALYSIS_SIDE = 256
MIN_SIDE = 16  # PIQE's block, and more than SSIM's 11-pixel window
MIN_FRAMES = 2  # motion needs a pair


class EvalError(Exception):
    """A bad input to ``lvsa eval`` (missing file, no frames, mismatched reference): one line, exit 2."""


@dataclass
class Video:
    path: Path
    frames: np.ndarray  # [F, H, W, 3] uint8, RGB
    fps: float
    _grey: np.ndarray | None = field(default=None, repr=False)

    @property
    def count(self) -> int:
        return self.frames.shape[0]

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.frames.shape[2], self.frames.shape[1]

    @property
    def grey(self) -> np.ndarray:
        """[F, h, w] float32 luma in [0, 1], the longer side scaled down to ``ANALYSIS_SIDE``."""
        if self._grey is None:
            self._grey = np.stack([analysis_grey(frame) for frame in self.frames])
        return self._grey


def analysis_grey(frame: np.ndarray) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    scale = ANALYSIS_SIDE / max(height, width)
    if scale < 1:
        grey = cv2.resize(grey, (max(1, round(width * scale)), max(1, round(height * scale))),
                          interpolation=cv2.INTER_AREA)
    return grey.astype(np.float32) / 255.0


def read(path, what: str = "video") -> Video:
    """Decode every frame of ``path``; ``what`` names the argument in errors (video, --reference)."""
    import av

    path = Path(path)
    if not path.exists():
        raise EvalError(f"{what} {path} does not exist")
    if not path.is_file():
        raise EvalError(f"{what} {path} is not a file")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise EvalError(f"{what} {path} has no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    except av.error.FFmpegError as error:
        raise EvalError(f"{what} {path} is not a video FFmpeg can read ({error})") from None
    if not frames:
        raise EvalError(f"{what} {path} has no frames")
    if len(frames) < MIN_FRAMES:
        raise EvalError(f"{what} {path} has {len(frames)} frame; lvsa eval needs at least {MIN_FRAMES}")
    height, width = frames[0].shape[:2]
    if min(height, width) < MIN_SIDE:
        raise EvalError(f"{what} {path} is {width}x{height}; lvsa eval needs frames of at least "
                        f"{MIN_SIDE}x{MIN_SIDE} pixels")
    if not rate or not float(rate) > 0:
        raise EvalError(f"{what} {path} states no frame rate")
    return Video(path, np.stack(frames), float(rate))


def sample_indices(count: int, most: int) -> np.ndarray:
    """At most ``most`` frame indices spread evenly over ``count`` frames, first and last included."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.linspace(0, count - 1, most).round().astype(int))
