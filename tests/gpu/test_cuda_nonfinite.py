"""NaN and Inf through the CUDA backend (README, the attention op): a poisoned token never leaks
— every row that does not attend it is bit-identical to the clean run — and a NaN or Inf in v
makes exactly the rows that attend it non-finite, as on the CPU backends. NaN in q or k and +inf
in k are the documented exception: the kernels' running maximum and exp2 drop non-finite
scores, so the rows that attend such a token stay finite (and are not meaningful); measured on
an H200, 2026-12-01, both kernel families. The other exception: with frames of at least 128
tokens a query tile may hold rows of two frames that share its K/V tiles, so a non-finite v of a
key only one of them attends also reaches the other's rows of that tile (P = 0 times NaN is NaN),
and no row outside it."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import lvsa  # noqa: E402

pytest.importorskip("lvsa.backends.cuda", exc_type=ImportError)

from dense_oracle import frame_mask, key_mask  # noqa: E402

DEV = torch.device("cuda")
VALID = 17

# Window only (ragged key lists, frame 0 not global) and rotating keyframes with the encoder first.
PLANS = {
    "window_ragged": (lvsa.Geometry(10, 40, 24, "after"),
                      lvsa.PatternConfig(window=1, n_first=0, keyframe_interval=None, expand=False), 0),
    "rotating_keyframes": (lvsa.Geometry(12, 48, 20, "before"), lvsa.PatternConfig(reference=4), 1),
    # 130-token frames: query tiles with rows of two frames (src/cuda/common/block_info.cuh).
    "frame_pairs": (lvsa.Geometry(6, 130, 20, "after"), lvsa.PatternConfig(window=1, keyframe_interval=3), 1),
}
TILE_ROWS = 128  # the kernels' query tile (kQueryTileRows)


def _setup(name, dtype, D):
    geometry, config, step = PLANS[name]
    plan = lvsa.Planner(geometry, config).step(step)
    S = geometry.seq_len
    q = torch.randn((1, S, 4, D), device=DEV).to(dtype)
    k = torch.randn((1, S, 2, D), device=DEV).to(dtype)
    v = torch.randn((1, S, 2, D), device=DEV).to(dtype)
    mask = key_mask(plan, torch.arange(S, device=DEV), S, VALID, frame_mask(plan)).cpu()  # [Sq, Sk]
    return plan, q, k, v, mask


def _run(plan, q, k, v):
    return lvsa.attention(q, k, v, plan, encoder_valid=[VALID], backend="cuda")


def _key_tokens(plan):
    g = plan.geometry
    return [g.video_begin + f * g.tokens_per_frame + 3 * f for f in range(g.frames)] + [g.encoder_begin + VALID - 1]


def _tile_mates(plan, rows):
    """[S, heads] rows -> those rows and every video row in the same query tile, where tiles may
    hold two frames (frames of >= TILE_ROWS tokens: the video rows are one run of tiles)."""
    g = plan.geometry
    if g.tokens_per_frame < TILE_ROWS:
        return rows
    video = torch.zeros(rows.shape[0], dtype=torch.bool)
    video[g.video_begin:g.video_begin + g.video_tokens] = True
    tile = (torch.arange(rows.shape[0]) - g.video_begin).div(TILE_ROWS, rounding_mode="floor")
    mates = rows.clone()
    for h in range(rows.shape[1]):
        hit = torch.unique(tile[rows[:, h] & video])
        mates[:, h] |= video & torch.isin(tile, hit)
    return mates


def _check(out, clean, bad, unchanged=None, scores_poisoned=False, may_leak=None):
    """``bad``: rows that attend the poisoned token. A poisoned value makes exactly them
    non-finite, and at most the rows ``may_leak`` besides; a poisoned score (q or k) leaves every
    row finite on this backend."""
    nonfinite = (~torch.isfinite(out).all(-1))[0].cpu()
    expected = torch.zeros_like(bad) if scores_poisoned else bad
    allowed = expected if may_leak is None else may_leak
    assert not (expected & ~nonfinite).any() and not (nonfinite & ~allowed).any(), \
        f"non-finite {nonfinite.nonzero().tolist()} != {expected.nonzero().tolist()}"
    unchanged = ~(bad | allowed) if unchanged is None else unchanged
    assert torch.equal(out[0].cpu()[unchanged], clean[0].cpu()[unchanged])


@pytest.mark.parametrize("name", list(PLANS))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("D", [64, 128])
@pytest.mark.parametrize("tensor, poison", [("v", float("nan")), ("v", -float("nan")), ("v", float("inf")),
                                            ("k", float("nan")), ("k", -float("nan"))])
def test_poisoned_key_or_value_reaches_exactly_the_rows_attending_it(name, dtype, D, tensor, poison):
    plan, q, k, v, mask = _setup(name, dtype, D)
    clean = _run(plan, q, k, v)
    for j in _key_tokens(plan):
        poisoned = {"k": k.clone(), "v": v.clone()}
        kv_head = j % 2
        poisoned[tensor][0, j, kv_head, 5] = poison
        bad = torch.zeros(mask.shape[0], 4, dtype=torch.bool)
        bad[:, 2 * kv_head: 2 * kv_head + 2] = mask[:, j, None]
        _check(_run(plan, q, poisoned["k"], poisoned["v"]), clean, bad, scores_poisoned=tensor == "k",
               may_leak=_tile_mates(plan, bad) if tensor == "v" else None)


@pytest.mark.parametrize("name", list(PLANS))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_infinite_key_leaks_into_no_other_row(name, dtype):
    plan, q, k, v, mask = _setup(name, dtype, 128)
    clean = _run(plan, q, k, v)
    for j in _key_tokens(plan):
        kk = k.clone()
        kk[0, j, 1, 7] = float("inf")
        bad = torch.zeros(mask.shape[0], 4, dtype=torch.bool)
        bad[:, 2:] = mask[:, j, None] & (q[0, :, 2:, 7] > 0).cpu()
        unchanged = torch.ones_like(bad)
        unchanged[:, 2:] = ~mask[:, j, None]
        _check(_run(plan, q, kk, v), clean, bad, unchanged, scores_poisoned=True)


@pytest.mark.parametrize("name", list(PLANS))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_nan_query_leaks_into_no_other_row(name, dtype):
    plan, q, k, v, mask = _setup(name, dtype, 64)
    clean = _run(plan, q, k, v)
    has_keys = mask.any(-1)
    for i in range(0, q.shape[1], 37):
        qq = q.clone()
        qq[0, i, i % 4, 1] = float("nan")
        bad = torch.zeros(mask.shape[0], 4, dtype=torch.bool)
        bad[i, i % 4] = has_keys[i]
        _check(_run(plan, qq, k, v), clean, bad, scores_poisoned=True)
