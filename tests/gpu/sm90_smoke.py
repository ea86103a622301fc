"""Quick sm90-vs-reference check with diagnostics, for a first run of the Hopper kernel.

    python3 tests/gpu/sm90_smoke.py      (needs an H100/H200 and lvsa built with sm_90a)

Not collected by pytest (tests/gpu/test_*.py cover the contract for both kernel families).
For each case: relative L2 error of the sm80 and sm90 outputs vs float64. When sm90 is off,
a one-tile probe (V a permutation matrix, so O exposes the probabilities P) tells apart the
usual layout mistakes: wrong S (QK^T), transposed V, rows of the wrong warpgroup.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "oracle"))
from dense_oracle import compare, masked_dense  # noqa: E402

from lvsa import Geometry, PatternConfig, Planner  # noqa: E402
from lvsa.backends import cuda as cb  # noqa: E402

DEV = torch.device("cuda")


def run(family, q, k, v, plan, valid=None, lse=True):
    os.environ["LVSA_CUDA_KERNEL"] = family
    cb.release_device_plans()  # the family is read when a geometry's device plan is set up
    out, l = cb.run(q, k, v, plan, valid, None, lse)
    torch.cuda.synchronize()
    return out, l


def case(name, T, P, E=0, side="none", B=1, Hq=2, Hkv=2, D=128, dtype=torch.bfloat16, kfi="auto",
         window=1, valid=None, step=1):
    g = Geometry(T, P, E, side)
    plan = Planner(g, PatternConfig(window=window, keyframe_interval=kfi, reference=5)).step(step)
    q = torch.randn((B, g.seq_len, Hq, D), dtype=dtype, device=DEV)
    k = torch.randn((B, g.seq_len, Hkv, D), dtype=dtype, device=DEV)
    v = torch.randn((B, g.seq_len, Hkv, D), dtype=dtype, device=DEV)
    vt = None if valid is None else torch.tensor(valid, dtype=torch.int32, device=DEV)
    ref, ref_lse = masked_dense(q, k, v, plan, vt)
    res = {}
    for fam in ("sm80", "sm90"):
        t0 = time.time()
        try:
            out, lse = run(fam, q, k, v, plan, vt)
        except Exception as e:  # noqa: BLE001
            res[fam] = f"ERROR {e!r}"[:200]
            continue
        rel, mx = compare(out, ref)
        fin = torch.isfinite(ref_lse)
        lse_err = (lse.double()[fin] - ref_lse[fin]).abs().max().item() if fin.any() else 0.0
        lse_pat = torch.equal(torch.isneginf(lse), ~fin)
        res[fam] = f"rel {rel:.2e} max {mx:.2e} lse {lse_err:.1e} pat {lse_pat} ({time.time() - t0:.2f}s)"
        if fam == "sm90" and not (rel < 2e-2 and lse_pat):
            # Where is it wrong? Error by 64-row block of each 128-row tile and by head.
            d = (out.double() - ref).abs()
            Sq = q.shape[1]
            per_row = d.amax(dim=(0, 2, 3))
            bad = (per_row > 0.05).nonzero().flatten()
            res[fam] += f"\n      bad rows {bad.numel()}/{Sq}: first {bad[:12].tolist()}"
            res[fam] += f"\n      per-head max {d.amax(dim=(0, 1, 3)).tolist()}"
    ok = isinstance(res.get("sm90"), str) and res["sm90"].startswith("rel") and \
        float(res["sm90"].split()[1]) < 2e-2 and "pat True" in res["sm90"]
    print(f"{'OK ' if ok else 'BAD'} {name:34s} sm80: {res['sm80']}\n    {'':34s} sm90: {res['sm90']}", flush=True)
    return ok


def probe():
    """One query tile (128 rows), one key tile (128 keys), D = 128, V a permutation matrix."""
    g = Geometry(1, 128)
    plan = Planner(g, PatternConfig(window=0, keyframe_interval=1)).step(0)
    D = 128
    q = torch.randn((1, 128, 1, D), dtype=torch.bfloat16, device=DEV)
    k = torch.randn((1, 128, 1, D), dtype=torch.bfloat16, device=DEV)
    perm = (torch.arange(128) * 5 + 3) % 128  # key j -> column perm[j]
    v = torch.zeros((1, 128, 1, D), dtype=torch.bfloat16, device=DEV)
    v[0, torch.arange(128), 0, perm] = 1
    out, _ = run("sm90", q, k, v, plan)
    s = (q[0, :, 0].double() @ k[0, :, 0].double().T) * D ** -0.5
    p = torch.softmax(s, -1)  # [128 rows, 128 keys]
    o = out[0, :, 0].double()
    vd = v[0, :, 0].double()
    hyp = {
        "O = P V (correct)": p @ vd,
        "O = P V^T (V transposed)": p @ vd.T,
        "O = P^T V": p.T @ vd,
        "rows of the two warpgroups swapped": torch.cat([p[64:], p[:64]]) @ vd,
        "S = Q K (no transpose of K)": torch.softmax((q[0, :, 0].double() @ k[0, :, 0].double()) * D ** -0.5, -1) @ vd,
    }
    print("probe (one tile, V = permutation):")
    for name, h in hyp.items():
        print(f"   {name:40s} max err {(o - h).abs().max().item():.3e}")
    print(f"   O row 0 nonzeros {(o[0].abs() > 1e-3).sum().item()}, row sums {o.sum(-1)[:4].tolist()}")
    # P recovered through the permutation, to compare with the reference directly.
    p_got = o[:, perm]
    err = (p_got - p).abs()
    print(f"   recovered-P max err {err.max().item():.3e}; by 16-row band: "
          f"{[round(err[i:i + 16].max().item(), 3) for i in range(0, 128, 16)]}")
    print(f"   by 16-key band: {[round(err[:, j:j + 16].max().item(), 3) for j in range(0, 128, 16)]}")


def main():
    print(torch.cuda.get_device_name(), torch.cuda.get_device_capability(), flush=True)
    cases = [
        dict(name="one_tile_d128", T=1, P=128, kfi=1, window=0),
        dict(name="two_frames_d128", T=2, P=256, kfi=1),
        dict(name="wan_like_oddP_d128", T=9, P=37),
        dict(name="multi_tile_d128", T=6, P=300, kfi=2),
        dict(name="multi_tile_d64", T=6, P=300, kfi=2, D=64),
        dict(name="fp16_d128", T=6, P=300, kfi=2, dtype=torch.float16),
        dict(name="fp16_d64", T=6, P=300, kfi=2, D=64, dtype=torch.float16),
        dict(name="enc_after_padded_b2", T=5, P=140, E=150, side="after", B=2, valid=[150, 37], kfi=2),
        dict(name="enc_before_gqa", T=5, P=140, E=100, side="before", Hq=4, Hkv=1, valid=[61], kfi=2, D=64),
        dict(name="long_walk_d128", T=24, P=700, kfi=1, Hq=1, Hkv=1),
    ]
    oks = []
    for c in cases:
        torch.manual_seed(len(oks))
        oks.append(case(**c))
    if not all(oks):
        probe()
    print(f"smoke: {sum(oks)}/{len(oks)} cases OK", flush=True)
    sys.exit(0 if all(oks) else 1)


if __name__ == "__main__":
    main()
