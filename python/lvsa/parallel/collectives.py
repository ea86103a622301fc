"""The two all-to-alls of Ulysses: a sequence shard of every head -> the whole sequence of a
share of the heads, and back.

A rank's *local layout* is what the model's attention sees under Ulysses: ``[B, L, H, D]`` with
``L`` = its share of the video tokens, plus, for joint text+video models, all ``E`` encoder
tokens (replicated on every rank, before or after the video as the model orders them). The
*whole layout* is what LVSA attends over: ``[B, E + S, H/N, D]`` (or ``[B, S, H/N, D]``), every
token in the model's order, heads ``[r·H/N, (r+1)·H/N)`` of rank ``r``.

Video shards follow ``torch.tensor_split`` (the first ``S mod N`` ranks hold one token more), as
diffusers' context-parallel hooks split them, so a length that does not divide by ``N`` needs no
padding: the all-to-alls take uneven split sizes. Encoder tokens never travel inwards (each rank
slices its heads out of its replicated copy), so they are never duplicated or reordered; on the
way back each rank's encoder heads ride along with the video tokens it returns.

Buffers are sequence-major (``[tokens, B, heads, D]``) so each source's shard lands as one
contiguous block and the whole-layout tensors are views of one buffer (LVSA takes any strides).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.distributed as dist


def shares(total: int, degree: int) -> list[int]:
    """Tokens of each rank when ``total`` tokens are split as ``torch.tensor_split`` splits them."""
    base, extra = divmod(total, degree)
    return [base + (rank < extra) for rank in range(degree)]


@dataclass(frozen=True)
class Layout:
    """How one attention call's tokens are spread over the ranks of the Ulysses group."""

    sizes: tuple[int, ...]      # video tokens per rank
    rank: int
    encoder_len: int = 0        # replicated encoder tokens in the local layout (0: none)
    encoder_first: bool = True  # encoder tokens before the video (CogVideoX, Cosmos 3) or after (HunyuanVideo)

    @property
    def degree(self) -> int:
        return len(self.sizes)

    @property
    def local(self) -> int:
        return self.sizes[self.rank]

    @property
    def video(self) -> int:
        return sum(self.sizes)

    def split_local(self, x: torch.Tensor) -> tuple[Optional[torch.Tensor], torch.Tensor]:
        """``(encoder part or None, video shard)`` of a local ``[B, L, H, D]`` tensor; ``L`` tells
        whether it carries the encoder tokens (Cosmos 3's queries are video only)."""
        E, n = self.encoder_len, self.local
        if x.shape[1] == n:
            return None, x
        if x.shape[1] != E + n:
            raise ValueError(f"lvsa: Ulysses rank {self.rank} holds {x.shape[1]} tokens; expected its {n} video "
                             f"tokens{f' plus the {E} encoder tokens' if E else ''}")
        return (x[:, :E], x[:, E:]) if self.encoder_first else (x[:, n:], x[:, :n])


def to_heads(tensors: list[torch.Tensor], layout: Layout, group) -> list[torch.Tensor]:
    """Local layout -> whole layout for this rank's heads, for several tensors in one all-to-all.

    ``tensors`` are ``[B, L_i, H_i, D]`` with each ``H_i`` a multiple of the group size (q, k, v;
    grouped-query heads may differ). Returns ``[B, E + S, H_i/N, D]`` views (``[B, S, ...]`` for a
    tensor without encoder tokens) into one buffer.
    """
    N, r, E, S, n = layout.degree, layout.rank, layout.encoder_len, layout.video, layout.local
    first = tensors[0]
    B, D = first.shape[0], first.shape[-1]
    heads = [x.shape[2] // N for x in tensors]
    width = sum(heads)
    whole = first.new_empty(E + S, B, width, D)
    video = whole[E:] if layout.encoder_first else whole[:S]
    encoder = whole[:E] if layout.encoder_first else whole[S:]
    send = first.new_empty(N, n, B, width, D)  # [destination rank, its heads of my tokens]

    views, start = [], 0
    for x, h in zip(tensors, heads):
        enc, vid = layout.split_local(x)
        columns = slice(start, start + h)
        send[..., columns, :].copy_(vid.unflatten(2, (N, h)).permute(2, 1, 0, 3, 4))
        if enc is not None:
            encoder[..., columns, :].copy_(enc[:, :, r * h:(r + 1) * h].transpose(0, 1))
        views.append((whole if enc is not None else video)[..., columns, :].transpose(0, 1))
        start += h
    dist.all_to_all_single(video, send.view(N * n, B, width, D), output_split_sizes=list(layout.sizes),
                           input_split_sizes=[n] * N, group=group)
    return views


def to_sequence(out: torch.Tensor, layout: Layout, group) -> torch.Tensor:
    """Whole layout -> local layout: ``[B, (E +) S, H/N, D]`` attention output of this rank's heads
    back to ``[B, (E +) n, H, D]``, this rank's video tokens (and the encoder tokens) of all heads."""
    N, E, S = layout.degree, layout.encoder_len, layout.video
    B, length, h, D = out.shape
    if length not in (S, E + S):
        raise ValueError(f"lvsa: Ulysses output has {length} tokens; expected {S} or {E + S}")
    seq = out.transpose(0, 1)  # sequence-major view
    E = E if length == E + S else 0
    enc = seq[:E] if layout.encoder_first else seq[S:]
    vid = seq[E:] if layout.encoder_first else seq[:S]

    # Destination j gets its video tokens and (all ranks do) the encoder tokens, in the local order.
    pieces, begin = [], 0
    for size in layout.sizes:
        chunk = vid[begin:begin + size]
        begin += size
        pieces += ([enc, chunk] if layout.encoder_first else [chunk, enc]) if E else [chunk]
    send = torch.cat(pieces)
    mine = E + layout.local
    recv = out.new_empty(N * mine, B, h, D)  # one block per source rank = head group: my tokens
    dist.all_to_all_single(recv, send, output_split_sizes=[mine] * N,
                           input_split_sizes=[E + size for size in layout.sizes], group=group)
    return recv.view(N, mine, B, h, D).permute(2, 1, 0, 3, 4).reshape(B, mine, N * h, D)


def gather_sequence(x: torch.Tensor, dim: int, group) -> torch.Tensor:
    """Every rank's shard of ``x`` along ``dim``, concatenated in rank order, on every rank. Shards
    may differ in length (gloo's all-gather needs equal ones): each is padded to the longest."""
    N = dist.get_world_size(group)
    size = torch.tensor([x.shape[dim]], device=x.device)
    sizes = [torch.empty_like(size) for _ in range(N)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s) for s in sizes]
    longest = max(sizes)
    shard = x.movedim(dim, 0)
    padded = shard.new_zeros(longest, *shard.shape[1:])
    padded[:shard.shape[0]] = shard
    gathered = [torch.empty_like(padded) for _ in range(N)]
    dist.all_gather(gathered, padded, group=group)
    return torch.cat([g[:n] for g, n in zip(gathered, sizes)]).movedim(0, dim)


__all__ = ["Layout", "gather_sequence", "shares", "to_heads", "to_sequence"]
