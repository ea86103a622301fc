"""What one patched transformer needs at run time: the pattern configuration, a planner per
geometry, and the step and video grid of the forward pass in flight.

An adapter's forward pre-hook calls :meth:`Runtime.begin_forward` with the video grid it read
from the transformer's inputs; the adapter's attention processors then ask for a plan for the
token layout they see (:meth:`Runtime.geometry` checks it against the grid) and attend through
:meth:`Runtime.attend`. Anything that keeps a layer on the model's own attention goes through
:meth:`Runtime.fall_back`: said once with the reason, or raised in strict mode.

Under ``torch.compile`` the step is a fact of the request in flight when the graph *runs*, not
when it is traced: :meth:`Runtime.attend` then calls the custom op
``torch.ops.lvsa.transformer_attention``, opaque to the compiler, whose implementation reads the
step, finds the plan (building the planner on first use) and attends, all at run time. So one
graph serves every step and rotation offset, without recompiling or breaking the graph. The
conditions on input *values* that make an eager forward fall back (HunyuanVideo 1.5's mask,
Cosmos 3's token order) travel with the op as bool tensors: a graph cannot branch on them, so
a failed one is an error when the op runs.
"""

from __future__ import annotations

import inspect
import itertools
import logging
import weakref
from collections import OrderedDict
from typing import Optional, Sequence

import torch

from .. import backends, ops, step_context
from ..backends import quantized_scores
from .._log import say_once
from ..plan import Geometry, PatternConfig, Planner, StepPlan

# A bool tensor (all True required) and the reason LVSA cannot take the call when it is not.
ValueCheck = tuple[torch.Tensor, str]


class Unsupported(Exception):
    """The inputs of this forward pass are valid for the model but outside what LVSA can express
    (its layers then run the model's own attention)."""


class Runtime:
    """LVSA state of one patched transformer (``label`` names it in messages: "wan transformer_2")."""

    # Geometries kept at once: a pipeline uses one or two (cond/uncond prompts of different
    # length in Cosmos 3); the bound keeps a long-running server with varying prompts in check.
    _max_planners = 16

    def __init__(self, label: str, reference_note: str, config: PatternConfig, backend: str, strict: bool,
                 prologue: str = "fused", precision: str = "default"):
        self.label = label
        self.reference_note = reference_note
        self.config = config
        self.backend = backend
        self.strict = strict
        self.precision = precision  # "default", "fp8", "int8" or "int8-fp8" (lvsa.attention)
        self.prologue = prologue  # how processors compute q and k's norm and RoPE (lvsa.prologue)
        self._planners: "OrderedDict[Geometry, Planner]" = OrderedDict()
        self.grid: Optional[tuple[int, int]] = None   # (T, P) of the forward in flight
        self.unsupported: Optional[str] = None        # why this forward runs the model's attention
        self.step = 0                                 # the step of the eager forward in flight
        self.checks: list[ValueCheck] = []            # a traced forward's value checks, for the op
        self.memo: dict = {}                          # per-forward derived data (e.g. valid lengths)
        # backend -> why auto fell back to it (None: it is the one asked for), of the calls that ran
        self.backends_used: dict[str, Optional[str]] = {}
        self._reported: set = set()                   # (geometry, backend) pairs whose line was said
        self.id = next(_ids)
        _runtimes[self.id] = self

    # --- forward pass ------------------------------------------------------------------------

    def begin_forward(self, grid: Optional[tuple[int, int]], unsupported: Optional[str] = None,
                      checks: Sequence[ValueCheck] = ()) -> None:
        """Start a forward pass; ``checks``: the adapter's value checks of its inputs."""
        traced = torch.compiler.is_compiling()
        if traced:
            self.checks = list(checks)  # evaluated when the op runs, where the step is read too
        elif unsupported is None:
            unsupported = next((reason for ok, reason in checks if not bool(ok.all())), None)
            if unsupported is not None:
                grid = None
        self.grid, self.unsupported = grid, unsupported
        self.memo.clear()
        if unsupported is not None:
            self.fall_back(unsupported)
        if not traced:
            self.step = self.request_step()

    def end_forward(self) -> None:
        self.grid, self.unsupported = None, None
        self.checks = []
        self.memo.clear()

    def request_step(self) -> int:
        """The denoising step of the request in flight; step 0 (said once, or an error in strict
        mode) when none is known."""
        step = step_context.current_step()
        if step is None:
            self.fall_back_step()
            step = 0
        return step

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

    def plan(self, geometry: Geometry, step: int) -> StepPlan:
        return self.planner(geometry).step(step)

    def attend(self, q, k, v, geometry: Geometry, encoder_valid=None, checks: Sequence[ValueCheck] = ()):
        """LVSA attention for ``[B, S, H, D]`` tensors at this forward's denoising step. ``checks``:
        this call's value checks, which only a traced call passes (an eager caller decides them)."""
        if torch.compiler.is_compiling():
            checks = [*self.checks, *checks]
            g = geometry
            return _transformer_attention(q, k, v, self.id, [g.frames, g.tokens_per_frame, g.encoder_len],
                                          g.encoder_side, encoder_valid, [ok for ok, _ in checks],
                                          "\n".join([reason for _, reason in checks]))
        return self.attend_at(q, k, v, geometry, self.step, encoder_valid)

    def attend_traced(self, q, k, v, geometry: Geometry, encoder_valid, checks: Sequence[ValueCheck]):
        """What a traced :meth:`attend` does when the graph runs."""
        for ok, reason in checks:
            if not bool(ok.all()):
                raise RuntimeError(f"lvsa: {self.label}: {reason}; a compiled transformer cannot switch to the "
                                   "model's own attention for these inputs: run it without torch.compile")
        return self.attend_at(q, k, v, geometry, self.request_step(), encoder_valid)

    def attend_at(self, q, k, v, geometry: Geometry, step: int, encoder_valid=None, scale: Optional[float] = None):
        """Eager attention at ``step`` on the backend these tensors get (resolved with their
        device, dtype and head_dim, so what the engagement line says is what runs). For callers
        that know the step and the geometry themselves: the forward pass in flight, or a
        serving engine whose requests carry them (the vLLM-Omni plugin)."""
        requested = ops.backend_for(self.backend, self.precision)
        backend, reason = backends.choose(requested, q.device, self.strict, q.dtype, q.shape[-1])
        self.backends_used.setdefault(backend, reason)
        if (geometry, backend) not in self._reported:
            self._reported.add((geometry, backend))
            self._report(self.planner(geometry), backend, reason)
        return ops.attention(q, k, v, self.plan(geometry, step), encoder_valid=encoder_valid, scale=scale,
                             backend=backend, strict=self.strict, precision=self.precision)

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
                 f"density {density:.2f}; backend {describe_backend(backend, reason)}"
                 f"{quantized_scores.note(self.precision, values=True)}")

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


