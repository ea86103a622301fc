"""Synthetic videos with known properties for the ``lvsa eval`` tests, written as H.264 through
``lvsa generate``'s own MP4 writer: a smooth pan over a random texture, a frozen frame, a loop of
k frames, and the pan with flicker or blur added."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lvsa.generate.video import write_mp4

SIZE = 64


def texture(seed: int = 0, side: int = 256) -> np.ndarray:
    """[side, side, 3] uint8: smoothed colour noise (features a few pixels wide)."""
    import cv2

    noise = np.random.default_rng(seed).random((side, side, 3)).astype(np.float32)
    smooth = cv2.GaussianBlur(noise, (0, 0), 2.0)
    smooth = (smooth - smooth.min()) / (smooth.max() - smooth.min())
    return (smooth * 255).round().astype(np.uint8)


def pan(frames: int = 48, speed: int = 1, seed: int = 0, size: int = SIZE) -> np.ndarray:
    """[frames, size, size, 3]: a window sliding ``speed`` pixels a frame to the right over a texture."""
    image = texture(seed)
    return np.stack([image[40:40 + size, speed * t:speed * t + size] for t in range(frames)])


def frozen(frames: int = 48, seed: int = 0) -> np.ndarray:
    return np.repeat(pan(1, seed=seed), frames, axis=0)


def looping(period: int, frames: int = 48, seed: int = 0) -> np.ndarray:
    """The first ``period`` frames of a pan, 2 pixels a frame, played again and again."""
    cycle = pan(period, speed=2, seed=seed)
    return cycle[np.arange(frames) % period]


def flicker(video: np.ndarray, amplitude: float = 24.0) -> np.ndarray:
    """Brightness alternating up and down by ``amplitude`` grey levels every frame."""
    signs = np.where(np.arange(len(video)) % 2 == 0, 1.0, -1.0)[:, None, None, None]
    return np.clip(video.astype(np.float32) + amplitude * signs, 0, 255).round().astype(np.uint8)


def blur(video: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    import cv2

    return np.stack([cv2.GaussianBlur(frame, (0, 0), sigma) for frame in video])


def write(frames: np.ndarray, path: Path, fps: float = 24.0) -> Path:
    write_mp4(frames, path, fps)
    return path


def empty(path: Path) -> Path:
    """A container with an H.264 stream and no frame in it (AVI keeps the stream header; MP4 keeps
    no stream at all when no frame is written)."""
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        container.start_encoding()
    return path
