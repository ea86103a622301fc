"""Renders the README's attention-kernel table from the JSON that ``bench/attention.py`` writes
(nothing in it is typed by hand; tests/python/test_docs_tables.py holds the README table to the
file its ``<!-- rendered by ... -->`` line names):

    python3 docs/attention_tables.py bench/results/attention_<name>_<card>_<date>.json

One row per (model, latent frames): LVSA's time and its rate on the attended work, dense cuDNN
SDPA's, FlexAttention's and FlashInfer's times where the run had them, LVSA's speedups over each,
and LVSA's largest error against the float64 reference; with ``--fp8``, ``--int8`` or
``--int8-fp8`` results, LVSA with those quantised inputs too: its time (pre-pass included), its speedup over 16-bit LVSA
and its error.
"""

import argparse
import json
from pathlib import Path

PEERS = (("cudnn", "cuDNN dense"), ("flex", "FlexAttention"), ("flashinfer", "FlashInfer"))
# bench/attention.py's quantised columns: (key prefix, label).
QUANTIZED = (("fp8", "fp8 scores"), ("int8", "int8 scores"), ("int8_fp8", "int8 scores + fp8 P.V"))


def _ms(row: dict, name: str) -> str:
    ms = row.get(f"{name}_ms")
    return "" if ms is None else f"{ms:.1f}"


def tables(result: dict) -> str:
    rows = result["results"]
    peers = [(name, label) for name, label in PEERS if any(r.get(f"{name}_ms") is not None for r in rows)]
    quantized = [(p, label) for p, label in QUANTIZED if any(r.get(f"{p}_ms") is not None for r in rows)]
    head = (["model", "latent frames", "density", "LVSA ms (TFLOP/s kept)"] + [f"{label} ms" for _, label in peers]
            + [f"x {label}" for _, label in peers] + ["max error vs float64"]
            + [c for p, label in quantized
               for c in (f"LVSA {label} ms", "x LVSA", f"{p.replace('_', '-')} max error vs float64")])
    kernels = sorted({r.get("lvsa_kernel") or "auto" for r in rows})
    lines = [f"Self-attention of one layer, bf16, on {result['card']} ({result['date']}, torch {result['torch']}, "
             f"CUDA {result['cuda']}; LVSA kernel {', '.join(kernels)})", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["model"], str(r["T"]), f"{r['density']:.2f}", f"{r['lvsa_ms']:.1f} ({r['lvsa_tflops_kept']:.0f})"]
        cells += [_ms(r, name) for name, _ in peers]
        cells += [f"{r[f'{name}_ms'] / r['lvsa_ms']:.2f}" if r.get(f"{name}_ms") is not None else ""
                  for name, _ in peers]
        cells.append(f"{r['max_err_vs_fp64']:.1e}")
        for p, _ in quantized:
            cells += ([f"{r[f'{p}_ms']:.1f}", f"{r[f'{p}_speedup_vs_lvsa']:.2f}", f"{r[f'{p}_max_err_vs_fp64']:.1e}"]
                      if r.get(f"{p}_ms") is not None else ["", "", ""])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("json", nargs="+", type=Path)
    for path in ap.parse_args(argv).json:
        print(tables(json.loads(path.read_text())))
        print()


if __name__ == "__main__":
    main()
