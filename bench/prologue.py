"""The fused QK prologue (``lvsa._cuda.norm_rope``) at the models' shapes: GPU time per layer and
per forward, and the bandwidth it reaches against the bytes it must move (read q and k, write
them, read the RoPE tables once), for q and k in one launch and in one launch each.

    python bench/prologue.py [--out bench/results] [--name prologue]

Writes ``<out>/<name>_<card>_<date>.json`` and prints a table. The floor is those bytes at the
card's HBM bandwidth; docs/perf/prologue.md keeps the predictions and measurements.
"""

from __future__ import annotations

import argparse

import torch

from lvsa import prologue
from lvsa.bench import results as result_files
from lvsa.bench.timing import time_ms

# (name, tokens per frame, latent frames, heads, head_dim, norm group, layers): the lengths of
# bench/dit.py's headline runs. Wan norms across heads; HunyuanVideo 1.5 per head.
SHAPES = [
    ("wan2.1-1.3b 481 frames", 1560, 121, 12, 128, 12 * 128, 30),
    ("wan2.1-14b 720p 161 frames", 3600, 41, 40, 128, 40 * 128, 40),
    ("hunyuanvideo-1.5 480p 193 frames", 1590, 49, 16, 128, 128, 54),
]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="bench/results")
    ap.add_argument("--name", default="prologue")
    args = ap.parse_args(argv)
    dev = torch.device("cuda")
    rows = []
    for name, per_frame, frames, heads, head_dim, group, layers in SHAPES:
        S, width = per_frame * frames, heads * head_dim
        g = torch.Generator(device=dev).manual_seed(S)
        q, k = (torch.randn(1, S, width, generator=g, device=dev, dtype=torch.bfloat16) for _ in range(2))
        wq, wk = (torch.rand(group, generator=g, device=dev).add(0.5).to(torch.bfloat16) for _ in range(2))
        angles = torch.rand(S, head_dim // 2, generator=g, device=dev).mul(20).repeat_interleave(2, dim=1)
        cos, sin = angles.cos(), angles.sin()
        one_launch, _ = time_ms(lambda: prologue._norm_rope([q, k], [wq, wk], [1e-6, 1e-6], group, heads, cos, sin))
        two_launches, _ = time_ms(lambda: (prologue._norm_rope([q], [wq], [1e-6], group, heads, cos, sin),
                                           prologue._norm_rope([k], [wk], [1e-6], group, heads, cos, sin)))
        moved = 2 * (2 * S * width * 2) + 2 * S * head_dim * 4  # q, k in and out (bf16); cos, sin once (fp32)
        rows.append(dict(shape=name, tokens=S, heads=heads, head_dim=head_dim, group=group, layers=layers,
                         bytes_per_layer=moved, one_launch_ms=one_launch, two_launches_ms=two_launches,
                         one_launch_tb_s=moved / one_launch / 1e9, forward_ms=one_launch * layers,
                         two_launches_forward_ms=two_launches * layers))
        del q, k
    path = result_files.write(args.out, args.name, result_files.card_info(dev), dict(rows=rows))
    print(f"{'shape':34} {'ms/layer':>9} {'TB/s':>6} {'ms/fwd':>8} {'2 launches ms/fwd':>18}")
    for r in rows:
        print(f"{r['shape']:34} {r['one_launch_ms']:9.3f} {r['one_launch_tb_s']:6.2f} {r['forward_ms']:8.1f} "
              f"{r['two_launches_forward_ms']:18.1f}")
    print(f"results: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
