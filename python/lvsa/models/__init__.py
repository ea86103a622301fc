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


def supported() -> str:
    """The supported transformer classes, and the families this diffusers lacks, for messages."""
    names = ", ".join(f"{cls.__name__} ({a.family})" for cls, a in _registry.items())
    missing = "".join(f"; {family} unavailable: {why}" for family, why in _unavailable.items())
    return names + missing


__all__ = ["Adapter", "LVSAProcessor", "Runtime", "Unsupported", "adapter_for", "supported"]
