"""Renders the README's DiT benchmark tables from the JSON that ``lvsa bench --dit`` writes
(nothing in them is typed by hand; tests/python/test_docs_tables.py holds each README table to
the file its ``<!-- rendered by ... -->`` line names). Run after a benchmark run and paste the
output over the tables:

    python3 docs/dit_tables.py bench/results/dit_<card>_<date>.json [more.json ...]

One latency table per file (seconds per forward, or per denoising step for a --steps run, and
the speedup over the first baseline that ran: dense cuDNN eager, else diffusers eager, dense on
valid tokens, dense cuDNN compiled; a compiled method also gets its speedup over dense cuDNN
compiled when both ran, like for like), one of peak memory, one of GPU time by kernel kind when the
run had --profile, with the bound on LVSA's speedup that dense attention's share of that time and
LVSA's density imply, and, when it had --max-memory, the longest video each method ran within it.
"""

import argparse
import json
from pathlib import Path

COMPILED_DENSE = "dense-cudnn:compile"
BASELINES = ("dense-cudnn:eager", "diffusers:eager", "dense-valid-cudnn:eager", COMPILED_DENSE)


def _key(row: dict) -> str:
    return f"{row['method']}:{row['mode']}"


def _lengths(rows: list[dict]) -> list[dict]:
    """One row per video length (its first row: the length's facts are the same in all)."""
    return list({r["frames"]: r for r in reversed(rows)}.values())[::-1]


