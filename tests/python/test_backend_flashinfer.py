"""The FlashInfer backend without a GPU or FlashInfer: its layout (the BSR matrix of frames and
the dense encoder terms) covers exactly the pattern's mask, each pair once, and choosing it says
clearly why it cannot run. tests/gpu/test_flashinfer_attention.py runs it on a GPU."""

import sys

import pytest
import torch

import lvsa
from lvsa import backends
from lvsa.backends import flashinfer as flashinfer_backend

from dense_oracle import pattern_mask

# name: (T, P, encoder_len, side, config, offsets, valid per batch entry, video queries only)
LAYOUTS = {
    "wan_like": (9, 6, 0, "none", dict(window=1, keyframe_interval=3, reference=5), (0, 1, 2), [0], False),
    "wan_like_auto_kfi": (25, 4, 0, "none", dict(reference=10), (0, 1, 2), [0], False),
    "hunyuan_like_after_batch2": (7, 5, 6, "after", dict(window=1, keyframe_interval=3, reference=5), (0, 1, 2),
                                  [3, 6], False),
    "after_no_valid_text": (7, 5, 6, "after", dict(window=1, keyframe_interval=3, reference=5), (1,), [0, 6], False),
    "cogvideox_like_before": (6, 4, 5, "before", dict(window=1, keyframe_interval=2, reference=4), (0, 1),
                              [2, 5], False),
    "before_video_queries": (6, 4, 5, "before", dict(window=1, keyframe_interval=2, reference=4), (1,), [3], True),
    "after_video_queries": (6, 4, 5, "after", dict(window=1, keyframe_interval=2, reference=4), (0,), [5], True),
    "globals_only_W0": (10, 3, 4, "after", dict(window=0, n_first=2, reference=6), (0, 1), [4], False),
    "no_frame_attended": (6, 4, 5, "after", dict(window=0, n_first=0, keyframe_interval=None), (0,), [2, 0], False),
    "dense_kfi1": (5, 7, 0, "none", dict(keyframe_interval=1), (0,), [0], False),
}


def layout_counts(plan, q_len: int, valid: int) -> torch.Tensor:
    """How many of the backend's terms cover each (query, key) pair of one batch entry: the BSR
    blocks of its block-sparse term and the key ranges of its dense terms."""
    g = plan.geometry
    layout = flashinfer_backend.block_layout(plan)
    P = layout.block
    counts = torch.zeros((q_len, g.seq_len), dtype=torch.int32)
    for group in flashinfer_backend.row_groups(g, q_len, valid):
        begin, end = group.rows
        if group.sparse:
            assert end - begin == layout.size
            for f in range(g.frames):
                for c in layout.indices[layout.indptr[f]:layout.indptr[f + 1]]:
                    keys = slice(g.video_begin + c * P, g.video_begin + (c + 1) * P)
                    counts[begin + f * P:begin + (f + 1) * P, keys] += 1
        for key_begin, key_end in group.dense:
            counts[begin:end, key_begin:key_end] += 1
    return counts


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_layout_covers_the_pattern_mask_exactly_once(name):
    T, P, E, side, config, offsets, valid, video_only = LAYOUTS[name]
    planner = lvsa.Planner(lvsa.Geometry(T, P, E, side), lvsa.PatternConfig(**config))
    g = planner.geometry
    q_len = g.video_tokens if video_only else g.seq_len
    for offset in offsets:
        plan = planner.step(offset)
        expected = pattern_mask(plan, q_len, valid, batch=len(valid))
        for b, n in enumerate(valid):
            counts = layout_counts(plan, q_len, n)
            # Each pair in one term only: a pair in two would be counted twice by the merge.
            assert int(counts.max()) <= 1, f"offset {offset}, entry {b}: a pair is in two terms"
            assert torch.equal(counts.bool(), expected[b]), f"offset {offset}, entry {b}"


def test_layout_is_one_frame_per_block():
    plan = lvsa.Planner(lvsa.Geometry(9, 6), lvsa.PatternConfig(window=1, keyframe_interval=3, reference=5)).step(1)
    layout = flashinfer_backend.block_layout(plan)
    assert (layout.block, layout.size) == (6, 54)
    assert [list(layout.indices[layout.indptr[f]:layout.indptr[f + 1]]) for f in range(9)] == \
        [plan.attended(f) for f in range(9)]
    assert layout.empty_frames == ()


def test_frames_attending_nothing_are_listed():
    plan = lvsa.Planner(lvsa.Geometry(6, 4, 5, "after"),
                        lvsa.PatternConfig(window=0, n_first=0, keyframe_interval=None)).step(0)
    layout = flashinfer_backend.block_layout(plan)
    assert layout.indices == () and layout.empty_frames == tuple(range(6))


def test_encoder_after_keys_of_encoder_queries_are_one_range():
    """Encoder after the video: an encoder query's keys (all video, the valid encoder tokens) are
    contiguous, so they are one dense term and need no merge."""
    g = lvsa.Geometry(7, 5, 6, "after")
    groups = flashinfer_backend.row_groups(g, g.seq_len, 4)
    assert groups[1] == flashinfer_backend.RowGroup((35, 39), False, ((0, 39),))
    before = flashinfer_backend.row_groups(lvsa.Geometry(7, 5, 6, "before"), g.seq_len, 4)
    assert before[1] == flashinfer_backend.RowGroup((0, 4), False, ((0, 4), (6, 41)))


def test_registered_explicit_only():
    assert "flashinfer" in backends.NAMES
    for device in (torch.device("cpu"), torch.device("cuda", 0), torch.device("meta")):
        assert backends.resolve("auto", device) != "flashinfer"


def test_cpu_tensors_are_refused_with_the_reason():
    with pytest.raises(RuntimeError, match="backend 'flashinfer' needs CUDA tensors, got cpu"):
        backends.choose("flashinfer", torch.device("cpu"))
    plan = lvsa.Planner(lvsa.Geometry(4, 3)).step(0)
    q = torch.randn((1, 12, 2, 64))
    with pytest.raises(RuntimeError, match="needs CUDA tensors"):
        lvsa.attention(q, q, q, plan, backend="flashinfer")


def test_inputs_it_cannot_take_are_refused_with_the_reason():
    cuda = torch.device("cuda", 0)
    assert backends.unavailable_reason("flashinfer", cuda, torch.float32, 128) == \
        "backend 'flashinfer' takes float16 or bfloat16, got torch.float32"
    assert backends.unavailable_reason("flashinfer", cuda, torch.bfloat16, 96) == \
        "backend 'flashinfer' takes head_dim 64 or 128, got 96"


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "flashinfer", None)  # what Python does for a package that is absent
    reason = backends.unavailable_reason("flashinfer", torch.device("cuda", 0), torch.bfloat16, 128)
    assert reason.startswith("backend 'flashinfer' needs FlashInfer: pip install 'lvsa[flashinfer]'")
    with pytest.raises(RuntimeError, match=r"lvsa\[flashinfer\]"):
        backends.choose("flashinfer", torch.device("cuda", 0), dtype=torch.bfloat16, head_dim=128)


def test_enable_accepts_the_backend_name():
    from lvsa import settings

    assert settings.resolve(dict(backend="flashinfer", reference=5), None, "wan").backend == "flashinfer"
