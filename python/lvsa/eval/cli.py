"""``lvsa eval``: options, the runs to score, and where their reports go.

    lvsa eval VIDEO... [--reference DENSE.mp4] [--prompt TEXT] [--out DIR] [--clip PATH] [--dino PATH]
    lvsa eval --batch RUNS.csv|DIR [--out DIR] [--clip PATH] [--dino PATH]

Each video's reports go to ``DIR/<video name>/`` (default DIR: ``eval`` next to the first video);
with more than one video, ``DIR/summary.csv`` has one row a video.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import batch, report
from .evaluate import Models, evaluate, write
from .reader import EvalError, read


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lvsa eval",
        description="Score generated videos offline: loop and freeze, temporal coherence, dynamics, spatial "
                    "quality, fidelity to a dense run, and (with local weights) CLIP and DINOv2 metrics; a composite "
                    "and a verdict. Writes JSON, HTML (opens offline) and PNG reports. See docs/eval.md.")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="videos to score (MP4 or anything FFmpeg reads)")
    p.add_argument("--batch", metavar="RUNS.csv|DIR",
                   help="score the runs listed in a CSV (columns video[,reference][,prompt]) or every lvsa generate "
                        "output in a folder, each LVSA run against the dense run with its settings (from the sidecars)")
    p.add_argument("--reference", metavar="DENSE.mp4", help="a dense run of the same seed and settings to compare with")
    p.add_argument("--prompt", help="the prompt, for CLIP text alignment (needs --clip)")
    p.add_argument("--out", metavar="DIR", help="report folder (default: eval/ next to the first video)")
    p.add_argument("--clip", metavar="PATH", help="a local CLIP model folder (CLIPModel + CLIPProcessor, "
                                                   "save_pretrained): CLIP-IQA and text alignment")
    p.add_argument("--dino", metavar="PATH", help="a local DINOv2 model folder (Dinov2Model + image processor): "
                                                   "subject consistency")
    p.add_argument("--device", default=None,
                   help="torch device for SSIM / MS-SSIM and the CLIP / DINOv2 models (default: cuda when available)")
    return p


def _runs(args) -> list:
    if args.batch:
        if args.videos or args.reference or args.prompt:
            raise EvalError("--batch takes the videos, references and prompts from its CSV or the sidecars; "
                            "drop the VIDEO arguments, --reference and --prompt")
        return batch.runs(args.batch)
    if not args.videos:
        raise EvalError("give one or more VIDEO files, or --batch RUNS.csv|DIR")
    return [batch.Run(Path(v), Path(args.reference) if args.reference else None, args.prompt) for v in args.videos]


def _folders(runs: list, out: Path) -> list:
    folders, seen = [], {}
    for run in runs:
        folder = out / run.video.stem
        if folder in seen:
            raise EvalError(f"{seen[folder]} and {run.video} would share the report folder {folder}; "
                            "rename one, or score them with separate --out folders")
        seen[folder] = run.video
        folders.append(folder)
    return folders


def _device(requested) -> str:
    import torch

    if requested is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise EvalError(f"--device {requested} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise EvalError(f"--device {requested}: PyTorch sees {torch.cuda.device_count()} CUDA device(s)")
    return requested


def run(runs: list, out: Path, clip=None, dino=None, device=None, summary: bool = False) -> list:
    """Score ``runs`` into ``out``; returns their reports."""
    folders = _folders(runs, out)
    device = _device(device)
    loaded = Models.load(clip, dino, device)
    references, reports = {}, []  # a dense run shared by several LVSA runs is decoded once
    for job, folder in zip(runs, folders):
        video = read(job.video)
        dense = None
        if job.reference is not None:
            key = job.reference.resolve()
            if key not in references:
                references[key] = read(job.reference, "--reference")
            dense = references[key]
        evaluation = evaluate(video, dense, job.prompt, loaded, device)
        files = write(evaluation, folder)
        composite, loop = evaluation.report["composite"], evaluation.report["groups"]["loop"]
        print(f"{job.video}: composite {composite['score']:.3f}, {composite['verdict']}; loop_quality "
              f"{loop['score']:.3f} ({loop['state']})" + (f" vs {job.reference}" if dense is not None else "")
              + f"\n  report: {files['html']}")
        reports.append(evaluation.report)
    if summary or len(runs) > 1:
        path = out / "summary.csv"
        report.write_csv([report.row(one) for one in reports], path)
        print(f"summary: {path}")
    return reports


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser().parse_args(argv)
    try:
        runs = _runs(args)
        if args.prompt and not args.clip:
            print("lvsa eval: note: --prompt is scored only with --clip PATH (CLIP text alignment); "
                  "it is recorded in the report", file=sys.stderr)
        out = Path(args.out) if args.out else runs[0].video.parent / "eval"
        run(runs, out, args.clip, args.dino, args.device, summary=bool(args.batch))
    except EvalError as error:
        print(f"lvsa eval: error: {error}", file=sys.stderr)
        return 2
    return 0


def evaluate_generated(video: Path, prompt: str) -> dict:
    """``lvsa generate --eval``: score the video just written, into ``eval/`` next to it."""
    (result,) = run([batch.Run(video, None, prompt)], video.parent / "eval")
    return result
