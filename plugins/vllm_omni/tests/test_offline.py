"""An offline generation through vLLM-Omni's ``Omni`` entry point, with LVSA selected by the
one environment variable, on a tiny random Wan pipeline saved with ``save_pretrained``.

vLLM-Omni's engine places each stage on an accelerator and refuses to start without one, so on
a CPU-only machine this test skips with the engine's own error; where a GPU and vLLM-Omni are
installed together it generates (strict mode: a layer that did not run LVSA fails the request).
"""

from __future__ import annotations

import pytest
import torch
from omni_cpu import ROOT


def test_offline_generation_through_omni(tmp_path, sparse_knobs, monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "python"))
    import tiny_pipelines
    from vllm_omni import Omni
    from vllm_omni.inputs.data import OmniDiffusionSamplingParams

    model = tiny_pipelines.wan(tmp_path / "tiny-wan")
    monkeypatch.setenv("DIFFUSION_ATTENTION_BACKEND", "LVSA")
    try:
        omni = Omni(model=str(model))
    except RuntimeError as error:
        if not torch.cuda.is_available() and "0 device(s) are available" in str(error):
            pytest.skip(f"vLLM-Omni's engine cannot start on a CPU-only machine: {error}")
        raise
    try:
        frames = 9  # 3 latent frames through the tiny VAE's 4x temporal compression
        outputs = omni.generate({"prompt": "a red ball rolls"}, OmniDiffusionSamplingParams(
            num_frames=frames, height=32, width=32, num_inference_steps=3, seed=0))
    finally:
        omni.close()
    assert len(outputs) == 1 and len(outputs[0].images) > 0
