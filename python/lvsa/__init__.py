"""LVSA: training-free block-sparse attention for long-video diffusion transformers.

    plan = lvsa.Planner(lvsa.Geometry.from_model("wan2.1-1.3b", 481, 480, 832))
    out = lvsa.attention(q, k, v, plan, step=i)     # q, k, v: [B, S, H, D]
    lvsa.enable(pipe)                               # a diffusers pipeline: Wan, HunyuanVideo 1.5, CogVideoX, Cosmos
"""

from .ops import attention
from .plan import Geometry, PatternConfig, Planner, StepPlan, model_presets, preset
from .integration import disable, enable
from .step_context import denoising_step

__version__ = "0.1.0"

__all__ = ["attention", "Geometry", "PatternConfig", "Planner", "StepPlan", "model_presets", "preset",
           "enable", "disable", "denoising_step"]
