"""``lvsa.enable``'s contract besides equivalence: per-model reference frames (never another
model's), knobs from arguments and ``LVSA_*`` variables in latent or video frames, the
engagement line, fallbacks said once with their reason (errors in strict mode), wrong token
layouts rejected, and the step context (scheduler counting, manual steps, no step known).
"""

import copy
import inspect
import logging

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
from diffusers import CogVideoXDDIMScheduler, FlowMatchEulerDiscreteScheduler  # noqa: E402
from diffusers.models.transformers.transformer_wan import WanAttnProcessor  # noqa: E402

import lvsa  # noqa: E402
import tiny_diffusers as td  # noqa: E402
from lvsa import step_context  # noqa: E402
from lvsa.models.hunyuan_video import encoder_valid_lengths  # noqa: E402


@pytest.fixture(autouse=True)
def no_lvsa_environment(monkeypatch):
    for name in ("WINDOW", "N_FIRST", "KEYFRAME_INTERVAL", "REFERENCE", "SCALE", "EXPAND", "ROTATE", "UNITS",
                 "BACKEND", "STRICT"):
        monkeypatch.delenv(f"LVSA_{name}", raising=False)


# --- model facts ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make, model, reference", [
    (td.wan, "wan2.1-1.3b", 21),
    (lambda: td.wan(in_channels=48, out_channels=48), "wan2.2-ti2v-5b", 31),
    (td.hunyuan_video, "hunyuanvideo-1.5", 33),
    (td.cogvideox, "cogvideox-5b", 13),
    (lambda: td.cogvideox(patch_size_t=2), "cogvideox1.5-5b", 11),  # token frames: 81 video = 21 latent = 11
    (td.cosmos, "cosmos-2.5", 24),
    (td.cosmos3, "cosmos3", 48),
])
def test_reference_defaults_per_model(make, model, reference):
    handle = lvsa.enable(make().transformer)
    assert (handle.model, handle.settings.config.reference) == (model, reference)
    assert handle.settings.reference_note == f"{model} default"


def test_unknown_reference_is_an_error_not_another_models():
    with pytest.raises(ValueError, match="no reference"):
        lvsa.settings.resolve({}, None, "CosmosTextToWorldPipeline (CosmosTransformer3DModel)")
    assert lvsa.settings.resolve({"reference": 30}, None, "Cosmos 1.0").config.reference == 30


# --- knobs ---------------------------------------------------------------------------------------

def test_arguments_win_over_environment(monkeypatch):
    monkeypatch.setenv("LVSA_WINDOW", "2")
    monkeypatch.setenv("LVSA_REFERENCE", "9")
    monkeypatch.setenv("LVSA_KEYFRAME_INTERVAL", "none")
    monkeypatch.setenv("LVSA_ROTATE", "off")
    monkeypatch.setenv("LVSA_BACKEND", "torch")
    monkeypatch.setenv("LVSA_STRICT", "yes")
    handle = lvsa.enable(td.wan().transformer, reference=5)
    c = handle.settings.config
    assert (c.window, c.reference, c.keyframe_interval, c.rotate) == (2, 5, None, False)
    assert (handle.settings.backend, handle.settings.strict) == ("torch", True)


@pytest.mark.parametrize("make, expected", [
    # Wan: 4 video frames per latent frame; the horizon converts as a clip does (81 -> 21).
    (td.wan, dict(window=3, n_first=1, keyframe_interval=4, reference=21)),
    # CogVideoX 1.5: 8 video frames per token frame (VAE 4 x patch_t 2); 81 -> 21 latent -> 11.
    (lambda: td.cogvideox(patch_size_t=2), dict(window=1, n_first=0, keyframe_interval=2, reference=11)),
])
def test_knobs_in_video_frames(make, expected):
    handle = lvsa.enable(make().transformer, units="video", window=12, n_first=4, keyframe_interval=16,
                         reference=81)
    c = handle.settings.config
    assert dict(window=c.window, n_first=c.n_first, keyframe_interval=c.keyframe_interval,
                reference=c.reference) == expected
    assert "given in video frames" in handle.summary()


