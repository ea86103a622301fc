"""MP4 (H.264) output through PyAV, which ships FFmpeg with libx264 in its wheels: one exact
frame per generated frame at the requested rate, in yuv420p, which every player decodes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np


def to_uint8(frames) -> np.ndarray:
    """``[F, H, W, 3]`` uint8 from a pipeline's float frames in [0, 1] (``output_type="np"``)."""
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3:
        raise ValueError(f"expected frames [F, H, W, 3], got shape {array.shape}")
    return (np.clip(array, 0.0, 1.0) * 255.0).round().astype(np.uint8)


def write_mp4(frames: np.ndarray, path: Path, fps: float, crf: int = 18) -> None:
    """Write ``[F, H, W, 3]`` uint8 ``frames`` as H.264 at ``fps`` (``crf`` 18: visually lossless)."""
    import av

    height, width = frames.shape[1:3]
    if height % 2 or width % 2:
        raise ValueError(f"H.264 in yuv420p needs an even width and height, got {width}x{height}")
    # A rational rate, so 23.976 is 24000/1001 and every frame lasts exactly 1/fps.
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def probe(path: Path) -> tuple[int, float, str]:
    """(decoded frame count, frame rate, codec name) of a video file."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, float(stream.average_rate), stream.codec_context.name
