"""Where a model family's temporal RoPE tables live, as its adapter declares them for RIFLEx
(``Adapter.rope``), and how one frequency's columns of a table are rewritten.

A leaf module (torch only): the adapters declare with it and ``lvsa.riflex`` installs through it,
so neither imports the other to do so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch


def interleaved(j: int) -> list:
    """diffusers' use_real tables repeat each frequency on two adjacent columns (2j, 2j + 1)."""
    return [2 * j, 2 * j + 1]


@dataclass(frozen=True)
class Rope:
    """Where one family's temporal RoPE lives, as its adapter declares it (``Adapter.rope``): the
    base ``theta`` and ``t_dim`` temporal dims, the table columns holding frequency ``j``, and
    where the tables are (``PrecomputedTables``, ``InputTables`` or ``OutputTables``)."""

    theta: float
    t_dim: int
    tables: object
    columns: Callable[[int], list] = interleaved


@dataclass(frozen=True)
class PrecomputedTables:
    """Tables precomputed over every position (one row each), buffers ``names`` of the
    transformer's submodule ``module``: edited once in place, the original columns kept."""

    module: str = "rope"
    names: tuple = ("freqs_cos", "freqs_sin")

    def install(self, transformer, columns: list, frequency: float) -> Callable[[], None]:
        module = transformer.get_submodule(self.module)
        saved = [(name, getattr(module, name)[:, columns].clone()) for name in self.names]
        for name, fn in zip(self.names, (torch.cos, torch.sin)):
            table = getattr(module, name)
            _rewrite(table, table.shape[0], 1, columns, frequency, 1.0, fn)

        def restore():
            for name, columns_before in saved:
                getattr(module, name)[:, columns] = columns_before

        return restore


@dataclass(frozen=True)
class InputTables:
    """Tables ``(cos, sin)`` the pipeline computes and passes as the transformer's keyword
    ``kwarg``: rewritten by a forward pre-hook, which runs before a sequence-split plan splits
    them (in diffusers' wrapped forward). ``grid(transformer, args, kwargs)`` gives the video's
    (frames, tokens per frame) in RoPE positions."""

    kwarg: str
    grid: Callable

    def install(self, transformer, columns: list, frequency: float) -> Callable[[], None]:
        def before(module, args, kwargs):
            tables = kwargs.get(self.kwarg)
            if tables is None:
                return None
            frames, per_frame = self.grid(module, args, kwargs)
            cos, sin = (t.clone() for t in tables)
            _rewrite(cos, frames, per_frame, columns, frequency, 1.0, torch.cos)
            _rewrite(sin, frames, per_frame, columns, frequency, 1.0, torch.sin)
            return args, {**kwargs, self.kwarg: (cos, sin)}

        return transformer.register_forward_pre_hook(before, with_kwargs=True).remove


@dataclass(frozen=True)
class OutputTables:
    """Tables ``(cos, sin)`` the transformer's submodule ``module`` computes per forward: its
    output rewritten by a forward hook. ``grid(rope_module, args, kwargs)`` gives the video's
    (frames, tokens per frame, RoPE positions per frame) from the rope module's inputs."""

    grid: Callable
    module: str = "rope"

    def install(self, transformer, columns: list, frequency: float) -> Callable[[], None]:
        def after(module, args, kwargs, output):
            frames, per_frame, scale = self.grid(module, args, kwargs)
            cos, sin = (t.clone() for t in output)
            _rewrite(cos, frames, per_frame, columns, frequency, scale, torch.cos)
            _rewrite(sin, frames, per_frame, columns, frequency, scale, torch.sin)
            return cos, sin

        return transformer.get_submodule(self.module).register_forward_hook(after, with_kwargs=True).remove


def _rewrite(table: torch.Tensor, frames: int, per_frame: int, columns: list, frequency: float,
             position_scale: float, fn) -> None:
    """Set ``columns`` of the whole video's frame-major RoPE table (``frames`` x ``per_frame``
    rows) in place to ``fn(position · frequency)``."""
    if table.shape[0] != frames * per_frame:
        raise ValueError(f"lvsa.riflex: the RoPE table has {table.shape[0]} rows, not the whole video's "
                         f"{frames} frames x {per_frame} tokens = {frames * per_frame}: it was split along the "
                         "sequence (a context-parallel plan splitting the rope output) before RIFLEx rewrote it, "
                         "so its rows' frame positions are unknown; split the tables after RIFLEx (as "
                         "lvsa.enable(parallel=N) does)")
    positions = torch.arange(frames, dtype=torch.float64).repeat_interleave(per_frame) * position_scale
    values = fn(positions * frequency).to(table.device, table.dtype)
    for c in columns:
        table[:, c] = values


__all__ = ["InputTables", "OutputTables", "PrecomputedTables", "Rope", "interleaved"]
