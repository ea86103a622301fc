"""Sequence-sharding plans per model family, in diffusers' context-parallel plan format.

diffusers applies a plan with hooks (``diffusers.hooks.context_parallel``): ``ContextParallelInput``
splits a module's input (or, with ``split_output``, its output) along the sequence, and
``ContextParallelOutput`` gathers a module's output back. Only Wan ships a plan (``_cp_plan``);
LVSA uses it as it is. For the joint text+video models LVSA adds its own (Cosmos 3's, which no
such plan can express, through the model's own seams), with one rule: only
per-video-token tensors are split — the video hidden states at the first block, the video RoPE
tables, per-token embeddings — and the encoder (text, image) tokens stay whole on every rank. The
LVSA processors then take the encoder's heads out of the replicated copy instead of sending it
through the all-to-all, which keeps every text token exactly once, in place, in the keys.
"""

from __future__ import annotations

import torch.distributed as dist
from diffusers.models._modeling_parallel import ContextParallelInput as Split
from diffusers.models._modeling_parallel import ContextParallelOutput as Gather

from .collectives import gather_sequence


def _tables(dim: int, dims: int) -> list:
    """Split both RoPE tables (cos, sin) along their token dimension."""
    return [Split(split_dim=dim, expected_dims=dims), Split(split_dim=dim, expected_dims=dims)]


# RIFLEx (lvsa.riflex) rewrites the RoPE tables from each row's frame position in the whole video,
# so they are split only after it: where the blocks take them in (HunyuanVideo 1.5, Cosmos), never
# at the rope module's output, which its forward hook on the rope module would see split whatever
# the enable order; CogVideoX's arrive as a transformer input, split after its forward pre-hook.

# HunyuanVideo 1.5: RoPE covers the video tokens ([S, D] tables); the blocks carry the video and
# the encoder tokens as two streams, so splitting the video stream at the first block suffices.
HUNYUAN_VIDEO = {
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "transformer_blocks.*": {"freqs_cis": _tables(0, 2)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}

# CogVideoX: the pipeline passes the RoPE tables ([S, D]) to the transformer; the blocks carry
# text and video as two streams and concatenate them only inside attention and the feed-forward.
COGVIDEOX = {
    "": {"image_rotary_emb": _tables(0, 2)},
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}

# Cosmos 2 / 2.5: per-frame timesteps (video-to-world conditioning) make the modulation per token
# ([B, S, C], built inside forward and passed to every block and to norm_out), and so are the
# learnable position embedding and ControlNet residuals (Transfer); a plain [B, C] modulation
# has 2 dims and passes unsplit.
COSMOS = {
    "learnable_pos_embed": {0: Split(split_dim=1, expected_dims=3, split_output=True)},
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "transformer_blocks.*": {"image_rotary_emb": _tables(0, 2),
                             "embedded_timestep": Split(split_dim=1, expected_dims=3),
                             "temb": Split(split_dim=1, expected_dims=3),
                             "controlnet_residual": Split(split_dim=1, expected_dims=3)},
    "norm_out": {"embedded_timestep": Split(split_dim=1, expected_dims=3),
                 "temb": Split(split_dim=1, expected_dims=3)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}



class Cosmos3Seams:
    """Cosmos 3 packs text and video into one sequence of two streams, which diffusers' plan format
    cannot express; the model has two seams instead, ``_cp_shard_fn`` before its decoder layers and
    ``_cp_gather_fn`` after them. LVSA's split the generation stream (the video tokens, frame-major)
    and its RoPE tables, and keep the understanding stream (the causal text prefix) whole on
    every rank."""

    def __init__(self, group):
        self.group = group
        self.degree = dist.get_world_size(group)
        self.rank = dist.get_rank(group)

    def __call__(self, und_seq, gen_seq, rotary_emb):
        cos_und, sin_und, cos_gen, sin_gen = rotary_emb
        return und_seq, self._mine(gen_seq), (cos_und, sin_und, self._mine(cos_gen), self._mine(sin_gen))

    def _mine(self, x):
        return x.tensor_split(self.degree)[self.rank]

    def gather(self, und_out, gen_out):
        return und_out, gather_sequence(gen_out, 0, self.group)

    def install(self, transformer):
        """Set the seams on ``transformer``; returns the undo."""
        transformer._cp_shard_fn, transformer._cp_gather_fn = self, self.gather

        def undo():
            transformer._cp_shard_fn = transformer._cp_gather_fn = None

        return undo


_PLANS = {"hunyuan_video": HUNYUAN_VIDEO, "cogvideox": COGVIDEOX, "cosmos": COSMOS, "cosmos3": Cosmos3Seams}


def plan_for(family: str, transformer):
    """The sharding plan of ``transformer``: a diffusers plan (diffusers' own for Wan) or, for
    Cosmos 3, the seams class; None if LVSA has none."""
    if family == "wan":
        return type(transformer)._cp_plan
    return _PLANS.get(family)


def families() -> list[str]:
    return ["wan", *_PLANS]


__all__ = ["Cosmos3Seams", "plan_for", "families"]
