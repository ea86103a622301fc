"""``lvsa.enable(pipe)`` / ``lvsa.disable(pipe)``: LVSA on a diffusers pipeline in one line.

``enable`` finds every transformer component of the pipeline that a model adapter serves (both
experts of Wan 2.2 A14B), swaps the processor of each of its self-attention modules for the
family's LVSA processor (cross-attention and text-only attention keep theirs), hooks the
transformer's forward so the processors know the video grid and the denoising step, and makes
each pipeline call a request whose step follows the scheduler (``lvsa.step_context``). It says
what it installed in one line and returns a :class:`Handle`; ``disable`` puts everything back.
A bare transformer works too; then the caller sets the step with ``lvsa.denoising_step(i)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from . import settings, step_context
from ._log import say_once
from .backends import quantized_scores

_HANDLE_ATTRIBUTE = "_lvsa_handle"


@dataclass
class Handle:
    """What ``enable`` installed: the model, the resolved pattern, and the patched modules per
    transformer component (``layers``), plus those left on the model's attention (``skipped``)."""

    family: str
    model: str
    settings: settings.Settings
    layers: dict[str, list[str]] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    runtimes: dict = field(default_factory=dict, repr=False)  # component -> its models.Runtime
    _undo: list[Callable[[], None]] = field(default_factory=list, repr=False)

    def summary(self) -> str:
        s, c = self.settings, self.settings.config
        count = sum(len(names) for names in self.layers.values())
        kfi = c.keyframe_interval if c.keyframe_interval is not None else "none"
        return (f"{self.family} ({self.model}): reference {c.reference} latent frames ({s.reference_note}), "
                f"window {c.window}, first frames {c.n_first}, keyframe interval {kfi}, scale {c.scale:g}, "
                f"expand {'on' if c.expand else 'off'}, rotate {'on' if c.rotate else 'off'} (latent frames; "
                f"given in {s.units} frames); {count} self-attention layers in {', '.join(self.layers)}; "
                f"cross-attention dense; backend {s.backend}{', strict' if s.strict else ''}"
                f"{quantized_scores.note(s.precision)}"
                f"{f'; Ulysses over {s.parallel} processes' if s.parallel > 1 else ''}")

    def backends_used(self) -> dict[str, object]:
        """Backend -> why ``auto`` fell back to it (None: as asked), over the LVSA attention calls
        that ran so far in every component (empty before the first call)."""
        used: dict = {}
        for runtime in self.runtimes.values():
            for backend, reason in runtime.backends_used.items():
                used.setdefault(backend, reason)
        return used

    def disable(self) -> None:
        while self._undo:
            self._undo.pop()()


def _transformers(target) -> dict[str, torch.nn.Module]:
    """Transformer components of a pipeline (or the module itself), each with an adapter."""
    from .models import adapter_for, supported

    if isinstance(target, torch.nn.Module):
        candidates = {"transformer": target}
    elif hasattr(target, "components"):
        candidates = {name: c for name, c in target.components.items()
                      if isinstance(c, torch.nn.Module) and name.startswith("transformer")}
    else:
        raise TypeError(f"lvsa.enable expects a diffusers pipeline or transformer, got {type(target).__name__}")
    # torch.compile wraps a module; its hooks and processors live on the original.
    found = {name: getattr(c, "_orig_mod", c) for name, c in candidates.items()}
    if not found:
        raise TypeError(f"lvsa: {type(target).__name__} has no transformer component; supported: {supported()}")
    unsupported = [f"{name} ({type(m).__name__})" for name, m in found.items() if adapter_for(m) is None]
    if unsupported:
        raise TypeError(f"lvsa: {type(target).__name__}: {', '.join(unsupported)} is not supported; "
                        f"supported: {supported()}")
    return found


def _restore(module, model_processor, processor) -> None:
    """Put the model's processor back, with the parallel config diffusers may have given LVSA's."""
    model_processor._parallel_config = processor._parallel_config
    module.set_processor(model_processor)


