"""RIFLEx: one temporal RoPE frequency rescaled so that its period covers the extrapolated length.

A video diffusion transformer asked for more frames than it was trained on tends to repeat
itself: the *intrinsic* temporal frequency — the one whose period is closest to the training
length ``L`` (in RoPE positions: latent frames after temporal patching) — wraps around and the
model returns to the start of its motion. RIFLEx (``docs/spec/models.md``) moves that one
frequency, ``k = argmin_j |2π·θ^(2j/t_dim) − L|``, to ``2π / (L·s)`` for an extrapolation ratio
``s``, so its period becomes ``L·s``; every other frequency is untouched, and ``s = 1`` changes
nothing at all (no hook is installed).

``enable(pipe_or_transformer, s)`` edits the rotary tables of every transformer component (both
experts of Wan 2.2 A14B): Wan's precomputed tables in place (undone by ``disable``), and for the
families that compute RoPE per forward (HunyuanVideo 1.5, Cosmos 2.5, CogVideoX — whose pipeline
computes it) a hook that rewrites the k-th temporal column pair of each table. It only touches
positions, never attention, so it composes with ``lvsa.enable`` in either order, also under
Ulysses (``parallel=N``), whose plans split the tables only after RIFLEx rewrote them whole. A
table that reaches RIFLEx already split is an error: its rows' frame positions are unknown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional

import torch

from ._log import say_once
from .rope import Rope

_HANDLE_ATTRIBUTE = "_lvsa_riflex_handle"


def intrinsic_index(theta: float, t_dim: int, train_len: float) -> int:
    """``k = argmin_j |2π·θ^(2j/t_dim) − L|`` over the ``t_dim / 2`` temporal frequencies: the
    one whose period is closest to the training length."""
    periods = [2 * math.pi * theta ** (2 * j / t_dim) for j in range(t_dim // 2)]
    return min(range(len(periods)), key=lambda j: abs(periods[j] - train_len))


@dataclass
class Handle:
    """What ``enable`` changed: the frequency index ``k`` (0-based), the training length and
    ratio, the frequencies before and after (per RoPE position), and the components edited."""

    family: str
    s: float
    k: int
    train_len: float
    theta: float
    t_dim: int
    components: list = field(default_factory=list)
    _undo: list = field(default_factory=list, repr=False)

    @property
    def frequency(self) -> float:
        return self.theta ** (-2 * self.k / self.t_dim)

    @property
    def new_frequency(self) -> float:
        return 2 * math.pi / (self.train_len * self.s)

    def summary(self) -> str:
        if self.s == 1:
            return f"RIFLEx s=1: no change ({self.family})"
        return (f"RIFLEx on {', '.join(self.components)} ({self.family}): temporal frequency k={self.k} of "
                f"{self.t_dim // 2} (period {2 * math.pi / self.frequency:.1f} positions, closest to the training "
                f"length {self.train_len:g}) set to period {self.train_len * self.s:.1f} (s={self.s:g})")

    def disable(self) -> None:
        while self._undo:
            self._undo.pop()()


def _family_rope(transformer: torch.nn.Module) -> tuple[str, Rope]:
    """The family of ``transformer`` and the layout of its temporal RoPE, as its adapter declares."""
    from .models import adapter_for, riflex_supported

    adapter = adapter_for(transformer)
    rope = adapter.rope(transformer) if adapter is not None else None
    if rope is None:
        raise ValueError(f"lvsa.riflex: {type(transformer).__name__} is not supported; RIFLEx supports "
                         f"{riflex_supported()}")
    return adapter.family, rope


def _transformers(target) -> dict:
    if isinstance(target, torch.nn.Module):
        return {"transformer": target}
    found = {name: c for name, c in getattr(target, "components", {}).items()
             if isinstance(c, torch.nn.Module) and name.startswith("transformer")}
    if not found:
        raise TypeError(f"lvsa.riflex expects a diffusers pipeline or transformer, got {type(target).__name__}")
    # torch.compile wraps a module; its hooks and buffers live on the original.
    return {name: getattr(c, "_orig_mod", c) for name, c in found.items()}


def training_length(target) -> float:
    """The training horizon of a pipeline's (or a transformer's) model in RoPE frames (latent
    frames after temporal patching): the reference LVSA uses for the model."""
    from .models import adapter_for

    transformer = next(iter(_transformers(target).values()))
    pipe = None if isinstance(target, torch.nn.Module) else target
    adapter = adapter_for(transformer)
    facts = adapter.facts(transformer, pipe) if adapter is not None else None
    if facts is None:
        raise ValueError("lvsa.riflex: the training length of this model is unknown; pass train_len= "
                         "(latent frames after temporal patching)")
    return float(facts.reference)


def enable(target, s: float, *, k: Optional[int] = None, train_len: Optional[float] = None) -> Handle:
    """Apply RIFLEx with extrapolation ratio ``s`` (>= 1; typically generated frames / training
    frames) to a pipeline's transformers or to one transformer.

    ``train_len``: the training length ``L`` in latent frames after temporal patching (default:
    the model's reference horizon, as ``lvsa.enable`` uses it); ``k`` overrides the intrinsic
    frequency index (0-based). Lengths are RoPE positions, which are latent frames for every family
    except a Cosmos call given ``fps``, whose positions are frames at the model's base fps (Cosmos
    2.5 pipelines pass none).
    """
    if not (isinstance(s, (int, float)) and math.isfinite(s) and s >= 1):
        raise ValueError(f"lvsa.riflex: s must be a number >= 1 (generated length / training length), got {s!r}")
    disable(target)
    transformers = _transformers(target)
    first = next(iter(transformers.values()))
    family, rope = _family_rope(first)
    length = float(train_len) if train_len is not None else training_length(target)
    if not length > 0:
        raise ValueError(f"lvsa.riflex: train_len must be positive, got {train_len!r}")
    count = rope.t_dim // 2
    index = intrinsic_index(rope.theta, rope.t_dim, length) if k is None else k
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < count:
        raise ValueError(f"lvsa.riflex: k must be an int in [0, {count}) (this model has {count} temporal "
                         f"frequencies), got {k!r}")
    handle = Handle(family, float(s), index, length, rope.theta, rope.t_dim)
    if s == 1:  # the exact no-op: nothing is installed
        return handle

    frequency = handle.new_frequency
    columns = rope.columns(index)
    try:
        for component, transformer in transformers.items():
            handle._undo.append(rope.tables.install(transformer, columns, frequency))
            handle.components.append(component)
        setattr(target, _HANDLE_ATTRIBUTE, handle)
        handle._undo.append(lambda: delattr(target, _HANDLE_ATTRIBUTE))
    except BaseException:
        handle.disable()
        raise
    say_once(handle.summary())
    return handle


def disable(target) -> None:
    """Undo :func:`enable` (a no-op when RIFLEx is not on ``target``)."""
    handle = getattr(target, _HANDLE_ATTRIBUTE, None)
    if handle is not None:
        handle.disable()


__all__ = ["Handle", "enable", "disable", "intrinsic_index", "training_length"]
