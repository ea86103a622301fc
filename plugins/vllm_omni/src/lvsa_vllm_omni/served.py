"""The vLLM-Omni pipelines LVSA serves, and what each needs from the plugin.

One entry per pipeline class (matched exactly: a subclass such as Wan 2.1 VACE may lay its
tokens out differently and is not served until it is listed). The family names the LVSA
adapter whose facts (reference horizon, VAE and patch factors) apply; ``layout`` names how the
plugin reads a self-attention call's token layout (``lvsa_vllm_omni.layouts``);
``records_step`` says whether the pipeline publishes ``denoise_step_idx`` itself.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Optional

from lvsa.model_facts import ModelFacts
from lvsa.models import adapter_for_family

_MODELS = "vllm_omni.diffusion.models"


@dataclass(frozen=True)
class ServedPipeline:
    module: str
    name: str
    family: str          # the LVSA adapter family ("wan", "hunyuan_video")
    layout: str          # "video_layout" (vLLM-Omni passes the grid) or "key_mask" (see layouts.py)
    records_step: bool   # the pipeline's loop calls record_denoise_step itself

    def pipeline_class(self) -> type:
        return getattr(importlib.import_module(f"{_MODELS}.{self.module}"), self.name)

    def facts(self, pipe) -> Optional[ModelFacts]:
        """The model's facts from LVSA's adapter of its family. vLLM-Omni's Wan transformer keeps
        a diffusers-compatible ``config`` (in_channels, heads) and the pipeline its
        ``transformer_2``, which is what the adapter reads to tell Wan variants apart."""
        transformer = getattr(pipe, "transformer", None) or getattr(pipe, "transformer_2", None)
        return adapter_for_family(self.family).facts(transformer, pipe)


# Wan 2.1 and 2.2 checkpoints (T2V, TI2V-5B, I2V, A14B with both experts) run through these two.
PIPELINES = (
    ServedPipeline("wan2_2.pipeline_wan2_2", "Wan22Pipeline", "wan", "video_layout", True),
    ServedPipeline("wan2_2.pipeline_wan2_2_i2v", "Wan22I2VPipeline", "wan", "video_layout", True),
    ServedPipeline("hunyuan_video.pipeline_hunyuan_video_1_5", "HunyuanVideo15Pipeline", "hunyuan_video",
                   "key_mask", False),
    ServedPipeline("hunyuan_video.pipeline_hunyuan_video_1_5_i2v", "HunyuanVideo15I2VPipeline", "hunyuan_video",
                   "key_mask", False),
)

# Transformers that pass no video layout to attention: the plugin reads the latent grid from
# their forward input (``hidden_states`` [B, C, F, H, W]) and their patch sizes.
GRID_FROM_INPUT = {
    ("hunyuan_video.hunyuan_video_15_transformer", "HunyuanVideo15Transformer3DModel"):
        lambda model, shape: (shape[2] // model.patch_size_t,
                              (shape[3] // model.patch_size) * (shape[4] // model.patch_size)),
}


def transformer_class(module: str, name: str) -> type:
    return getattr(importlib.import_module(f"{_MODELS}.{module}"), name)


def served_names() -> str:
    return ", ".join(p.name for p in PIPELINES)
