"""The request in flight, as the attention backend needs it: which served pipeline runs (and so
the model's facts), the denoising step where the pipeline does not publish it, and the latent
grid of the transformer forward in flight where the model passes no layout to attention.

vLLM-Omni hands a backend only tensors and per-call metadata, so the plugin wraps the served
classes' methods once (:func:`install`): a served pipeline's ``forward`` opens a request; for a
pipeline that does not record its step, each ``scheduler_step_maybe_with_cfg`` (called once per
denoising step by the pipeline's loop) advances it — counting scheduler steps, never transformer
calls, so classifier-free guidance shares the step and every request starts at 0; a transformer
in :data:`served.GRID_FROM_INPUT` publishes its input's grid for the duration of its forward.
The wrappers only record; the wrapped methods run unchanged.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Optional

from lvsa.model_facts import ModelFacts

from . import served


@dataclass
class Request:
    pipe: object
    pipeline: served.ServedPipeline
    facts: Optional[ModelFacts]
    grid: Optional[tuple[int, int]] = None   # (T, P) of the transformer forward in flight
    step: int = 0                            # scheduler steps taken (pipelines that do not record it)


_current: ContextVar[Optional[Request]] = ContextVar("lvsa_vllm_omni_request", default=None)


def current() -> Optional[Request]:
    return _current.get()


def _publish_step(step: Optional[int]) -> None:
    from vllm_omni.diffusion.forward_context import set_forward_context_denoise_step_idx

    set_forward_context_denoise_step_idx(step)


@contextmanager
def serving(entry: served.ServedPipeline, facts: Optional[ModelFacts], pipe=None):
    """Run the enclosed transformer calls as one request of the served pipeline ``entry`` (what a
    served pipeline's ``forward`` does; also for callers that drive vLLM-Omni's transformer
    themselves). A pipeline that does not record its step starts at step 0."""
    token = _current.set(Request(pipe, entry, facts))
    if not entry.records_step:
        _publish_step(0)
    try:
        yield _current.get()
    finally:
        _current.reset(token)
        if not entry.records_step:
            _publish_step(None)


def _wrap(cls: type, method: str, make) -> None:
    original = getattr(cls, method)
    if getattr(original, "__lvsa_wrapped__", False):
        return
    wrapper = functools.wraps(original)(make(original))
    wrapper.__lvsa_wrapped__ = True
    setattr(cls, method, wrapper)


def _pipeline_forward(entry: served.ServedPipeline, cls: type):
    def make(original):
        def forward(self, *args, **kwargs):
            if type(self) is not cls:  # a subclass (e.g. VACE) is not served as its base
                token = _current.set(None)
                try:
                    return original(self, *args, **kwargs)
                finally:
                    _current.reset(token)
            with serving(entry, entry.facts(self), self):
                return original(self, *args, **kwargs)
        return forward
    return make


def _scheduler_step(original):
    def step(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        request = _current.get()
        if request is not None and request.pipe is self:
            request.step += 1
            _publish_step(request.step)
        return out
    return step


def _transformer_forward(grid_of):
    def make(original):
        def forward(self, *args, **kwargs):
            request = _current.get()
            if request is None:
                return original(self, *args, **kwargs)
            hidden_states = kwargs["hidden_states"] if "hidden_states" in kwargs else args[0]
            outer, request.grid = request.grid, grid_of(self, tuple(hidden_states.shape))
            try:
                return original(self, *args, **kwargs)
            finally:
                request.grid = outer
        return forward
    return make


_installed = False


def install() -> None:
    """Wrap the served classes' methods (once per process)."""
    global _installed
    if _installed:
        return
    for entry in served.PIPELINES:
        cls = entry.pipeline_class()
        _wrap(cls, "forward", _pipeline_forward(entry, cls))
        if not entry.records_step:
            _wrap(cls, "scheduler_step_maybe_with_cfg", _scheduler_step)
    for (module, name), grid_of in served.GRID_FROM_INPUT.items():
        _wrap(served.transformer_class(module, name), "forward", _transformer_forward(grid_of))
    _installed = True
