"""The planner from Python and from the command line against the spec's golden cases."""

import json
import subprocess
import sys

import pytest

import lvsa
from lvsa.cli import plan_binary


def _planner(case, **extra):
    g = lvsa.Geometry(case["T"], 1)
    return lvsa.Planner(g, lvsa.PatternConfig(window=case["W"], n_first=case["n_first"],
                                              reference=case["ref"], scale=case["scale"], **extra))


def test_golden_cases_through_the_binding(golden_cases):
    for case in golden_cases:
        plan = _planner(case).step(case["step"])
        assert plan.kfi == case["kfi"], case
        assert plan.offset == case["offset"], case
        assert plan.globals == case["globals"], case
        assert [plan.attended(f) for f in range(case["T"])] == case["attended"], case


def _cli(args, binary=None):
    cmd = [str(binary or plan_binary()), *args]
    return subprocess.run(cmd, capture_output=True, text=True)


@pytest.mark.parametrize("via", ["lvsa-plan", "lvsa plan"])
def test_golden_cases_through_the_cli(golden_cases, via):
    for case in golden_cases:
        args = ["--latent-frames", str(case["T"]), "--window", str(case["W"]), "--n-first",
                str(case["n_first"]), "--reference", str(case["ref"]), "--scale", repr(case["scale"]),
                "--step", str(case["step"]), "--json"]
        if via == "lvsa-plan":
            result = _cli(args)
        else:
            result = subprocess.run([sys.executable, "-m", "lvsa.cli", "plan", *args],
                                    capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        got = json.loads(result.stdout)
        for key in ("kfi", "offset", "globals", "attended"):
            assert got[key] == case[key], (key, case)


def test_cli_summary_and_mask():
    result = _cli(["--model", "wan2.1-1.3b", "--frames", "481"])
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "T=121" in text and "P=1560" in text and "kfi=9" in text
    mask_rows = [line for line in text.splitlines() if line[:6].strip().isdigit()]
    assert len(mask_rows) == 121
    assert all(len(row.split()[1]) == 121 for row in mask_rows)
    assert set("".join(row.split()[1] for row in mask_rows)) <= set("GwB.")


def test_cli_manual_kfi_no_expand_and_video_frame_knobs():
    got = json.loads(_cli(["--latent-frames", "30", "--kfi", "4", "--step", "6", "--no-expand", "--json"]).stdout)
    assert got["kfi"] == 4 and got["offset"] == 2 and got["expand"] is False
    assert got["globals"] == [0, 2, 6, 10, 14, 18, 22, 26]
    video = json.loads(_cli(["--latent-frames", "81", "--window-frames", "12", "--n-first-frames", "4",
                             "--kfi-frames", "16", "--json"]).stdout)
    assert (video["W"], video["n_first"], video["kfi"]) == (3, 1, 4)


# lvsa-plan's bad-input catalogue: each command line must exit 2 with a message on stderr
# that names the flag and what was expected, and print nothing on stdout.
CLI_BAD_INPUT = {
    "unknown_flag": (["--bogus"], ["unknown argument '--bogus'"]),
    "missing_value": (["--latent-frames"], ["--latent-frames needs a value"]),
    "no_geometry": ([], ["give --model NAME or --latent-frames T"]),
    "non_numeric": (["--latent-frames", "ten"], ["--latent-frames expects an integer in [1, 1048576]", "'ten'"]),
    "zero_frames": (["--latent-frames", "0"], ["--latent-frames expects an integer in [1, 1048576]", "'0'"]),
    "negative_window": (["--latent-frames", "10", "--window", "-1"],
                        ["--window expects an integer in [0, 1048576]", "'-1'"]),
    "negative_step": (["--latent-frames", "10", "--step", "-3"], ["--step expects an integer in [0, ", "'-3'"]),
    "zero_scale": (["--latent-frames", "10", "--scale", "0"], ["--scale expects a finite number in (0, 1048576]", "'0'"]),
    "nan_scale": (["--latent-frames", "10", "--scale", "nan"], ["--scale expects a finite number", "'nan'"]),
    "negative_kfi": (["--latent-frames", "10", "--kfi", "-1"],
                     ["--kfi expects an integer in [0, 1048576] (0: no periodic keyframes)", "'-1'"]),
    "zero_reference": (["--latent-frames", "10", "--reference", "0"], ["--reference expects an integer in [1, ", "'0'"]),
    "zero_heads": (["--latent-frames", "10", "--heads", "0"], ["--heads expects an integer in [1, ", "'0'"]),
    "off_grid_frames": (["--model", "wan2.1-1.3b", "--frames", "80"],
                        ["--frames: frames must be 4k+1 for wan2.1-1.3b", "nearest valid: 77 or 81"]),
    "off_grid_height": (["--model", "wan2.1-1.3b", "--height", "481"],
                        ["--height: height must be a multiple of 16", "nearest valid: 480 or 496"]),
    "unknown_model": (["--model", "nope"], ["--model: unknown model preset 'nope'", "known presets: wan2.1-1.3b"]),
    "model_and_latent_frames": (["--model", "wan2.1-1.3b", "--latent-frames", "21"],
                                ["give either --model or --latent-frames, not both"]),
    "frames_without_model": (["--latent-frames", "21", "--frames", "81"], ["--frames/--height/--width need --model"]),
    "model_and_raw_geometry": (["--model", "wan2.1-1.3b", "--encoder-len", "3"],
                               ["--encoder-len", "describe a raw geometry", "--model preset has its own"]),
    "latent_and_video_window": (["--latent-frames", "10", "--window", "2", "--window-frames", "8"],
                                ["give either --window or --window-frames, not both"]),
    "encoder_without_side": (["--latent-frames", "10", "--encoder-len", "5"],
                             ["--encoder-len 5 needs --encoder-side before|after"]),
    "side_without_encoder": (["--latent-frames", "10", "--encoder-side", "after"],
                             ["--encoder-side needs --encoder-len E > 0"]),
    "unknown_side": (["--latent-frames", "10", "--encoder-len", "3", "--encoder-side", "left"],
                     ["--encoder-side expects 'before' or 'after'", "'left'"]),
    "kfi_below_one_latent_frame": (["--latent-frames", "10", "--kfi-frames", "2"],
                                   ["--kfi-frames expects 0 (no periodic keyframes) or at least one latent frame "
                                    "(4 video frames)", "got 2"]),
    "sequence_too_long": (["--latent-frames", "100000", "--tokens-per-frame", "100000"],
                          ["--latent-frames x --tokens-per-frame + --encoder-len", "exceeds 2^31-1"]),
}


@pytest.mark.parametrize("args, needles", CLI_BAD_INPUT.values(), ids=CLI_BAD_INPUT.keys())
def test_cli_bad_input(args, needles):
    result = _cli(args)
    assert result.returncode == 2, (args, result.stderr)
    assert result.stdout == "", args
    for needle in needles:
        assert needle in result.stderr, (needle, result.stderr)


def test_model_geometry_and_presets():
    g = lvsa.Geometry.from_model("hunyuanvideo-1.5", 121, 480, 848)
    assert (g.frames, g.tokens_per_frame, g.encoder_len, g.encoder_side) == (31, 1590, 1985, "after")
    assert g.seq_len == 31 * 1590 + 1985 and g.encoder_begin == 31 * 1590
    c = lvsa.Geometry.from_model("cogvideox-5b", 49, 480, 720)
    assert c.video_begin == 226 and c.encoder_begin == 0
    names = {p["name"] for p in lvsa.model_presets()}
    assert {"wan2.1-1.3b", "wan2.2-a14b", "hunyuanvideo-1.5", "cogvideox-5b", "cosmos-2.5"} <= names
    with pytest.raises(ValueError, match="nearest valid: 77 or 81"):
        lvsa.Geometry.from_model("wan2.1-1.3b", 80, 480, 832)


def test_planner_steps_rotate_and_reuse_plans():
    planner = lvsa.Planner(lvsa.Geometry(81, 4))
    assert planner.kfi == 6
    assert planner.step(5) is planner.step(11)  # same offset, same cached plan
    assert planner.step(5).offset == 5 and planner.step(6).offset == 0
    assert planner.step(0).globals != planner.step(1).globals
    fixed = lvsa.Planner(lvsa.Geometry(81, 4), lvsa.PatternConfig(rotate=False))
    assert fixed.step(5).globals == fixed.step(0).globals


def test_video_frame_config():
    c = lvsa.PatternConfig.from_video_frames(window=12, n_first=4, keyframe_interval=16)
    assert (c.window, c.n_first, c.keyframe_interval) == (3, 1, 4)
    assert lvsa.PatternConfig.from_video_frames().keyframe_interval == "auto"


@pytest.mark.parametrize("bad, needle", [
    (dict(window=-1), "window"), (dict(n_first=-2), "n_first"), (dict(reference=0), "reference"),
    (dict(scale=float("nan")), "scale"), (dict(keyframe_interval=0), "keyframe_interval"),
    (dict(keyframe_interval="sometimes"), "keyframe_interval")])
def test_bad_config_is_an_error(bad, needle):
    with pytest.raises(ValueError, match=needle):
        lvsa.Planner(lvsa.Geometry(40, 4), lvsa.PatternConfig(**bad))


def test_bad_geometry_and_step():
    with pytest.raises(ValueError, match="tokens_per_frame"):
        lvsa.Planner(lvsa.Geometry(40, 0))
    with pytest.raises(ValueError, match="encoder_side"):
        lvsa.Planner(lvsa.Geometry(40, 4, 10, "sideways"))
    with pytest.raises(ValueError, match="step"):
        lvsa.Planner(lvsa.Geometry(40, 4)).step(-1)


@pytest.mark.parametrize("geometry", [lvsa.Geometry(11, 45, 13, "after"), lvsa.Geometry(9, 30, 20, "before"),
                                      lvsa.Geometry(6, 8)])
def test_pack_into_writes_the_device_layout_in_place(geometry):
    """The CUDA backend's upload source: [offsets..., n+1 | begin[0..C) | end[0..C) | frame pairs]
    with C = capacity + 1 slots and slot n the encoder queries' pseudo-frame over all video tokens
    (the frame-pair sections: tests/cpp/test_packed_plan.cpp)."""
    torch = pytest.importorskip("torch")
    from lvsa import _native
    plan = lvsa.Planner(geometry, lvsa.PatternConfig(window=1, keyframe_interval=3, reference=5)).step(1)
    T, n = geometry.frames, len(plan.range_begin)
    capacity = _native.worst_case_capacity(T)
    assert n <= capacity
    slots = capacity + 1
    buffer = torch.full((_native.packed_plan_size(T, capacity),), -7, dtype=torch.int32)
    assert buffer.numel() == T + 2 + 2 * slots + T + 4 * capacity + 4 * T
    address = buffer.data_ptr()
    plan.core.pack_into(buffer, capacity)
    assert buffer.data_ptr() == address  # written where the caller put it, no copy in between
    offsets, begin, end = buffer[:T + 2], buffer[T + 2:T + 2 + slots], buffer[T + 2 + slots:T + 2 + 2 * slots]
    assert offsets.tolist() == list(plan.range_offsets) + [n + 1]
    assert begin[:n].tolist() == list(plan.range_begin) and end[:n].tolist() == list(plan.range_end)
    assert (begin[n].item(), end[n].item()) == (geometry.video_begin, geometry.video_begin + geometry.video_tokens)
    assert (begin[n + 1:] == -7).all() and (end[n + 1:] == -7).all()  # slots past n are not touched


def test_pack_into_refuses_wrong_buffers():
    torch = pytest.importorskip("torch")
    from lvsa import _native
    plan = lvsa.Planner(lvsa.Geometry(8, 4), lvsa.PatternConfig(window=1, reference=5)).step(0)
    capacity = _native.worst_case_capacity(8)
    size = _native.packed_plan_size(8, capacity)
    with pytest.raises(ValueError, match=f"packed_plan_size\\(8, {capacity}\\) = {size} int32 elements, got {size - 1}"):
        plan.core.pack_into(torch.zeros(size - 1, dtype=torch.int32), capacity)
    with pytest.raises(ValueError, match="intervals but the packed plan holds 1"):
        plan.core.pack_into(torch.zeros(_native.packed_plan_size(8, 1), dtype=torch.int32), 1)
    with pytest.raises(TypeError):
        plan.core.pack_into(torch.zeros(size, dtype=torch.int64), capacity)
    with pytest.raises(TypeError):
        plan.core.pack_into(torch.zeros(2 * size, dtype=torch.int32)[::2], capacity)
