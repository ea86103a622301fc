"""``--image`` / ``--last-image``: the conditioning frames of an image-to-video run, read with
Pillow, hashed (sha256 of the file's bytes, for the sidecar) and brought to the video's size:
scaled to cover it, then center-cropped, which one line says.

The video's size: ``--height`` / ``--width`` when given; a side left out follows the image's
aspect ratio; both left out: the model's default pixel area at the image's aspect ratio; each
side derived here is rounded to the model's pixel grid. A pipeline that sizes the video from the
image itself (HunyuanVideo 1.5 I2V) gives it instead.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from .args import UsageError


@dataclass(frozen=True)
class Conditioning:
    """One conditioning image as read: its flag, file, sha256, size and RGB pixels (a PIL image)."""

    flag: str
    path: Path
    sha256: str
    width: int
    height: int
    pixels: object

    def record(self, height: int, width: int) -> dict:
        return {"path": str(self.path), "sha256": self.sha256, "size": [self.width, self.height],
                "video_size": [width, height]}


def read(path: str, flag: str) -> Conditioning:
    """The image at ``path``, or a usage error naming ``flag`` when it is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as error:
        raise UsageError(f"{flag} {path}: cannot read the file ({error.strerror or error})") from None
    try:
        with Image.open(io.BytesIO(data)) as opened:
            pixels = opened.convert("RGB")
    except UnidentifiedImageError:
        raise UsageError(f"{flag} {path}: not an image file Pillow can read (PNG, JPEG, WebP, ...)") from None
    except (OSError, ValueError) as error:  # a known format, but truncated or corrupt
        raise UsageError(f"{flag} {path}: the image cannot be decoded ({error})") from None
    return Conditioning(flag, file, hashlib.sha256(data).hexdigest(), pixels.width, pixels.height, pixels)


def video_size(image: Conditioning, height: Optional[int], width: Optional[int], default: tuple[int, int],
               multiple: int) -> tuple[int, int]:
    """``(height, width)`` of the video for ``image`` (see the module's docstring)."""
    def on_grid(value: float) -> int:
        return max(multiple, round(value / multiple) * multiple)

    aspect = image.height / image.width
    if height is not None and width is not None:
        return height, width
    if height is not None:
        return height, on_grid(height / aspect)
    if width is not None:
        return on_grid(width * aspect), width
    area = default[0] * default[1]
    return on_grid(math.sqrt(area * aspect)), on_grid(math.sqrt(area / aspect))


def fit(image: Conditioning, height: int, width: int):
    """``image``'s pixels scaled to cover ``width`` x ``height`` and center-cropped to it, and the
    line that says so."""
    from PIL import Image

    if (image.width, image.height) == (width, height):
        return image.pixels, f"{image.flag} {image.path}: {width}x{height}, the video's size"
    scale = max(width / image.width, height / image.height)
    scaled_w, scaled_h = max(width, round(image.width * scale)), max(height, round(image.height * scale))
    left, top = (scaled_w - width) // 2, (scaled_h - height) // 2
    pixels = image.pixels.resize((scaled_w, scaled_h), Image.Resampling.LANCZOS).crop(
        (left, top, left + width, top + height))
    crop = f" and center-cropped to {width}x{height}" if (scaled_w, scaled_h) != (width, height) else ""
    return pixels, (f"{image.flag} {image.path}: {image.width}x{image.height} scaled to {scaled_w}x{scaled_h}{crop} "
                    f"(the video's size)")


def condition(pipe, adapter, images: list, height: Optional[int], width: Optional[int], default: tuple[int, int],
              multiple: int):
    """The video's ``(height, width)`` for the conditioning ``images`` (first frame, and last when
    given), the pipeline call's image arguments (the family adapter's), whether the pipeline sizes
    the video itself, and the lines that say how each image was fitted."""
    first = images[0]
    fixed = adapter.image_size(pipe, first.width, first.height)
    if fixed is None:
        size = video_size(first, height, width, default, multiple)
    else:
        size = fixed
        if (height or size[0], width or size[1]) != size:
            raise UsageError(f"--height/--width: {type(pipe).__name__} sizes the video from its image: "
                             f"{size[1]}x{size[0]} for this {first.width}x{first.height} image; leave them out")
    fitted = [fit(i, *size) for i in images]
    pixels = [p for p, _ in fitted] + [None] * (2 - len(fitted))
    try:
        arguments = adapter.image_arguments(pipe, *pixels)
    except ValueError as error:
        raise UsageError(f"--last-image: {error}") from None
    return (*size, arguments, fixed is not None, [line for _, line in fitted])
