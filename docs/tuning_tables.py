"""Regenerates the density tables of docs/tuning.md from the planner (nothing in them is typed by
hand). Run after a planner or preset change and paste the output over the tables:

    python3 docs/tuning_tables.py
"""

import statistics

import lvsa

# Models with the size users run them at (the preset's default) and the video lengths shown:
# multiples of the training horizon, in video frames on each VAE's 4k+1 grid.
MODELS = ["wan2.1-1.3b", "hunyuanvideo-1.5", "cogvideox-5b", "cosmos-2.5"]
RATIOS = [1, 2, 4, 6]


def density(model: str, frames: int, height: int, width: int, **knobs) -> tuple:
    """(latent frames, keyframe interval, mean frame density over the rotation offsets)."""
    preset = lvsa.preset(model)
    geometry = lvsa.Geometry.from_model(model, frames, height, width)
    latent = {k: knobs.pop(k) for k in ("reference", "scale") if k in knobs}
    config = lvsa.PatternConfig.from_video_frames(vae_temporal=preset["vae_temporal"] * preset["patch"][0],
                                                  reference=latent.get("reference", preset["reference"]),
                                                  scale=latent.get("scale", 1.0), **knobs)
    planner = lvsa.Planner(geometry, config)
    offsets = range(max(planner.kfi, 1) if config.rotate else 1)  # kfi 0: no periodic keyframes
    return geometry.frames, planner.kfi, statistics.fmean(planner.step(o).frame_density for o in offsets)


def lengths_table() -> str:
    rows = ["| model | video frames (x training) | latent T | kfi | density | attention saved |",
            "|---|---|---|---|---|---|"]
    for model in MODELS:
        preset = lvsa.preset(model)
        _, height, width = preset["default_size"]
        vae_t, patch_t, reference = preset["vae_temporal"], preset["patch"][0], preset["reference"]
        for ratio in RATIOS:
            frames = (ratio * (reference * patch_t - 1)) * vae_t + 1
            T, kfi, d = density(model, frames, height, width, window=12, n_first=4)
            rows.append(f"| {model} {height}x{width} | {frames} ({ratio}x) | {T} | {kfi} | {d:.2f} | {1 / d:.1f}x |")
    return "\n".join(rows)


def knobs_table() -> str:
    model, frames = "wan2.1-1.3b", 321
    _, height, width = lvsa.preset(model)["default_size"]
    variants = [
        ("defaults (`--window-size 12 --n-first-frames 4`, auto keyframes)", dict(window=12, n_first=4)),
        ("`--window-size 8`", dict(window=8, n_first=4)),
        ("`--window-size 24`", dict(window=24, n_first=4)),
        ("`--n-first-frames 8`", dict(window=12, n_first=8)),
        ("`--key-frame-interval 16`", dict(window=12, n_first=4, keyframe_interval=16)),
        ("`--key-frame-interval 40`", dict(window=12, n_first=4, keyframe_interval=40)),
        ("`--key-frame-interval 0` (no periodic keyframes)", dict(window=12, n_first=4, keyframe_interval=None)),
        ("`--sparsity-scale 0.5`", dict(window=12, n_first=4, scale=0.5)),
        ("`--sparsity-scale 2`", dict(window=12, n_first=4, scale=2.0)),
        ("`--reference-latent-frames 31`", dict(window=12, n_first=4, reference=31)),
    ]
    rows = [f"| {model}, {frames} frames {height}x{width} | latent T | kfi | density | attention saved |",
            "|---|---|---|---|---|"]
    for label, knobs in variants:
        T, kfi, d = density(model, frames, height, width, **knobs)
        rows.append(f"| {label} | {T} | {kfi} | {d:.2f} | {1 / d:.1f}x |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(lengths_table())
    print()
    print(knobs_table())
