"""One ``lvsa generate`` run: options → model → LVSA / RIFLEx → pipeline call → MP4 + sidecar →
summary. Each step's details live in the sibling modules; this is the order they happen in."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

from .. import riflex
from ..integration import enable
from ..plan import Geometry, PatternConfig, Planner
from . import distributed, families, image, loading, mask, report, sidecar, video
from .args import UsageError, check, parser
from .progress import Timeline


def _device(requested, ranks) -> torch.device:
    if ranks.world > 1:
        return distributed.setup(ranks)
    device = torch.device(requested or ("cuda" if torch.cuda.is_available() else "cpu"))
    if device.type == "cuda" and (not torch.cuda.is_available() or (device.index or 0) >= torch.cuda.device_count()):
        raise UsageError(f"--device {requested}: PyTorch sees {torch.cuda.device_count()} CUDA device(s); pass "
                         "--device cpu or a visible GPU")
    return device


def _lvsa_knobs(args, grid) -> dict:
    """``lvsa.enable`` options (latent frames) from the video-frame knobs, converted with this
    model's own video → planner frame factor."""
    interval = args.key_frame_interval
    video = PatternConfig.from_video_frames(
        window=12 if args.window_size is None else args.window_size,
        n_first=4 if args.n_first_frames is None else args.n_first_frames,
        keyframe_interval="auto" if interval is None else (None if interval == 0 else interval),
        vae_temporal=grid.frame_factor)
    knobs = dict(window=video.window, n_first=video.n_first, keyframe_interval=video.keyframe_interval)
    for option, knob in (("reference_latent_frames", "reference"), ("sparsity_scale", "scale"),
                         ("rotate_keyframes", "rotate"), ("backend", "backend"), ("precision", "precision")):
        if getattr(args, option) is not None:
            knobs[knob] = getattr(args, option)
    return knobs


def generate(argv: list) -> int:
    args = parser().parse_args(argv)
    check(args)
    began = time.perf_counter()
    ranks = distributed.ranks()
    device = _device(args.device, ranks)
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    folder = loading.resolve(args.model)
    # Everything that can be refused without the weights is, before they load.
    pipeline = families.pipeline_for(loading.checkpoint(folder), folder, image=args.image is not None)
    images = [image.read(path, flag) for path, flag in ((args.image, "--image"), (args.last_image, "--last-image"))
              if path is not None]
    timeline = Timeline(device, show=ranks.leader)
    try:
        with timeline.stage("load"):
            pipe = loading.load(folder, dtype, device, pipeline)
        return _run(args, argv, pipe, images, folder, device, dtype, ranks, timeline, began)
    finally:
        distributed.teardown(ranks)


