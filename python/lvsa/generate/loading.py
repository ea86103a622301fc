"""Finding and loading the pipeline, offline only.

``--model`` is a local diffusers folder (``model_index.json`` plus one subfolder per component)
or a hub id that is already in the local Hugging Face cache. Nothing is downloaded: a model that
is not there is an error that says what to download and how.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import torch

from .args import UsageError

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
_EXAMPLE = "Wan-AI/Wan2.1-T2V-1.3B-Diffusers"


def resolve(model: str) -> Path:
    """The local folder of ``model`` (a folder, or a hub id's snapshot in the local cache)."""
    folder = Path(model).expanduser()
    if folder.exists():
        if not (folder / "model_index.json").is_file():
            raise UsageError(f"{folder} is not a diffusers pipeline folder (it has no model_index.json); download "
                             f"the Diffusers version of the model, e.g. `hf download {_EXAMPLE} --local-dir {folder}`")
        return folder
    if not _HUB_ID.match(model):
        raise UsageError(f"model folder {model} does not exist; pass a diffusers pipeline folder, e.g. one made by "
                         f"`hf download {_EXAMPLE} --local-dir {model}`")
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return Path(snapshot_download(model, local_files_only=True))
    except LocalEntryNotFoundError:
        raise UsageError(f"{model} is neither a folder nor in the local Hugging Face cache, and lvsa generate does "
                         f"not download; fetch it first with `hf download {model}` (or `hf download {model} "
                         f"--local-dir DIR` and pass DIR)") from None


def checkpoint(folder: Path) -> dict:
    """The checkpoint's ``model_index.json``: its pipeline class and components."""
    path = folder / "model_index.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise UsageError(f"{path} cannot be read as JSON ({error})") from None


def load(folder: Path, dtype: torch.dtype, device: torch.device, pipeline: str):
    """The checkpoint in ``folder`` as the diffusers pipeline class named ``pipeline`` (its own, or
    the image-to-video class that takes an image for it), weights in ``dtype`` on ``device``."""
    import diffusers

    pipe = getattr(diffusers, pipeline).from_pretrained(folder, dtype=dtype, local_files_only=True)
    return pipe.to(device)


def configure_vae(pipe, tiling: bool, slicing: bool) -> None:
    """VAE tiling / slicing, where the pipeline's VAE offers it (an error where it does not)."""
    for wanted, method, flag in ((tiling, "enable_tiling", "--vae-tiling"), (slicing, "enable_slicing", "--vae-slicing")):
        if not wanted:
            continue
        if not hasattr(pipe.vae, method):
            raise UsageError(f"{flag}: the VAE of this pipeline ({type(pipe.vae).__name__}) does not offer it")
        getattr(pipe.vae, method)()
