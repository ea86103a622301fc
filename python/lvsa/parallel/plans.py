"""Sequence-sharding plans per model family, in diffusers' context-parallel plan format.

diffusers applies a plan with hooks (``diffusers.hooks.context_parallel``): ``ContextParallelInput``
splits a module's input (or, with ``split_output``, its output) along the sequence, and
``ContextParallelOutput`` gathers a module's output back. Only Wan ships a plan (``_cp_plan``);
LVSA uses it as it is. For the joint text+video models LVSA adds its own, with one rule: only
per-video-token tensors are split — the video hidden states at the first block, the video RoPE
tables, per-token embeddings — and the encoder (text, image) tokens stay whole on every rank. The
LVSA processors then take the encoder's heads out of the replicated copy instead of sending it
through the all-to-all, which keeps every text token exactly once, in place, in the keys.
"""

from __future__ import annotations

from diffusers.models._modeling_parallel import ContextParallelInput as Split
from diffusers.models._modeling_parallel import ContextParallelOutput as Gather


def _rope_output(dim: int, dims: int) -> dict:
    """Split both tables (cos, sin) a RoPE module returns along their token dimension."""
    return {0: Split(split_dim=dim, expected_dims=dims, split_output=True),
            1: Split(split_dim=dim, expected_dims=dims, split_output=True)}


# HunyuanVideo 1.5: RoPE covers the video tokens ([S, D] tables); the blocks carry the video and
# the encoder tokens as two streams, so splitting the video stream at the first block suffices.
HUNYUAN_VIDEO = {
    "rope": _rope_output(0, 2),
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}

# CogVideoX: the pipeline passes the RoPE tables ([S, D]) to the transformer; the blocks carry
# text and video as two streams and concatenate them only inside attention and the feed-forward.
COGVIDEOX = {
    "": {"image_rotary_emb": [Split(split_dim=0, expected_dims=2), Split(split_dim=0, expected_dims=2)]},
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}

# Cosmos 2 / 2.5: per-frame timesteps (video-to-world conditioning) make the modulation per token
# ([B, S, C], built inside forward and passed to every block and to norm_out), and so are the
# learnable position embedding and ControlNet residuals (Transfer); a plain [B, C] modulation
# has 2 dims and passes unsplit.
COSMOS = {
    "rope": _rope_output(0, 2),
    "learnable_pos_embed": {0: Split(split_dim=1, expected_dims=3, split_output=True)},
    "transformer_blocks.0": {"hidden_states": Split(split_dim=1, expected_dims=3)},
    "transformer_blocks.*": {"embedded_timestep": Split(split_dim=1, expected_dims=3),
                             "temb": Split(split_dim=1, expected_dims=3),
                             "controlnet_residual": Split(split_dim=1, expected_dims=3)},
    "norm_out": {"embedded_timestep": Split(split_dim=1, expected_dims=3),
                 "temb": Split(split_dim=1, expected_dims=3)},
    "proj_out": Gather(gather_dim=1, expected_dims=3),
}

_PLANS = {"hunyuan_video": HUNYUAN_VIDEO, "cogvideox": COGVIDEOX, "cosmos": COSMOS}


def plan_for(family: str, transformer):
    """The sharding plan of ``transformer`` (diffusers' own for Wan), or None if LVSA has none."""
    if family == "wan":
        return type(transformer)._cp_plan
    return _PLANS.get(family)


def families() -> list[str]:
    return ["wan", *_PLANS]


__all__ = ["plan_for", "families"]
