"""The report's pictures (PNG, Pillow): a contact sheet of frames spread over the video, a strip
of the same frames above the reference's and their difference, and the self-similarity matrix."""

from __future__ import annotations

import io

import numpy as np

from .reader import sample_indices

SHEET_FRAMES, SHEET_COLUMNS = 16, 4
STRIP_FRAMES = 8
CELL_WIDTH = 256  # frames are shown at most this wide
_LABEL_HEIGHT = 14
_BACKGROUND = (24, 24, 24)
_TEXT = (235, 235, 235)


def _cell(frame: np.ndarray, label: str):
    from PIL import Image, ImageDraw

    image = Image.fromarray(frame)
    if image.width > CELL_WIDTH:
        image = image.resize((CELL_WIDTH, max(1, round(image.height * CELL_WIDTH / image.width))), Image.LANCZOS)
    cell = Image.new("RGB", (image.width, image.height + _LABEL_HEIGHT), _BACKGROUND)
    cell.paste(image, (0, _LABEL_HEIGHT))
    ImageDraw.Draw(cell).text((2, 1), label, fill=_TEXT)
    return cell


def _grid(cells: list, columns: int):
    from PIL import Image

    width, height = cells[0].size
    rows = -(-len(cells) // columns)
    sheet = Image.new("RGB", (columns * width, rows * height), _BACKGROUND)
    for i, cell in enumerate(cells):
        sheet.paste(cell, ((i % columns) * width, (i // columns) * height))
    return sheet


def contact_sheet(frames: np.ndarray):
    chosen = sample_indices(len(frames), SHEET_FRAMES)
    return _grid([_cell(frames[i], f"frame {i}") for i in chosen], min(SHEET_COLUMNS, len(chosen)))


def reference_strip(frames: np.ndarray, reference: np.ndarray):
    """Three rows: the video, the reference, and 4 x their absolute difference."""
    chosen = sample_indices(len(frames), STRIP_FRAMES)
    difference = np.clip(4 * np.abs(frames[chosen].astype(np.int16) - reference[chosen].astype(np.int16)), 0, 255)
    rows = ([_cell(frames[i], f"video {i}") for i in chosen] + [_cell(reference[i], f"dense {i}") for i in chosen]
            + [_cell(d.astype(np.uint8), f"4x diff {i}") for i, d in zip(chosen, difference)])
    return _grid(rows, len(chosen))


def similarity_map(distance: np.ndarray):
    """The [F, F] frame distance matrix as an image: bright where two frames look alike."""
    from PIL import Image

    scale = distance.max() if distance.max() > 0 else 1.0
    shade = (255 * (1 - distance / scale)).round().astype(np.uint8)
    repeat = max(1, 256 // len(distance))
    return Image.fromarray(shade.repeat(repeat, axis=0).repeat(repeat, axis=1)).convert("RGB")


def png_bytes(image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