def enable(pipe, **config) -> Handle:
    """Install LVSA on ``pipe`` (a diffusers pipeline, or a transformer) and return the handle.

    Options (explicit arguments win over ``LVSA_<NAME>`` environment variables):
      window, n_first, keyframe_interval ("auto", an int, or None for no periodic keyframes),
      reference (the model's training horizon; default per model — Wan 21, Wan 2.2 TI2V-5B 31,
      HunyuanVideo 1.5 33, CogVideoX 13 (1.5: 11 token frames), Cosmos 2.5 24, Cosmos 3 48):
        in latent frames, or in video frames with units="video" (see ``lvsa.settings``);
      scale (sparsity scale), expand, rotate (keyframe rotation across steps);
      backend ("auto", "cpu", "cuda", "torch", "reference", or "flashinfer" with lvsa[flashinfer]);
      strict (raise instead of falling back to the model's attention, or of using step 0 when no
        step is known);
      prologue ("fused", the default: q and k's RMSNorm and RoPE in one CUDA kernel where the cuda
        or flashinfer backend runs, see ``lvsa.prologue``; "model": the model's own ops);
      precision ("default", or "fp8" / "int8": opt-in scores from q and k in float8 e4m3 / int8 on
        the cuda backend's Hopper kernels, bfloat16 models with head_dim 128; "int8-fp8": int8
        scores and P . V in e4m3 too; see ``lvsa.attention``);
      parallel (a process count, or "auto" for torch.distributed's world size): under torchrun,
        split every transformer's sequence over the processes with Ulysses (``lvsa.parallel``);
        the output is the same as in one process.
    Calling it again on an enabled pipeline replaces the previous installation.
    """
    from .models import Runtime, Unsupported, adapter_for
    from .parallel import install as ulysses

    knobs = settings.gather(config)
    transformers = _transformers(pipe)
    is_pipeline = not isinstance(pipe, torch.nn.Module)
    first = next(iter(transformers.values()))
    adapter = adapter_for(first)
    facts = adapter.facts(first, pipe if is_pipeline else None)
    resolved = settings.resolve(knobs, facts, f"{type(pipe).__name__} ({type(first).__name__})")
    if resolved.parallel > 1:
        ulysses.check(transformers, {name: adapter_for(t) for name, t in transformers.items()},
                      resolved.parallel)
    disable(pipe)  # only now: a rejected configuration leaves the previous installation in place
    handle = Handle(adapter.family, facts.name if facts else "unknown variant", resolved)

    try:
        parallel_config = ulysses.configure(resolved.parallel) if resolved.parallel > 1 else None
        for component, transformer in transformers.items():
            adapter = adapter_for(transformer)
            runtime = Runtime(f"{adapter.family} {component}", resolved.reference_note, resolved.config,
                              resolved.backend, resolved.strict, resolved.prologue, resolved.precision)
            handle.runtimes[component] = runtime
            handle.layers[component] = []
            for name, module in adapter.attention_modules(transformer):
                model_processor = module.processor
                if type(model_processor) is not adapter.model_processor_class:
                    reason = (f"has processor {type(model_processor).__name__}, not the model's "
                              f"{adapter.model_processor_class.__name__}; left as it is")
                    handle.skipped[f"{component}.{name}"] = reason
                    runtime.fall_back(f"{name} {reason}")
                    continue
                processor = adapter.processor(runtime, model_processor)
                module.set_processor(processor)
                handle._undo.append(lambda module=module, own=model_processor, processor=processor:
                                    _restore(module, own, processor))
                handle.layers[component].append(name)
            if parallel_config is not None:
                handle._undo.append(ulysses.shard(transformer, adapter, parallel_config))

            def begin(module, args, kwargs, adapter=adapter, runtime=runtime):
                try:
                    grid = adapter.video_grid(module, args, kwargs)
                    checks = adapter.value_checks(module, args, kwargs)
                except Unsupported as why:
                    runtime.begin_forward(None, str(why))
                else:
                    runtime.begin_forward(grid, checks=checks)

            def end(module, args, output, runtime=runtime):
                runtime.end_forward()

            handle._undo.append(transformer.register_forward_pre_hook(begin, with_kwargs=True).remove)
            handle._undo.append(transformer.register_forward_hook(end, always_call=True).remove)

        if is_pipeline:
            step_context.track(pipe)
            handle._undo.append(lambda: step_context.untrack(pipe))
        setattr(pipe, _HANDLE_ATTRIBUTE, handle)
        handle._undo.append(lambda: delattr(pipe, _HANDLE_ATTRIBUTE))
    except BaseException:
        handle.disable()  # strict mode refused a layer (or a hook failed): leave the pipeline as it was
        raise
    say_once(f"enabled on {type(pipe).__name__}: {handle.summary()}")
    return handle


def disable(pipe) -> None:
    """Undo :func:`enable`: the original processors, no hooks, the pipeline's own class."""
    handle = getattr(pipe, _HANDLE_ATTRIBUTE, None)
    if handle is not None:
        handle.disable()


__all__ = ["Handle", "enable", "disable"]
