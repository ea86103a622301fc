"""``torch.compile(fullgraph=True)`` on transformers with LVSA enabled (tiny diffusers models of
every family, random weights): one graph serves every denoising step — the compiled model
attends with each step's rotation offset, as the eager one does, without recompiling — the
first compiled call builds its plans itself, the step context and the checks on input values
are read when the graph runs (a failed check is an error there, since a graph cannot fall back
per call), a compiled pipeline rotates exactly as an eager one, and ``lvsa.attention`` compiles
with every backend.

Most cases compile with ``aot_eager``: Dynamo's whole trace (graph breaks, guards, recompiles)
and AOT's functionalization with the ops' fake kernels, without inductor's C++ builds, which
take minutes on a small machine; one case per kind of call runs inductor.
"""

import logging

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
import torch._dynamo  # noqa: E402
from diffusers import FlowMatchEulerDiscreteScheduler, WanPipeline  # noqa: E402
from torch._dynamo.utils import counters  # noqa: E402

import lvsa  # noqa: E402
import tiny_diffusers as td  # noqa: E402
from lvsa_fixtures import fresh_dynamo  # noqa: E402,F401

STEPS = 3  # kfi 3 (td.SPARSE): offsets 0, 1, 2, so a step baked into the graph shows


def _compile(case, compiler):
    if case.family == "hunyuan_video":
        # diffusers' HunyuanVideo 1.5 forward branches on tensor values (`if torch.all(image_embeds
        # == 0)`) and reorders the text with boolean masks, so the model breaks graphs without LVSA
        # too; its regional compilation (the repeated blocks, which hold every attention) is whole.
        case.transformer.compile_repeated_blocks(fullgraph=True, backend=compiler)
    else:
        case.transformer = torch.compile(case.transformer, fullgraph=True, backend=compiler)


def _steps(case, steps=range(STEPS)):
    outs = []
    for step in steps:
        # The first call traces and compiles; every later step must run the same graph.
        with lvsa.denoising_step(step), torch._dynamo.config.patch(error_on_recompile=step > 0):
            outs.append(case.run())
    return outs


@pytest.mark.parametrize("family, backend, compiler", [
    *[(family, "cpu", "aot_eager") for family in td.CASES],
    # The graph is the same for every backend (the op runs it): one family runs the torch backend,
    # the one that passes encoder_valid.
    ("hunyuan_video", "torch", "aot_eager"),
    ("cogvideox", "cpu", "inductor"),  # q, k, v are transposed views: the ops' fakes must give real strides
])
def test_compiled_transformer_attends_with_each_steps_rotation(family, backend, compiler):
    eager = td.CASES[family]()
    lvsa.enable(eager.transformer, backend=backend, **td.SPARSE)
    expected = _steps(eager)
    assert all((expected[i] - expected[0]).abs().max() > 1e-4 for i in range(1, STEPS))  # the offsets differ

    case = td.CASES[family]()  # the same weights, no plan built yet: the compiled call builds them
    lvsa.enable(case.transformer, backend=backend, **td.SPARSE)
    _compile(case, compiler)
    compiled = _steps(case)
    assert not counters["graph_break"]
    for out, reference in zip(compiled, expected):
        torch.testing.assert_close(out, reference, **td.TOLERANCE)


def test_unknown_step_is_said_when_the_graph_runs_and_strict_refuses(log):
    case = td.wan()
    lvsa.enable(case.transformer, **td.SPARSE)
    transformer = case.transformer
    _compile(case, "aot_eager")
    case.run()  # traced and run outside any step: step 0, said
    assert any("denoising step is unknown" in r.getMessage() and r.levelno == logging.WARNING for r in log)
    with lvsa.denoising_step(1), torch._dynamo.config.patch(error_on_recompile=True):
        compiled = case.run()  # the graph traced without a step still reads it
    case.transformer = transformer
    with lvsa.denoising_step(1):
        torch.testing.assert_close(compiled, case.run(), **td.TOLERANCE)

    lvsa.enable(transformer, strict=True, **td.SPARSE)
    _compile(case, "aot_eager")
    with pytest.raises(RuntimeError, match="strict mode: wan transformer called outside.*denoising step is unknown"):
        case.run()
    with lvsa.denoising_step(2), torch._dynamo.config.patch(error_on_recompile=True):
        case.run()  # same graph, a step known: fine


def _wan22_pipeline():
    """Wan 2.2 A14B-style: two experts (distinct weights), the second taking the low-noise steps."""
    expert_2 = td.wan().transformer
    with torch.no_grad():
        for p in expert_2.parameters():
            p.mul_(0.9)
    pipe = WanPipeline(tokenizer=None, text_encoder=None, vae=None, transformer=td.wan().transformer,
                       transformer_2=expert_2, boundary_ratio=0.6, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0))
    embeds = [td.to_device(torch.randn(1, 7, 16, generator=torch.Generator().manual_seed(s))) for s in (1, 2)]
    call = dict(prompt_embeds=embeds[0], negative_prompt_embeds=embeds[1], num_frames=(td.FRAMES - 1) * 4 + 1,
                height=32, width=32, guidance_scale=5.0, num_inference_steps=5, output_type="latent",
                return_dict=False)
    return pipe.to(td.DEVICE), call


