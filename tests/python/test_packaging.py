"""The package declares what its features import: a user who installs an extra gets a working
feature (scripts/test.sh installs only these into a fresh environment, so the other tests also
fail when a declaration is missing)."""

import re
from importlib import metadata

import pytest


def _extra(name: str) -> set[str]:
    requires = metadata.requires("lvsa") or []
    marker = re.compile(rf"extra\s*==\s*['\"]{name}['\"]")
    return {re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0].lower() for r in requires if marker.search(r)}


@pytest.mark.parametrize("extra", ["diffusers", "generate"])
def test_diffusers_extras_bring_accelerate(extra):
    # diffusers refuses to load models that keep modules in float32 (Wan) without accelerate:
    # "low_cpu_mem_usage cannot be False when keep_in_fp32_modules is True".
    assert {"torch", "diffusers", "transformers", "accelerate"} <= _extra(extra)


def test_generate_extra_brings_the_video_writer_and_tokenizers():
    assert {"av", "sentencepiece", "protobuf"} <= _extra("generate")


def test_generate_extra_brings_the_image_readers():
    # --image reads with Pillow; WanImageToVideoPipeline cleans prompts with ftfy (NameError without).
    assert {"pillow", "ftfy"} <= _extra("generate")


def test_flashinfer_extra_brings_flashinfer():
    assert {"torch", "flashinfer-python"} <= _extra("flashinfer")
