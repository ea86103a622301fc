"""The HTML report: one self-contained page (inline SVG curves, PNGs embedded as data URIs, no
script, no network), so it opens offline and can be mailed around."""

from __future__ import annotations

import base64
import math
from html import escape

_CHART_W, _CHART_H, _PAD = 640, 180, 36
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
# (title, [(curve name, label)], x axis): the per-frame curves shown when the report has them.
CHARTS = (
    ("Consecutive-frame SSIM (near-duplicates near 1)", [("consecutive_ssim", "SSIM(t, t+1)")], "frame pair"),
    ("Motion (mean flow speed, px/frame)", [("motion", "speed")], "frame pair"),
    ("Flow change (px/frame²)", [("flow_change", "|Δ flow|")], "frame pair"),
    ("Warp error and flicker (grey level)", [("warp_error", "warp error"), ("flicker", "flicker")], "frame pair"),
    ("Sharpness (Laplacian variance)", [("sharpness", "sharpness")], "frame"),
    ("Against the reference: SSIM and MS-SSIM", [("ssim", "SSIM"), ("ms_ssim", "MS-SSIM")], "frame"),
    ("Against the reference: PSNR (dB)", [("psnr", "PSNR")], "frame"),
    ("DINOv2 subject consistency", [("dino_subject_consistency", "consistency")], "frame"),
)
_STYLE = """body{font-family:sans-serif;margin:24px;color:#222;background:#fafafa}
table{border-collapse:collapse;margin:8px 0 20px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#eee}.score{font-weight:bold}.verdict{font-size:20px;margin:8px 0}
img{max-width:100%;border:1px solid #ccc}svg{background:#fff;border:1px solid #ccc;margin:4px 0 16px}"""


def _number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return "∞" if math.isinf(value) else f"{value:.4g}"
    return escape(str(value))


def svg_chart(title: str, series: list, axis: str) -> str:
    """A line chart of ``series`` [(label, values)]; infinite values are drawn at the top edge."""
    finite = [v for _, values in series for v in values if math.isfinite(v)]
    low, high = (min(finite), max(finite)) if finite else (0.0, 1.0)
    if high - low < 1e-12:
        low, high = low - 0.5, high + 0.5
    longest = max(len(values) for _, values in series)
    width, height = _CHART_W - 2 * _PAD, _CHART_H - 2 * _PAD

    def point(i, v):
        x = _PAD + (width * i / max(1, longest - 1))
        level = 1.0 if not math.isfinite(v) else (v - low) / (high - low)
        return f"{x:.1f},{_PAD + height * (1 - level):.1f}"

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_CHART_W}" height="{_CHART_H}" role="img">',
             f'<text x="{_PAD}" y="18" font-size="13">{escape(title)}</text>',
             f'<rect x="{_PAD}" y="{_PAD}" width="{width}" height="{height}" fill="none" stroke="#999"/>',
             f'<text x="2" y="{_PAD + 4}" font-size="10">{_number(high)}</text>',
             f'<text x="2" y="{_PAD + height}" font-size="10">{_number(low)}</text>',
             f'<text x="{_PAD + width / 2}" y="{_CHART_H - 6}" font-size="10">{escape(axis)} (0–{longest - 1})</text>']
    for n, (label, values) in enumerate(series):
        colour = _COLOURS[n % len(_COLOURS)]
        points = " ".join(point(i, v) for i, v in enumerate(values) if not math.isnan(v))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"/>')
        parts.append(f'<text x="{_PAD + width - 150}" y="{_PAD + 14 + 13 * n}" font-size="11" '
                     f'fill="{colour}">{escape(label)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _table(report: dict) -> str:
    rows = ["<tr><th>group</th><th>metric</th><th>value</th><th>unit</th><th>score</th></tr>"]
    for group_name, group in report["groups"].items():
        for name, entry in group["metrics"].items():
            rows.append(f"<tr><td>{escape(group_name)}</td><td>{escape(name)}</td><td>{_number(entry['value'])}</td>"
                        f"<td>{escape(entry['unit'])}</td><td class=score>{_number(entry['score'])}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _weights(composite: dict) -> str:
    rows = ["<tr><th>group</th><th>score</th><th>weight (renormalised)</th></tr>"]
    for name, score in composite["group_scores"].items():
        rows.append(f"<tr><td>{escape(name)}</td><td>{_number(score)}</td>"
                    f"<td>{_number(composite['weights'].get(name))}</td></tr>")
    return "<table>" + "".join(rows) + "</table>"


def _picture(title: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f"<h2>{escape(title)}</h2><img alt=\"{escape(title)}\" src=\"data:image/png;base64,{data}\">"


def page(report: dict, pictures: dict) -> str:
    """The page for one evaluated video; ``pictures`` maps a title to PNG bytes."""
    info, composite, loop = report["info"], report["composite"], report["groups"]["loop"]
    curves = report["curves"]
    charts = [svg_chart(title, [(label, curves[name]) for name, label in lines if curves.get(name)], axis)
              for title, lines, axis in CHARTS if any(curves.get(name) for name, _ in lines)]
    reference = report.get("reference")
    header = [f"<h1>lvsa eval: {escape(str(report['video']))}</h1>",
              f"<p>{info['frames']} frames, {info['width']}x{info['height']}, {info['fps']:g} fps"
              + (f"; reference (dense): {escape(reference)}" if reference else "; no reference")
              + (f"; prompt: “{escape(report['prompt'])}”" if report.get("prompt") else "") + "</p>",
              f"<p class=verdict>composite <b>{composite['score']:.3f}</b>: {escape(composite['verdict'])}</p>",
              f"<p>loop_quality {loop['score']:.3f} ({escape(loop['state'])}"
              + (f", period {loop['period_frames']} frames" if loop["period_frames"] else "") + ")</p>"]
    body = (header + ["<h2>Scores</h2>", _table(report), "<h2>Composite weights</h2>", _weights(composite),
                      "<h2>Per-frame curves</h2>"] + charts
            + [_picture(title, png) for title, png in pictures.items()])
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>lvsa eval</title>"
            f"<style>{_STYLE}</style></head><body>" + "\n".join(body) + "</body></html>\n")
