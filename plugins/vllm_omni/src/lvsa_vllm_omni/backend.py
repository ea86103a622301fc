"""The ``LVSA`` diffusion attention backend.

A layer gets LVSA when vLLM-Omni's per-role selection names it (``DIFFUSION_ATTENTION_BACKEND=LVSA``
selects it for every role). Only video self-attention (role ``self``) of a served pipeline runs
sparse; every other call runs the backend vLLM-Omni's platform would have chosen for the layer
(cross-attention, other models, and calls whose metadata LVSA cannot read — said once, with
the reason; ``LVSA_STRICT=1`` makes the latter an error).

The sparse path reads host state at run time (the request's step, the grid of the forward in
flight), so it is kept out of ``torch.compile`` graphs: vLLM-Omni compiles the transformer
blocks, which then run compiled around an eager LVSA call.
"""

from __future__ import annotations

import logging
import os
from typing import Optional

import torch
from lvsa import settings
from lvsa._log import say_once
from lvsa.model_facts import ModelFacts
from lvsa.models import Runtime
from vllm_omni.diffusion.attention.backends.abstract import AttentionBackend, AttentionImpl, AttentionMetadata

from . import layouts, request, served

SPARSE_ROLES = ("self",)


class LVSABackend(AttentionBackend):
    # HunyuanVideo 1.5 passes a key mask with padded text (the layer refuses a mask unless the
    # backend accepts one); LVSA reads it, and hands masks on other calls to the dense backend.
    @classmethod
    def supports_attention_mask(cls, attention_spec: object | None = None) -> bool:
        return True

    @staticmethod
    def get_name() -> str:
        return "LVSA"

    @staticmethod
    def get_impl_cls() -> type["LVSAImpl"]:
        return LVSAImpl

    @staticmethod
    def get_metadata_cls() -> type[AttentionMetadata]:
        return AttentionMetadata

    @staticmethod
    def get_builder_cls():
        return None

    @staticmethod
    def get_supported_head_sizes() -> list[int]:
        return []  # any: LVSA picks its kernel per call (and says so when it falls back)


def _dense_impl(role: str, role_category: Optional[str], head_size: int, **impl_args):
    """The backend the platform chooses for this layer when none is configured, and its impl."""
    from vllm_omni.diffusion.attention.selector import get_attn_backend_for_role

    backend, _ = get_attn_backend_for_role(role=role, head_size=head_size, attention_config=None,
                                           role_category=role_category)
    return backend.get_impl_cls()(head_size=head_size, **impl_args), backend


class LVSAImpl(AttentionImpl):
    def __init__(self, num_heads: int, head_size: int, softmax_scale: float, causal: bool = False,
                 num_kv_heads: int | None = None, prefix: str = "", qkv_layout: str | None = None,
                 backend_kwargs: dict | None = None, role: str = "self", role_category: str | None = None,
                 **extra_impl_args) -> None:
        if backend_kwargs:
            raise ValueError(f"lvsa: the LVSA backend takes no per-role options (got {sorted(backend_kwargs)}); "
                             "its knobs are the LVSA_* environment variables")
        self.dense, self.dense_backend = _dense_impl(
            role, role_category, head_size, num_heads=num_heads, softmax_scale=softmax_scale, causal=causal,
            num_kv_heads=num_kv_heads, prefix=prefix, qkv_layout=qkv_layout)
        self.role, self.prefix = role, prefix
        self.scale = softmax_scale
        # Why this layer never runs sparse (None: it does when the call's metadata allows).
        self.dense_reason = None
        if role not in SPARSE_ROLES:
            self.dense_reason = f"role {role!r} is not video self-attention"
        elif causal:
            self.dense_reason = "the layer is causal"
        elif qkv_layout not in (None, "BSND"):
            self.dense_reason = f"the layer's q/k/v layout is {qkv_layout}, not BSND"
        if self.dense_reason is None:
            request.install()

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attn_metadata: AttentionMetadata | None = None) -> torch.Tensor:
        if self.dense_reason is not None:
            return self._dense(query, key, value, attn_metadata)
        return self._sparse_or_dense(query, key, value, attn_metadata)

    def _dense(self, query, key, value, metadata):
        if (metadata is not None and metadata.attn_mask is not None
                and not self.dense_backend.supports_attention_mask(None)):
            raise ValueError(f"lvsa: {self.prefix or 'attention'} runs the dense backend "
                             f"{self.dense_backend.get_name()}, which does not support attn_mask; select a "
                             "mask-capable backend for this role")
        return self.dense.forward(query, key, value, metadata)

    @torch.compiler.disable
    def _sparse_or_dense(self, query, key, value, metadata):
        from vllm_omni.diffusion.forward_context import get_forward_context, is_forward_context_available

        context = get_forward_context() if is_forward_context_available() else None
        current = request.current()
        try:
            if current is None:
                raise layouts.NotServed(f"no served pipeline is running (LVSA serves {served.served_names()})")
            if current.facts is None:
                raise layouts.NotServed(f"LVSA knows no reference length for this {current.pipeline.name} model")
            step = getattr(context, "denoise_step_idx", None)
            if step is None:
                raise layouts.NotServed("the forward context has no denoise_step_idx (the denoising step is unknown)")
            if key.shape[1] != query.shape[1] or value.shape[1] != query.shape[1]:
                raise layouts.NotServed(f"queries ({query.shape[1]}) and keys ({key.shape[1]}) differ in length")
            layout = layouts.READERS[current.pipeline.layout](current, query, metadata, context)
        except layouts.NotServed as why:
            _fall_back(f"{self.prefix or 'attention'}: {why}")
            return self._dense(query, key, value, metadata)
        runtime = _runtime(current.facts)
        out = runtime.attend_at(layout.pack(query), layout.pack(key), layout.pack(value), layout.geometry,
                                int(step), layout.encoder_valid, scale=self.scale)
        return layout.unpack(out, query.shape[1])


def _knobs() -> dict:
    knobs = settings.gather({})
    if "parallel" in knobs:
        raise ValueError("lvsa: LVSA_PARALLEL is for lvsa.enable; under vLLM-Omni, sequence parallelism is "
                         "vLLM-Omni's own (--ulysses-degree)")
    return knobs


def _fall_back(reason: str) -> None:
    if _knobs().get("strict", False):
        raise RuntimeError(f"lvsa: strict mode: {reason}")
    say_once(f"lvsa (vLLM-Omni): using the dense backend: {reason}", logging.WARNING)


# One runtime per model and knob set: it keeps the planners (one per geometry, shared by every
# layer and both Wan 2.2 experts) and says the engagement line once per geometry and backend.
_runtimes: dict[tuple, Runtime] = {}


def _runtime(facts: ModelFacts) -> Runtime:
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("LVSA_")))
    runtime = _runtimes.get((facts, snapshot))
    if runtime is None:
        resolved = settings.resolve(_knobs(), facts, facts.name)
        runtime = Runtime(f"{facts.name} (vLLM-Omni)", resolved.reference_note, resolved.config, resolved.backend,
                          resolved.strict, precision=resolved.precision)
        _runtimes[(facts, snapshot)] = runtime
    return runtime
