"""``lvsa generate`` end to end on the CPU: tiny random pipelines of each family, saved with
``save_pretrained`` and loaded back through the command's real loading code, produce an MP4 whose
frame count and frame rate are read back from the file, with LVSA on and off and with RIFLEx.
"""

import json

import pytest

pytest.importorskip("diffusers")
pytest.importorskip("av")

import torch  # noqa: E402

import tiny_pipelines  # noqa: E402
from lvsa.cli import main  # noqa: E402
from lvsa.generate import video  # noqa: E402

# family -> (video frames, height, width, --window-size in video frames = one latent frame): each
# tiny model's grid gives T = 9 latent frames, sparse against --reference-latent-frames 4.
SIZES = {"wan": (33, 16, 32, 4), "cogvideox": (33, 16, 32, 4), "hunyuan_video": (17, 8, 8, 2)}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    return {family: build(root / family) for family, build in tiny_pipelines.BUILDERS.items()}


def _generate(model, out, *extra, frames=33, height=16, width=32):
    argv = ["generate", "--model", str(model), "--prompt", "a red fox runs", "--num-frames", str(frames),
            "--height", str(height), "--width", str(width), "--steps", "2", "--output-dir", str(out), *extra]
    return main(argv)


def _sidecar(out):
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("family", list(SIZES))
def test_lvsa_and_riflex_write_the_requested_video(family, models, tmp_path, capsys):
    frames, height, width, window = SIZES[family]
    assert _generate(models[family], tmp_path, "--lvsa", "--reference-latent-frames", "4", "--window-size",
                     str(window), "--riflex", "--fps", "12", "--guidance", "3",  # HunyuanVideo: via its guider
                     frames=frames, height=height, width=width) == 0
    out, err = capsys.readouterr()

    (mp4,) = tmp_path.glob("*.mp4")
    assert mp4.name == f"{family}-{frames}f-seed0-lvsa-riflex.mp4"
    assert video.probe(mp4) == (frames, 12.0, "h264")
    record = _sidecar(tmp_path)
    assert record["resolved"]["token_frames"] == 9 and record["resolved"]["fps"] == 12
    assert record["lvsa"]["enabled"] and record["lvsa"]["kfi"] > 1 and record["lvsa"]["density"] < 1
    assert record["riflex"]["enabled"] and record["riflex"]["s"] == pytest.approx(9 / 4)
    assert len(record["timings"]["steps_s"]) == 2
    assert set(record["timings"]["stages_s"]) == {"load", "encode prompt", "denoise", "decode", "write"}
    assert record["versions"]["diffusers"] and record["versions"]["torch"] and record["versions"]["av"]
    assert record["options"]["window_size"] == window

    assert "denoising" in err and "ETA" in err and "decoding (VAE)" in err
    assert "s/step over 2 steps" in out and "peak process memory" in out
    assert f"LVSA on: 2 self-attention layers in transformer; T=9 latent frames" in out
    assert "RIFLEx on transformer" in out and f"output: {mp4}" in out


def test_lvsa_off_and_dense_pattern_give_the_same_latents(models, tmp_path, capsys):
    """LVSA with a dense pattern (T <= reference) and RIFLEx with s = 1 change nothing: the
    final latents (``--output-latent``, no decode) match the model's own attention."""
    runs = {"off": [], "dense": ["--lvsa", "--reference-latent-frames", "9", "--riflex", "--riflex-s", "1"]}
    latents = {}
    for name, extra in runs.items():
        assert _generate(models["wan"], tmp_path / name, "--output-latent", *extra) == 0
        latents[name] = torch.load(tmp_path / name / f"wan-33f-seed0{'-lvsa-riflex' if extra else ''}.pt")
        assert not list((tmp_path / name).glob("*.mp4"))
    torch.testing.assert_close(latents["dense"], latents["off"], atol=1e-4, rtol=1e-4)
    out = capsys.readouterr().out
    assert "LVSA off: the model's dense attention" in out
    assert "dense pattern: 9 latent frames <= reference 9" in out and "RIFLEx s=1: no change" in out
    assert _sidecar(tmp_path / "off")["timings"]["stages_s"].keys() >= {"denoise", "latent output"}


