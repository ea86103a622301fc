"""What one patched transformer needs at run time: the pattern configuration, a planner per
geometry, and the step and video grid of the forward pass in flight.

An adapter's forward pre-hook calls :meth:`Runtime.begin_forward` with the video grid it read
from the transformer's inputs; the adapter's attention processors then ask for a plan for the
token layout they see (:meth:`Runtime.geometry` checks it against the grid) and attend through
:meth:`Runtime.attend`. Anything that keeps a layer on the model's own attention goes through
:meth:`Runtime.fall_back`: said once with the reason, or raised in strict mode.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Optional

from .. import backends, ops, step_context
from .._log import say_once
from ..plan import Geometry, PatternConfig, Planner, StepPlan


class Unsupported(Exception):
    """The inputs of this forward pass are valid for the model but outside what LVSA can express
    (its layers then run the model's own attention)."""


class Runtime:
    """LVSA state of one patched transformer (``label`` names it in messages: "wan transformer_2")."""

    # Geometries kept at once: a pipeline uses one or two (cond/uncond prompts of different
    # length in Cosmos 3); the bound keeps a long-running server with varying prompts in check.
    _max_planners = 16

    def __init__(self, label: str, reference_note: str, config: PatternConfig, backend: str, strict: bool):
        self.label = label
        self.reference_note = reference_note
        self.config = config
        self.backend = backend
        self.strict = strict
        self._planners: "OrderedDict[Geometry, Planner]" = OrderedDict()
        self.grid: Optional[tuple[int, int]] = None   # (T, P) of the forward in flight
        self.unsupported: Optional[str] = None        # why this forward runs the model's attention
        self.step = 0
        self.memo: dict = {}                          # per-forward derived data (e.g. valid lengths)
        # backend -> why auto fell back to it (None: it is the one asked for), of the calls that ran
        self.backends_used: dict[str, Optional[str]] = {}
        self._reported: set = set()                   # (geometry, backend) pairs whose line was said

    # --- forward pass ------------------------------------------------------------------------

    def begin_forward(self, grid: Optional[tuple[int, int]], unsupported: Optional[str] = None) -> None:
        self.grid, self.unsupported = grid, unsupported
        self.memo.clear()
        if unsupported is not None:
            self.fall_back(unsupported)
        step = step_context.current_step()
        if step is None:
            self.fall_back_step()
            step = 0
        self.step = step

    def end_forward(self) -> None:
        self.grid, self.unsupported = None, None
        self.memo.clear()

    # --- geometry and plans ------------------------------------------------------------------

    def geometry(self, video_tokens: int, encoder_len: int = 0, encoder_side: str = "none") -> Geometry:
        """The geometry of one attention call, checked against the grid of this forward: the
        video part must be exactly T·P tokens (a mismatch is an error, never a guess)."""
        if self.grid is None:
            raise ValueError(f"lvsa: {self.label}: attention called outside the transformer's forward, "
                             "so the video grid (latent frames T, tokens per frame P) is unknown")
        T, P = self.grid
        if video_tokens != T * P:
            raise ValueError(f"lvsa: {self.label}: self-attention sees {video_tokens} video tokens but the "
                             f"transformer's input gives T={T} latent frames x P={P} tokens per frame = {T * P}"
                             f" (+ {encoder_len} encoder tokens); the token layout is not the one LVSA expects")
        return Geometry(T, P, encoder_len, encoder_side if encoder_len else "none")

    def planner(self, geometry: Geometry) -> Planner:
        planner = self._planners.get(geometry)
        if planner is None:
            planner = Planner(geometry, self.config)
            self._planners[geometry] = planner
            if len(self._planners) > self._max_planners:
                self._planners.popitem(last=False)
        else:
            self._planners.move_to_end(geometry)
        return planner

    def plan(self, geometry: Geometry) -> StepPlan:
        return self.planner(geometry).step(self.step)

    def attend(self, q, k, v, geometry: Geometry, encoder_valid=None):
        """LVSA attention for ``[B, S, H, D]`` tensors at this forward's denoising step, on the
        backend these tensors get (resolved with their device, dtype and head_dim, so what the
        engagement line says is what runs)."""
        backend, reason = backends.choose(self.backend, q.device, self.strict, q.dtype, q.shape[-1])
        self.backends_used.setdefault(backend, reason)
        if (geometry, backend) not in self._reported:
            self._reported.add((geometry, backend))
            self._report(self.planner(geometry), backend, reason)
        return ops.attention(q, k, v, self.plan(geometry), encoder_valid=encoder_valid, backend=backend,
                             strict=self.strict)

    # --- reports -----------------------------------------------------------------------------

    def _report(self, planner: Planner, backend: str, reason: Optional[str]) -> None:
        """The engagement line, once per geometry and backend: what the pattern does to this video,
        and which backend runs it."""
        g, c = planner.geometry, self.config
        offsets = range(planner.kfi if c.rotate else 1)
        plans = [planner.step(o) for o in offsets]
        attended = sorted({round(p.frame_density * g.frames, 1) for p in plans})
        globals_ = sorted({len(p.globals) for p in plans})
        density = sum(p.frame_density for p in plans) / len(plans)
        encoder = f", {g.encoder_len} encoder tokens {g.encoder_side}" if g.encoder_len else ""
        pattern = "dense (T <= reference)" if planner.kfi == 1 else f"kfi {planner.kfi}"
        say_once(f"{self.label}: T={g.frames} latent frames x P={g.tokens_per_frame}{encoder}; "
                 f"reference {c.reference} ({self.reference_note}), extension {g.frames / c.reference:.2f}x; "
                 f"{pattern}, globals {_span(globals_)}, attended {_span(attended)}/{g.frames} frames, "
                 f"density {density:.2f}; backend {describe_backend(backend, reason)}")

    def fall_back(self, reason: str) -> None:
        """Keep the model's own attention for this call: an error in strict mode, else said once."""
        if self.strict:
            raise RuntimeError(f"lvsa: strict mode: {self.label}: {reason}")
        say_once(f"{self.label}: using the model's own (dense) attention: {reason}", logging.WARNING)

    def fall_back_step(self) -> None:
        message = (f"{self.label} called outside an lvsa-enabled pipeline call and without "
                   "lvsa.denoising_step(i), so the denoising step is unknown")
        if self.strict:
            raise RuntimeError(f"lvsa: strict mode: {message}")
        say_once(f"{message}: using step 0 (the keyframe grid does not rotate)", logging.WARNING)


def describe_backend(backend: str, reason: Optional[str]) -> str:
    """``cuda``, or ``torch (auto fell back: <why>)``."""
    return backend if reason is None else f"{backend} (auto fell back: {reason})"


def _span(values: list) -> str:
    """``a`` or ``a-b``: a value that may differ between rotation offsets."""
    return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"
