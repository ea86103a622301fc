"""What the knobs need to know about a model, as its adapter gives it (``Adapter.facts``).

A leaf module, so that ``lvsa.settings`` (which reads the facts) and ``lvsa.models`` (which
gives them) do not import each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFacts:
    """What the pattern needs to know about a model: ``reference`` = training horizon in the
    planner's frames (latent frames after temporal patching), and the video-frame → planner-frame
    factor ``vae_temporal * patch_t`` used to convert knobs given in video frames."""

    name: str
    reference: int
    vae_temporal: int
    patch_t: int

    @classmethod
    def from_preset(cls, preset: dict) -> "ModelFacts":
        return cls(preset["name"], preset["reference"], preset["vae_temporal"], preset["patch"][0])


__all__ = ["ModelFacts"]
