"""``lvsa bench --dit`` (bench/dit.py): what a user waits for, one whole video transformer.

    lvsa bench --dit --model wan2.1-1.3b --frames 81 161 \\
        --methods dense-cudnn flex lvsa-cuda dense-cudnn:compile lvsa-cuda:compile
    lvsa bench --dit --model hunyuanvideo-1.5-480p --frames 129 193 --steps 4 --cfg
    lvsa bench --dit --model wan2.1-1.3b --max-memory 80 --methods dense-cudnn lvsa-cuda
    lvsa bench --dit --smoke --device cpu            # a tiny model of the family: checks the code path

The released transformer configuration (``lvsa.bench.dit_models``) with random bf16 weights, at
each video length (frames → latent frames as the pipelines do). It times one forward, or with
``--steps N`` a denoising loop with the pipeline's scheduler (``--cfg``: two forwards per step,
conditional and unconditional, as the pipelines run them), per method, each ``METHOD[:MODE]``
(MODE ``eager``, the default, or ``compile``: diffusers' regional compilation of the repeated
blocks, ``compile_repeated_blocks``, where the class declares them, else ``torch.compile`` of the
whole transformer; the row says which):

  dense-cudnn, dense-flash   the model's own attention with SDPA pinned to cuDNN or flash
  diffusers                  the model's own attention, unpinned (what diffusers runs by default)
  flex                       FlexAttention (compiled) with exactly LVSA's mask (a BlockMask of the
                             plan); eager mode only
  lvsa-cuda, lvsa-torch      ``lvsa.enable(transformer, backend=...)``
  lvsa-cuda-fp8, -int8,      the same with ``precision="fp8"`` / ``"int8"`` / ``"int8-fp8"`` (scores
  -int8-fp8                  from e4m3 / int8 q and k; int8-fp8 also v and P in e4m3); their rows
                             also have rel_diff_vs_lvsa_cuda, the relative L2
                             difference of one forward's output from lvsa-cuda's on the same inputs
                             (eager rows)
  lvsa-flashinfer            the same with ``backend="flashinfer"`` (FlashInfer's block-sparse kernels on
                             LVSA's pattern); recorded as skipped, "not installed", without FlashInfer
  dense-valid-cudnn, -flash  padded encoder tokens dropped before attention, then dense SDPA with
                             no mask (HunyuanVideo 1.5: the honest dense baseline for a padded text)

flex and dense-valid-* run the LVSA processors (the model's projections, norms and RoPE) with
their own attention in place of LVSA's. Reported per method and length: the median wall time
over ``--repeats`` warm runs (after ``--warmup`` runs, which include compiling), peak memory
(``torch.cuda.max_memory_allocated``, weights included), LVSA's density at that length, and
speedups over dense-cudnn eager, diffusers eager and dense-valid-cudnn eager where they ran.
A method that fails (out of memory, a kernel that cannot take the inputs) is recorded with its
error. JSON: ``bench/results/dit_<card>_<date>.json``, rewritten after every measurement (a run cut
short keeps what it measured); ``--plot`` a latency-vs-length PNG
(needs matplotlib); ``--max-memory GB`` also finds, per method, the longest length that runs
within that much GPU memory (binary search on the 4k+1 frame grid). docs/dit_tables.py renders
the README tables from the JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from .. import settings, step_context
from ..backends import flashinfer as flashinfer_backend, quantized_scores
from ..integration import enable
from ..model_facts import ModelFacts
from ..plan import Geometry, Planner, preset
from . import dit_models, profile, results
from .mask import block_mask, flex_attention, kept_pairs

_KERNELS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}
QUANTIZED = tuple(f"lvsa-cuda-{p}" for p in quantized_scores.FORMATS)  # rows with rel_diff_vs_lvsa_cuda
METHODS = ("dense-cudnn", "dense-flash", "diffusers", "flex", "lvsa-cuda", *QUANTIZED, "lvsa-torch", "lvsa-flashinfer",
           "dense-valid-cudnn", "dense-valid-flash")
MODES = ("eager", "compile")
BASELINES = ("dense-cudnn:eager", "diffusers:eager", "dense-valid-cudnn:eager")


@dataclass(frozen=True)
class Run:
    method: str
    mode: str

    @property
    def key(self) -> str:
        return f"{self.method}:{self.mode}"

    @classmethod
    def parse(cls, text: str) -> "Run":
        method, _, mode = text.partition(":")
        mode = mode or "eager"
        if method not in METHODS:
            raise SystemExit(f"lvsa bench --dit: unknown method {method!r} in --methods; known: {', '.join(METHODS)}")
        if mode not in MODES:
            raise SystemExit(f"lvsa bench --dit: unknown mode {mode!r} in --methods {text}; known: {', '.join(MODES)}")
        if (method, mode) == ("flex", "compile"):
            # A compiled transformer runs LVSA's attention as an opaque op, and FlexAttention (a
            # higher-order op) cannot run inside one; flex is compiled on its own in eager mode.
            raise SystemExit("lvsa bench --dit: flex:compile is not supported (flex already compiles "
                             "FlexAttention itself; the transformer around it stays eager): use flex")
        return cls(method, mode)


def _parse(argv):
    p = argparse.ArgumentParser(prog="lvsa bench --dit", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="wan2.1-1.3b", help=f"one of {', '.join(dit_models.MODELS)}")
    p.add_argument("--frames", type=int, nargs="+",
                   help="video frames (default: the published lengths and half the training length; smoke: 41)")
    p.add_argument("--methods", nargs="+", help="METHOD[:MODE] each (default: dense-cudnn flex lvsa-cuda on a GPU; "
                   "diffusers lvsa-torch on the CPU)")
    p.add_argument("--steps", type=int, default=0, help="time a denoising loop of this many steps, not one forward")
    p.add_argument("--cfg", action="store_true", help="with --steps: classifier-free guidance, two forwards a step")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (compiling happens here)")
    p.add_argument("--repeats", type=int, default=2, help="timed runs; the median is reported")
    p.add_argument("--reference", type=int, help="LVSA's reference in latent frames (default: the model's)")
    p.add_argument("--max-memory", type=float, metavar="GB",
                   help="also find each method's longest length within this much GPU memory")
    p.add_argument("--max-frames", type=int, help="upper end of the --max-memory search (default 4x the longest "
                   "published length)")
    p.add_argument("--smoke", action="store_true", help="a tiny model of the family (seconds, also on the CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--dtype", choices=["bfloat16", "float16", "float32"],
                   help="default: bfloat16 on a GPU, float32 on the CPU")
    p.add_argument("--name", default="dit", help="result file name prefix (default dit)")
    p.add_argument("--out", default="bench/results", help="folder of the JSON (default bench/results)")
    p.add_argument("--plot", action="store_true", help="also write a latency-vs-length PNG (needs matplotlib)")
    p.add_argument("--profile", action="store_true",
                   help="also profile one more run per method: GPU kernel time by kind (attention, GEMM, ...)")
    args = p.parse_args(argv)
    if args.cfg and not args.steps:
        p.error("--cfg needs --steps N")
    if args.steps < 0 or args.warmup < 0 or args.repeats < 1:
        p.error("--steps and --warmup must be >= 0 and --repeats >= 1")
    return args


# --- methods ---------------------------------------------------------------------------------

def _sdpa_valid_only(kernel):
    """Attention over the video and the valid encoder tokens only, dense, with no mask."""

    def attend_at(q, k, v, geometry, step, encoder_valid=None, scale=None):
        if geometry.encoder_len and geometry.encoder_side != "after":
            raise ValueError("dense-valid: only encoder tokens after the video are dropped here")
        valid = [geometry.encoder_len] * q.shape[0] if encoder_valid is None else encoder_valid.tolist()
        # Rows of padded encoder queries: zeros; the next block drops them again, the output never has them.
        out = torch.zeros_like(q)
        for b, n in enumerate(valid):
            keep = geometry.video_tokens + int(n)
            qb, kb, vb = (x[b:b + 1, :keep].transpose(1, 2) for x in (q, k, v))
            with sdpa_kernel(kernel):
                out[b:b + 1, :keep] = F.scaled_dot_product_attention(qb, kb, vb, scale=scale).transpose(1, 2)
        return out

    return attend_at


def _flex(runtime):
    """FlexAttention with the BlockMask of the plan LVSA would run at this step."""
    masks = {}

    def attend_at(q, k, v, geometry, step, encoder_valid=None, scale=None):
        plan = runtime.plan(geometry, step)
        valid = tuple([geometry.encoder_len] * q.shape[0] if encoder_valid is None else encoder_valid.tolist())
        key = (geometry, plan.offset, valid)
        if key not in masks:
            masks[key] = block_mask(plan, valid, q.device)
        qt, kt, vt = (x.transpose(1, 2) for x in (q, k, v))
        return flex_attention(qt, kt, vt, masks[key], scale=scale).transpose(1, 2)

    return attend_at


def install(method: str, transformer, pattern: dict):
    """Put ``method`` on the transformer: (an undo, a context each call runs in)."""
    if method in ("dense-cudnn", "dense-flash"):
        return (lambda: None), (lambda: sdpa_kernel(_KERNELS[method.removeprefix("dense-")]))
    if method == "diffusers":
        return (lambda: None), contextlib.nullcontext
    # The longest precision the name ends in ("lvsa-cuda-int8-fp8" is int8-fp8, not fp8).
    precision = max((p for p in quantized_scores.FORMATS if method.endswith(f"-{p}")), key=len, default="default")
    backend = (method.removeprefix("lvsa-").removesuffix(f"-{precision}") if method.startswith("lvsa-")
               else "torch")
    handle = enable(transformer, backend=backend, strict=True, precision=precision, **pattern)
    if method == "flex" or method.startswith("dense-valid-"):
        for runtime in handle.runtimes.values():
            # This runtime's attention only: the processors, plans and step stay LVSA's.
            runtime.attend_at = (_flex(runtime) if method == "flex"
                                 else _sdpa_valid_only(_KERNELS[method.removeprefix("dense-valid-")]))
    return handle.disable, contextlib.nullcontext


def _compile(transformer):
    """The compiled transformer, how it was compiled, and the undo: diffusers' regional compilation
    where the class declares its repeated blocks (Wan, HunyuanVideo 1.5), else the whole module."""
    if not getattr(transformer, "_repeated_blocks", None):
        return torch.compile(transformer, fullgraph=True), "whole", torch._dynamo.reset
    transformer.compile_repeated_blocks(fullgraph=True)

    def undo():
        for module in transformer.modules():
            if getattr(module, "_compiled_call_impl", None) is not None:
                module._compiled_call_impl = None
        torch._dynamo.reset()

    return transformer, "regional", undo


# --- timing ----------------------------------------------------------------------------------

def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(fn, device, warmup: int, repeats: int) -> tuple[list[float], float]:
    """Seconds of each timed run, and of the warm-up (compiling included)."""
    began = time.perf_counter()
    for _ in range(warmup):
        fn()
    _sync(device)
    warm = time.perf_counter() - began
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, warm


def _forward(transformer, data, call_context, x, t, cond: bool, step: int):
    with torch.no_grad(), call_context(), step_context.denoising_step(step):
        return transformer(**data.forward(x, t, cond), return_dict=False)[0]


_TIMESTEP = 500.0  # of a single timed forward


def _first_forward(transformer, data, call_context):
    """The single timed forward: the conditional one at step 0."""
    t = torch.tensor([_TIMESTEP], device=data.latents.device)
    return _forward(transformer, data, call_context, data.latents, t, True, 0)


def runner(transformer, spec, data, args, call_context):
    """One forward at step 0, or a denoising loop (CFG: conditional and unconditional forwards)."""
    device = data.latents.device
    guidance = 5.0

    def forward(x, t, cond, step):
        return _forward(transformer, data, call_context, x, t, cond, step)

    if not args.steps:  # the timestep made once, outside the timed calls
        t = torch.tensor([_TIMESTEP], device=device)
        return lambda: forward(data.latents, t, True, 0)

    def loop():
        scheduler = dit_models.scheduler(spec)
        scheduler.set_timesteps(args.steps, device=device)
        x = data.latents
        for i, t in enumerate(scheduler.timesteps):
            pred = forward(x, t, True, i)
            if args.cfg:
                uncond = forward(x, t, False, i)
                pred = uncond + guidance * (pred - uncond)
            x = scheduler.step(pred, t, x, return_dict=False)[0]
        return x

    return loop


def _difference_from_lvsa_cuda(transformer, data, pattern, out: torch.Tensor) -> float:
    """Relative L2 difference of ``out`` (``_first_forward``'s) from lvsa-cuda's on the same inputs."""
    undo, context = install("lvsa-cuda", transformer, pattern)
    try:
        ref = _first_forward(transformer, data, context).float()
    finally:
        undo()
    return ((out.float() - ref).norm() / ref.norm()).item()


def _is_oom(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or "out of memory" in str(error).lower()


def _free(device):
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


def time_run(run: Run, transformer, spec, frames, args, device, dtype, pattern, warmup=None, repeats=None) -> dict:
    """One method at one length: its times and memory, or its error."""
    warmup = args.warmup if warmup is None else warmup
    repeats = args.repeats if repeats is None else repeats
    row = dict(frames=frames, method=run.method, mode=run.mode)
    undo_compile, undo_method = (lambda: None), (lambda: None)
    try:
        data = dit_models.inputs(spec, transformer, frames, device, dtype, args.smoke)
        lay = data.layout
        row.update(latent_frames=lay.token_frames, tokens_per_frame=lay.tokens_per_frame,
                   encoder_len=lay.encoder_len, encoder_valid=lay.encoder_valid)
        if run.method.startswith("dense-valid-") and lay.encoder_valid == lay.encoder_len:
            row["skipped"] = f"{spec.name} has no padded encoder tokens to drop"
            return row
        missing = run.method == "lvsa-flashinfer" and flashinfer_backend.package_reason()
        if missing:
            row["skipped"] = f"not installed: {missing}"
            return row
        undo_method, call_context = install(run.method, transformer, pattern)
        model = transformer
        if run.mode == "compile":
            model, row["compiled"], undo_compile = _compile(transformer)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times, warm = measure(runner(model, spec, data, args, call_context), device, warmup, repeats)
        seconds = statistics.median(times)
        forwards = max(args.steps, 1) * (2 if args.cfg else 1)
        row.update(forward_ms=seconds / forwards * 1e3, ms_all=[t * 1e3 for t in times], warmup_s=warm)
        if args.steps:
            row.update(step_ms=seconds / args.steps * 1e3, loop_s=seconds)
        if device.type == "cuda":
            row["peak_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        if args.profile and device.type == "cuda":
            row["profile"] = profile.profile(runner(model, spec, data, args, call_context))
        if run.method in QUANTIZED and run.mode == "eager":
            out = _first_forward(transformer, data, call_context)
            undo_method()
            undo_method = lambda: None  # noqa: E731 - done; the comparison installs its own
            row["rel_diff_vs_lvsa_cuda"] = _difference_from_lvsa_cuda(transformer, data, pattern, out)
    except Exception as error:  # noqa: BLE001 - recorded: the other methods still run
        first_line = (str(error).splitlines() or [""])[0]
        row["error"] = "out of memory" if _is_oom(error) else f"{type(error).__name__}: {first_line}"[:300]
    finally:
        undo_compile()
        undo_method()
        if run.method == "flex":
            # Each length compiles FlexAttention anew; past dynamo's recompile limit (a --max-memory
            # search tries many lengths) it would run eagerly, unsaid, and time something else.
            torch._dynamo.reset()
        _free(device)
    return row


# --- lengths, density ------------------------------------------------------------------------

def default_frames(spec, smoke: bool) -> list[int]:
    """The published lengths and half the training length; smoke: one short video."""
    if smoke:
        return [41]
    half = (spec.train_frames - 1) // 8 * 4 + 1  # on the 4k+1 grid
    return sorted({half, *spec.published_frames})


def lvsa_config(spec, pattern: dict):
    """The pattern ``lvsa.enable(transformer, **pattern)`` resolves for this model."""
    facts = ModelFacts.from_preset(preset(spec.preset))
    return settings.resolve(settings.gather(dict(pattern)), facts, spec.name).config


def density(spec, frames, pattern, smoke) -> dict:
    """LVSA's density at this length: kept (query, key) pairs over those of dense attention on
    the video and the valid encoder tokens, and the share of frames attended, over the offsets."""
    lay = dit_models.layout(spec, frames, smoke)
    geometry = Geometry(lay.token_frames, lay.tokens_per_frame, lay.encoder_len, lay.encoder_side)
    planner = Planner(geometry, lvsa_config(spec, pattern))
    plans = [planner.step(o) for o in range(planner.kfi if planner.config.rotate else 1)]
    full = (geometry.video_tokens + lay.encoder_valid) ** 2
    return dict(kfi=planner.kfi, density=statistics.fmean(kept_pairs(p, lay.encoder_valid) / full for p in plans),
                frame_density=statistics.fmean(p.frame_density for p in plans))


def longest_running(runs, grid: int, shortest: int, top: int) -> int | None:
    """The longest length grid * k + 1 in [shortest, top] for which ``runs(frames)`` is true, by
    binary search (running is monotone in the length: memory grows with it), or None when even
    ``shortest`` does not run. ``top`` itself is tried second, so a cap that everything fits costs
    two probes."""
    hi = (top - 1) // grid  # lo: the largest k known to run; hi: one that does not (or top's)
    lo = min((shortest - 1) // grid, hi)
    if not runs(grid * lo + 1):
        return None
    if lo < hi and runs(grid * hi + 1):
        lo = hi
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if runs(grid * mid + 1):
            lo = mid
        else:
            hi = mid
    return grid * lo + 1


def max_length(run, transformer, spec, args, device, dtype, pattern) -> dict:
    """The longest video (4k+1 frames) that ``run`` completes within the memory cap, between the
    shortest published length and --max-frames: one untimed and one timed run per probe."""
    probes = []

    def runs(frames):
        row = time_run(run, transformer, spec, frames, args, device, dtype, pattern, warmup=1, repeats=1)
        probes.append({key: row.get(key) for key in ("frames", "forward_ms", "peak_gb", "error")})
        return "error" not in row

    longest = longest_running(runs, preset(spec.preset)["vae_temporal"], spec.published_frames[0],
                              args.max_frames or 4 * max(spec.published_frames))
    return dict(method=run.method, mode=run.mode, cap_gb=args.max_memory, max_frames=longest, probes=probes)


# --- report ----------------------------------------------------------------------------------

def add_speedups(rows: list[dict]) -> None:
    for row in rows:
        if "forward_ms" not in row:
            continue
        same = {f"{r['method']}:{r['mode']}": r for r in rows if r["frames"] == row["frames"] and "forward_ms" in r}
        row["speedup"] = {b: same[b]["forward_ms"] / row["forward_ms"] for b in BASELINES if b in same}


def print_table(rows: list[dict], densities: dict, steps: int) -> None:
    unit = "step ms" if steps else "forward ms"
    print(f"{'frames':>6} {'T':>4} {'density':>8} {'method':<22} {unit:>11} {'peak GB':>8}  speedups")
    for r in rows:
        d = densities[r["frames"]]["density"]
        key = f"{r['method']}:{r['mode']}"
        if "forward_ms" not in r:
            what = r.get("error") or r.get("skipped")
            print(f"{r['frames']:>6} {r.get('latent_frames', '-'):>4} {d:>8.3f} {key:<22} {what}")
            continue
        ms = r["step_ms"] if steps else r["forward_ms"]
        peak = f"{r['peak_gb']:.1f}" if "peak_gb" in r else "-"
        speed = ", ".join(f"{v:.2f}x vs {b}" for b, v in r["speedup"].items())
        print(f"{r['frames']:>6} {r['latent_frames']:>4} {d:>8.3f} {key:<22} {ms:>11.1f} {peak:>8}  {speed}")
        if "profile" in r:
            kinds = ", ".join(f"{kind} {ms:.0f}" for kind, ms in r["profile"]["kinds_ms"].items())
            print(f"{'':>21} GPU ms by kind: {kinds} (total {r['profile']['total_ms']:.0f})")


def plot(path: Path, rows: list[dict], title: str) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("lvsa bench --dit: matplotlib is not installed; no plot written", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for key in dict.fromkeys(f"{r['method']}:{r['mode']}" for r in rows):
        points = [(r["frames"], r["forward_ms"] / 1e3) for r in rows
                  if f"{r['method']}:{r['mode']}" == key and "forward_ms" in r]
        if points:
            ax.plot(*zip(*points), marker="o", label=key)
    ax.set(xlabel="video frames", ylabel="seconds per forward", title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"lvsa bench --dit: plot -> {path}")


def main(argv=None) -> int:
    args = _parse(sys.argv[1:] if argv is None else argv)
    spec = dit_models.model(args.model)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("lvsa bench --dit: no CUDA device here; pass --device cpu (with --smoke)")
    if device.type == "cuda" and device.index is None:  # the memory cap needs a device index
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type != "cuda" and not args.smoke:
        raise SystemExit("lvsa bench --dit: the released models need a GPU; on the CPU use --smoke")
    if args.max_memory is not None and device.type != "cuda":
        raise SystemExit("lvsa bench --dit: --max-memory caps GPU memory; it needs --device cuda")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device.type == "cuda" else "float32"))
    runs = [Run.parse(m) for m in (args.methods or (["dense-cudnn", "flex", "lvsa-cuda"] if device.type == "cuda"
                                                    else ["diffusers", "lvsa-torch"]))]
    frames_list = args.frames or default_frames(spec, args.smoke)
    height, width = spec.smoke_size if args.smoke else (spec.height, spec.width)
    for frames in frames_list:
        try:  # the pipelines' frame grid (4k+1), said with the nearest valid lengths
            Geometry.from_model(spec.preset, frames, height, width)
        except ValueError as error:
            raise SystemExit(f"lvsa bench --dit: --frames {frames}: {error}") from None
    pattern = {} if args.reference is None else dict(reference=args.reference)
    info = results.card_info(device)

    began = time.perf_counter()
    transformer = dit_models.build(spec, device, dtype, args.smoke)
    if not args.smoke:
        dit_models.check_geometry(spec, transformer)
    build_s = time.perf_counter() - began
    _free(device)  # the float32 copies the build made: not part of any method's memory
    weights_gb = torch.cuda.memory_allocated(device) / 2**30 if device.type == "cuda" else None
    print(f"lvsa bench --dit: {spec.name}{' (smoke)' if args.smoke else ''} on {info['card']}, built in "
          f"{build_s:.1f} s{f', weights {weights_gb:.1f} GB' if weights_gb else ''}", flush=True)

    densities = {f: density(spec, f, pattern, args.smoke) for f in frames_list}
    rows, searches = [], []
    payload = dict(model=spec.name, preset=spec.preset, transformer=spec.transformer,
                   config={**spec.config, **(spec.smoke if args.smoke else {})}, smoke=args.smoke,
                   height=height, width=width, device=device.type, dtype=str(dtype).removeprefix("torch."),
                   steps=args.steps, cfg=args.cfg, warmup=args.warmup, repeats=args.repeats,
                   lvsa_pattern=repr(lvsa_config(spec, pattern)), build_s=build_s, weights_gb=weights_gb,
                   lvsa_prologue=settings.gather({}).get("prologue", "fused"),
                   rows=rows, max_memory=searches)

    def save():  # after every measurement: a run cut short (a time limit) keeps what it measured
        add_speedups(rows)
        return results.write(args.out, args.name, info, payload)

    for frames in frames_list:
        for run in runs:
            row = time_run(run, transformer, spec, frames, args, device, dtype, pattern)
            row.update(densities[frames])
            rows.append(row)
            status = (f"{row['forward_ms']:.1f} ms a forward" if "forward_ms" in row
                      else row.get("error") or row.get("skipped"))
            print(f"  {frames} frames {run.key}: {status}", flush=True)
            save()

    if args.max_memory is not None:
        total = torch.cuda.get_device_properties(device).total_memory
        fraction = args.max_memory * 2**30 / total
        if fraction > 1:
            raise SystemExit(f"lvsa bench --dit: --max-memory {args.max_memory} GB is more than this card's "
                             f"{total / 2**30:.1f} GB")
        torch.cuda.set_per_process_memory_fraction(fraction, device)
        try:
            for run in runs:
                searches.append(max_length(run, transformer, spec, args, device, dtype, pattern))
                print(f"  within {args.max_memory:g} GB, {run.key}: longest {searches[-1]['max_frames']} frames",
                      flush=True)
                save()
        finally:
            torch.cuda.set_per_process_memory_fraction(1.0, device)

    print_table(rows, densities, args.steps)
    path = save()
    print(f"lvsa bench --dit: results -> {path}")
    if args.plot:
        plot(path.with_suffix(".png"), rows, f"{spec.name} on {info['card']}")
    return 0
