"""``--show-mask``: the frame-level attention pattern, in the terminal and as a PNG.

The terminal gets the planner's own rendering (the one ``lvsa plan`` prints) for the first
denoising step. The PNG shows one panel per rotation offset of the keyframe grid (the pattern
of steps 0, 1, ..., up to 8 of them): rows are query frames, columns key frames.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..plan import Planner, describe

# Cell colours: key frames a query attends to as global anchors, in its window, both, or skips.
GLOBAL = (230, 140, 30)
WINDOW = (60, 120, 220)
BOTH = (150, 70, 180)
SKIPPED = (30, 30, 30)
_GAP = (255, 255, 255)
_MAX_PANELS = 8


def text(planner: Planner, heads: int, head_dim: int) -> str:
    return describe(planner.step(0), 0, heads, head_dim, as_json=False)


def _panel(planner: Planner, step: int) -> np.ndarray:
    plan = planner.step(step)
    frames = planner.geometry.frames
    lo, hi = plan.core.window_lo, plan.core.window_hi
    image = np.empty((frames, frames, 3), dtype=np.uint8)
    image[:] = SKIPPED
    for query in range(frames):
        window = set(range(lo[query], hi[query] + 1)) if planner.config.window > 0 else set()
        for key in plan.attended(query):
            is_global, in_window = key in plan.globals, key in window
            image[query, key] = BOTH if is_global and in_window else GLOBAL if is_global else WINDOW
    return image


def write_png(planner: Planner, path: Path) -> int:
    """Write the panels to ``path``; returns how many rotation offsets they show."""
    from PIL import Image

    offsets = planner.kfi if planner.config.rotate and planner.kfi > 1 else 1
    panels = [_panel(planner, step) for step in range(min(offsets, _MAX_PANELS))]
    frames = planner.geometry.frames
    cell = max(1, 256 // frames)  # at least ~256 pixels a panel, one frame never blurred
    gap = np.empty((frames * cell, max(4, cell), 3), dtype=np.uint8)
    gap[:] = _GAP
    scaled = [panel.repeat(cell, axis=0).repeat(cell, axis=1) for panel in panels]
    row = [part for panel in scaled for part in (panel, gap)][:-1]
    Image.fromarray(np.concatenate(row, axis=1)).save(path)
    return len(panels)
