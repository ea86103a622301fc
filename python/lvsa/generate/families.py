"""What differs between the supported pipelines: which pipeline class drives a checkpoint (its
own, or the image-to-video class that takes an image for it), the family it belongs to and its
default frame rate (all declared on the family's adapter), its default size, its frame and pixel
grid, and the arguments of its call.

The grid is read from the loaded pipeline (its VAE's compression factors) and transformer (its
patch size), never assumed, so a frame count off the grid is refused with the nearest valid
counts before anything runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import _native
from ..plan import preset
from .args import UsageError



@dataclass(frozen=True)
class Grid:
    """The model's video grid: ``vae_temporal`` video frames per latent frame (after the first),
    ``vae_spatial`` pixels per latent pixel, and the transformer's patch (t, h, w)."""

    vae_temporal: int
    vae_spatial: int
    patch: tuple

    @property
    def pixel_multiple(self) -> int:
        return self.vae_spatial * max(self.patch[1], self.patch[2])

    @property
    def frame_factor(self) -> int:
        """Video frames per planner (token) frame: converts window-like knobs."""
        return self.vae_temporal * self.patch[0]

    def latent_frames(self, frames: int) -> int:
        return _native.clip_token_frames(frames, self.vae_temporal, 1)

    def token_frames(self, frames: int) -> int:
        # CogVideoX 1.5's pipeline pads the latents to a multiple of its temporal patch.
        return _native.clip_token_frames(frames, self.vae_temporal, self.patch[0])

    def tokens_per_frame(self, height: int, width: int) -> int:
        return (height // (self.vae_spatial * self.patch[1])) * (width // (self.vae_spatial * self.patch[2]))

    def check(self, frames: int, height: int, width: int, family: str) -> None:
        """Refuse a size the pipeline would round or reject, naming the nearest valid values."""
        if (frames - 1) % self.vae_temporal:
            below = frames - (frames - 1) % self.vae_temporal
            above = below + self.vae_temporal
            nearest = f"{below} or {above}" if below >= 1 else f"{above}"
            raise UsageError(
                f"--num-frames {frames} is off the grid of this {family} model: its VAE turns 1 + "
                f"{self.vae_temporal}k video frames into 1 + k latent frames, so use {self.vae_temporal}k+1 "
                f"frames; nearest valid: {nearest}")
        m = self.pixel_multiple
        for name, value in (("height", height), ("width", width)):
            if value % m:
                below, above = value - value % m, value - value % m + m
                nearest = f"{below} or {above}" if below > 0 else f"{above}"
                raise UsageError(f"--{name} {value} must be a multiple of {m} for this {family} model (VAE "
                                 f"{self.vae_spatial}x times patch {m // self.vae_spatial}); nearest valid: {nearest}")


def pipeline_for(checkpoint: dict, folder, image: bool) -> str:
    """The pipeline class to load the checkpoint (its ``model_index.json``) as: its own for text
    to video; for ``--image``, the class its family's adapter names to take the image."""
    from ..models import generate_pipelines

    name = checkpoint.get("_class_name")
    pipelines = generate_pipelines()
    if name not in pipelines:
        raise UsageError(f"{name} is not supported by lvsa generate; supported pipelines: {', '.join(pipelines)}")
    adapter = pipelines[name]
    if name in adapter.image_to_video and not image:
        raise UsageError(f"{folder} is an image-to-video checkpoint ({name}): pass its first frame with --image PATH")
    if not image:
        return name
    pipeline = adapter.image_pipeline(checkpoint)
    if pipeline is None:
        adapters = list(dict.fromkeys(pipelines.values()))
        takers = [n for a in adapters for n in a.image_to_video] + [a.also_take_an_image for a in adapters
                                                                    if a.also_take_an_image]
        raise UsageError(f"--image: {folder} is a text-to-video checkpoint ({name}) that takes no image; use an "
                         f"image-to-video one: {', '.join(takers)}")
    return pipeline


def family_of(pipe) -> tuple[str, float]:
    """(LVSA family, default fps) of a loaded pipeline, as its family's adapter declares."""
    from ..models import generate_pipelines

    adapter = generate_pipelines()[type(pipe).__name__]
    return adapter.family, {**adapter.text_to_video, **adapter.image_to_video}[type(pipe).__name__]


def grid_of(pipe) -> Grid:
    config = pipe.transformer.config
    if isinstance(config.patch_size, (tuple, list)):
        patch = tuple(config.patch_size)
    else:  # HunyuanVideo 1.5 and CogVideoX: a spatial patch size and an optional temporal one
        patch = (getattr(config, "patch_size_t", None) or 1, config.patch_size, config.patch_size)
    return Grid(int(pipe.vae_scale_factor_temporal), int(pipe.vae_scale_factor_spatial), patch)


def default_size(pipe) -> tuple[int, int, int]:
    """(frames, height, width) the model was trained at, from its LVSA preset."""
    from ..models import adapter_for

    transformer = pipe.transformer
    facts = adapter_for(transformer).facts(transformer, pipe)
    return tuple(preset(facts.name)["default_size"]) if facts is not None else (81, 480, 832)


def call_arguments(pipe, *, prompt: str, negative_prompt, frames: int, height: int, width: int,
                   steps: int, guidance, seed: int, latent: bool, image_arguments: dict, sized_by_image: bool) -> dict:
    """Keyword arguments of the pipeline call; ``guidance`` is set as the family's adapter says
    (HunyuanVideo 1.5 replaces its guider component instead); ``image_arguments``: the adapter's
    for the conditioning image; ``sized_by_image``: the pipeline takes its size from the image."""
    size = {} if sized_by_image else dict(height=height, width=width)
    kwargs = dict(prompt=prompt, **size, num_frames=frames, num_inference_steps=steps,
                  generator=torch.Generator(device="cpu").manual_seed(seed),
                  output_type="latent" if latent else "np", **image_arguments)
    if negative_prompt is not None:
        kwargs["negative_prompt"] = negative_prompt
    if guidance is not None:
        from ..models import adapter_for

        kwargs.update(adapter_for(pipe.transformer).guidance_arguments(pipe, guidance))
    return kwargs
