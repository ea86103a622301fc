"""Cosmos 3 (omni): ``Cosmos3OmniTransformer``.

One packed sequence (batch 1) with two streams per layer: the text prefix ("understanding",
``und_len`` tokens) attends causally to itself and stays on the model's attention; the
generation stream (the video tokens, frame-major) attends to ``cat([text, video])`` keys with
grouped-query heads — that call is LVSA's, with the text as encoder tokens before the video and
only the video tokens as queries. Sequences that also generate sound or actions, or hold
several vision items, are not a plain video stream: they keep the model's attention (reported).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from diffusers.models.attention_dispatch import dispatch_attention_fn
from diffusers.models.transformers.transformer_cosmos3 import (
    Cosmos3AttnProcessor,
    Cosmos3OmniTransformer,
    _rotate_half,
)

from ..parallel.collectives import gather_sequence
from ..model_facts import ModelFacts
from ._adapter import Adapter, LVSAProcessor, forward_input
from ._runtime import Unsupported

# Not among the C++ presets yet: Cosmos 3 uses the 16x/4x Wan 2.2 VAE, a spatial-only latent
# patch (one token frame per latent frame) and was trained at 48 latent frames (spec/models.md).
_COSMOS3 = ModelFacts(name="cosmos3", reference=48, vae_temporal=4, patch_t=1)
_NOT_THE_VIDEO = "the generation stream is not exactly the video tokens in frame-major order after the text prefix"


class Cosmos3LVSAProcessor(LVSAProcessor):
    def __call__(self, attn, und_seq, gen_seq, rotary_emb):
        reason = self.model_processor_reason()
        if reason is not None:
            return self.run_model_processor(reason, attn, und_seq, gen_seq, rotary_emb)

        # Per-stream projections, norms and RoPE exactly as Cosmos3AttnProcessor ([S, H, D], packed).
        q_und = attn.to_q(und_seq).view(-1, attn.num_attention_heads, attn.head_dim)
        k_und = attn.to_k(und_seq).view(-1, attn.num_key_value_heads, attn.head_dim)
        v_und = attn.to_v(und_seq).view(-1, attn.num_key_value_heads, attn.head_dim)
        q_gen = attn.add_q_proj(gen_seq).view(-1, attn.num_attention_heads, attn.head_dim)
        k_gen = attn.add_k_proj(gen_seq).view(-1, attn.num_key_value_heads, attn.head_dim)
        v_gen = attn.add_v_proj(gen_seq).view(-1, attn.num_key_value_heads, attn.head_dim)
        q_und = attn.norm_q(q_und)
        k_und = attn.norm_k(k_und)
        k_und_for_gen = attn.k_norm_und_for_gen(k_und) if attn.k_norm_und_for_gen is not None else k_und
        q_gen = attn.norm_added_q(q_gen)
        k_gen = attn.norm_added_k(k_gen)
        cos_und, sin_und, cos_gen, sin_gen = rotary_emb
        cos_und, sin_und = cos_und.unsqueeze(1), sin_und.unsqueeze(1)
        q_und = q_und * cos_und + _rotate_half(q_und) * sin_und
        k_und = k_und * cos_und + _rotate_half(k_und) * sin_und
        k_und_for_gen = k_und_for_gen * cos_und + _rotate_half(k_und_for_gen) * sin_und
        cos_gen, sin_gen = cos_gen.unsqueeze(1), sin_gen.unsqueeze(1)
        q_gen = q_gen * cos_gen + _rotate_half(q_gen) * sin_gen
        k_gen = k_gen * cos_gen + _rotate_half(k_gen) * sin_gen

        # Understanding stream: causal text self-attention, the model's own.
        causal_out = dispatch_attention_fn(
            q_und.unsqueeze(0), k_und.unsqueeze(0), v_und.unsqueeze(0), is_causal=True, enable_gqa=True,
            backend=self._attention_backend, parallel_config=None)
        causal_out = causal_out.squeeze(0).flatten(-2, -1)

        # Generation stream: video queries over text + video keys, the pattern on the video keys.
        geometry = self.geometry(gen_seq.shape[0], und_seq.shape[0], "before")
        all_k = torch.cat([k_und_for_gen, k_gen], dim=0)
        all_v = torch.cat([v_und, v_gen], dim=0)
        full_out = self.attend(q_gen.unsqueeze(0), all_k.unsqueeze(0), all_v.unsqueeze(0), geometry)
        full_out = full_out.squeeze(0).flatten(-2, -1)

        return attn.to_out(causal_out), attn.to_add_out(full_out)


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


class Cosmos3Adapter(Adapter):
    family = "cosmos3"
    transformer_class = Cosmos3OmniTransformer
    model_processor_class = Cosmos3AttnProcessor

    def facts(self, transformer, pipe):
        return _COSMOS3

    def attention_modules(self, transformer):
        return [(f"layers.{i}.self_attn", layer.self_attn) for i, layer in enumerate(transformer.layers)]

    def video_grid(self, transformer, args, kwargs):
        und_len = forward_input("und_len", 3, args, kwargs)
        sequence_length = forward_input("sequence_length", 4, args, kwargs)
        shapes = forward_input("vision_token_shapes", 6, args, kwargs)
        indexes = forward_input("vision_sequence_indexes", 7, args, kwargs)
        if transformer._cp_shard_fn is not None and not isinstance(transformer._cp_shard_fn, Cosmos3Seams):
            raise Unsupported("the sequence is sharded for context parallelism (_cp_shard_fn) by another library")
        # The model packs sound (action) tokens when both their tokens and sequence indexes are given.
        sound = (forward_input("sound_tokens", 11, args, kwargs, default=None) is not None
                 and forward_input("sound_sequence_indexes", 13, args, kwargs, default=None) is not None)
        action = (forward_input("action_tokens", 17, args, kwargs, default=None) is not None
                  and forward_input("action_sequence_indexes", 19, args, kwargs, default=None) is not None)
        if sound or action:
            raise Unsupported("the generation stream holds sound or action tokens besides the video")
        if len(shapes) != 1:
            raise Unsupported(f"the sequence holds {len(shapes)} vision items; LVSA's pattern covers one video")
        T, h, w = shapes[0]
        if sequence_length != und_len + T * h * w or tuple(indexes.shape) != (T * h * w,):
            raise Unsupported(_NOT_THE_VIDEO)
        return T, h * w

    def value_checks(self, transformer, args, kwargs):
        und_len = forward_input("und_len", 3, args, kwargs)
        indexes = forward_input("vision_sequence_indexes", 7, args, kwargs)
        expected = torch.arange(und_len, und_len + indexes.shape[0], device=indexes.device)
        return [((indexes == expected).all(), _NOT_THE_VIDEO)]

    def processor(self, runtime, model_processor):
        return Cosmos3LVSAProcessor(runtime, model_processor)

    def parallel_plan(self, transformer):
        return Cosmos3Seams


ADAPTERS = [Cosmos3Adapter()]
