"""Each family's image-to-video model (tests/python/tiny_diffusers.py's IMAGE_CASES: Wan 2.1 I2V,
Wan 2.2 TI2V-5B with an image, HunyuanVideo 1.5 I2V, CogVideoX 1.0 / 1.5 I2V, Cosmos 2.5
image-to-world) on the GPU with the cuda backend, strict (a fallback to the model's attention or
to another backend is an error): the dense pattern gives the model's own output and the sparse
one the model with the pattern as a boolean mask, at every rotation offset, in bfloat16.

The cases choose their device when tiny_diffusers is imported, so they run in a pytest of their
own with ``LVSA_TEST_DEVICE=cuda``.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")

TESTS = Path(__file__).resolve().parents[1]


def test_image_to_video_models_on_the_cuda_backend():
    sys.path.insert(0, str(TESTS / "python"))
    import tiny_diffusers  # noqa: F401  (the case list, read without running on the CPU)

    names = list(tiny_diffusers.IMAGE_CASES)
    selection = " or ".join(f"[{name}]" for name in names)
    env = dict(os.environ, LVSA_TEST_DEVICE="cuda", LVSA_BACKEND="cuda", LVSA_STRICT="1")
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf",
                           str(TESTS / "python" / "test_diffusers_models.py"), "-k", selection],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    assert f"{2 * len(names)} passed" in done.stdout, done.stdout[-2000:]
