"""Every family's LVSA processors against the real diffusers model (tiny, random weights):

* with the pattern dense (T <= reference) the output equals the model's own (unpatched) output;
* with sparsity engaged it equals the model's own processors run with the pattern as a boolean
  mask on its own attention (``tiny_diffusers.pattern_masked_sdpa``), at every rotation offset.

Each family's image-to-video model too, conditioned as its pipeline conditions it (extra latent
channels, a conditioning frame with its own timestep, image tokens in the encoder stream or only
in cross-attention): the conditioning leaves the self-attention LVSA replaces as it was.
"""

import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402

import lvsa  # noqa: E402
import tiny_diffusers as td  # noqa: E402

CASES = {**td.CASES, **td.IMAGE_CASES}


def _planner(case):
    geometry = lvsa.Geometry(td.FRAMES, td.P, case.encoder_len, case.encoder_side)
    return lvsa.Planner(geometry, lvsa.PatternConfig(**td.SPARSE))


@pytest.mark.parametrize("family", list(CASES))
def test_dense_pattern_equals_the_unpatched_model(family):
    case = CASES[family]()
    unpatched = case.run()
    handle = lvsa.enable(case.transformer, **td.DENSE)
    assert sum(len(v) for v in handle.layers.values()) == 2 and not handle.skipped
    with lvsa.denoising_step(5):
        out = case.run()
    torch.testing.assert_close(out, unpatched, **td.TOLERANCE)


@pytest.mark.parametrize("family", list(CASES))
def test_sparse_equals_the_unpatched_model_with_pattern_mask(family, monkeypatch):
    case = CASES[family]()
    planner = _planner(case)
    assert planner.kfi == 3 and all(planner.step(i).frame_density < 1 for i in range(3))
    unpatched = case.run()

    lvsa.enable(case.transformer, **td.SPARSE)
    outs = []
    for step in range(planner.kfi + 1):  # every offset, and the wrap back to offset 0
        with lvsa.denoising_step(step):
            outs.append(case.run())
    lvsa.disable(case.transformer)

    for step, out in enumerate(outs):
        with td.pattern_masked_sdpa(monkeypatch, planner.step(step)):
            expected = case.run()
        torch.testing.assert_close(out, expected, **td.TOLERANCE)
        assert (out - unpatched).abs().max() > 1e-3  # sparsity is engaged, not a dense no-op
    torch.testing.assert_close(outs[-1], outs[0], atol=0, rtol=0)  # step kfi is offset 0 again
