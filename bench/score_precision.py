"""How much accuracy quantised scores cost, on the CPU and without a GPU kernel: the exact
attention (float32 reference backend) of q and k as each scheme rounds them, against that of the
bfloat16 inputs. Gaussian data, head_dim 128, an LVSA plan; optionally with a bias that all keys of
a head share (as projections with a bias give).

    python3 bench/score_precision.py [--bias 0 2] [--out bench/results]

Schemes: e4m3 and int8 with one scale per (batch, head), K smoothed, what ``precision="fp8"`` and
``"int8"`` run (``lvsa.backends.quantized_scores``); e4m3 without smoothing; int8 with Q per token;
e4m3 with the static scale that a per-head RMSNorm's bound allows (what the fused prologue could
write without a pre-pass; measured on inputs RMS-normed per head, which every scheme also sees in
its own columns); and fp8 P·V, the next kernel step (docs/perf/cuda_sm90.md, v7), emulated after
16-bit, fp8 and int8 scores: V in e4m3 with one scale per head, P = e4m3(256 · exp(s - max)) with
the row sum from the unrounded P, as that kernel would compute them. Prints a table of relative
L2 errors and writes it to ``<out>/score_precision_cpu_<date>.txt``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path

import torch

import lvsa
from lvsa import Geometry, PatternConfig, Planner
from lvsa.backends import quantized_scores
from lvsa.bench.mask import mask_mod


def _int8(x: torch.Tensor, dims) -> torch.Tensor:
    """Symmetric int8 rounding with one scale per slice over ``dims``, dequantised."""
    scale = x.float().abs().amax(dim=dims, keepdim=True).clamp_min(1e-30) / 127
    return (x.float() / scale).round().clamp(-127, 127) * scale


def _shipped(precision):
    """What ``precision`` gives the kernel: q and the smoothed k, dequantised (softmax ignores the
    mean's scores, which only lse gets back)."""
    def scheme(q, k, plan):
        x = quantized_scores.quantize_scores(q, k, plan, None, precision=precision)
        return quantized_scores.dequantize(x.q, x.q_descale), quantized_scores.dequantize(x.k, x.k_descale)
    return scheme


def _fp8_pv(q, k, v, plan) -> torch.Tensor:
    """Attention of q and k (as given) with P and V rounded as fp8 P·V would: V to e4m3 with one
    scale per head, P to e4m3 after scaling by 256 (its largest value then 256 < 448, and values
    down to 2^-17 keep e4m3's subnormal range), the row sum from the unrounded P. Dense over the
    plan's mask (the benchmarks' ``mask_mod``), float64."""
    index = torch.arange(plan.geometry.seq_len)
    mask = mask_mod(plan, [0], "cpu")(0, 0, index[:, None], index[None, :])
    v8 = quantized_scores.dequantize(*quantized_scores.quantize(v, None)).double()
    s = torch.einsum("bshd,bthd->bhst", q.double(), k.double()) * q.shape[-1] ** -0.5
    s = s.masked_fill(~mask, float("-inf"))
    p = torch.exp(s - s.amax(-1, keepdim=True))
    p8 = (256 * p).to(torch.float8_e4m3fn).double() / 256
    return torch.einsum("bhst,bthd->bshd", p8, v8) / p.sum(-1).transpose(1, 2)[..., None]


def _static(x: torch.Tensor) -> torch.Tensor:
    """e4m3 with the one scale a per-head RMSNorm's output allows without reading it: |x| <= sqrt(D)
    (weight 1), so descale = sqrt(D) / 448 (what the fused QK prologue could write directly)."""
    descale = torch.full(x.shape[::2], x.shape[-1] ** 0.5 / quantized_scores.E4M3_MAX)
    return quantized_scores.dequantize((x.float() / descale[:, None, :, None]).to(torch.float8_e4m3fn), descale)


def _rms_normed(x: torch.Tensor) -> torch.Tensor:
    return (x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True))).to(x.dtype)


SCHEMES = {
    "e4m3 per head, K smoothed (precision='fp8')": _shipped("fp8"),
    "int8 per head, K smoothed (precision='int8')": _shipped("int8"),
    "e4m3 per head, K not smoothed":
        lambda q, k, plan: (quantized_scores.dequantize(*quantized_scores.quantize(q, None)),
                            quantized_scores.dequantize(*quantized_scores.quantize(k, None))),
    "int8 Q per token, K per head smoothed":
        lambda q, k, plan: (_int8(q, (3,)), _int8(quantized_scores.smoothed(k, None)[0], (1, 3))),
    "e4m3 static scale sqrt(D)/448, K not smoothed (RMS-normed inputs only)":
        lambda q, k, plan: (_static(q), _static(k)),
    "bf16 scores (the cpu backend)": None,
}
# fp8 P·V after each kind of scores: the scheme that rounds q and k first (None: as given).
PV_SCHEMES = {
    "fp8 P·V (P, V e4m3), 16-bit scores": None,
    "fp8 P·V, fp8 scores": _shipped("fp8"),
    "fp8 P·V, int8 scores": _shipped("int8"),
}
STATIC = "e4m3 static scale sqrt(D)/448, K not smoothed (RMS-normed inputs only)"


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bias", type=float, nargs="+", default=[0.0, 2.0],
                    help="spread of the bias all keys of a head share, in units of k's (default 0 2)")
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results")
    args = ap.parse_args(argv)
    torch.manual_seed(0)
    plan = Planner(Geometry(21, 200), PatternConfig(window=1, reference=5)).step(1)
    S, H = plan.geometry.seq_len, 2
    errors = {name: [] for name in [*SCHEMES, *PV_SCHEMES]}
    columns = [(bias, normed) for bias in args.bias for normed in (False, True)]
    for bias, normed in columns:
        q, k, v = (torch.randn(1, S, H, 128) for _ in range(3))
        k = k + bias * torch.randn(1, 1, H, 128)
        q, k, v = (x.bfloat16() for x in (q, k, v))
        if normed:  # as a per-head RMSNorm (weight 1) leaves them: the fused prologue's output
            q, k = _rms_normed(q), _rms_normed(k)
        exact = lvsa.attention(q.float(), k.float(), v.float(), plan, backend="reference").double()
        for name, scheme in SCHEMES.items():
            if name == STATIC and not normed:  # its scale bounds normed values only
                errors[name].append(None)
                continue
            out = (lvsa.attention(q, k, v, plan, backend="cpu") if scheme is None
                   else lvsa.attention(*scheme(q, k, plan), v.float(), plan, backend="reference"))
            errors[name].append(float((out.double() - exact).norm() / exact.norm()))
        for name, scores in PV_SCHEMES.items():
            qk = (q.float(), k.float()) if scores is None else scores(q, k, plan)
            out = _fp8_pv(*qk, v, plan)
            errors[name].append(float((out - exact).norm() / exact.norm()))
    lines = [f"relative L2 error of the attention output against the bf16 inputs' exact attention "
             f"(T={plan.geometry.frames}, P={plan.geometry.tokens_per_frame}, H={H}, D=128, Gaussian; "
             f"CPU, torch {torch.__version__}, {_dt.date.today().isoformat()})",
             "| scheme | " + " | ".join(f"K bias {b:g}{', RMS-normed' if n else ''}" for b, n in columns) + " |",
             "|---|" + "---|" * len(columns)]
    lines += [f"| {name} | " + " | ".join("n/a" if e is None else f"{e:.2e}" for e in errs) + " |"
              for name, errs in errors.items()]
    text = "\n".join(lines)
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"score_precision_cpu_{_dt.date.today().isoformat()}.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
