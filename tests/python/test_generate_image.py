"""``lvsa generate --image`` end to end on the CPU: each family's tiny image-to-video checkpoint
(saved with ``save_pretrained``, image encoders included) is loaded as the pipeline its
``model_index.json`` names (Wan 2.2 TI2V-5B's ``WanPipeline`` as ``WanImageToVideoPipeline``),
the image is fitted to the video's size with a line that says so, the MP4 has the requested
frames, the sidecar records the image's sha256, and the first frame is what the model makes of
the image: TI2V-5B puts the image in as the first latent frame, so the MP4's first frame is the
VAE's reconstruction of the image, within codec noise.
"""

import hashlib
import json

import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("av")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import tiny_pipelines  # noqa: E402
from lvsa.cli import main  # noqa: E402
from lvsa.generate import image, video  # noqa: E402

# checkpoint -> (family, pipeline, video frames, size options): 9 frames, the smallest the tiny
# models' grids share; HunyuanVideo 1.5 I2V sizes the video from the image itself.
RUNS = {
    "wan_i2v": ("wan", "WanImageToVideoPipeline", ["--height", "16", "--width", "32"]),
    "wan22_i2v": ("wan", "WanImageToVideoPipeline", ["--height", "16", "--width", "32"]),
    "cogvideox_i2v": ("cogvideox", "CogVideoXImageToVideoPipeline", ["--height", "16", "--width", "32"]),
    "cogvideox1.5_i2v": ("cogvideox", "CogVideoXImageToVideoPipeline", ["--height", "16", "--width", "32"]),
    "hunyuan_video_i2v": ("hunyuan_video", "HunyuanVideo15ImageToVideoPipeline", []),
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("i2v")
    return {name: build(root / name) for name, build in tiny_pipelines.IMAGE_BUILDERS.items()}


def _picture(path, width=40, height=24, seed=0):
    """A smooth picture (gradients and a soft blob), whose H.264 round trip is close."""
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    phase = np.random.default_rng(seed).random(3) * 6
    pixels = np.stack([0.5 + 0.4 * np.sin(3 * x + 2 * y + p) for p in phase], axis=-1)
    Image.fromarray((pixels * 255).round().astype(np.uint8)).save(path)
    return path


def _generate(model, out, *extra):
    return main(["generate", "--model", str(model), "--prompt", "a red fox runs", "--num-frames", "9", "--steps", "1",
                 "--output-dir", str(out), *extra])


def _sidecar(out):
    (path,) = out.glob("*.json")
    return json.loads(path.read_text())


@pytest.mark.parametrize("name", list(RUNS))
def test_image_to_video_with_lvsa_and_riflex(name, checkpoints, tmp_path, capsys):
    family, pipeline, size = RUNS[name]
    picture = _picture(tmp_path / "first.png")
    extra = ["--last-image", str(_picture(tmp_path / "last.png", seed=1))] if name == "wan22_i2v" else []
    assert _generate(checkpoints[name], tmp_path / "out", "--image", str(picture), *extra, *size,
                     "--lvsa", "--riflex", "--guidance", "3") == 0
    out = capsys.readouterr().out

    (mp4,) = (tmp_path / "out").glob("*.mp4")
    assert mp4.name == f"{family}-i2v-9f-seed0-lvsa-riflex.mp4"
    assert video.probe(mp4)[0] == 9
    record = _sidecar(tmp_path / "out")
    resolved = record["resolved"]
    assert resolved["pipeline"] == pipeline
    assert resolved["image"]["sha256"] == hashlib.sha256(picture.read_bytes()).hexdigest()
    assert resolved["image"]["size"] == [40, 24]
    assert resolved["image"]["video_size"] == [resolved["width"], resolved["height"]]
    assert ("last_image" in resolved) == bool(extra)
    assert f"--image {picture}: 40x24 scaled to" in out and "(the video's size)" in out
    assert "LVSA on:" in out and "RIFLEx" in out


def test_ti2v_first_frame_is_the_models_reconstruction_of_the_image(checkpoints, tmp_path):
    from diffusers import WanImageToVideoPipeline

    picture = _picture(tmp_path / "first.png", width=32, height=16)  # the video's size: no crop
    assert _generate(checkpoints["wan_ti2v"], tmp_path / "out", "--image", str(picture), "--height", "16",
                     "--width", "32", "--lvsa", "--reference-latent-frames", "2") == 0
    record = _sidecar(tmp_path / "out")
    assert record["resolved"]["pipeline"] == "WanImageToVideoPipeline" and record["lvsa"]["kfi"] > 1
    import av

    with av.open(str(next((tmp_path / "out").glob("*.mp4")))) as container:
        frames = [f.to_ndarray(format="rgb24").astype(np.float64) for f in container.decode(video=0)]

    # The pipeline's own preprocessing and VAE, on the image alone: the causal VAE decodes the
    # first frame from the first latent frame only, which TI2V sets to the image's latent.
    pipe = WanImageToVideoPipeline.from_pretrained(checkpoints["wan_ti2v"], local_files_only=True)
    with torch.no_grad():
        pixels = pipe.video_processor.preprocess(Image.open(picture), height=16, width=32).unsqueeze(2)
        latent = pipe.vae.encode(pixels).latent_dist.mode()
        decoded = pipe.vae.decode(latent).sample
    expected = video.to_uint8(pipe.video_processor.postprocess_video(decoded, output_type="np")[0])[0]
    error = np.abs(frames[0] - expected).mean()
    assert error < 4.0, error  # H.264 at crf 18 in yuv420p
    assert np.abs(frames[1] - expected).mean() > 4 * error  # the later frames are generated, not the image


def test_video_size_follows_the_image():
    picture = image.Conditioning("--image", None, "", width=400, height=300, pixels=None)
    assert image.video_size(picture, 480, 832, (480, 832), 16) == (480, 832)      # both given: as given
    assert image.video_size(picture, 480, None, (480, 832), 16) == (480, 640)     # one: the aspect ratio
    assert image.video_size(picture, None, 336, (480, 832), 16) == (256, 336)     # 252 -> the grid's 256
    assert image.video_size(picture, None, None, (480, 832), 16) == (544, 736)    # the default area, 4:3


def test_fit_scales_to_cover_and_crops_the_center(tmp_path):
    picture = image.read(str(_picture(tmp_path / "p.png", width=40, height=24)), "--image")
    pixels, line = image.fit(picture, 16, 32)
    assert pixels.size == (32, 16)
    assert line == f"--image {tmp_path / 'p.png'}: 40x24 scaled to 32x19 and center-cropped to 32x16 (the video's size)"
    expected = picture.pixels.resize((32, 19), Image.Resampling.LANCZOS).crop((0, 1, 32, 17))
    assert np.array_equal(np.asarray(pixels), np.asarray(expected))