def _run(args, argv, pipe, images, folder, device, dtype, ranks, timeline, began) -> int:
    from ..models import adapter_for

    family, default_fps = families.family_of(pipe)
    adapter = adapter_for(pipe.transformer)
    grid = families.grid_of(pipe)
    default_frames, default_height, default_width = families.default_size(pipe)
    frames = args.num_frames or default_frames
    image_arguments, sized_by_image, fitted = {}, False, []
    if images:
        height, width, image_arguments, sized_by_image, fitted = image.condition(
            pipe, adapter, images, args.height, args.width, (default_height, default_width), grid.pixel_multiple)
    else:
        height, width = args.height or default_height, args.width or default_width
    grid.check(frames, height, width, family)
    if fitted and ranks.leader:
        print("\n".join(fitted))
    fps = args.fps or default_fps * grid.patch[0]  # CogVideoX 1.5 (temporal patch 2) plays at 16 fps
    token_frames, tokens_per_frame = grid.token_frames(frames), grid.tokens_per_frame(height, width)
    loading.configure_vae(pipe, args.vae_tiling, args.vae_slicing)
    if ranks.world > 1 and not args.lvsa:  # with --lvsa, lvsa.enable(parallel=...) splits the sequence
        distributed.parallelize(pipe, ranks)

    # Knob values the planner or RIFLEx refuses (ValueError naming the knob) are usage errors.
    handle = None
    if args.lvsa:
        try:
            parallel = {"parallel": ranks.world} if ranks.world > 1 else {}
            handle = enable(pipe, **_lvsa_knobs(args, grid), **parallel)
        except ValueError as error:
            raise UsageError(str(error)) from None
    riflex_facts, riflex_line = {"enabled": False}, "RIFLEx off"
    if args.riflex:
        try:
            # The training horizon: RIFLEx's own option, else the one LVSA was told, else the model's.
            train_len = args.riflex_train_len or args.reference_latent_frames or riflex.training_length(pipe)
            s = args.riflex_s if args.riflex_s is not None else max(1.0, token_frames / train_len)
            rope = riflex.enable(pipe, s, k=args.riflex_k, train_len=train_len)
        except ValueError as error:
            raise UsageError(str(error)) from None
        riflex_line = rope.summary()
        riflex_facts = {"enabled": True, "s": rope.s, "k": rope.k, "train_len": rope.train_len,
                        "t_dim": rope.t_dim, "theta": rope.theta, "components": rope.components,
                        "frequency": rope.frequency, "new_frequency": rope.new_frequency if s != 1 else rope.frequency}

    out_dir = Path(args.output_dir)
    name = args.output_name or (f"{family}{'-i2v' if images else ''}-{frames}f-seed{args.seed}"
                                + ("-lvsa" if args.lvsa else "")
                                + ("-riflex" if args.riflex else ""))
    outputs = {}
    if ranks.leader:
        out_dir.mkdir(parents=True, exist_ok=True)
    if args.show_mask and ranks.leader:
        planner = Planner(Geometry(token_frames, tokens_per_frame), handle.settings.config)
        config = pipe.transformer.config
        print(mask.text(planner, config.num_attention_heads, config.attention_head_dim))
        outputs["mask_png"] = str(out_dir / f"{name}-mask.png")
        panels = mask.write_png(planner, Path(outputs["mask_png"]))
        print(f"mask: {outputs['mask_png']} ({panels} rotation offset(s); orange global, blue window, "
              "purple both, dark skipped)")

    call = families.call_arguments(pipe, prompt=args.prompt, negative_prompt=args.negative_prompt,
                                   frames=frames, height=height, width=width, steps=args.steps,
                                   guidance=args.guidance, seed=args.seed, latent=args.output_latent,
                                   image_arguments=image_arguments, sized_by_image=sized_by_image)
    with report.lvsa_warnings() as warnings, timeline.pipeline_call(pipe, decode=not args.output_latent):
        result = pipe(**call)

    if ranks.leader:
        with timeline.stage("write"):
            if args.output_latent:
                outputs["latent"] = str(out_dir / f"{name}.pt")
                torch.save(result.frames.detach().cpu(), outputs["latent"])
            else:
                outputs["video"] = str(out_dir / f"{name}.mp4")
                video.write_mp4(video.to_uint8(result.frames[0]), Path(outputs["video"]), fps)
    wall = time.perf_counter() - began
    engaged = report.engagement(handle, token_frames, tokens_per_frame, warnings)
    if not ranks.leader:
        return 0

    outputs["sidecar"] = str(out_dir / f"{name}.json")
    resolved = dict(family=family, pipeline=type(pipe).__name__, folder=str(folder),
                    transformers={n: type(c).__name__ for n, c in pipe.components.items() if n.startswith("transformer")
                                  and c is not None},
                    frames=frames, height=height, width=width, fps=fps, steps=args.steps, guidance=args.guidance,
                    seed=args.seed, dtype=str(dtype).removeprefix("torch."), device=str(device),
                    latent_frames=grid.latent_frames(frames), token_frames=token_frames,
                    tokens_per_frame=tokens_per_frame, vae_temporal=grid.vae_temporal, vae_spatial=grid.vae_spatial,
                    patch=list(grid.patch),
                    **{i.flag.removeprefix("--").replace("-", "_"): i.record(height, width) for i in images})
    sidecar.write(Path(outputs["sidecar"]), argv=list(argv), options=vars(args), resolved=resolved,
                  timeline=timeline, wall=wall, lvsa=engaged, riflex=riflex_facts, outputs=outputs,
                  world_size=ranks.world)
    if args.profile:
        print(report.profile(timeline))
    print(report.summary(timeline, wall, engaged, riflex_line, outputs.get("video") or outputs["latent"],
                         outputs["sidecar"]))
    if args.eval:
        from ..eval.cli import evaluate_generated
        from ..eval.reader import EvalError

        try:
            evaluate_generated(Path(outputs["video"]), args.prompt)
        except EvalError as error:
            raise UsageError(f"--eval: {error}") from None
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        return generate(argv)
    except UsageError as error:
        print(f"lvsa generate: error: {error}", file=sys.stderr)
        return 2
