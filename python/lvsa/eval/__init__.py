"""``lvsa eval``: an offline evaluator for generated videos (the ``eval`` extra), loop and freeze
first — the failure of dense attention past the training horizon that LVSA targets.

Modules, one concern each: ``reader`` (decoding), ``flow`` (Farneback), ``loop`` (loop and freeze),
``temporal`` (smoothness, warp error, flicker), ``dynamics`` (motion), ``spatial`` (sharpness,
banding) with ``piqe``, ``reference`` (PSNR, SSIM, MS-SSIM against a dense run), ``models`` (CLIP,
DINOv2 from local weights), ``composite`` (weights, verdict), ``measure`` (the shape of a metric),
``images`` and ``html`` and ``report`` (the files), ``batch`` (runs from a CSV or sidecars),
``evaluate`` (one video, in order), ``cli`` (the command). Metrics and weights: docs/eval.md.
"""


def main(argv=None) -> int:
    from .cli import main as cli_main

    return cli_main(argv)


__all__ = ["main"]
