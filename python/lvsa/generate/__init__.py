"""``lvsa generate``: a video from a local diffusers pipeline, with LVSA and RIFLEx, in one command.

    lvsa generate --model ./Wan2.1-T2V-1.3B-Diffusers --prompt "a red fox runs through snow" \
        --num-frames 321 --lvsa --riflex

writes ``outputs/<name>.mp4`` (H.264) and ``outputs/<name>.json`` (every setting, versions,
timings), with a progress bar over the denoising steps and the decode and a final summary. See
``docs/quickstart.md`` and ``lvsa generate --help``. ``main(argv)`` is the command; modules:
``args`` (options), ``loading`` (offline model loading), ``families`` (per-pipeline grid and call),
``image`` (``--image``: read, fit, hash), ``progress`` (bars and timings), ``mask``
(``--show-mask``), ``video`` (MP4), ``sidecar`` (JSON), ``report`` (summary, profile, LVSA
engagement), ``distributed`` (torchrun), ``run`` (the order).
"""

from .run import main

__all__ = ["main"]
