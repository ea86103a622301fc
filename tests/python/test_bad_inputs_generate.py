"""``lvsa generate``'s bad-input catalogue (docs/troubleshooting.md): each row is a command line
that must end with one line on stderr naming the option and what was expected, exit status 2,
and nothing written (no file or folder appears, the output folder included)."""

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

pytest.importorskip("diffusers")

import tiny_pipelines  # noqa: E402
from lvsa.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def wan(tmp_path_factory):
    return tiny_pipelines.wan(tmp_path_factory.mktemp("models") / "wan")


@pytest.fixture(scope="module")
def image_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("i2v")
    return {"wan_i2v": tiny_pipelines.wan_i2v(root / "wan_i2v"),
            "hunyuan_video_i2v": tiny_pipelines.IMAGE_BUILDERS["hunyuan_video_i2v"](root / "hunyuan_video_i2v")}


@dataclass(frozen=True)
class Where:
    wan: Path   # a tiny Wan pipeline folder (4k+1 frames, sizes a multiple of 16)
    tmp: Path   # the test's folder: the default output folder is tmp / "out"
    images: dict  # tiny image-to-video checkpoints (Wan 2.1 I2V, HunyuanVideo 1.5 I2V)

    @property
    def picture(self) -> str:
        from PIL import Image

        path = self.tmp / "picture.png"
        if not path.exists():
            Image.new("RGB", (32, 16), (200, 80, 20)).save(path)
        return str(path)


@dataclass(frozen=True)
class Bad:
    name: str
    extra: Callable[[Where], list]  # options after a valid command line (the last one given wins)
    match: str
    setup: Callable = field(default=lambda where, monkeypatch: None)
    argv: Callable = None  # a whole command line instead of a valid one plus `extra`


def _flags(*flags):
    return lambda where: list(flags)


def _no_hub_cache(where, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(where.tmp / "hub-cache"))


def _a_file(where, monkeypatch):
    (where.tmp / "a-file").write_text("not a folder")


def _broken_png(where, monkeypatch):
    from PIL import Image

    import io
    import random

    noise = Image.frombytes("RGB", (32, 16), random.Random(0).randbytes(32 * 16 * 3))
    whole = io.BytesIO()
    noise.save(whole, format="PNG")
    (where.tmp / "broken.png").write_bytes(whole.getvalue()[:200])  # the header and part of the pixels


