"""The contract between the generic installer (``lvsa.integration``) and one model family.

An adapter knows, for one diffusers transformer class: which model it is (preset: reference
frames, VAE and patch factors), which attention modules are self-attention over the video, the
processor class diffusers puts there, how to read the video grid (latent frames T, tokens per
frame P) from the transformer's forward inputs, and how to build the LVSA processor that
replaces the model's one while reusing its projections, norms and RoPE.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch

from ..parallel.attention import ulysses_for
from ..model_facts import ModelFacts
from ._runtime import Runtime, ValueCheck


class Adapter:
    """One model family's integration (subclasses set the class attributes and the methods)."""

    family: str                 # "wan", "hunyuan_video", ...: as in the presets and messages
    transformer_class: type     # the diffusers transformer class this adapter serves
    model_processor_class: type      # the processor class diffusers installs on the patched modules
    # Text-to-video pipeline class names `lvsa generate` drives for this family -> default fps.
    text_to_video: dict = {}
    # Image-to-video pipeline class names `lvsa generate --image` drives -> default fps: a checkpoint
    # saved as one of them needs an image.
    image_to_video: dict = {}
    # Text-to-video checkpoints of this family that take an image too (see `image_pipeline`), for messages.
    also_take_an_image: str = ""

    def facts(self, transformer: torch.nn.Module, pipe) -> Optional[ModelFacts]:
        """The model's facts; ``pipe`` (None for a bare transformer) may tell variants apart.
        None when the family has no known reference for this variant (the user must give one)."""
        raise NotImplementedError

    def attention_modules(self, transformer: torch.nn.Module) -> Iterable[tuple[str, torch.nn.Module]]:
        """``(qualified name, module)`` of every self-attention module to patch."""
        raise NotImplementedError

    def video_grid(self, transformer: torch.nn.Module, args: tuple, kwargs: dict) -> tuple[int, int]:
        """``(T, P)`` from the transformer's forward inputs and config; raises ``Unsupported``
        for inputs LVSA cannot express and ``ValueError`` for inconsistent ones."""
        raise NotImplementedError

    def value_checks(self, transformer: torch.nn.Module, args: tuple, kwargs: dict) -> list[ValueCheck]:
        """Conditions on the values of the forward inputs (bool tensors, all True required) that
        LVSA needs besides the shapes ``video_grid`` checks, each with the reason when it fails.
        Built from tensor ops only, so that a compiled forward can defer them to run time."""
        return []

    def processor(self, runtime: Runtime, model_processor) -> object:
        """The LVSA processor for one module whose current processor is ``model_processor``."""
        raise NotImplementedError

    def rope(self, transformer: torch.nn.Module):
        """The temporal RoPE layout RIFLEx rewrites (an ``lvsa.rope.Rope``); None: RIFLEx does
        not apply to this family. Raises ``ValueError`` for a variant without RoPE."""
        return None

    def parallel_plan(self, transformer: torch.nn.Module):
        """How Ulysses (``parallel=N``) splits the sequence: a diffusers context-parallel plan (a
        dict, built from ``lvsa.parallel.plans``' ``Split``/``Gather``), or a class whose
        ``cls(group).install(transformer)`` sets the model's own seams and returns the undo.
        None: this family has no plan."""
        return None

    def image_pipeline(self, checkpoint: dict) -> Optional[str]:
        """The pipeline class that conditions the checkpoint whose ``model_index.json`` is
        ``checkpoint`` on an image, None when it takes no image. The default: the checkpoint's own
        class, if it is one of ``image_to_video``."""
        name = checkpoint.get("_class_name")
        return name if name in self.image_to_video else None

    def image_size(self, pipe, width: int, height: int) -> Optional[tuple[int, int]]:
        """``(height, width)`` of the video for an image of ``width`` x ``height``, for a pipeline
        that sizes the video from its image and takes no height or width; None: it takes them."""
        return None

    def image_arguments(self, pipe, image, last_image) -> dict:
        """The pipeline call's keyword arguments that condition it on ``image`` (the first frame,
        an RGB PIL image at the video's size) and ``last_image`` (the last frame, or None). Raises
        ``ValueError`` for a last frame the pipeline cannot take."""
        if last_image is not None:
            raise ValueError(f"{type(pipe).__name__} conditions on the first frame only, not on a last frame")
        return {"image": image}

    def guidance_arguments(self, pipe, guidance: float) -> dict:
        """The pipeline call's keyword arguments that set the guidance scale ``guidance``."""
        return {"guidance_scale": guidance}


