"""RIFLEx (``lvsa.riflex``) on the real diffusers transformers (tiny, random weights):

* the intrinsic index is the frequency whose period is closest to the training length;
* with ``s > 1`` exactly the k-th temporal frequency's columns of the RoPE tables the model uses
  change, to period ``L·s``; every other column is bit-identical;
* ``s = 1`` leaves the model's output bit-identical, and ``disable`` restores it exactly;
* both Wan 2.2 experts are edited; RIFLEx composes with LVSA (dense and sparse pattern).
"""

import math

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

import lvsa  # noqa: E402
import lvsa.riflex as riflex  # noqa: E402
import tiny_diffusers as td  # noqa: E402

FAMILIES = ["wan", "hunyuan_video", "cogvideox", "cogvideox1.5", "cosmos"]


def _tables(case):
    """The (cos, sin) RoPE tables the model's attention receives for the case's inputs."""
    model, inputs = case.transformer, td.to_device(case.inputs(1))
    if case.family.startswith("cogvideox"):
        seen = {}
        handle = model.register_forward_pre_hook(
            lambda m, a, kw: seen.update(tables=kw["image_rotary_emb"]), with_kwargs=True)
        with torch.no_grad():
            model(**inputs, return_dict=False)
        handle.remove()
        return [t.clone() for t in seen["tables"]]
    extra = {"fps": inputs["fps"]} if case.family == "cosmos" else {}
    with torch.no_grad():
        return [t.reshape(-1, t.shape[-1]).clone() for t in model.rope(inputs["hidden_states"], **extra)]


def _expected_columns(case, handle, rows):
    """Per family: the columns of frequency k and each table row's RoPE position."""
    frames = td.FRAMES
    positions = torch.arange(rows, dtype=torch.float64) // (rows // frames)
    if case.family == "cosmos":
        rope = case.transformer.rope
        half = rope.dim_t // 2 + rope.dim_h // 2 + rope.dim_w // 2
        return [handle.k, half + handle.k], positions * rope.base_fps / case.inputs(1)["fps"]
    return [2 * handle.k, 2 * handle.k + 1], positions


def test_intrinsic_index_is_the_period_closest_to_training_length():
    for theta, t_dim, length in [(10000.0, 44, 21), (256.0, 16, 33), (10000.0, 16, 13), (10000.0, 24, 8)]:
        periods = [2 * math.pi * theta ** (2 * j / t_dim) for j in range(t_dim // 2)]
        k = riflex.intrinsic_index(theta, t_dim, length)
        assert all(abs(periods[k] - length) <= abs(p - length) for p in periods)


@pytest.mark.parametrize("family", FAMILIES)
def test_only_frequency_k_changes_to_period_L_times_s(family):
    case = td.CASES[family]()
    before = _tables(case)
    handle = riflex.enable(case.transformer, 3.0, train_len=4)
    after = _tables(case)
    columns, positions = _expected_columns(case, handle, before[0].shape[0])
    assert handle.new_frequency == pytest.approx(2 * math.pi / (4 * 3.0))
    for table_before, table_after, fn in zip(before, after, (torch.cos, torch.sin)):
        others = [c for c in range(table_before.shape[1]) if c not in columns]
        assert torch.equal(table_after[:, others], table_before[:, others])
        expected = fn(positions * handle.new_frequency).to(table_after.dtype)
        for c in columns:
            torch.testing.assert_close(table_after[:, c].cpu(), expected, atol=1e-6, rtol=1e-6)
        assert not torch.equal(table_after[:, columns], table_before[:, columns])
    riflex.disable(case.transformer)
    assert all(torch.equal(a, b) for a, b in zip(_tables(case), before))


@pytest.mark.parametrize("family", FAMILIES)
def test_s_one_is_exact_no_op_and_disable_restores(family):
    case = td.CASES[family]()
    unpatched = case.run()
    riflex.enable(case.transformer, 1.0)
    torch.testing.assert_close(case.run(), unpatched, atol=0, rtol=0)
    riflex.enable(case.transformer, 2.0, train_len=4)  # replaces the previous installation
    assert not torch.equal(case.run(), unpatched)
    riflex.disable(case.transformer)
    torch.testing.assert_close(case.run(), unpatched, atol=0, rtol=0)


def test_both_wan22_experts_are_edited(tmp_path):
    from diffusers import DiffusionPipeline

    import tiny_pipelines

    pipe = DiffusionPipeline.from_pretrained(tiny_pipelines.wan(tmp_path / "wan22", two_experts=True))
    before = {name: pipe.components[name].rope.freqs_cos.clone() for name in ("transformer", "transformer_2")}
    handle = riflex.enable(pipe, 2.0)
    assert handle.components == ["transformer", "transformer_2"]
    assert handle.train_len == 21  # the Wan 2.2 A14B reference horizon
    for name, table in before.items():
        assert not torch.equal(pipe.components[name].rope.freqs_cos, table)
    riflex.disable(pipe)
    for name, table in before.items():
        assert torch.equal(pipe.components[name].rope.freqs_cos, table)


def test_composes_with_lvsa(monkeypatch):
    case = td.CASES["wan"]()
    riflex.enable(case.transformer, 2.0, train_len=4)
    with_riflex = case.run()
    lvsa.enable(case.transformer, **td.DENSE)
    with lvsa.denoising_step(0):
        torch.testing.assert_close(case.run(), with_riflex, **td.TOLERANCE)

    lvsa.enable(case.transformer, **td.SPARSE)
    with lvsa.denoising_step(1):
        sparse = case.run()
    lvsa.disable(case.transformer)
    planner = lvsa.Planner(lvsa.Geometry(td.FRAMES, td.P), lvsa.PatternConfig(**td.SPARSE))
    with td.pattern_masked_sdpa(monkeypatch, planner.step(1)):
        expected = case.run()  # the RIFLEx model with the pattern as a mask on its own attention
    torch.testing.assert_close(sparse, expected, **td.TOLERANCE)


def test_bad_arguments():
    case = td.CASES["wan"]()
    with pytest.raises(ValueError, match="s must be a number >= 1"):
        riflex.enable(case.transformer, 0.5)
    with pytest.raises(ValueError, match=r"k must be an int in \[0, 12\)"):
        riflex.enable(case.transformer, 2.0, k=12)
    no_rope = td.CASES["cogvideox"]()
    no_rope.transformer.register_to_config(use_rotary_positional_embeddings=False)
    with pytest.raises(ValueError, match="sin-cos position embeddings"):
        riflex.enable(no_rope.transformer, 2.0)