# --- reports and fallbacks -----------------------------------------------------------------------

def test_engagement_lines(log):
    case = td.wan()
    lvsa.enable(case.transformer, **td.SPARSE)
    for step in range(2):  # said once: the second forward adds no line
        with lvsa.denoising_step(step):
            case.run()
    lines = [r.getMessage() for r in log]
    installed = [line for line in lines if line.startswith("enabled on WanTransformer3DModel")]
    engaged = [line for line in lines if line.startswith("wan transformer: T=8")]
    assert len(installed) == 1 and "reference 4 latent frames (given)" in installed[0]
    assert "2 self-attention layers" in installed[0] and "cross-attention dense" in installed[0]
    assert len(engaged) == 1
    for part in ("P=4", "reference 4", "extension 2.00x", "kfi 3", "globals", "attended", "/8 frames",
                 "density", f"backend {td.DEVICE.type}"):
        assert part in engaged[0], (part, engaged[0])


def test_engagement_line_names_the_backend_the_calls_ran(log, monkeypatch):
    """The line is resolved with the tensors' dtype and head_dim: when the compiled backend cannot
    take them, it says torch and why, not the device's compiled backend."""
    from lvsa import backends

    why = f"test: head_dim {td.HEAD_DIM} unsupported"
    compiled = {"cpu": "cpu", "cuda": "cuda"}[td.DEVICE.type]
    real = backends.unavailable_reason
    monkeypatch.setattr(backends, "unavailable_reason", lambda name, device, dtype=None, head_dim=None:
                        why if name == compiled and head_dim == td.HEAD_DIM else real(name, device, dtype, head_dim))
    case = td.wan()
    handle = lvsa.enable(case.transformer, **td.SPARSE)
    assert handle.backends_used() == {}
    with lvsa.denoising_step(0):
        case.run()
    engaged = [r.getMessage() for r in log if r.getMessage().startswith("wan transformer: T=8")]
    assert len(engaged) == 1 and engaged[0].endswith(f"backend torch (auto fell back: {why})"), engaged
    assert handle.backends_used() == {"torch": why}
    with pytest.raises(RuntimeError, match=f"strict mode.*{why}"):
        lvsa.enable(case.transformer, strict=True, **td.SPARSE)
        with lvsa.denoising_step(0):
            case.run()


def test_engagement_line_without_fallback_names_the_compiled_backend(log):
    case = td.wan()
    handle = lvsa.enable(case.transformer, **td.SPARSE)
    with lvsa.denoising_step(0):
        case.run()
    assert handle.backends_used() == {td.DEVICE.type: None}


def test_no_step_known_uses_step_0_or_raises_in_strict_mode(log):
    case = td.wan()
    lvsa.enable(case.transformer, **td.SPARSE)
    case.run()  # no pipeline call, no denoising_step
    assert any("denoising step is unknown" in r.getMessage() and r.levelno == logging.WARNING for r in log)
    lvsa.enable(case.transformer, strict=True, **td.SPARSE)
    with pytest.raises(RuntimeError, match="strict mode.*denoising step is unknown"):
        case.run()


def test_foreign_processor_is_left_alone_and_reported(log):
    class CustomProcessor(WanAttnProcessor):
        pass

    case = td.wan()
    case.transformer.blocks[1].attn1.set_processor(CustomProcessor())
    handle = lvsa.enable(case.transformer, **td.SPARSE)
    assert handle.layers == {"transformer": ["blocks.0.attn1"]}
    assert "CustomProcessor" in handle.skipped["transformer.blocks.1.attn1"]
    assert any("CustomProcessor" in r.getMessage() and r.levelno == logging.WARNING for r in log)

    lvsa.disable(case.transformer)
    with pytest.raises(RuntimeError, match="strict mode.*CustomProcessor"):
        lvsa.enable(case.transformer, strict=True, **td.SPARSE)
    # The refused installation left nothing behind.
    assert type(case.transformer.blocks[0].attn1.processor) is WanAttnProcessor
    assert not case.transformer._forward_pre_hooks and not hasattr(case.transformer, "_lvsa_handle")