ROWS = [
    # the model
    Bad("model_folder_missing", lambda w: ["--model", str(w.tmp / "no-such-model")],
        r"model folder .*no-such-model does not exist; pass a diffusers pipeline folder, e\.g\. one made by "
        r"`hf download Wan-AI/Wan2\.1-T2V-1\.3B-Diffusers --local-dir "),
    Bad("model_folder_without_model_index", lambda w: ["--model", str(w.tmp)],
        r"is not a diffusers pipeline folder \(it has no model_index\.json\); download the Diffusers version"),
    Bad("hub_id_not_in_the_local_cache", _flags("--model", "lvsa-test/not-downloaded"),
        r"lvsa-test/not-downloaded is neither a folder nor in the local Hugging Face cache, and lvsa generate does "
        r"not download; fetch it first with `hf download lvsa-test/not-downloaded`", setup=_no_hub_cache),
    Bad("model_not_given", None, r"the following arguments are required: --model",
        argv=lambda w: ["generate", "--prompt", "x", "--output-dir", str(w.tmp / "out")]),
    Bad("model_path_missing", lambda w: ["--model"], r"argument --model: expected one argument"),
    # the video's size against the model's grid
    Bad("frames_off_the_grid", _flags("--num-frames", "35"),
        r"--num-frames 35 is off the grid of this wan model: .* use 4k\+1 frames; nearest valid: 33 or 37"),
    Bad("frames_zero", _flags("--num-frames", "0"), r"--num-frames must be >= 1, got 0"),
    Bad("frames_not_a_number", _flags("--num-frames", "many"), r"argument --num-frames: invalid int value: 'many'"),
    Bad("height_off_the_grid", _flags("--height", "20"),
        r"--height 20 must be a multiple of 16 for this wan model .*; nearest valid: 16 or 32"),
    Bad("width_off_the_grid", _flags("--width", "8"), r"--width 8 must be a multiple of 16 .*; nearest valid: 16$"),
    Bad("height_negative", _flags("--height", "-16"), r"--height must be >= 1, got -16"),
    Bad("steps_zero", _flags("--steps", "0"), r"--steps must be >= 1, got 0"),
    Bad("fps_nan", _flags("--fps", "nan"), r"--fps must be a finite number > 0, got nan"),
    Bad("guidance_nan", _flags("--guidance", "nan"), r"--guidance must be a finite number, got nan"),  # ran on NaN
    Bad("dtype_unknown", _flags("--dtype", "int8"), r"argument --dtype: invalid choice: 'int8'"),
    Bad("device_unknown", _flags("--device", "tpu"),  # was a RuntimeError traceback
        r"--device tpu is not a torch device \(e\.g\. cpu, cuda, cuda:1\)"),
    Bad("device_not_visible", _flags("--device", "cuda:99"),  # was a traceback from deep in PyTorch
        r"--device cuda:99: PyTorch sees \d+ CUDA device\(s\); pass --device cpu or a visible GPU"),
    Bad("output_dir_is_a_file", lambda w: ["--output-dir", str(w.tmp / "a-file")],  # was FileExistsError
        r"--output-dir .*a-file exists and is not a folder", setup=_a_file),
    Bad("output_name_with_folders", _flags("--output-name", "runs/fox"),  # failed after the whole run
        r"--output-name must be a file name without folders, got 'runs/fox' \(put folders in --output-dir\)"),
    # LVSA knobs
    Bad("lvsa_knob_without_lvsa", _flags("--window-size", "12"), r"--window-size tune LVSA; add --lvsa to use it"),
    Bad("show_mask_without_lvsa", _flags("--show-mask"), r"--show-mask tune LVSA; add --lvsa to use it"),
    Bad("window_negative", _flags("--lvsa", "--window-size", "-4"), r"--window-size must be >= 0, got -4"),
    Bad("n_first_negative", _flags("--lvsa", "--n-first-frames", "-1"), r"--n-first-frames must be >= 0, got -1"),
    Bad("key_frame_interval_below_a_latent_frame", _flags("--lvsa", "--key-frame-interval", "2"),
        r"keyframe_interval 2 video frames is below one latent frame \(4 video frames\)"),
    Bad("auto_and_fixed_keyframes", _flags("--lvsa", "--key-frame-interval", "16", "--auto-keyframes"),
        r"argument --auto-keyframes: not allowed with argument --key-frame-interval"),
    Bad("sparsity_scale_zero", _flags("--lvsa", "--sparsity-scale", "0"),
        r"--sparsity-scale must be a finite number > 0, got 0"),
    Bad("reference_zero", _flags("--lvsa", "--reference-latent-frames", "0"),
        r"--reference-latent-frames must be >= 1, got 0"),
    Bad("backend_unknown", _flags("--lvsa", "--backend", "gpu"),
        r"backend must be one of auto, cpu, cuda, torch, reference, flashinfer, got 'gpu'"),
    Bad("precision_without_lvsa", _flags("--precision", "fp8"), r"--precision tune LVSA; add --lvsa to use it"),
    Bad("precision_unknown", _flags("--lvsa", "--precision", "fp4"), r"argument --precision: invalid choice: 'fp4'"),
    Bad("fp8_scores_off_the_cuda_backend", _flags("--lvsa", "--precision", "fp8", "--backend", "torch"),
        r"precision 'fp8' runs on the cuda backend only, got backend 'torch'"),
    Bad("int8_scores_off_the_cuda_backend", _flags("--lvsa", "--precision", "int8", "--backend", "cpu"),
        r"precision 'int8' runs on the cuda backend only, got backend 'cpu'"),
    # RIFLEx knobs
    Bad("riflex_knob_without_riflex", _flags("--riflex-s", "2"), r"--riflex-s tune RIFLEx; add --riflex to use it"),
    Bad("riflex_k_out_of_range", _flags("--riflex", "--riflex-k", "9"),
        r"k must be an int in \[0, 4\) \(this model has 4 temporal frequencies\), got 9"),
    Bad("riflex_k_negative", _flags("--riflex", "--riflex-k", "-1"), r"--riflex-k must be >= 0, got -1"),
    Bad("riflex_s_below_1", _flags("--riflex", "--riflex-s", "0.5"),
        r"--riflex-s must be a finite number >= 1, got 0\.5"),
    # image to video
    Bad("image_to_video_checkpoint_without_image", lambda w: ["--model", str(w.images["wan_i2v"])],
        r"wan_i2v is an image-to-video checkpoint \(WanImageToVideoPipeline\): pass its first frame with --image PATH"),
    Bad("image_for_a_text_to_video_checkpoint", lambda w: ["--image", w.picture],
        r"--image: .*wan is a text-to-video checkpoint \(WanPipeline\) that takes no image; use an image-to-video "
        r"one: WanImageToVideoPipeline, .*Wan 2\.2 TI2V-5B"),
    Bad("image_missing", lambda w: ["--model", str(w.images["wan_i2v"]), "--image", str(w.tmp / "no.png")],
        r"--image .*no\.png: cannot read the file \(No such file or directory\)"),
    Bad("image_not_an_image", lambda w: ["--model", str(w.images["wan_i2v"]), "--image", str(w.tmp / "a-file")],
        r"--image .*a-file: not an image file Pillow can read \(PNG, JPEG, WebP, \.\.\.\)", setup=_a_file),
    Bad("image_truncated", lambda w: ["--model", str(w.images["wan_i2v"]), "--image", str(w.tmp / "broken.png")],
        r"--image .*broken\.png: the image cannot be decoded", setup=_broken_png),
    Bad("last_image_without_image", lambda w: ["--last-image", w.picture],
        r"--last-image needs --image \(the first frame\)"),
    Bad("last_image_not_taken", lambda w: ["--model", str(w.images["wan_i2v"]), "--image", w.picture,
                                           "--last-image", w.picture],
        r"--last-image: this Wan 2\.1 I2V checkpoint conditions on the first frame only; first and last frame need "
        r"Wan2\.1-FLF2V-14B or Wan 2\.2 I2V A14B"),
    Bad("size_of_a_pipeline_that_sizes_from_the_image", lambda w: ["--model", str(w.images["hunyuan_video_i2v"]),
                                                                   "--image", w.picture, "--num-frames", "9"],
        r"--height/--width: HunyuanVideo15ImageToVideoPipeline sizes the video from its image: 20x12 for this 32x16 "
        r"image; leave them out"),
    Bad("riflex_train_len_zero", _flags("--riflex", "--riflex-train-len", "0"),  # was the model's default instead
        r"--riflex-train-len must be a finite number > 0, got 0\.0"),
]


