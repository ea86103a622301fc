"""Exact CPU reference (double accumulation): the oracle every backend is tested against."""

from __future__ import annotations

from . import cpu


def unavailable_reason(device, dtype=None, head_dim=None) -> str | None:
    return None if device.type == "cpu" else f"backend 'reference' needs CPU tensors, got {device}"


def run(q, k, v, plan, encoder_valid, scale, return_lse):
    return cpu.run(q, k, v, plan, encoder_valid, scale, return_lse, exact=True)
