"""Model adapters, one module per family, registered by the diffusers transformer class they serve.

Importing this package imports diffusers. A family whose classes the installed diffusers lacks
(older releases have no Cosmos 3) is left out, and the reason is kept for error messages.
"""

from __future__ import annotations

import importlib
from typing import Optional

import torch

from ._adapter import Adapter, LVSAProcessor
from ._runtime import Runtime, Unsupported

_FAMILY_MODULES = ("wan", "hunyuan_video", "cogvideox", "cosmos", "cosmos3")

_registry: dict[type, Adapter] = {}
_unavailable: dict[str, str] = {}

for _name in _FAMILY_MODULES:
    try:
        _module = importlib.import_module(f"{__name__}.{_name}")
    except ImportError as error:
        _unavailable[_name] = f"{error}"
        continue
    for _adapter in _module.ADAPTERS:
        _registry[_adapter.transformer_class] = _adapter


def adapter_for(module: torch.nn.Module) -> Optional[Adapter]:
    """The adapter serving ``module``'s class (or the nearest registered base class), if any."""
    for cls in type(module).__mro__:
        adapter = _registry.get(cls)
        if adapter is not None:
            return adapter
    return None


def adapter_for_family(family: str) -> Adapter:
    """The adapter of ``family`` ("wan", "hunyuan_video", ...), for integrations that serve the
    family through their own model classes (the vLLM-Omni plugin) but take its facts from here."""
    for adapter in _registry.values():
        if adapter.family == family:
            return adapter
    why = f" ({_unavailable[family]})" if family in _unavailable else ""
    raise ValueError(f"lvsa: no adapter for the model family {family!r}{why}; known: "
                     f"{', '.join(sorted({a.family for a in _registry.values()}))}")


def riflex_supported() -> str:
    """The transformer classes whose adapters declare a RoPE layout for RIFLEx, for messages."""
    return ", ".join(cls.__name__ for cls, a in _registry.items() if type(a).rope is not Adapter.rope)


def parallel_supported() -> str:
    """The families whose adapters declare a sequence-split plan for Ulysses, for messages."""
    return ", ".join(a.family for a in _registry.values() if type(a).parallel_plan is not Adapter.parallel_plan)


def generate_pipelines() -> dict[str, Adapter]:
    """Text- and image-to-video pipeline class name -> the adapter of its family (`lvsa generate`)."""
    return {name: a for a in _registry.values() for name in (*a.text_to_video, *a.image_to_video)}


def supported() -> str:
    """The supported transformer classes, and the families this diffusers lacks, for messages."""
    names = ", ".join(f"{cls.__name__} ({a.family})" for cls, a in _registry.items())
    missing = "".join(f"; {family} unavailable: {why}" for family, why in _unavailable.items())
    return names + missing


__all__ = ["Adapter", "LVSAProcessor", "Runtime", "Unsupported", "adapter_for", "adapter_for_family",
           "generate_pipelines", "parallel_supported", "riflex_supported", "supported"]