def latency_table(result: dict) -> str:
    rows = result["rows"]
    keys = list(dict.fromkeys(_key(r) for r in rows))
    timed = {(r["frames"], _key(r)): r for r in rows}
    baseline = next((b for b in BASELINES if any("forward_ms" in r and _key(r) == b for r in rows)), None)
    per = "step" if result["steps"] else "forward"
    field = "step_ms" if result["steps"] else "forward_ms"
    loop = f", {result['steps']} steps{' with CFG' if result['cfg'] else ''}" if result["steps"] else ""
    lines = [f"{result['model']} at {result['height']}x{result['width']}, {result['dtype']}{loop}, on "
             f"{result['card']} ({result['date']}): seconds per {per}"
             + (f" (speedup over {baseline})" if baseline else ""),
             "",
             "| video frames (latent T) | LVSA density | " + " | ".join(keys) + " |",
             "|---|---|" + "---|" * len(keys)]
    for first in _lengths(rows):
        cells = []
        for key in keys:
            r = timed[(first["frames"], key)]
            if "forward_ms" not in r:
                cells.append("OOM" if r.get("error") == "out of memory" else "n/a" if "skipped" in r else "error")
                continue
            seconds = r[field] / 1e3
            speedup = r.get("speedup", {}).get(baseline)
            notes = [f"{speedup:.2f}x"] if speedup and key != baseline else []
            compiled = timed.get((first["frames"], COMPILED_DENSE), {})
            if key.endswith(":compile") and key != COMPILED_DENSE != baseline and field in compiled:
                notes.append(f"{compiled[field] / r[field]:.2f}x vs {COMPILED_DENSE}")
            bf16 = timed.get((first["frames"], f"lvsa-cuda:{r['mode']}"), {})
            if "rel_diff_vs_lvsa_cuda" in r and field in bf16:  # quantised scores against the 16-bit kernel
                notes.append(f"{bf16[field] / r[field]:.2f}x vs lvsa-cuda, output {r['rel_diff_vs_lvsa_cuda']:.2%} "
                             "from its")
            cells.append(f"{seconds:.2f}" + (f" ({'; '.join(notes)})" if notes else ""))
        lines.append(f"| {first['frames']} ({first['latent_frames']}) | {first['density']:.2f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def memory_table(result: dict) -> str:
    rows = result["rows"]
    keys = list(dict.fromkeys(_key(r) for r in rows))
    timed = {(r["frames"], _key(r)): r for r in rows}
    lines = [f"Peak GPU memory, GB (weights {result['weights_gb']:.1f} GB included)", "",
             "| video frames | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for first in _lengths(rows):
        cells = [f"{timed[(first['frames'], k)]['peak_gb']:.1f}" if "peak_gb" in timed[(first["frames"], k)]
                 else "OOM" if timed[(first["frames"], k)].get("error") == "out of memory" else "-" for k in keys]
        lines.append(f"| {first['frames']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def capacity_table(result: dict) -> str:
    searches = result["max_memory"]
    lines = [f"Longest video within {searches[0]['cap_gb']:g} GB of GPU memory", "",
             "| method | longest video (frames) |", "|---|---|"]
    for s in searches:
        lines.append(f"| {s['method']}:{s['mode']} | {s['max_frames'] if s['max_frames'] else 'none tried ran'} |")
    return "\n".join(lines)


def profile_table(result: dict) -> str:
    """GPU milliseconds by kernel kind, per method and length (a run with --profile)."""
    rows = [r for r in result["rows"] if "profile" in r]
    kinds = sorted({kind for r in rows for kind in r["profile"]["kinds_ms"]})
    prologue = f", LVSA prologue {result['lvsa_prologue']}" if "lvsa_prologue" in result else ""
    lines = [f"GPU time of one forward by kernel kind, ms (torch.profiler{prologue})", "",
             "| video frames | method | " + " | ".join(kinds) + " | total |", "|---|---|" + "---|" * (len(kinds) + 1)]
    for r in rows:
        cells = [f"{r['profile']['kinds_ms'].get(kind, 0):.0f}" for kind in kinds]
        lines.append(f"| {r['frames']} | {_key(r)} | " + " | ".join(cells) + f" | {r['profile']['total_ms']:.0f} |")
    return "\n".join(lines)


# The dense baseline a bound is taken against: on valid tokens where it ran (padded text dropped,
# the honest one for HunyuanVideo 1.5), else the model's own attention pinned to cuDNN.
BOUND_BASELINES = ("dense-valid-cudnn:eager", "dense-cudnn:eager")


def bound_table(result: dict) -> str:
    """LVSA's eager speedups over a profiled dense baseline against the bound 1 / (1 - a + a x
    density): what the forward would take if LVSA's attention ran at the baseline's rate on only its
    kept work (a: attention's share of the baseline's GPU time). Empty without such a baseline."""
    rows = result["rows"]
    timed = {(r["frames"], _key(r)): r for r in rows}
    baseline = next((b for b in BOUND_BASELINES if any("profile" in r and _key(r) == b for r in rows)), None)
    keys = [k for k in dict.fromkeys(_key(r) for r in rows) if k.startswith("lvsa-") and k.endswith(":eager")]
    if baseline is None or not keys:
        return ""
    lines = [f"LVSA's speedup over {baseline} against the bound of its attention share a and LVSA's density: "
             "1 / (1 - a + a x density)", "",
             f"| video frames | attention share of {baseline} | LVSA density | bound | " + " | ".join(keys) + " |",
             "|---|---|---|---|" + "---|" * len(keys)]
    for first in _lengths(rows):
        base = timed.get((first["frames"], baseline), {})
        if "profile" not in base or "forward_ms" not in base:
            continue
        share = base["profile"]["kinds_ms"].get("attention", 0.0) / base["profile"]["total_ms"]
        bound = 1 / (1 - share + share * first["density"])
        cells = []
        for key in keys:
            r = timed.get((first["frames"], key), {})
            if "forward_ms" not in r:
                cells.append("-")
                continue
            speedup = base["forward_ms"] / r["forward_ms"]
            cells.append(f"{speedup:.2f}x ({speedup / bound:.0%} of the bound)")
        lines.append(f"| {first['frames']} | {share:.2f} | {first['density']:.2f} | {bound:.2f}x | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def tables(result: dict) -> str:
    parts = [latency_table(result)]
    if result["device"] == "cuda":
        parts.append(memory_table(result))
    if any("profile" in r for r in result["rows"]):
        parts.append(profile_table(result))
        parts.append(bound_table(result))
    if result.get("max_memory"):
        parts.append(capacity_table(result))
    return "\n\n".join(part for part in parts if part)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", nargs="+", type=Path, help="dit_*.json files from lvsa bench --dit")
    args = parser.parse_args(argv)
    print("\n\n".join(tables(json.loads(path.read_text())) for path in args.results))


if __name__ == "__main__":
    main()