def test_cosmos3_stream_that_is_not_just_video_falls_back(log):
    case = td.cosmos3()
    inputs = case.inputs
    extra = 3  # generation tokens after the video (as sound tokens would be): not a plain video stream

    def longer(batch):
        kwargs = inputs(batch)
        kwargs["sequence_length"] += extra
        kwargs["position_ids"] = torch.arange(kwargs["sequence_length"]).expand(3, -1)
        return kwargs

    case.inputs = longer
    unpatched = case.run()
    lvsa.enable(case.transformer, **td.SPARSE)
    with lvsa.denoising_step(1):
        out = case.run()
    torch.testing.assert_close(out, unpatched, atol=0, rtol=0)
    assert any("not exactly the video tokens" in r.getMessage() and r.levelno == logging.WARNING for r in log)
    lvsa.enable(case.transformer, strict=True, **td.SPARSE)
    with lvsa.denoising_step(1), pytest.raises(RuntimeError, match="strict mode.*not exactly the video tokens"):
        case.run()


def test_token_count_must_match_the_grid():
    case = td.wan()
    lvsa.enable(case.transformer, **td.SPARSE)
    attn = case.transformer.blocks[0].attn1
    runtime = attn.processor.runtime
    runtime.begin_forward((td.FRAMES, td.P))  # as the transformer's forward hook does
    dim = case.transformer.config.num_attention_heads * case.transformer.config.attention_head_dim
    with pytest.raises(ValueError, match="sees 31 video tokens.*T=8 latent frames x P=4 tokens per frame = 32"):
        attn(td.to_device(torch.randn(1, td.FRAMES * td.P - 1, dim)))
    runtime.end_forward()


def test_hunyuan_valid_lengths_from_the_mask():
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]])
    assert encoder_valid_lengths(mask, 4, 10).tolist() == [3, 1, 0]
    full = torch.cat([torch.ones(3, 6, dtype=torch.long), mask], dim=1)  # [B, S]: video all valid first
    assert encoder_valid_lengths(full, 4, 10).tolist() == [3, 1, 0]
    assert encoder_valid_lengths(torch.tensor([[1, 0, 1, 0]]), 4, 10) is None  # not a prefix
    with pytest.raises(ValueError, match="attention mask has 5 tokens"):
        encoder_valid_lengths(torch.ones(1, 5), 4, 10)


# --- step context --------------------------------------------------------------------------------

def test_scheduler_steps_advance_the_request_and_nothing_else():
    scheduler = CogVideoXDDIMScheduler()
    scheduler.set_timesteps(4)
    signature = inspect.signature(scheduler.step)
    sample = torch.zeros(1, 2)
    assert step_context.current_step() is None
    with step_context.request(scheduler):
        assert type(scheduler).__name__ == "CogVideoXDDIMScheduler"
        assert inspect.signature(scheduler.step) == signature  # pipelines look for eta / generator in it
        assert step_context.current_step() == 0
        scheduler.step(sample, scheduler.timesteps[0], sample)
        assert step_context.current_step() == 1
        copy.deepcopy(scheduler).step(sample, scheduler.timesteps[1], sample)  # a copy's steps don't count
        assert step_context.current_step() == 1
        with lvsa.denoising_step(7):  # a manual step inside a request wins until it ends
            assert step_context.current_step() == 7
        assert step_context.current_step() == 1
    assert type(scheduler) is CogVideoXDDIMScheduler and step_context.current_step() is None
    other = FlowMatchEulerDiscreteScheduler()
    with step_context.request(other):
        scheduler.step(sample, scheduler.timesteps[2], sample)  # not this request's scheduler
        assert step_context.current_step() == 0


def test_a_request_without_scheduler_is_reported(log):
    with step_context.request(None):
        assert step_context.current_step() == 0
    assert any("no scheduler" in r.getMessage() and r.levelno == logging.WARNING for r in log)
