"""Joining the process group under ``torchrun``: one process per GPU, NCCL between GPUs, gloo
between CPU processes (tests, machines without a GPU)."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def init_process_group() -> torch.device:
    """Join torchrun's process group (once) and return this process's device: GPU ``LOCAL_RANK``
    with NCCL when CUDA is available, else the CPU with gloo. A single process (no torchrun)
    joins nothing and gets GPU 0 or the CPU."""
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        if device.type == "cuda":
            dist.init_process_group("nccl", device_id=device)
        else:
            # Spelled "cpu:gloo": diffusers sizes its uneven gathers on the CPU only when the backend
            # string names it, and would otherwise ask a CUDA build of PyTorch for a missing GPU.
            dist.init_process_group("cpu:gloo")
    return device


def is_leader() -> bool:
    """True on rank 0 (and in a single process): the one process that prints and writes files."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


__all__ = ["init_process_group", "is_leader"]
