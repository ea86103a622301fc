"""``lvsa eval --batch``: the runs to score, from a CSV (columns ``video``, optional ``reference``
and ``prompt``; paths relative to the CSV) or a folder of ``lvsa generate`` outputs. Each run's
JSON sidecar (``<name>.json`` next to ``<name>.mp4``) gives its prompt, and pairs an LVSA run
with the dense run of the same model, prompt, size, frame count, frame rate, steps, guidance,
seed and RIFLEx setting: that dense run is its reference."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from .reader import EvalError


@dataclass
class Run:
    video: Path
    reference: Path | None = None
    prompt: str | None = None
    sidecar: dict | None = None


def read_sidecar(path: Path) -> dict | None:
    """The ``lvsa generate`` sidecar at ``path``, or None when it is something else."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("command", [None, None])[:2] != ["lvsa", "generate"]:
        return None
    return record


def _pairing_key(record: dict) -> tuple:
    options, resolved = record["options"], record["resolved"]
    return (resolved.get("folder"), options.get("prompt"), options.get("negative_prompt"), resolved.get("frames"),
            resolved.get("height"), resolved.get("width"), resolved.get("fps"), resolved.get("steps"),
            resolved.get("guidance"), resolved.get("seed"), bool(record.get("riflex", {}).get("enabled")))


def pair(runs: list) -> None:
    """Give every LVSA run without a reference the dense run with its settings, if one is listed."""
    dense = {}
    for run in runs:
        if run.sidecar is not None and not run.sidecar.get("lvsa", {}).get("enabled"):
            key = _pairing_key(run.sidecar)
            if key in dense:
                raise EvalError(f"--batch: {dense[key].video} and {run.video} are both dense runs of the same "
                                "settings; keep one, or give each LVSA run its reference in a CSV")
            dense[key] = run
    for run in runs:
        if run.reference is None and run.sidecar is not None and run.sidecar.get("lvsa", {}).get("enabled"):
            match = dense.get(_pairing_key(run.sidecar))
            run.reference = match.video if match else None


def _sidecar_of(video: Path) -> dict | None:
    path = video.with_suffix(".json")
    return read_sidecar(path) if path.is_file() else None


def from_folder(folder: Path) -> list:
    runs = []
    for path in sorted(folder.rglob("*.json")):
        record = read_sidecar(path)
        if record is None or not record.get("outputs", {}).get("video"):
            continue
        # The sidecar's path is as typed at generation time; the MP4 sits next to the sidecar.
        video = path.parent / Path(record["outputs"]["video"]).name
        runs.append(Run(video, prompt=record["options"].get("prompt"), sidecar=record))
    if not runs:
        raise EvalError(f"--batch {folder}: no lvsa generate sidecar with a video in it (expected <name>.json "
                        "next to <name>.mp4)")
    return runs


def from_csv(path: Path) -> list:
    with path.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or "video" not in rows[0]:
        raise EvalError(f"--batch {path}: expected a CSV with a header naming a 'video' column "
                        "(and optionally 'reference' and 'prompt')")
    runs = []
    for number, entry in enumerate(rows, start=2):
        if not (entry.get("video") or "").strip():
            raise EvalError(f"--batch {path}, line {number}: empty 'video'")
        video = path.parent / entry["video"].strip()
        reference = (entry.get("reference") or "").strip()
        sidecar = _sidecar_of(video)
        prompt = (entry.get("prompt") or "").strip() or (sidecar["options"].get("prompt") if sidecar else None)
        runs.append(Run(video, path.parent / reference if reference else None, prompt, sidecar))
    return runs


def runs(source) -> list:
    source = Path(source)
    if source.is_dir():
        found = from_folder(source)
    elif source.is_file():
        found = from_csv(source)
    else:
        raise EvalError(f"--batch {source} does not exist (expected a CSV of runs or a folder of lvsa generate "
                        "outputs)")
    pair(found)
    return found
