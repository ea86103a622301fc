"""Why a compiled LVSA transformer differs more from eager dense attention than eager LVSA does.

    python3 bench/compile_precision.py [--frames 21 41] [--reference R] [--whole] [--out bench/results]
    python3 bench/compile_precision.py --tiny        # CPU, a 2-layer model: checks that it runs

The Wan 2.1 1.3B transformer (random weights; bf16, with the modules diffusers keeps in float32
kept in float32, as ``from_pretrained(torch_dtype=torch.bfloat16)`` loads them) at 480x832, run
on the same inputs as: eager with dense cuDNN attention (the reference ``eager dense``) and with
dense flash attention (the next kernel that runs, if one of them does not); eager with LVSA
(cuda backend, denoising step 1, the model's default pattern or ``--reference``); compiled
(inductor, fullgraph) dense and LVSA, once with inductor's defaults and once with
``torch._inductor.config.emulate_precision_casts = True`` (inductor otherwise keeps float32
between the elementwise ops it fuses — RMSNorm, RoPE, modulation, gated residuals — where eager
rounds every intermediate to bf16); and the same weights in float32 (dense, and LVSA through the
float32 torch backend) as the rounding-free answer. Each row is
the relative L2 difference ``||a - b|| / ||b||`` of two outputs, in percent, per latent-frame
count T. If compiled-vs-eager is about as large for dense as for LVSA and shrinks with emulated
casts, the extra difference of compiled LVSA is inductor's rounding, not LVSA.

Compiled means diffusers' regional compilation (``compile_repeated_blocks(fullgraph=True)``: the
30 blocks, which hold all attention and nearly all elementwise work) unless ``--whole`` compiles
the whole transformer (``torch.compile(transformer, fullgraph=True)``, slower to compile).
The table is printed last; the JSON goes to bench/results/compile_precision_<card>_<date>.json.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as _dt
import json
import platform
import sys
import time
from pathlib import Path

import torch
import torch._inductor.config
from torch.nn.attention import SDPBackend, sdpa_kernel

import lvsa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from parallel import WAN_1_3B  # noqa: E402

TINY = dict(WAN_1_3B, num_attention_heads=2, attention_head_dim=64, text_dim=32, freq_dim=64, ffn_dim=128,
            num_layers=2)
STEP = 1  # a denoising step whose rotation offset is not 0 (when the pattern has keyframes)

# (row, output a, output b): each row is ||a - b|| / ||b||.
ROWS = [
    ("dense kernels: other vs reference (eager)", "eager dense other", "eager dense"),
    ("compiled dense vs eager dense", "compiled dense", "eager dense"),
    ("eager LVSA vs eager dense", "eager LVSA", "eager dense"),
    ("compiled LVSA vs eager LVSA", "compiled LVSA", "eager LVSA"),
    ("compiled LVSA vs eager dense", "compiled LVSA", "eager dense"),
    ("emulated casts: compiled dense vs eager dense", "compiled dense emulated", "eager dense"),
    ("emulated casts: compiled LVSA vs eager LVSA", "compiled LVSA emulated", "eager LVSA"),
    ("emulated casts: compiled LVSA vs eager dense", "compiled LVSA emulated", "eager dense"),
    ("pattern alone: fp32 LVSA vs fp32 dense", "fp32 LVSA", "fp32 dense"),
    ("eager dense vs fp32 dense", "eager dense", "fp32 dense"),
    ("compiled dense vs fp32 dense", "compiled dense", "fp32 dense"),
    ("compiled dense emulated vs fp32 dense", "compiled dense emulated", "fp32 dense"),
    ("eager LVSA vs fp32 LVSA", "eager LVSA", "fp32 LVSA"),
    ("compiled LVSA vs fp32 LVSA", "compiled LVSA", "fp32 LVSA"),
    ("compiled LVSA emulated vs fp32 LVSA", "compiled LVSA emulated", "fp32 LVSA"),
]


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", help="latent frames T (default 21 41; --tiny: 10)")
    parser.add_argument("--reference", type=int, help="LVSA reference in latent frames (default: the model's, 21)")
    parser.add_argument("--whole", action="store_true", help="compile the whole transformer, not its blocks")
    parser.add_argument("--tiny", action="store_true", help="a 2-layer model at a few tokens on the CPU")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    return parser.parse_args(argv)


class Setup:
    """Model config, device, latent size and the attention kernels of one run."""

    def __init__(self, tiny: bool):
        gpu = not tiny
        if gpu and not torch.cuda.is_available():
            raise SystemExit("compile_precision: no CUDA device; use --tiny to check the script on the CPU")
        self.device = torch.device("cuda" if gpu else "cpu")
        self.config = WAN_1_3B if gpu else TINY
        self.latent = (60, 104) if gpu else (4, 6)  # 480x832 through the 8x VAE; tiny: 6 tokens a frame
        self.text = (512, self.config["text_dim"])
        self.lvsa_backend = "cuda" if gpu else "cpu"
        # The reference dense kernel and a second one: cuDNN and flash where they run (the CPU has
        # no cuDNN: its math and flash kernels stand in).
        candidates = ((SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION)
                      if gpu else (SDPBackend.MATH, SDPBackend.FLASH_ATTENTION))
        usable = [kernel for kernel in candidates if self._runs(kernel)]
        if len(usable) < 2:
            raise SystemExit(f"compile_precision: fewer than two bf16 SDPA kernels run here ({usable})")
        self.dense, self.other = usable[:2]
        self.exact = [SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]  # kernels that take float32

    def _runs(self, kernel) -> bool:
        q = torch.randn(1, self.config["num_attention_heads"], 256, self.config["attention_head_dim"],
                        device=self.device, dtype=torch.bfloat16)
        try:
            with sdpa_kernel(kernel):
                torch.nn.functional.scaled_dot_product_attention(q, q, q)
            return True
        except RuntimeError:
            return False


def _wan(setup: Setup):
    """The transformer as diffusers loads it in bf16: parameters bf16 except the modules it keeps
    in float32; buffers (RoPE tables) as built, in float32."""
    from diffusers import WanTransformer3DModel

    torch.manual_seed(0)
    model = WanTransformer3DModel(**setup.config).eval().to(setup.device)
    keep = model._keep_in_fp32_modules or []
    with torch.no_grad():
        for name, param in model.named_parameters():
            if not any(part in keep for part in name.split(".")):
                param.data = param.data.to(torch.bfloat16)
    return model


def _inputs(setup: Setup, frames: int, dtype):
    generator = torch.Generator().manual_seed(1)
    latents = torch.randn(1, setup.config["in_channels"], frames, *setup.latent, generator=generator)
    text = torch.randn(1, *setup.text, generator=generator)
    return dict(hidden_states=latents.to(setup.device, dtype), timestep=torch.tensor([500.0], device=setup.device),
                encoder_hidden_states=text.to(setup.device, dtype), return_dict=False)


def _run(model, inputs, kernels, step=None) -> torch.Tensor:
    denoising = lvsa.denoising_step(step) if step is not None else contextlib.nullcontext()
    with torch.no_grad(), sdpa_kernel(kernels), denoising:
        return model(**inputs)[0].double()


def _compile(model, whole: bool):
    """The compiled model, and a function that makes ``model`` eager again."""
    if whole:
        return torch.compile(model, fullgraph=True), lambda: None
    model.compile_repeated_blocks(fullgraph=True)

    def uncompile():
        for block in model.blocks:
            block._compiled_call_impl = None

    return model, uncompile


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def measure(setup: Setup, frames: int, args) -> dict:
    """Every output of one latent-frame count, then the rows."""
    pattern = {} if args.reference is None else dict(reference=args.reference)
    model = _wan(setup)
    inputs = _inputs(setup, frames, torch.bfloat16)
    outs, seconds = {}, {}

    def record(name, fn):
        began = time.perf_counter()
        outs[name] = fn()
        seconds[name] = round(time.perf_counter() - began, 1)
        print(f"  T={frames} {name}: {seconds[name]} s", flush=True)

    record("eager dense", lambda: _run(model, inputs, setup.dense))
    record("eager dense other", lambda: _run(model, inputs, setup.other))
    handle = lvsa.enable(model, backend=setup.lvsa_backend, strict=True, **pattern)
    config = handle.settings.config
    record("eager LVSA", lambda: _run(model, inputs, setup.dense, STEP))
    lvsa.disable(model)

    exact = copy.deepcopy(model).float()  # the same weights, upcast exactly
    exact_inputs = _inputs(setup, frames, torch.float32)
    record("fp32 dense", lambda: _run(exact, exact_inputs, setup.exact))
    lvsa.enable(exact, backend="torch", strict=True, **pattern)
    record("fp32 LVSA", lambda: _run(exact, exact_inputs, setup.exact, STEP))
    del exact

    for emulate in (False, True):
        suffix = " emulated" if emulate else ""
        with torch._inductor.config.patch(emulate_precision_casts=emulate):
            torch._dynamo.reset()  # compile afresh under this setting
            compiled, uncompile = _compile(model, args.whole)
            record("compiled dense" + suffix, lambda: _run(compiled, inputs, setup.dense))
            lvsa.enable(model, backend=setup.lvsa_backend, strict=True, **pattern)
            record("compiled LVSA" + suffix, lambda: _run(compiled, inputs, setup.dense, STEP))
            lvsa.disable(model)
            uncompile()

    P = (setup.latent[0] // 2) * (setup.latent[1] // 2)
    plan = lvsa.Planner(lvsa.Geometry(frames, P), config).step(STEP)
    rows = {row: _relative(outs[a], outs[b]) for row, a, b in ROWS}
    return dict(frames=frames, tokens_per_frame=P, reference=config.reference, kfi=plan.kfi,
                frame_density=round(plan.frame_density, 3), seconds=seconds, relative_l2=rows)


def _card(setup: Setup) -> dict:
    info = dict(torch=torch.__version__, python=platform.python_version())
    if setup.device.type == "cuda":
        info.update(card=torch.cuda.get_device_name(), cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version())
    else:
        info.update(card=platform.processor() or platform.machine())
    return info


def main(argv=None) -> list[dict]:
    args = _parse(argv)
    if args.tiny and args.reference is None:
        args.reference = 2  # sparse at the tiny size too
    setup = Setup(args.tiny)
    frames = args.frames or ([10] if args.tiny else [21, 41])
    info, date = _card(setup), _dt.date.today().isoformat()
    compile_mode = "whole transformer" if args.whole else "repeated blocks"
    print(f"{info['card']}  torch {info['torch']}  compiled: {compile_mode}", flush=True)
    print(f"dense reference kernel {setup.dense.name}, other {setup.other.name}", flush=True)
    results, failed = [], {}
    for T in frames:
        try:
            results.append(measure(setup, T, args))
        except Exception as error:  # noqa: BLE001 - keep the other frame counts' results
            failed[T] = f"{type(error).__name__}: {error}"
            print(f"  T={T} failed: {failed[T]}", flush=True)
        torch._dynamo.reset()

    name = "compile_precision" + ("_tiny" if args.tiny else "")
    card = info["card"].replace(" ", "_").replace("/", "_")
    path = Path(args.out) / f"{name}_{card}_{date}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(date=date, **info, compiled=compile_mode, step=STEP,
                                    model="tiny Wan (2 layers)" if args.tiny else "Wan 2.1 1.3B config, random weights",
                                    dense_kernel=setup.dense.name, other_kernel=setup.other.name,
                                    results=results, failed=failed), indent=1))

    print(f"\n{info['card']}  torch {info['torch']}  {date}  compiled: {compile_mode}  dense: "
          f"{setup.dense.name} (other: {setup.other.name})  -> {path}")
    for T, why in failed.items():
        print(f"T={T} failed: {why}")
    columns = [f"  T={r['frames']} (kfi {r['kfi']}, density {r['frame_density']:.2f})" for r in results]
    print("relative L2 difference, %".ljust(48) + "".join(columns))
    for row, _, _ in ROWS:
        cells = [f"{100 * r['relative_l2'][row]:.3f}".rjust(len(c)) for r, c in zip(results, columns)]
        print(row.ljust(48) + "".join(cells))
    return results


if __name__ == "__main__":
    main()
