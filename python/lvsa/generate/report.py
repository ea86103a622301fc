"""What a run tells its user: the LVSA engagement line, the final summary, and the profile.

The engagement line is computed from what ``lvsa.enable`` installed and the planner at this
video's latent grid (the same numbers the attention used), plus every warning LVSA logged while
the pipeline ran (a layer that kept the model's dense attention says so there).
"""

from __future__ import annotations

import contextlib
import logging
import statistics

from .._log import logger
from ..backends import quantized_scores
from ..models._runtime import describe_backend
from ..plan import Geometry, Planner


@contextlib.contextmanager
def lvsa_warnings():
    """Collect the warnings LVSA logs inside the block (a list, filled as they come)."""
    collected: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            collected.append(record.getMessage())

    handler = Collect(level=logging.WARNING)
    logger.addHandler(handler)
    try:
        yield collected
    finally:
        logger.removeHandler(handler)


def engagement(handle, token_frames: int, tokens_per_frame: int, warnings: list) -> dict:
    """The LVSA facts of this run (``line`` is the one-line form); ``handle`` None: LVSA off."""
    if handle is None:
        return {"enabled": False, "line": "LVSA off: the model's dense attention"}
    config = handle.settings.config
    planner = Planner(Geometry(token_frames, tokens_per_frame), config)
    offsets = range(max(planner.kfi, 1) if config.rotate else 1)  # kfi 0: no periodic keyframes
    density = statistics.fmean(planner.step(o).frame_density for o in offsets)
    layers = sum(len(names) for names in handle.layers.values())
    used = handle.backends_used()
    backend = (", ".join(describe_backend(name, reason) for name, reason in used.items()) if used
               else "none (no LVSA attention call ran)")
    if planner.kfi == 1:
        pattern = (f"dense pattern: {token_frames} latent frames <= reference {config.reference}, so every frame "
                   "is global (no speed-up at this length)")
    else:
        pattern = (f"kfi {planner.kfi}, {density * token_frames:.1f}/{token_frames} key frames per query "
                   f"(density {density:.2f}, ~{1 / density:.1f}x less attention)")
    line = (f"LVSA on: {layers} self-attention layers in {', '.join(handle.layers)}; T={token_frames} latent frames "
            f"x P={tokens_per_frame} (reference {config.reference}, {token_frames / config.reference:.2f}x); "
            f"{pattern}; backend {backend}{quantized_scores.note(handle.settings.precision)}")
    if warnings:
        line += f"; {len(warnings)} warning(s): " + " | ".join(warnings)
    return {"enabled": True, "line": line, "family": handle.family, "model": handle.model, "layers": layers,
            "latent_frames": token_frames, "tokens_per_frame": tokens_per_frame, "kfi": planner.kfi,
            "density": density, "backend": backend, "backends": sorted(used),
            "precision": handle.settings.precision, "warnings": list(warnings),
            "settings": handle.summary()}


def _seconds(value: float) -> str:
    minutes, seconds = divmod(value, 60.0)
    return f"{int(minutes)}m{seconds:04.1f}s" if minutes else f"{seconds:.2f}s"


def _memory(timeline) -> str:
    peak = max(timeline.peak_memory.values(), default=0)
    kind = "GPU memory (allocated)" if timeline.device.type == "cuda" else "process memory (RSS)"
    return f"peak {kind} {peak / 2**30:.2f} GiB"


def summary(timeline, wall: float, engaged: dict, riflex_line: str, output: str, sidecar: str) -> str:
    steps = timeline.steps
    per_step = f"{statistics.fmean(steps):.3f}s/step over {len(steps)} steps" if steps else "no steps"
    return "\n".join([
        f"done in {_seconds(wall)}: {per_step}; {_memory(timeline)}",
        engaged["line"],
        riflex_line,
        f"output: {output} (settings, versions and timings: {sidecar})",
    ])


def profile(timeline) -> str:
    """Per-stage times and peak memory, then every step's time."""
    unit = "GPU alloc" if timeline.device.type == "cuda" else "RSS"
    lines = [f"{'stage':<16} {'time':>10} {'peak ' + unit:>14}"]
    for stage, seconds in timeline.stages.items():
        lines.append(f"{stage:<16} {_seconds(seconds):>10} {timeline.peak_memory.get(stage, 0) / 2**30:>11.2f} GiB")
    lines.append("step times: " + ", ".join(f"{i}:{s:.3f}s" for i, s in enumerate(timeline.steps)))
    return "\n".join(lines)
