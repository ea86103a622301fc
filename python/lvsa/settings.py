"""The knobs of ``lvsa.enable``: explicit arguments, ``LVSA_*`` environment variables, model
defaults — in that order of precedence — and their units.

Frame knobs (``window``, ``n_first``, ``keyframe_interval``, ``reference``) are in latent frames
(the planner's frames: after the VAE's temporal compression and the transformer's temporal
patching) unless ``units="video"``, which takes them in video frames as users usually think of
them: distances (window, first frames, keyframe interval) are divided by the model's
video → latent factor (``vae_temporal · patch_t``: 4 for Wan, HunyuanVideo, CogVideoX 1.0 and
Cosmos, 8 for CogVideoX 1.5), and the reference horizon, a frame count, is converted as the
VAE converts a clip (``(frames - 1) // vae_temporal + 1``, then ceil over ``patch_t``: the C++
``lvsa::clip_token_frames`` the presets use, bound as ``_native.clip_token_frames``), so Wan's
81 video frames are its 21 latent frames. Knobs not given keep their latent-frame defaults.
"""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import Any, Callable

from . import _native, backends
from .model_facts import ModelFacts
from .ops import PRECISIONS, backend_for
from .plan import Geometry, PatternConfig, Planner

# How a processor computes q and k's norm and RoPE (lvsa.prologue): the fused CUDA kernel where a
# GPU backend (cuda, flashinfer) runs, or the model's own ops everywhere.
PROLOGUES = ("fused", "model")


def _bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected 1/0, true/false, yes/no or on/off")


def _parsed(convert: Callable[[str], Any], expected: str) -> Callable[[str], Any]:
    """``convert`` whose failure says what was expected (int() and float() say neither)."""
    def parse(text: str):
        try:
            return convert(text)
        except ValueError:
            raise ValueError(f"expected {expected}") from None
    return parse


def _keyframe_interval(text: str):
    value = text.strip().lower()
    if value in ("auto", "none"):
        return None if value == "none" else value
    return _parsed(int, "auto, none or a positive integer")(value)


def _parallel(text: str):
    value = text.strip().lower()
    return value if value == "auto" else _parsed(int, "auto or a process count")(value)


# knob -> parser of its LVSA_<KNOB> environment variable
_KNOBS: dict[str, Callable[[str], Any]] = {
    "window": _parsed(int, "an integer"),
    "n_first": _parsed(int, "an integer"),
    "keyframe_interval": _keyframe_interval,
    "reference": _parsed(int, "an integer"),
    "scale": _parsed(float, "a number"),
    "expand": _bool,
    "rotate": _bool,
    "units": lambda text: text.strip().lower(),
    "backend": lambda text: text.strip().lower(),
    "strict": _bool,
    "parallel": _parallel,
    "prologue": lambda text: text.strip().lower(),
    "precision": lambda text: text.strip().lower(),
}


@dataclass(frozen=True)
class Settings:
    """Resolved knobs: the pattern (latent frames), backend and strictness, plus where the
    reference came from, for the reports, and the processes Ulysses splits the sequence over."""

    config: PatternConfig
    reference_note: str
    units: str
    backend: str
    strict: bool
    parallel: int = 1
    prologue: str = "fused"
    precision: str = "default"  # or "fp8" / "int8" / "int8-fp8" (lvsa.attention's)


def gather(explicit: dict) -> dict:
    """The knobs the user set: explicit arguments over ``LVSA_*`` variables (unknown names and
    unparsable values are errors naming the culprit)."""
    unknown = set(explicit) - set(_KNOBS)
    if unknown:
        raise TypeError(f"lvsa.enable: unknown option(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(_KNOBS)}")
    knobs = {}
    for name, parse in _KNOBS.items():
        variable = f"LVSA_{name.upper()}"
        if name in explicit:
            knobs[name] = _checked_type(name, explicit[name])
        elif os.environ.get(variable, "").strip():
            try:
                knobs[name] = parse(os.environ[variable])
            except ValueError as error:
                raise ValueError(f"lvsa: {variable}={os.environ[variable]!r} is not valid: {error}") from None
    return knobs


def _checked_type(name: str, value):
    """``value`` if it has the type knob ``name`` takes (ranges are the planner's to check): the
    C++ planner would refuse other types with a message that does not name the knob, and a
    bool would pass as 0/1."""
    if name in ("window", "n_first", "reference"):
        expected, ok = "an int (frames)", isinstance(value, int) and not isinstance(value, bool)
    elif name == "scale":
        expected, ok = "a number", isinstance(value, numbers.Real) and not isinstance(value, bool)
    elif name in ("expand", "rotate", "strict"):
        expected, ok = "True or False", isinstance(value, bool)
    else:  # keyframe_interval, units, backend, parallel: their own checks name the allowed values
        return value
    if not ok:
        raise TypeError(f"lvsa: {name} must be {expected}, got {type(value).__name__} {value!r}")
    return value


def resolve(knobs: dict, facts: ModelFacts | None, model: str) -> Settings:
    """Settings for one model from the user's knobs (see :func:`gather`) and the model's facts."""
    units = knobs.get("units", "latent")
    if units not in ("latent", "video"):
        raise ValueError(f"lvsa: units must be 'latent' or 'video', got {units!r}")
    backend = knobs.get("backend", "auto")
    if backend not in backends.NAMES:
        raise ValueError(f"lvsa: backend must be one of {', '.join(backends.NAMES)}, got {backend!r}")

    prologue = knobs.get("prologue", "fused")
    if prologue not in PROLOGUES:
        raise ValueError(f"lvsa: prologue must be one of {', '.join(PROLOGUES)}, got {prologue!r}")
    precision = knobs.get("precision", "default")
    if precision not in PRECISIONS:
        raise ValueError(f"lvsa: precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    backend_for(backend, precision)  # refuses a backend without these scores

    frames = {name: knobs[name] for name in ("window", "n_first", "keyframe_interval") if name in knobs}
    if units == "video" and facts is None:
        raise ValueError(f"lvsa: units='video' needs the VAE's temporal factor, which is unknown for {model}")
    if units == "video" and frames:
        video = PatternConfig.from_video_frames(
            window=frames.get("window", 0), n_first=frames.get("n_first", 0),
            keyframe_interval=frames.get("keyframe_interval", "auto"),
            vae_temporal=facts.vae_temporal * facts.patch_t)
        frames = {name: getattr(video, name) for name in frames}

    if "reference" in knobs:
        reference = knobs["reference"]
        if units == "video":
            if isinstance(reference, bool) or not isinstance(reference, int) or reference < 1:
                raise ValueError(f"lvsa: reference must be a positive int, got {reference!r}")
            reference = _native.clip_token_frames(reference, facts.vae_temporal, facts.patch_t)
        note = "given"
    elif facts is not None:
        reference, note = facts.reference, f"{facts.name} default"
    else:
        raise ValueError(f"lvsa: no reference (training horizon) is known for {model}; pass reference= "
                         "(latent frames) so the pattern is not sized for another model")

    pattern = {name: knobs[name] for name in ("scale", "expand", "rotate") if name in knobs}
    config = PatternConfig(reference=reference, **frames, **pattern)
    Planner(Geometry(1, 1), config)  # the planner validates the knobs: fail at enable, not mid-denoising
    parallel = 1
    if "parallel" in knobs:
        from .parallel.install import degree_of  # torch.distributed: only when asked for

        parallel = degree_of(knobs["parallel"])
    return Settings(config, note, units, backend, knobs.get("strict", False), parallel, prologue, precision)


__all__ = ["Settings", "gather", "resolve"]
