"""Report files: JSON with every sub-score and per-frame curve (strict JSON: infinity is written
as "inf"), and the CSV summary of a batch, one row a video."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .measure import finite_or_text


def write_json(report: dict, path: Path) -> None:
    path.write_text(json.dumps(finite_or_text(report), indent=2, allow_nan=False) + "\n")


def row(report: dict) -> dict:
    """The flat summary of one report: composite, verdict, loop state, each metric's value and score."""
    loop = report["groups"]["loop"]
    flat = {"video": report["video"], "reference": report["reference"] or "", "frames": report["info"]["frames"],
            "fps": report["info"]["fps"], "width": report["info"]["width"], "height": report["info"]["height"],
            "composite": report["composite"]["score"], "verdict": report["composite"]["verdict"],
            "loop_quality": loop["score"], "loop_state": loop["state"], "period_frames": loop["period_frames"] or ""}
    for group in report["groups"].values():
        for name, entry in group["metrics"].items():
            flat[name] = "" if entry["value"] is None else entry["value"]
            flat[f"{name}_score"] = "" if entry["score"] is None else entry["score"]
    return finite_or_text(flat)


def write_csv(rows: list, path: Path) -> None:
    columns = list(dict.fromkeys(key for one in rows for key in one))  # first-seen order, all videos' keys
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
