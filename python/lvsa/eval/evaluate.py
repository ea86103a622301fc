"""One video's evaluation: decode, flow once, every metric group, the composite; then its files
(JSON, HTML, PNGs). The metrics live in the sibling modules; this is the order they run in."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import numpy as np

from . import composite, dynamics, flow, html, images, loop, models, reference, report, spatial, temporal
from .reader import ANALYSIS_SIDE, Video


@dataclass
class Models:
    """Model-based metrics the user gave weights for (each a (model, processor) pair or None)."""
    clip: tuple | None = None
    dino: tuple | None = None

    @classmethod
    def load(cls, clip_path=None, dino_path=None, device: str = "cpu") -> "Models":
        return cls(clip=models.load_clip(clip_path, device) if clip_path else None,
                   dino=models.load_dino(dino_path, device) if dino_path else None)


@dataclass
class Evaluation:
    report: dict
    video: Video
    reference: Video | None
    similarity: np.ndarray = field(repr=False)


def evaluate(video: Video, dense: Video | None = None, prompt: str | None = None,
             loaded: Models | None = None, device: str = "cpu") -> Evaluation:
    """Every metric group that can run: the reference group with ``dense``, the model groups with
    ``loaded`` weights; torch work (SSIM, models) on ``device``."""
    loaded = loaded or Models()
    if dense is not None:
        reference.check_pair(video, dense)  # before any metric runs: a mismatch fails fast
    flows = flow.farneback(video.grey)
    groups, curves = {}, {}
    groups["loop"], loop_curves = loop.evaluate(video.grey, flows)
    similarity = loop_curves.pop("self_similarity")
    curves.update(loop_curves)
    for name, (group, group_curves) in (("temporal", temporal.evaluate(video.grey, flows)),
                                        ("dynamics", dynamics.evaluate(flows)),
                                        ("spatial", spatial.evaluate(video.frames))):
        groups[name] = group
        curves.update(group_curves)
    if dense is not None:
        groups["reference"], reference_curves = reference.evaluate(video, dense, device)
        curves.update(reference_curves)
    if loaded.clip is not None:
        clip_groups, clip_curves = models.clip_metrics(video.frames, *loaded.clip, prompt)
        groups.update(clip_groups)
        curves.update(clip_curves)
    if loaded.dino is not None:
        dino_groups, dino_curves = models.subject_consistency(video.frames, *loaded.dino)
        groups.update(dino_groups)
        curves.update(dino_curves)
    width, height = video.size
    result = {
        "video": str(video.path),
        "reference": None if dense is None else str(dense.path),
        "prompt": prompt,
        "info": {"frames": video.count, "fps": video.fps, "width": width, "height": height,
                 "analysis_size": list(video.grey.shape[1:][::-1]), "analysis_side": ANALYSIS_SIDE},
        "composite": composite.combine(groups),
        "groups": groups,
        "curves": curves,
        "date": datetime.now(timezone.utc).isoformat(),
        "versions": _versions(),
    }
    return Evaluation(result, video, dense, similarity)


def _versions() -> dict:
    found = {}
    for name in ("lvsa", "numpy", "opencv-python-headless", "scikit-image", "torchmetrics", "torch", "transformers",
                 "av"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def write(evaluation: Evaluation, folder: Path) -> dict:
    """Write report.json, report.html, contact_sheet.png, self_similarity.png and, with a reference,
    reference_strip.png into ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    pictures = [("contact_sheet", "Contact sheet", images.contact_sheet(evaluation.video.frames)),
                ("self_similarity", "Self-similarity (bright: frames alike; lines off the diagonal are repeats)",
                 images.similarity_map(evaluation.similarity))]
    if evaluation.reference is not None:
        pictures.append(("reference_strip", "Video (top), dense reference (middle), 4x difference (bottom)",
                         images.reference_strip(evaluation.video.frames, evaluation.reference.frames)))
    paths = {}
    for stem, _, image in pictures:
        paths[stem] = str(folder / f"{stem}.png")
        image.save(paths[stem])
    paths["html"], paths["json"] = str(folder / "report.html"), str(folder / "report.json")
    evaluation.report["files"] = paths
    embedded = {title: images.png_bytes(image) for _, title, image in pictures}
    Path(paths["html"]).write_text(html.page(evaluation.report, embedded), encoding="utf-8")
    report.write_json(evaluation.report, Path(paths["json"]))
    return paths
