"""``torchrun --nproc-per-node N -m lvsa.cli generate ...``: several GPUs of one host.

Under torchrun (``WORLD_SIZE`` > 1) each rank runs the same command on its own GPU; rank 0 alone
draws progress and writes the outputs. With ``--lvsa``, ``lvsa.enable(pipe, parallel=N)`` splits
every transformer's sequence with Ulysses for every supported family (``lvsa.parallel``). Without
it, the model's own attention runs under diffusers' context parallelism, which needs a
context-parallel plan in diffusers (Wan).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from .args import UsageError


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def leader(self) -> bool:
        return self.rank == 0


def ranks() -> Ranks:
    """This process's place under torchrun (a single process otherwise)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Ranks()
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def setup(ranks: Ranks) -> torch.device:
    """Join the process group and return this rank's GPU."""
    if not torch.cuda.is_available():
        raise UsageError(f"torchrun with {ranks.world} processes needs one GPU per process; none is visible")
    device = torch.device("cuda", ranks.local_rank)
    torch.cuda.set_device(device)
    torch.distributed.init_process_group("nccl", device_id=device)
    return device


def parallelize(pipe, ranks: Ranks) -> None:
    """Dense runs: shard every transformer component's sequence with diffusers' Ulysses."""
    from diffusers import ContextParallelConfig

    for name, component in pipe.components.items():
        if not (isinstance(component, torch.nn.Module) and name.startswith("transformer")):
            continue
        if not getattr(type(component), "_cp_plan", None):
            raise UsageError(f"multi-GPU: diffusers has no context-parallel plan for {type(component).__name__}; "
                             "run this model on one GPU (without torchrun)")
        if component.config.num_attention_heads % ranks.world:
            raise UsageError(f"multi-GPU: {component.config.num_attention_heads} attention heads do not split over "
                             f"{ranks.world} GPUs; use a process count that divides them")
        component.enable_parallelism(config=ContextParallelConfig(ulysses_degree=ranks.world))


def teardown(ranks: Ranks) -> None:
    if ranks.world > 1 and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