def _files(folder: Path) -> set:
    return {path.relative_to(folder) for path in folder.rglob("*")}


@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.name)
def test_refused_and_nothing_written(row, wan, image_models, tmp_path, capsys, monkeypatch):
    where = Where(wan, tmp_path, image_models)
    row.setup(where, monkeypatch)
    where.picture  # made before the snapshot of the folder
    before = _files(tmp_path), _files(wan)
    argv = row.argv(where) if row.argv else [
        "generate", "--model", str(wan), "--prompt", "x", "--num-frames", "33", "--height", "16", "--width", "16",
        "--steps", "1", "--output-dir", str(tmp_path / "out"), *row.extra(where)]
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse's own errors: same prefix and status
        status = exit_.code
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after diffusers' loading bars, if any

    assert status == 2
    assert err.startswith("lvsa generate: error: ")
    assert re.search(row.match, err), err
    assert (_files(tmp_path), _files(wan)) == before


def test_catalogue_size():
    assert len(ROWS) >= 8 and len({row.name for row in ROWS}) == len(ROWS)


def test_hub_id_in_the_local_cache_is_used(wan, tmp_path, monkeypatch):
    """The counterpart of the hub row: a cached snapshot (the layout ``hf download`` leaves)
    loads without a network."""
    import shutil

    import huggingface_hub.constants

    repo = tmp_path / "models--lvsa-test--tiny-wan"
    shutil.copytree(wan, repo / "snapshots" / ("0" * 40))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    assert main(["generate", "--model", "lvsa-test/tiny-wan", "--prompt", "x", "--num-frames", "5", "--height", "16",
                 "--width", "16", "--steps", "1", "--output-latent", "--output-dir", str(tmp_path / "out")]) == 0
