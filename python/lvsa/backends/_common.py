"""Helpers shared by the backends."""

from __future__ import annotations

import torch


def allocate_outputs(q: torch.Tensor, return_lse: bool):
    """``out`` like q ([B, Sq, Hq, D]) and, if asked, fp32 ``lse`` [B, Hq, Sq]."""
    B, Sq, H, _ = q.shape
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, Sq), dtype=torch.float32, device=q.device) if return_lse else None
    return out, lse
