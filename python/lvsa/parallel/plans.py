"""The pieces of a sequence-split plan, in diffusers' context-parallel plan format; each family's
plan is declared on its adapter (``Adapter.parallel_plan``).

diffusers applies a plan with hooks (``diffusers.hooks.context_parallel``): ``ContextParallelInput``
(``Split``) splits a module's input (or, with ``split_output``, its output) along the sequence,
and ``ContextParallelOutput`` (``Gather``) gathers a module's output back. Only Wan ships a plan
(``_cp_plan``); LVSA uses it as it is. For the joint text+video models the adapters declare their
own (Cosmos 3's, which no such plan can express, through the model's own seams), with one rule:
only per-video-token tensors are split — the video hidden states at the first block, the video
RoPE tables, per-token embeddings — and the encoder (text, image) tokens stay whole on every
rank. The LVSA processors then take the encoder's heads out of the replicated copy instead of
sending it through the all-to-all, which keeps every text token exactly once, in place, in the keys.

RIFLEx (lvsa.riflex) rewrites the RoPE tables from each row's frame position in the whole video,
so a plan splits them only after it: where the blocks take them in (HunyuanVideo 1.5, Cosmos),
never at the rope module's output, which its forward hook on the rope module would see split
whatever the enable order; CogVideoX's arrive as a transformer input, split after its forward
pre-hook.
"""

from __future__ import annotations

from diffusers.models._modeling_parallel import ContextParallelInput as Split
from diffusers.models._modeling_parallel import ContextParallelOutput as Gather


def rope_tables(dim: int, dims: int) -> list:
    """Split both RoPE tables (cos, sin) along their token dimension."""
    return [Split(split_dim=dim, expected_dims=dims), Split(split_dim=dim, expected_dims=dims)]


__all__ = ["Gather", "Split", "rope_tables"]
