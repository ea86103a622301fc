"""``lvsa.enable`` on every family's image-to-video pipeline (tiny, saved with ``save_pretrained``
with its image encoder, loaded back, given a prompt and an image): the keyframe grid rotates
with the scheduler's steps exactly as in text to video (step ``i`` uses offset ``i mod kfi``, the
guidance calls of a step share it), both Wan 2.2 I2V A14B experts are patched and run, cross-
attention (where Wan 2.1 I2V's image tokens go) keeps the model's processor, and the sparse
pattern changes the output.
"""

import numpy as np
import pytest

pytest.importorskip("diffusers")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

import lvsa  # noqa: E402
import tiny_diffusers as td  # noqa: E402
import tiny_pipelines  # noqa: E402
from lvsa.models import adapter_for  # noqa: E402

STEPS = 4   # > kfi (3): the grid wraps around within one call
LAYERS = 2  # self-attention layers of every tiny transformer
# checkpoint -> (pipeline class to load it as, transformer calls per step and expert, video frames,
# height, width): T = 9 (Wan I2V: 7) latent frames, sparse against the reference 4 of td.SPARSE.
PIPELINES = {
    "wan_i2v": ("WanImageToVideoPipeline", 2, 25, 16, 32),  # T = 7: its VAE encodes every frame
    "wan22_i2v": ("WanImageToVideoPipeline", 2, 25, 16, 32),
    "wan_ti2v": ("WanImageToVideoPipeline", 2, 33, 16, 32),    # a WanPipeline checkpoint, given an image
    "cogvideox_i2v": ("CogVideoXImageToVideoPipeline", 1, 33, 16, 32),  # guidance as one doubled batch
    "cogvideox1.5_i2v": ("CogVideoXImageToVideoPipeline", 1, 65, 16, 32),  # 17 latent frames -> 9 token frames
    "hunyuan_video_i2v": ("HunyuanVideo15ImageToVideoPipeline", 2, 17, None, None),  # sized from the image
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("i2v")
    return {name: build(root / name) for name, build in tiny_pipelines.IMAGE_BUILDERS.items()}


def _image(seed=0, size=(32, 16)):
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(pixels)


def _load(checkpoints, name):
    import diffusers

    return getattr(diffusers, PIPELINES[name][0]).from_pretrained(checkpoints[name], local_files_only=True)


def _run(pipe, name, image, steps=STEPS):
    _, _, frames, height, width = PIPELINES[name]
    size = {} if height is None else dict(height=height, width=width)
    adapter = adapter_for(pipe.transformer)
    call = dict(prompt="a red fox", num_frames=frames, num_inference_steps=steps, output_type="latent",
                generator=torch.Generator().manual_seed(0), return_dict=False, **size,
                **adapter.guidance_arguments(pipe, 5.0), **adapter.image_arguments(pipe, image, None))
    with torch.no_grad():
        return pipe(**call)[0]


@pytest.mark.parametrize("name", list(PIPELINES))
def test_pattern_rotates_with_the_denoising_step(name, checkpoints, offsets):
    pipe = _load(checkpoints, name)
    handle = lvsa.enable(pipe, **td.SPARSE)
    assert all(len(layers) == LAYERS for layers in handle.layers.values()) and not handle.skipped
    sparse = _run(pipe, name, _image())
    # Wan 2.2's two experts take turns over the steps: a step's calls are one expert's.
    assert offsets == [step % 3 for step in range(STEPS) for _ in range(PIPELINES[name][1] * LAYERS)]
    lvsa.disable(pipe)
    assert (sparse - _run(pipe, name, _image())).abs().max() > 1e-4  # the pattern engaged


def test_wan21_image_tokens_stay_in_cross_attention(checkpoints):
    pipe = _load(checkpoints, "wan_i2v")
    lvsa.enable(pipe, **td.SPARSE)
    for block in pipe.transformer.blocks:
        assert type(block.attn1.processor).__name__ == "WanLVSAProcessor"
        assert block.attn2.add_k_proj is not None  # the image tokens' own K/V ...
        assert type(block.attn2.processor).__name__ == "WanAttnProcessor"  # ... on the model's attention


def test_wan22_i2v_both_experts_patched(checkpoints, offsets):
    pipe = _load(checkpoints, "wan22_i2v")
    experts = {"transformer": pipe.transformer, "transformer_2": pipe.transformer_2}
    used = {name: 0 for name in experts}
    hooks = [t.register_forward_pre_hook(lambda m, a, name=name: used.__setitem__(name, used[name] + 1))
             for name, t in experts.items()]
    handle = lvsa.enable(pipe, **td.SPARSE)
    assert handle.model == "wan2.2-a14b"
    assert {name: len(layers) for name, layers in handle.layers.items()} == {"transformer": 2, "transformer_2": 2}
    for transformer in experts.values():
        assert all(type(b.attn1.processor).__name__ == "WanLVSAProcessor" for b in transformer.blocks)
    _run(pipe, "wan22_i2v", _image())
    for hook in hooks:
        hook.remove()
    assert used["transformer"] > 0 and used["transformer_2"] > 0 and sum(used.values()) == 2 * STEPS
    assert len(offsets) == 2 * STEPS * LAYERS  # every call of both experts went through LVSA


def test_a_different_image_changes_the_video(checkpoints):
    """The image reaches the model through the adapter's image arguments, with LVSA on."""
    for name in ("wan_ti2v", "hunyuan_video_i2v"):
        pipe = _load(checkpoints, name)
        lvsa.enable(pipe, **td.SPARSE)
        assert (_run(pipe, name, _image(0), steps=1) - _run(pipe, name, _image(1), steps=1)).abs().max() > 1e-4


def test_cosmos_image_to_world(offsets):
    """Cosmos 2.5 Predict conditioned on an image (the adapter's Video2World call with one
    conditioning frame): the grid rotates with the steps of both guidance calls."""
    from test_diffusers_pipelines import _cosmos

    pipe, call, calls_per_step = _cosmos()
    image_arguments = adapter_for(pipe.transformer).image_arguments(pipe, _image(size=(32, 32)), None)
    lvsa.enable(pipe, **td.SPARSE)
    with torch.no_grad():
        pipe(**call, **image_arguments, num_inference_steps=STEPS, output_type="latent",
             generator=torch.Generator().manual_seed(0))
    assert offsets == [step % 3 for step in range(STEPS) for _ in range(calls_per_step * LAYERS)]