def test_vae_tiling_slicing_profile_and_names(models, tmp_path, capsys):
    assert _generate(models["wan"], tmp_path, "--vae-tiling", "--vae-slicing", "--profile", "--output-name", "clip",
                     "--seed", "3", "--guidance", "2.5", "--negative-prompt", "blurry") == 0
    assert video.probe(tmp_path / "clip.mp4") == (33, 16.0, "h264")  # Wan plays at 16 fps by default
    out = capsys.readouterr().out
    assert "step times: 0:" in out and "decode" in out and "peak RSS" in out
    resolved = _sidecar(tmp_path)["resolved"]
    assert (resolved["seed"], resolved["guidance"]) == (3, 2.5)


def test_show_mask_prints_and_saves_png(models, tmp_path, capsys):
    from PIL import Image

    assert _generate(models["wan"], tmp_path, "--lvsa", "--reference-latent-frames", "4", "--window-size", "4",
                     "--show-mask", "--output-latent") == 0
    out = capsys.readouterr().out
    assert "mask (rows: query frames" in out and "T=9 latent frames" in out
    png = tmp_path / "wan-33f-seed0-lvsa-mask.png"
    record = _sidecar(tmp_path)
    assert record["outputs"]["mask_png"] == str(png)
    panels = min(record["lvsa"]["kfi"], 8)
    cell = 256 // 9
    assert Image.open(png).size == (panels * 9 * cell + (panels - 1) * cell, 9 * cell)


def test_both_wan22_experts(tmp_path, capsys):
    model = tiny_pipelines.wan(tmp_path / "wan22", two_experts=True)
    assert _generate(model, tmp_path / "out", "--lvsa", "--reference-latent-frames", "4", "--riflex") == 0
    out = capsys.readouterr().out
    assert "4 self-attention layers in transformer, transformer_2" in out
    assert "RIFLEx on transformer, transformer_2" in out
    assert video.probe(next((tmp_path / "out").glob("*.mp4")))[0] == 33


def test_the_installed_command(models, tmp_path):
    """The ``lvsa`` console script, as a user runs it."""
    import subprocess

    result = subprocess.run(
        ["lvsa", "generate", "--model", str(models["cogvideox"]), "--prompt", "waves", "--num-frames", "9",
         "--height", "16", "--width", "16", "--steps", "1", "--output-dir", str(tmp_path), "--lvsa"],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert video.probe(tmp_path / "cogvideox-9f-seed0-lvsa.mp4") == (9, 8.0, "h264")  # CogVideoX: 8 fps
    assert "LVSA on:" in result.stdout and "denoising" in result.stderr


def test_no_periodic_keyframes(models, tmp_path, capsys):
    assert _generate(models["wan"], tmp_path, "--lvsa", "--reference-latent-frames", "4", "--window-size", "4",
                     "--key-frame-interval", "0", "--no-rotate-keyframes", "--output-latent") == 0
    record = _sidecar(tmp_path)["lvsa"]
    assert record["kfi"] == 0 and record["density"] < 0.5
    assert "keyframe interval none" in record["settings"] and "rotate off" in record["settings"]


def test_example_script(models, tmp_path, monkeypatch):
    """The thin example: its settings, overridden by the options given after them."""
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "examples" / "wan_generate.py"
    monkeypatch.setattr(sys, "argv", [str(script), "--model", str(models["wan"]), "--prompt", "x", "--num-frames",
                                      "17", "--height", "16", "--width", "16", "--steps", "1", "--output-dir",
                                      str(tmp_path)])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_path(str(script), run_name="__main__")
    assert exit_.value.code == 0
    assert video.probe(tmp_path / "wan-17f-seed0-lvsa-riflex.mp4") == (17, 16.0, "h264")