def test_compiled_pipeline_rotates_like_eager(offsets):
    pipe, call = _wan22_pipeline()
    lvsa.enable(pipe, **td.SPARSE)
    experts = [pipe.transformer, pipe.transformer_2]
    calls = [0, 0]
    for i, expert in enumerate(experts):
        expert.register_forward_pre_hook(lambda *_, i=i: calls.__setitem__(i, calls[i] + 1))

    def run():
        with torch.no_grad():
            return pipe(**call, generator=torch.Generator(td.DEVICE).manual_seed(0))[0]

    eager = run()
    assert calls[0] > 0 and calls[1] > 0  # both experts take steps
    # Cond and uncond call per step, two layers each, on one step count across both experts.
    expected = [step % 3 for step in range(5) for _ in range(2 * 2)]
    assert offsets == expected

    for expert in experts:
        expert.compile(fullgraph=True, backend="aot_eager")
    for repeat in range(2):  # the second call runs the graphs the first compiled
        offsets.clear()
        with torch._dynamo.config.patch(error_on_recompile=repeat > 0):
            compiled = run()
        assert offsets == expected
        torch.testing.assert_close(compiled, eager, **td.TOLERANCE)
    assert not counters["graph_break"]


def test_hunyuan_mask_is_checked_when_the_graph_runs():
    """A mask LVSA cannot express makes an eager call fall back; a compiled one cannot branch on
    it, so it fails, with the reason, when the graph runs."""
    case = td.hunyuan_video()
    lvsa.enable(case.transformer, **td.SPARSE)
    attn = case.transformer.transformer_blocks[0].attn
    runtime = attn.processor.runtime
    dim = attn.to_q.in_features
    encoder = 5
    hidden, text = (td.to_device(torch.randn(2, n, dim)) for n in (td.FRAMES * td.P, encoder))
    prefix = td.to_device(torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], dtype=torch.bool))
    holes = td.to_device(torch.tensor([[1, 1, 1, 1, 1], [1, 0, 1, 0, 0]], dtype=torch.bool))
    compiled = torch.compile(attn, fullgraph=True, backend="aot_eager")

    with lvsa.denoising_step(1), torch.no_grad():
        runtime.begin_forward((td.FRAMES, td.P))  # as the transformer's forward hook does
        try:
            expected = attn(hidden, text, prefix)
            got = compiled(hidden, text, prefix)
            for out, reference in zip(got, expected):
                torch.testing.assert_close(out, reference, **td.TOLERANCE)
            with torch._dynamo.config.patch(error_on_recompile=True), \
                    pytest.raises(RuntimeError, match="not a prefix of the encoder tokens; a compiled transformer"):
                compiled(hidden, text, holes)
        finally:
            runtime.end_forward()


def test_cosmos3_token_order_is_checked_when_the_graph_runs(log):
    case = td.cosmos3()
    inputs = case.inputs

    def reordered(batch):  # the video tokens in the generation stream, but not in frame-major order
        kwargs = inputs(batch)
        kwargs["vision_sequence_indexes"] = kwargs["vision_sequence_indexes"].flip(0)
        return kwargs

    lvsa.enable(case.transformer, **td.SPARSE)
    _compile(case, "aot_eager")
    with lvsa.denoising_step(1):
        case.run()  # traced with the plain order
        case.inputs = reordered
        with torch._dynamo.config.patch(error_on_recompile=True), \
                pytest.raises(RuntimeError, match="not exactly the video tokens.*; a compiled transformer"):
            case.run()


def _attention_inputs(seed):
    generator = torch.Generator().manual_seed(seed)
    q = torch.randn(2, 4, 38, 64, generator=generator).transpose(1, 2)  # [B, S, H, D] view, heads first
    k, v = (torch.randn(2, 38, 2, 64, generator=generator) for _ in range(2))  # grouped-query K/V
    return q, k, v


@pytest.mark.parametrize("backend", ["cpu", "torch", "reference"])
def test_attention_compiles_with_every_backend(backend):
    # A plan no call has used yet (the torch backend builds its gather indexes on first use).
    plan = lvsa.Planner(lvsa.Geometry(8, 4, 6, "after"), lvsa.PatternConfig(**td.SPARSE)).step(1)
    valid = torch.tensor([6, 2], dtype=torch.int32)

    def attend(q, k, v, valid):
        return lvsa.attention(q, k, v, plan, encoder_valid=valid, return_lse=True, backend=backend)

    compiled = torch.compile(attend, fullgraph=True, backend="inductor" if backend == "torch" else "aot_eager")
    q, k, v = _attention_inputs(seed=3)
    for got, expected in zip(compiled(q, k, v, valid), attend(q, k, v, valid)):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    # encoder_valid's values are checked when the graph runs, with the eager message.
    with torch._dynamo.config.patch(error_on_recompile=True), \
            pytest.raises(ValueError, match=r"encoder_valid entries must be in \[0, encoder_len = 6\], got \[7, 2\]"):
        compiled(q, k, v, torch.tensor([7, 2], dtype=torch.int32))
    assert not counters["graph_break"]


def test_fake_kernels_agree_with_the_ops():
    """torch.library.opcheck: schema, fake kernel (shapes and strides, for transposed q) and the
    compiled dispatch of both ops against their real kernels."""
    plan = lvsa.Planner(lvsa.Geometry(8, 4, 6, "after"), lvsa.PatternConfig(**td.SPARSE)).step(2)
    q, k, v = _attention_inputs(seed=4)
    valid = torch.tensor([6, 2], dtype=torch.int32)
    for traced in (False, True):
        torch.library.opcheck(torch.ops.lvsa.sparse_attention, (q, k, v, plan.id, valid, 0.125, "cpu", False, True,
                                                                traced, "default"))

    case = td.wan()
    lvsa.enable(case.transformer, **td.SPARSE)
    runtime = case.transformer.blocks[0].attn1.processor.runtime
    q, k, v = (x[:, :32, :2] for x in _attention_inputs(seed=5))
    with lvsa.denoising_step(1):
        torch.library.opcheck(torch.ops.lvsa.transformer_attention,
                              (q, k, v, runtime.id, [td.FRAMES, td.P, 0], "none", None, [], ""))
