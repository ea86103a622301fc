"""Attention backends behind :func:`lvsa.attention`.

Every backend is a module with ``run(q, k, v, plan, encoder_valid, scale, return_lse)`` returning
``(out, lse_or_None)`` for tensors ``[B, S, H, D]`` (contract: ``include/lvsa/attention.hpp``):

* ``cpu``       compiled tiled online-softmax kernels (``lvsa._native``), CPU tensors
* ``cuda``      compiled CUDA kernels (``lvsa._cuda``), CUDA tensors, when built with nvcc
* ``torch``     portable PyTorch-ops fallback for any device (CUDA, NPU, MPS, CPU)
* ``flashinfer`` FlashInfer's block-sparse attention (extra ``lvsa[flashinfer]``), CUDA tensors;
  explicit only, ``auto`` never picks it
* ``reference`` exact CPU reference in double precision (slow; the tests' oracle)
"""

from __future__ import annotations

import importlib
from types import ModuleType

from .._log import say_once

_MODULES = {"cpu": "cpu", "cuda": "cuda", "torch": "torch_sdpa", "reference": "reference", "flashinfer": "flashinfer"}
NAMES = ("auto", *_MODULES)


def _import_all() -> dict[str, ModuleType | str]:
    """Import every backend once, up front, so that choosing one at call time is plain dict
    logic that torch.compile can trace. A backend that cannot be imported (lvsa built without
    nvcc has no lvsa._cuda) is kept as the reason why."""
    loaded: dict[str, ModuleType | str] = {}
    for name, module in _MODULES.items():
        try:
            loaded[name] = importlib.import_module(f"{__name__}.{module}")
        except ImportError as error:
            loaded[name] = f"backend '{name}' is not built in this installation ({error})"
    return loaded


_LOADED = _import_all()


def load(name: str) -> ModuleType:
    module = _LOADED[name]
    if isinstance(module, str):
        raise RuntimeError(f"lvsa: {module}")
    return module


def unavailable_reason(name: str, device, dtype=None, head_dim=None) -> str | None:
    """Why backend ``name`` cannot run on ``device`` (and, when given, this dtype and head
    dimension); None when it can."""
    module = _LOADED[name]
    if isinstance(module, str):
        return module
    return module.unavailable_reason(device, dtype, head_dim)


def choose(name: str, device, strict: bool = False, dtype=None, head_dim=None) -> tuple[str, str | None]:
    """The concrete backend for ``name`` on ``device`` (for inputs of ``dtype`` and ``head_dim``
    when given) and, when ``auto`` had to fall back to ``torch``, why (else None). ``auto`` picks
    the compiled backend of the device and says which once; if it is missing or cannot take these
    inputs, ``auto`` falls back to ``torch`` and says why once, unless ``strict``, which makes that
    an error. An explicit backend that cannot run is always an error."""
    if name not in NAMES:
        raise ValueError(f"lvsa: backend must be one of {', '.join(NAMES)}, got {name!r}")
    if name != "auto":
        reason = unavailable_reason(name, device, dtype, head_dim)
        if reason:
            raise RuntimeError(f"lvsa: {reason}")
        return name, None
    compiled = {"cpu": "cpu", "cuda": "cuda"}.get(device.type)
    if compiled is None:
        say_once(f"attention backend auto -> torch for {device.type} tensors (no compiled kernels)")
        return "torch", None
    reason = unavailable_reason(compiled, device, dtype, head_dim)
    if reason is None:
        say_once(f"attention backend auto -> {compiled} for {device.type} tensors")
        return compiled, None
    if strict:
        raise RuntimeError(f"lvsa: strict mode: compiled backend unavailable: {reason}")
    say_once(f"attention backend auto -> torch for {device.type} tensors: {reason}", level=30)
    return "torch", reason


def resolve(name: str, device, strict: bool = False, dtype=None, head_dim=None) -> str:
    """The concrete backend name :func:`choose` picks."""
    return choose(name, device, strict, dtype, head_dim)[0]
