"""The denoising step index of the current request, where attention can read it.

The keyframe grid rotates with the denoising step (spec §5): step ``i`` of a request uses offset
``i mod kfi``, where ``i`` counts *scheduler* steps of that request, not transformer calls
(classifier-free guidance runs the transformer twice per step with the same ``i``, or once on a
doubled batch), and restarts at 0 for every request. No diffusers pipeline hands the step
index to its transformer, so it is tracked here:

* ``track(pipe)`` makes every call of the pipeline a *request*: the step starts at 0 and
  advances after each ``step()`` of the scheduler that call uses. Counting scheduler steps
  (rather than transformer calls or timestep values) is what makes CFG calls share ``i``
  whether the pipeline batches them (CogVideoX), loops over them (Wan, Cosmos) or lets a
  guider decide (HunyuanVideo 1.5), and it holds for every scheduler.
* ``denoising_step(i)`` sets the step by hand around direct transformer calls.

The request lives in a ContextVar, so concurrent requests in other threads or tasks and nested
pipeline calls each see their own step.
"""

from __future__ import annotations

import functools
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator, Optional

from ._log import say_once


class _Request:
    """The step of one request; ``scheduler`` is the scheduler whose steps advance it (None when
    the step was set by hand)."""

    __slots__ = ("step", "scheduler")

    def __init__(self, step: int, scheduler=None):
        self.step = step
        self.scheduler = scheduler


_current: ContextVar[Optional[_Request]] = ContextVar("lvsa_denoising_request", default=None)


def current_step() -> Optional[int]:
    """The denoising step of the current request, or None outside any request."""
    request = _current.get()
    return None if request is None else request.step


@contextmanager
def denoising_step(step: int) -> Iterator[None]:
    """Run the enclosed transformer calls as denoising step ``step`` (for callers that drive the
    transformer themselves instead of through an enabled pipeline)::

        for i, t in enumerate(timesteps):
            with lvsa.denoising_step(i):
                noise_pred = transformer(latents, t, prompt_embeds)
    """
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"lvsa: denoising_step needs an int >= 0, got {step!r}")
    token = _current.set(_Request(step))
    try:
        yield
    finally:
        _current.reset(token)


# --- scheduler step counting -------------------------------------------------------------------

# Subclasses of scheduler classes whose step() advances the request that owns the scheduler.
_counting_classes: dict[type, type] = {}


def _counting_class(base: type) -> type:
    """``base`` with a ``step`` that advances the current request after the real step. Only the
    request's own scheduler counts: copies of it (Cosmos 3 deep-copies its scheduler for sound
    and action) keep this class but advance nothing."""
    cls = _counting_classes.get(base)
    if cls is None:
        @functools.wraps(base.step)  # keeps the signature: pipelines inspect it for eta/generator
        def step(self, *args, **kwargs):
            out = base.step(self, *args, **kwargs)
            request = _current.get()
            if request is not None and request.scheduler is self:
                request.step += 1
            return out

        # Same name, so nothing that prints or saves the scheduler's class sees a difference.
        cls = type(base.__name__, (base,), {"step": step, "__qualname__": base.__qualname__,
                                            "__module__": base.__module__, "_lvsa_base": base})
        _counting_classes[base] = cls
    return cls


@contextmanager
def request(scheduler) -> Iterator[None]:
    """One pipeline call: the step starts at 0 and advances after each ``scheduler.step``."""
    if scheduler is None:
        say_once("the pipeline has no scheduler to count denoising steps with: every step is step 0 "
                 "(the keyframe grid does not rotate)", logging.WARNING)
    token = _current.set(_Request(0, scheduler))
    swapped = scheduler is not None and "_lvsa_base" not in type(scheduler).__dict__
    if swapped:
        scheduler.__class__ = _counting_class(type(scheduler))
    try:
        yield
    finally:
        if swapped:
            scheduler.__class__ = type(scheduler)._lvsa_base
        _current.reset(token)


# --- pipeline calls ----------------------------------------------------------------------------

_tracking_classes: dict[type, type] = {}


def _tracking_class(base: type) -> type:
    """``base`` whose ``__call__`` runs as one request on the pipeline's current scheduler
    (looked up per call, so a scheduler swapped in after ``enable`` is tracked too)."""
    cls = _tracking_classes.get(base)
    if cls is None:
        @functools.wraps(base.__call__)
        def __call__(self, *args, **kwargs):
            with request(getattr(self, "scheduler", None)):
                return base.__call__(self, *args, **kwargs)

        cls = type(base.__name__, (base,), {"__call__": __call__, "__qualname__": base.__qualname__,
                                            "__module__": base.__module__, "_lvsa_base": base})
        _tracking_classes[base] = cls
    return cls


def track(pipe) -> None:
    """Make every call of ``pipe`` a request whose step follows its scheduler (idempotent)."""
    if "_lvsa_base" not in type(pipe).__dict__:
        pipe.__class__ = _tracking_class(type(pipe))


def untrack(pipe) -> None:
    """Undo :func:`track`: ``pipe`` is an instance of its own class again."""
    if "_lvsa_base" in type(pipe).__dict__:
        pipe.__class__ = type(pipe)._lvsa_base


__all__ = ["current_step", "denoising_step", "request", "track", "untrack"]
