"""The options of ``lvsa generate`` and the checks that need no model.

Frame knobs of the pattern are taken in *video* frames, as users type them (``--window-size 12``,
``--n-first-frames 4``, ``--key-frame-interval 16``), and converted with the loaded model's own
video → latent factor; ``--reference-latent-frames`` is in latent frames, like the planner's R.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
from pathlib import Path

import torch

from ..ops import PRECISIONS


class UsageError(Exception):
    """A bad argument or a model that cannot be used: printed as one line, exit status 2."""


# Options that only mean something with --lvsa (dest -> flag), so they are never silently ignored.
LVSA_KNOBS = {"window_size": "--window-size", "n_first_frames": "--n-first-frames",
              "key_frame_interval": "--key-frame-interval", "auto_keyframes": "--auto-keyframes",
              "rotate_keyframes": "--rotate-keyframes", "sparsity_scale": "--sparsity-scale",
              "reference_latent_frames": "--reference-latent-frames", "backend": "--backend",
              "precision": "--precision", "show_mask": "--show-mask"}
RIFLEX_KNOBS = {"riflex_s": "--riflex-s", "riflex_k": "--riflex-k", "riflex_train_len": "--riflex-train-len"}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lvsa generate",
        description="Generate a video from text (or from an image, --image) with a local diffusers pipeline (Wan 2.1/2.2, HunyuanVideo 1.5, CogVideoX, "
                    "Cosmos 2.5), optionally with LVSA sparse attention and RIFLEx. Writes an MP4 (H.264) and a "
                    "JSON sidecar with every setting, versions and timings.")
    g = p.add_argument_group("model and video")
    g.add_argument("--model", required=True,
                   help="a local diffusers pipeline folder (with model_index.json), or a hub id already in the local "
                        "Hugging Face cache (nothing is downloaded)")
    g.add_argument("--prompt", required=True)
    g.add_argument("--image", default=None, metavar="PATH",
                   help="image-to-video: the first frame, scaled and center-cropped to the video's size (an image-to-"
                        "video checkpoint needs it; a text-to-video one refuses it unless it takes one, e.g. Wan 2.2 "
                        "TI2V-5B). Without --height/--width the video keeps the image's aspect ratio")
    g.add_argument("--last-image", default=None, metavar="PATH",
                   help="the last frame too, where the pipeline takes one (Wan 2.2 I2V A14B, Wan 2.1 FLF2V)")
    g.add_argument("--negative-prompt", default=None, help="default: the pipeline's own")
    g.add_argument("--num-frames", type=int, default=None,
                   help="video frames; must be on the model's grid (4k+1 for a 4x temporal VAE). Default: the model's")
    g.add_argument("--height", type=int, default=None, help="pixels (default: the model's)")
    g.add_argument("--width", type=int, default=None, help="pixels (default: the model's)")
    g.add_argument("--steps", type=int, default=50, help="denoising steps (default 50)")
    g.add_argument("--guidance", type=float, default=None, help="classifier-free guidance scale (default: the model's)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--fps", type=float, default=None, help="frame rate of the MP4 (default: the model's)")
    g.add_argument("--dtype", choices=["bfloat16", "float16", "float32"], default=None,
                   help="default: bfloat16 on a GPU, float32 on the CPU")
    g.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    g.add_argument("--vae-tiling", action="store_true", help="decode in spatial tiles (less memory)")
    g.add_argument("--vae-slicing", action="store_true", help="decode one batch item at a time")

    o = p.add_argument_group("output")
    o.add_argument("--output-dir", default="outputs")
    o.add_argument("--output-name", default=None,
                   help="file name without extension (default: <family>[-i2v]-<frames>f-seed<seed>[-lvsa][-riflex])")
    o.add_argument("--output-latent", action="store_true",
                   help="skip the VAE decode and save the final latents (.pt) instead of an MP4")
    o.add_argument("--profile", action="store_true",
                   help="print per-step and per-stage times and peak memory per stage (also in the sidecar)")
    o.add_argument("--eval", action="store_true",
                   help="score the video just written with lvsa eval (the eval extra); reports in "
                        "<output-dir>/eval/<name>/")

    s = p.add_argument_group("LVSA sparse attention (frame knobs in video frames)")
    s.add_argument("--lvsa", action="store_true", help="use LVSA sparse attention (default: the model's dense attention)")
    s.add_argument("--window-size", type=int, default=None, help="local window in video frames (default 12)")
    s.add_argument("--n-first-frames", type=int, default=None, help="leading global frames in video frames (default 4)")
    k = s.add_mutually_exclusive_group()
    k.add_argument("--key-frame-interval", type=int, default=None,
                   help="periodic keyframe interval in video frames (0: no periodic keyframes)")
    k.add_argument("--auto-keyframes", action="store_true", default=None,
                   help="derive the keyframe interval from the budget (the default)")
    s.add_argument("--rotate-keyframes", action=argparse.BooleanOptionalAction, default=None,
                   help="shift the keyframe grid every denoising step (default on)")
    s.add_argument("--sparsity-scale", type=float, default=None, help="multiplies the attention budget (default 1)")
    s.add_argument("--reference-latent-frames", type=int, default=None,
                   help="the model's training horizon in latent frames (default: the model's, e.g. Wan 21)")
    s.add_argument("--backend", default=None, help="auto, cpu, cuda, torch, reference or flashinfer (default auto)")
    s.add_argument("--precision", default=None, choices=list(PRECISIONS),
                   help="the attention scores: default (the model's dtype), fp8 or int8 (q and k rounded to float8 "
                        "e4m3 or int8; the cuda backend on H100/H200, bfloat16 models with head_dim 128), int8-fp8 "
                        "(int8 scores, and v and the probabilities in e4m3)")
    s.add_argument("--show-mask", action="store_true",
                   help="print the frame mask of the first denoising step and save it as a PNG next to the video")

    r = p.add_argument_group("RIFLEx (temporal RoPE extrapolation)")
    r.add_argument("--riflex", action="store_true", help="apply RIFLEx (composable with --lvsa)")
    r.add_argument("--riflex-s", type=float, default=None,
                   help="extrapolation ratio (default: latent frames / training length, at least 1)")
    r.add_argument("--riflex-k", type=int, default=None, help="temporal frequency index (default: the intrinsic one)")
    r.add_argument("--riflex-train-len", type=float, default=None,
                   help="training length in latent frames (default: the model's reference horizon)")
    return p


def check(args: argparse.Namespace) -> None:
    """Checks that need no model: ranges, the device and output names, and knobs given without
    the feature they tune. Upper limits that depend on the model are checked once it is loaded."""
    for name, low in (("num_frames", 1), ("height", 1), ("width", 1), ("steps", 1), ("window_size", 0),
                      ("n_first_frames", 0), ("key_frame_interval", 0), ("reference_latent_frames", 1),
                      ("riflex_k", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            raise UsageError(f"--{name.replace('_', '-')} must be >= {low}, got {value}")
    # `not x > low` also refuses NaN; math.isfinite refuses inf.
    for name, low, strict in (("fps", 0, True), ("sparsity_scale", 0, True), ("riflex_s", 1, False),
                              ("riflex_train_len", 0, True), ("guidance", -math.inf, False)):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and (value > low if strict else value >= low)):
            bound = "a finite number" if low == -math.inf else f"a finite number {'>' if strict else '>='} {low:g}"
            raise UsageError(f"--{name.replace('_', '-')} must be {bound}, got {value}")
    if args.device is not None:
        try:
            torch.device(args.device)
        except RuntimeError:
            raise UsageError(f"--device {args.device} is not a torch device (e.g. cpu, cuda, cuda:1)") from None
    folder = Path(args.output_dir)
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"--output-dir {folder} exists and is not a folder")
    if args.output_name is not None and (Path(args.output_name).name != args.output_name
                                         or args.output_name in ("", ".", "..")):
        raise UsageError(f"--output-name must be a file name without folders, got {args.output_name!r} "
                         "(put folders in --output-dir)")
    if args.last_image is not None and args.image is None:
        raise UsageError("--last-image needs --image (the first frame)")
    if args.eval and args.output_latent:
        raise UsageError("--eval scores a video; --output-latent writes none (drop one of them)")
    if args.eval and any(importlib.util.find_spec(module) is None for module in ("cv2", "skimage", "torchmetrics")):
        raise UsageError("--eval needs the eval extra: pip install 'lvsa[eval]'")
    if not args.lvsa:
        given = [flag for dest, flag in LVSA_KNOBS.items() if getattr(args, dest) not in (None, False)]
        if given:
            raise UsageError(f"{', '.join(given)} tune LVSA; add --lvsa to use it")
    if not args.riflex:
        given = [flag for dest, flag in RIFLEX_KNOBS.items() if getattr(args, dest) is not None]
        if given:
            raise UsageError(f"{', '.join(given)} tune RIFLEx; add --riflex to use it")