# Runtimes by id, for the op, whose schema cannot carry host objects; a runtime lives as long as
# the processors and hooks that ``lvsa.enable`` installed.
_runtimes: "weakref.WeakValueDictionary[int, Runtime]" = weakref.WeakValueDictionary()
_ids = itertools.count(1)


# The op reads host state (the step) when it runs, which a CUDA graph replay would skip: where
# torch has the tag, inductor keeps the op out of the graphs it captures (mode="reduce-overhead").
_NOT_CAPTURABLE = ({"tags": (torch.Tag.cudagraph_unsafe,)}
                   if hasattr(torch.Tag, "cudagraph_unsafe")
                   and "tags" in inspect.signature(torch.library.custom_op).parameters else {})


@torch.library.custom_op("lvsa::transformer_attention", mutates_args=(), **_NOT_CAPTURABLE)
def _transformer_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, runtime_id: int,
                           layout: Sequence[int], encoder_side: str, encoder_valid: Optional[torch.Tensor],
                           checks: Sequence[torch.Tensor], reasons: str) -> torch.Tensor:
    if q.is_cuda and torch.cuda.is_current_stream_capturing():  # a torch without the tag
        raise RuntimeError("lvsa: a compiled transformer's attention reads the denoising step when it runs, "
                           "which a CUDA graph replay would not: compile it without CUDA graphs (not "
                           "mode='reduce-overhead')")
    runtime = _runtimes.get(runtime_id)
    if runtime is None:
        raise RuntimeError("lvsa: this compiled transformer was traced with an LVSA installation that is gone "
                           "(lvsa.disable or a new lvsa.enable); compile it again")
    return runtime.attend_traced(q, k, v, Geometry(*layout, encoder_side), encoder_valid,
                                 list(zip(checks, reasons.split("\n"))))


@_transformer_attention.register_fake
def _(q, k, v, runtime_id, layout, encoder_side, encoder_valid, checks, reasons):
    return q.new_empty(q.shape)  # contiguous, as lvsa.attention returns it


ops.forward_only(_transformer_attention)


def _span(values: list) -> str:
    """``a`` or ``a-b``: a value that may differ between rotation offsets."""
    return f"{values[0]:g}" if len(values) == 1 else f"{values[0]:g}-{values[-1]:g}"
