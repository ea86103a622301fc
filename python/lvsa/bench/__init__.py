"""``lvsa bench``: the attention kernels alone (``attention``, the default) or one whole video
DiT (``--dit``: ``dit``), dense against LVSA; ``mask`` and ``results`` are what they share with
the scripts in bench/."""

from .attention import main

__all__ = ["main"]
