"""LVSA: training-free block-sparse attention for long-video diffusion transformers.

    plan = lvsa.Planner(lvsa.Geometry.from_model("wan2.1-1.3b", 481, 480, 832))
    out = lvsa.attention(q, k, v, plan, step=i)     # q, k, v: [B, S, H, D]
    lvsa.enable(pipe)                               # a diffusers pipeline: Wan, HunyuanVideo 1.5, CogVideoX, Cosmos

Names are imported on first use, so ``lvsa plan`` starts without loading PyTorch.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "attention": "ops",
    "Geometry": "plan",
    "PatternConfig": "plan",
    "Planner": "plan",
    "StepPlan": "plan",
    "model_presets": "plan",
    "preset": "plan",
    "enable": "integration",
    "disable": "integration",
    "denoising_step": "step_context",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'lvsa' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
