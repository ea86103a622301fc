"""LVSA attention under Ulysses context parallelism, for the model adapters' processors.

A processor whose ``_parallel_config`` (diffusers' attribute, set by ``lvsa.enable(...,
parallel=N)`` or by diffusers' own ``enable_parallelism``) asks for Ulysses sees its rank's share
of the video tokens. It builds q, k, v on that share as on one GPU and hands them here: one
all-to-all gives each rank the whole sequence, in the model's token order, for ⌈H/N⌉ or ⌊H/N⌋
of the heads (and the k/v heads they read); LVSA attends with the plan of the *whole* geometry —
the same pattern as on one GPU (spec §6) — and a second all-to-all returns every head of the
rank's own tokens.
"""

from __future__ import annotations

from typing import Optional

from .collectives import Layout, shares, split_heads, to_heads, to_sequence


class Ulysses:
    """The Ulysses group of one diffusers ``ParallelConfig``."""

    def __init__(self, parallel_config):
        cp = getattr(parallel_config, "context_parallel_config", None)
        if cp is None:
            raise ValueError("lvsa: the processor's parallel config has no context-parallel part; LVSA supports "
                             "Ulysses context parallelism, not tensor parallelism")
        if cp.ring_degree != 1:
            raise ValueError(f"lvsa: ring attention (ring_degree={cp.ring_degree}) would split the keys of the "
                             "sparse pattern over GPUs; use Ulysses (ring_degree=1, ulysses_degree=N)")
        self.group = cp._ulysses_mesh.get_group()
        self.degree = cp.ulysses_degree
        self.rank = cp._ulysses_mesh.get_local_rank()

    def whole_video(self, local: int, grid: Optional[tuple[int, int]]) -> int:
        """The whole video's token count from this rank's share (checked against the forward's
        ``T·P``); without a grid the share is returned and the runtime reports the missing grid."""
        if grid is None:
            return local
        total = grid[0] * grid[1]
        expected = shares(total, self.degree)[self.rank]
        if local != expected:
            raise ValueError(f"lvsa: Ulysses over {self.degree} processes: rank {self.rank} holds {local} video "
                             f"tokens, but splitting T={grid[0]} x P={grid[1]} = {total} gives it {expected}; the "
                             "sequence was not split as the context-parallel plan splits it")
        return total

    def attend(self, runtime, q, k, v, geometry, encoder_valid=None, checks=()):
        """``runtime.attend`` on local-layout ``[B, L, H, D]`` tensors; returns the local-layout output."""
        layout = Layout(tuple(shares(geometry.video_tokens, self.degree)), self.rank,
                        split_heads(q.shape[2], k.shape[2], self.degree), geometry.encoder_len,
                        geometry.encoder_side == "before")
        q, k, v = to_heads([q, k, v], layout, self.group)
        out = runtime.attend(q, k, v, geometry, encoder_valid, checks)
        return to_sequence(out, layout, self.group)


# id(config) -> (config, Ulysses): diffusers' configs are unhashable dataclasses; holding the
# config keeps its id from being reused. A process makes one or two configs in its lifetime.
_built: dict[int, tuple[object, Ulysses]] = {}


def ulysses_for(parallel_config) -> Optional[Ulysses]:
    """The Ulysses group of a processor's ``_parallel_config`` (None: not parallel), built once."""
    if parallel_config is None:
        return None
    entry = _built.get(id(parallel_config))
    if entry is None:
        entry = _built[id(parallel_config)] = (parallel_config, Ulysses(parallel_config))
    return entry[1]


__all__ = ["Ulysses", "ulysses_for"]
