"""Model-based metrics, only from weights the user already has on disk (``--clip PATH``,
``--dino PATH``: folders saved with ``save_pretrained``); nothing is ever downloaded.

- CLIP-IQA (Wang, Chan, Loy 2023): per frame, the softmax of 100 x the cosine similarity to
  "Good photo." and "Bad photo." (CLIP's trained logit scale); the score is P(good).
- CLIP text alignment (CLIPScore, Hessel et al. 2021): cosine similarity of each frame to the
  prompt; the score is 2.5 x max(cosine, 0), capped at 1.
- DINOv2 subject consistency (as in VBench): per frame after the first, the mean of its CLS
  embedding's cosine similarity to the first frame and to the previous frame.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .measure import measure
from .reader import EvalError, sample_indices

CLIP_FRAMES = 16  # CLIP looks at this many frames spread over the video
QUALITY_PROMPTS = ("Good photo.", "Bad photo.")
CLIP_LOGIT_SCALE = 100.0
CLIPSCORE_WEIGHT = 2.5
_BATCH = 16


def _model_folder(path, flag: str, model_type: str) -> Path:
    folder = Path(path)
    config = folder / "config.json"
    if not folder.is_dir():
        raise EvalError(f"{flag} {folder} is not a folder (expected a {model_type} model saved with "
                        "save_pretrained)")
    if not config.is_file():
        raise EvalError(f"{flag} {folder} has no config.json (expected a {model_type} model saved with save_pretrained)")
    found = json.loads(config.read_text()).get("model_type")
    if found != model_type:
        raise EvalError(f"{flag} {folder} holds a {found!r} model, expected {model_type!r}")
    return folder


def _load(path, device: str, flag: str, model_type: str, model_class, processor_class, processor_what: str):
    folder = _model_folder(path, flag, model_type)
    try:
        processor = processor_class.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, TypeError) as error:
        raise EvalError(f"{flag} {folder}: no usable {processor_what} next to the model (save it there too): "
                        f"{error}") from None
    model = model_class.from_pretrained(folder, local_files_only=True).to(device).eval()
    return model, processor


def load_clip(path, device: str = "cpu"):
    """(CLIPModel, CLIPProcessor) from a local folder."""
    from transformers import CLIPModel, CLIPProcessor

    return _load(path, device, "--clip", "clip", CLIPModel, CLIPProcessor,
                 "tokenizer and image processor (the CLIPProcessor)")


def load_dino(path, device: str = "cpu"):
    """(Dinov2Model, image processor) from a local folder."""
    from transformers import AutoImageProcessor, Dinov2Model

    return _load(path, device, "--dino", "dinov2", Dinov2Model, AutoImageProcessor, "image processor")


def _unit(x):
    return x / x.norm(dim=-1, keepdim=True)


def clip_metrics(frames: np.ndarray, model, processor, prompt: str | None) -> tuple[dict, dict]:
    """({"clip_iqa": ..., "text_alignment": ...}, per-frame curves) over sampled frames."""
    import torch

    device = next(model.parameters()).device
    chosen = sample_indices(len(frames), CLIP_FRAMES)
    texts = list(QUALITY_PROMPTS) + ([prompt] if prompt else [])
    with torch.inference_mode():
        tokens = processor(text=texts, return_tensors="pt", padding=True)
        text = _unit(model.get_text_features(input_ids=tokens["input_ids"].to(device),
                                             attention_mask=tokens["attention_mask"].to(device)).pooler_output)
        images = []
        for start in range(0, len(chosen), _BATCH):
            pixels = processor(images=list(frames[chosen[start:start + _BATCH]]), return_tensors="pt")
            images.append(_unit(model.get_image_features(pixel_values=pixels["pixel_values"].to(device)).pooler_output))
        cosine = (torch.cat(images) @ text.T).float().cpu()
    good = torch.softmax(CLIP_LOGIT_SCALE * cosine[:, :2], dim=1)[:, 0].numpy()
    results = {"clip_iqa": {"metrics": {"clip_iqa": measure(good.mean(), good.mean(), "P(good photo)",
                                                            frames=len(chosen))}}}
    curves = {"clip_iqa": good.tolist(), "clip_frames": chosen.tolist()}
    if prompt:
        alignment = cosine[:, 2].numpy()
        results["text_alignment"] = {"metrics": {"clip_text_alignment": measure(
            alignment.mean(), CLIPSCORE_WEIGHT * max(0.0, float(alignment.mean())), "cosine", frames=len(chosen))}}
        curves["clip_text_alignment"] = alignment.tolist()
    return results, curves


def subject_consistency(frames: np.ndarray, model, processor) -> tuple[dict, dict]:
    import torch

    device = next(model.parameters()).device
    embeddings = []
    with torch.inference_mode():
        for start in range(0, len(frames), _BATCH):
            pixels = processor(images=list(frames[start:start + _BATCH]), return_tensors="pt")["pixel_values"]
            embeddings.append(_unit(model(pixel_values=pixels.to(device)).pooler_output).float().cpu())
    embedding = torch.cat(embeddings)
    if len(embedding) < 2:
        return ({"subject_consistency": {"metrics": {"dino_subject_consistency": measure(
            None, None, "cosine", note="one frame")}}}, {})
    to_first = embedding[1:] @ embedding[0]
    to_previous = (embedding[1:] * embedding[:-1]).sum(dim=1)
    per_frame = ((to_first + to_previous) / 2).numpy()
    value = float(per_frame.mean())
    return ({"subject_consistency": {"metrics": {"dino_subject_consistency": measure(value, value, "cosine")}}},
            {"dino_subject_consistency": per_frame.tolist()})
