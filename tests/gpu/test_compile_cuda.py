"""``torch.compile(fullgraph=True)`` (inductor) of a real diffusers ``WanTransformer3DModel`` at a
small config with LVSA on the cuda backend (bf16, head_dim 128): one graph serves every step,
each step's attention runs with that step's rotation offset (seen by a spy on the plan of every
attention call, which the compiled op makes when it runs), and the output is the eager LVSA
output of the same step up to bf16 rounding.

Tolerance: inductor fuses the elementwise code around the matmuls and attention (RMSNorm, RoPE,
AdaLN modulation, gated residuals) and keeps float32 between the fused ops, where eager rounds
every intermediate to bf16 (``torch._inductor.config.emulate_precision_casts`` is off by
default). A skipped rounding moves a value by at most half a bf16 ulp (2^-9, 0.2 % relative),
with random sign, so the compiled output drifts from the eager one by a fraction of a percent in
relative L2 over these two layers (0.6 % measured with the cpu backend); ``REL_TOL`` bounds it
at 2 %, the scale of bf16 noise (bench/compile_precision.py measures it at full size). With
random weights the attention's residual gates are small, so the offsets' outputs differ by
about as much: the rotation itself is checked exactly, through the plans.
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("lvsa.backends.cuda", exc_type=ImportError)

import torch._dynamo  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402

import lvsa  # noqa: E402
from lvsa_fixtures import fresh_dynamo, offsets  # noqa: E402,F401

DEV = torch.device("cuda")
CONFIG = dict(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=128, in_channels=16, out_channels=16,
              text_dim=64, freq_dim=256, ffn_dim=512, num_layers=2, cross_attn_norm=True,
              qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
FRAMES, LATENT = 12, (16, 16)  # 12 latent frames of 8x8 = 64 tokens
# kfi 3: steps 0..2 are three different patterns, step 3 is offset 0 again.
PATTERN = dict(window=1, n_first=1, keyframe_interval=3, reference=4, backend="cuda", strict=True)
STEPS = 4
REL_TOL = 2e-2


def _model_and_inputs():
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    model = WanTransformer3DModel(**CONFIG).eval().to(DEV, torch.bfloat16)
    generator = torch.Generator().manual_seed(1)
    inputs = dict(hidden_states=torch.randn(1, 16, FRAMES, *LATENT, generator=generator).to(DEV, torch.bfloat16),
                  timestep=torch.tensor([500.0], device=DEV),
                  encoder_hidden_states=torch.randn(1, 7, 64, generator=generator).to(DEV, torch.bfloat16),
                  return_dict=False)
    return model, inputs


def _relative(a, b):
    return float((a.double() - b.double()).norm() / b.double().norm())


def _run(model, inputs, step):
    with torch.no_grad(), lvsa.denoising_step(step):
        return model(**inputs)[0].clone()  # CUDA graph outputs are overwritten by the next replay


def _check(compiled, expected, offsets, steps):
    assert offsets == [step % 3 for step in steps for _ in range(CONFIG["num_layers"])]
    for step, out, reference in zip(steps, compiled, expected):
        difference = _relative(out, reference)
        assert difference < REL_TOL, f"step {step}: compiled vs eager {difference:.2%}"


def test_compiled_wan_attends_with_each_steps_rotation(offsets):
    model, inputs = _model_and_inputs()
    lvsa.enable(model, **PATTERN)
    steps = range(STEPS)
    expected = [_run(model, inputs, step) for step in steps]

    offsets.clear()
    compiled_model = torch.compile(model, fullgraph=True)
    compiled = []
    for step in steps:
        with torch._dynamo.config.patch(error_on_recompile=step > 0):  # one graph for every step
            compiled.append(_run(compiled_model, inputs, step))
    assert not counters["graph_break"]
    _check(compiled, expected, offsets, steps)


def test_cuda_graphs_never_freeze_the_step(offsets):
    """mode="reduce-overhead" replays captured kernels without running the op's Python, which
    reads the step: inductor must keep the op out of its CUDA graphs (torch.Tag.cudagraph_unsafe)
    or, on a torch without that tag, capturing it is an error — never a stale rotation."""
    model, inputs = _model_and_inputs()
    lvsa.enable(model, **PATTERN)
    steps = range(2 * STEPS)  # warm-up, capture, then replays at every offset
    expected = [_run(model, inputs, step) for step in steps]

    offsets.clear()
    compiled_model = torch.compile(model, fullgraph=True, mode="reduce-overhead")
    try:
        compiled = [_run(compiled_model, inputs, step) for step in steps]
    except RuntimeError as error:
        assert "without CUDA graphs" in str(error)
        assert not hasattr(torch.Tag, "cudagraph_unsafe")
        return
    _check(compiled, expected, offsets, steps)
