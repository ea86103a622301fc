"""Compiled CPU backend (``lvsa._native``): tiled online softmax over the key ranges, on all cores."""

from __future__ import annotations

import torch

from .. import _native
from . import _common


def unavailable_reason(device, dtype=None, head_dim=None) -> str | None:
    return None if device.type == "cpu" else f"backend 'cpu' needs CPU tensors, got {device}"


def run(q, k, v, plan, encoder_valid, scale, return_lse, *, exact: bool = False):
    out, lse = _common.allocate_outputs(q, return_lse)
    valid = None if encoder_valid is None else encoder_valid.to(torch.int32).contiguous()
    _native.attention_cpu(plan.core, q.detach(), k.detach(), v.detach(), out, lse, valid,
                          scale, torch.get_num_threads(), exact)
    return out, lse
