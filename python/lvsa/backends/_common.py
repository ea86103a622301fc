"""Helpers shared by the backends."""

from __future__ import annotations

import torch


def capability_reason(backend: str, device, capability: tuple[int, int], minimum: tuple[int, int]) -> str | None:
    """Why a GPU of compute ``capability`` cannot run ``backend``'s kernels, which need ``minimum``
    (None: it can)."""
    if tuple(capability) >= minimum:
        return None
    return (f"backend '{backend}' needs compute capability {minimum[0]}.{minimum[1]} or newer "
            f"(Ampere+); {device} is {capability[0]}.{capability[1]}")


def allocate_outputs(q: torch.Tensor, return_lse: bool):
    """``out`` like q ([B, Sq, Hq, D]) and, if asked, fp32 ``lse`` [B, Hq, Sq]."""
    B, Sq, H, _ = q.shape
    out = torch.empty(q.shape, dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, Sq), dtype=torch.float32, device=q.device) if return_lse else None
    return out, lse