class LVSAProcessor:
    """Base of the adapters' processors: holds the runtime and the model's own processor, which
    runs the calls LVSA cannot take (said once with the reason; an error in strict mode).

    ``_attention_backend`` and ``_parallel_config`` are the attributes diffusers sets on every
    processor (``set_attention_backend``, ``enable_parallelism``); they reach the model's
    processor when it runs a call. A ``_parallel_config`` (Ulysses) makes the processor see its
    rank's share of the video tokens: :meth:`geometry` and :meth:`attend` then work on the whole
    sequence through ``lvsa.parallel``'s all-to-alls.
    """

    _attention_backend = None
    # Whether the model's own processor computes attention correctly on a Ulysses-sharded sequence
    # (Wan's does, through diffusers' Ulysses); if not, a sharded call cannot fall back to it.
    model_processor_runs_sharded = False

    def __init__(self, runtime: Runtime, model_processor):
        self.runtime = runtime
        self.model_processor = model_processor
        # A model parallelised by diffusers before lvsa.enable keeps its config on the new processor.
        self._parallel_config = getattr(model_processor, "_parallel_config", None)

    def model_processor_reason(self) -> Optional[str]:
        """Why this call must run the model's own attention (None: LVSA takes it)."""
        return self.runtime.unsupported

    def geometry(self, video_tokens: int, encoder_len: int = 0, encoder_side: str = "none"):
        """The whole call's geometry from the video tokens this processor sees (its rank's share
        under Ulysses) and the encoder tokens (whole on every rank)."""
        ulysses = ulysses_for(self._parallel_config)
        if ulysses is not None:
            video_tokens = ulysses.whole_video(video_tokens, self.runtime.grid)
        return self.runtime.geometry(video_tokens, encoder_len, encoder_side)

    def attend(self, q, k, v, geometry, encoder_valid=None, checks=()):
        """LVSA attention on the ``[B, S, H, D]`` tensors this processor built (under Ulysses: its
        rank's tokens, all heads), returning the output in the same layout (``checks``: see
        :meth:`Runtime.attend`)."""
        ulysses = ulysses_for(self._parallel_config)
        if ulysses is None:
            return self.runtime.attend(q, k, v, geometry, encoder_valid, checks)
        return ulysses.attend(self.runtime, q, k, v, geometry, encoder_valid, checks)

    def run_model_processor(self, reason: str, *args, **kwargs):
        if self._parallel_config is not None and not self.model_processor_runs_sharded:
            raise RuntimeError(f"lvsa: {self.runtime.label}: {reason}; the model's own attention cannot run on a "
                               "sequence split over processes (Ulysses), so this call has no fallback")
        self.runtime.fall_back(reason)
        self.model_processor._attention_backend = self._attention_backend
        self.model_processor._parallel_config = self._parallel_config
        return self.model_processor(*args, **kwargs)


_REQUIRED = object()


def forward_input(name: str, position: int, args: tuple, kwargs: dict, default=_REQUIRED):
    """A forward argument passed either by keyword or positionally (``default`` if absent)."""
    if name in kwargs:
        return kwargs[name]
    if position < len(args):
        return args[position]
    if default is _REQUIRED:
        raise ValueError(f"lvsa: the transformer was called without `{name}`")
    return default


def spatial_grid(height: int, width: int, patch_h: int, patch_w: int) -> int:
    """Tokens per latent frame, with the floor division the models' patch embeddings apply."""
    return (height // patch_h) * (width // patch_w)
