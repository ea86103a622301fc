"""The two all-to-alls of Ulysses: a sequence shard of every head -> the whole sequence of a
share of the heads, and back.

A rank's *local layout* is what the model's attention sees under Ulysses: ``[B, L, H, D]`` with
``L`` = its share of the video tokens, plus, for joint text+video models, all ``E`` encoder
tokens (replicated on every rank, before or after the video as the model orders them). The
*whole layout* is what LVSA attends over: ``[B, E + S, h_r, D]`` (or ``[B, S, h_r, D]``), every
token in the model's order, for the ``h_r`` heads of rank ``r``.

Video shards follow ``torch.tensor_split`` (the first ``S mod N`` ranks hold one token more), as
diffusers' context-parallel hooks split them, so a length that does not divide by ``N`` needs no
padding: the all-to-alls take uneven split sizes. Heads split the same way (:func:`split_heads`:
⌈H/N⌉ or ⌊H/N⌋ consecutive heads a rank), so a head count that does not divide by ``N`` needs no
padding heads either; grouped-query k/v heads follow the query heads that read them. Encoder
tokens never travel inwards (each rank slices its heads out of its replicated copy), so they are
never duplicated or reordered; on the way back each rank's encoder heads ride along with the
video tokens it returns.

Buffers are sequence-major (``[tokens, B, heads, D]``) so each source's shard lands as one
contiguous block and the whole-layout tensors are views of one buffer (LVSA takes any strides).
The all-to-alls move flat buffers with element counts as split sizes, since with uneven heads
a block's row width depends on its destination (inwards) or its source (outwards).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Optional

import torch
import torch.distributed as dist


def shares(total: int, degree: int) -> list[int]:
    """Tokens of each rank when ``total`` tokens are split as ``torch.tensor_split`` splits them."""
    base, extra = divmod(total, degree)
    return [base + (rank < extra) for rank in range(degree)]


@dataclass(frozen=True)
class HeadSplit:
    """The heads each rank attends with: consecutive query heads, ⌈H/N⌉ or ⌊H/N⌋ a rank in
    ``torch.tensor_split`` order, and the k/v heads those queries read (the same ranges without
    grouped-query attention; shared by neighbouring ranks when a k/v head serves both)."""

    query: tuple[range, ...]
    kv: tuple[range, ...]


def _even(ranges: tuple[range, ...]) -> bool:
    """Equal consecutive ranges: one strided copy serves every destination."""
    h = len(ranges[0])
    return all(heads == range(j * h, (j + 1) * h) for j, heads in enumerate(ranges))


def _query_ranges(query: int, degree: int) -> tuple[range, ...]:
    counts = shares(query, degree)
    return tuple(range(start, start + count) for start, count in zip(accumulate(counts, initial=0), counts))


def _kv_ranges(ranges: tuple[range, ...], group: int) -> Optional[tuple[range, ...]]:
    """The k/v heads that each rank's query heads read (``group`` queries a k/v head), or None
    where a rank's queries would read its k/v heads unequally: LVSA's grouped-query attention
    maps local query head ``i`` to local k/v head ``i // (h_q / h_kv)``."""
    kv = []
    for heads in ranges:
        reads = range(heads.start // group, (heads.stop - 1) // group + 1)
        per_kv = len(heads) // len(reads)
        if len(heads) % len(reads) or any(h // group - reads.start != i // per_kv for i, h in enumerate(heads)):
            return None
        kv.append(reads)
    return tuple(kv)


@lru_cache(maxsize=None)
def split_heads(query: int, kv: int, degree: int) -> HeadSplit:
    """Split ``query`` heads (and the ``kv`` k/v heads they read) over ``degree`` processes; a
    ValueError for what cannot split exactly."""
    if degree > query:
        raise ValueError(f"lvsa: {query} attention heads cannot split over {degree} processes (Ulysses gives every "
                         f"process at least one head); use at most {query} processes")
    if kv < 1 or query % kv:
        raise ValueError(f"lvsa: {query} query heads are not a multiple of the {kv} k/v heads")
    ranges = _query_ranges(query, degree)
    kv_ranges = _kv_ranges(ranges, query // kv)
    if kv_ranges is None:
        fits = [n for n in range(1, query + 1) if _kv_ranges(_query_ranges(query, n), query // kv) is not None]
        raise ValueError(f"lvsa: grouped-query attention with {query} query heads and {kv} k/v heads does not split "
                         f"over {degree} processes: each rank's {query // degree} or {-(-query // degree)} consecutive "
                         "query heads must read each of its k/v heads equally often (e.g. whole groups, or one "
                         f"group); process counts that split these heads: {', '.join(map(str, fits))}")
    return HeadSplit(ranges, kv_ranges)


@dataclass(frozen=True)
class Layout:
    """How one attention call's tokens and heads are spread over the ranks of the Ulysses group."""

    sizes: tuple[int, ...]      # video tokens per rank
    rank: int
    heads: HeadSplit
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

    ``tensors`` are ``[B, L_i, H_i, D]``: the queries, then tensors of the k/v heads (k, v), split
    as ``layout.heads`` says. Returns ``[B, E + S, h, D]`` views (``[B, S, ...]`` for a tensor
    without encoder tokens) into one buffer.
    """
    N, r, E, S, n = layout.degree, layout.rank, layout.encoder_len, layout.video, layout.local
    first = tensors[0]
    B, D = first.shape[0], first.shape[-1]
    splits = [layout.heads.query] + [layout.heads.kv] * (len(tensors) - 1)
    widths = [sum(len(ranges[j]) for ranges in splits) for j in range(N)]  # heads each destination gets
    whole = first.new_empty(E + S, B, widths[r], D)
    video = whole[E:] if layout.encoder_first else whole[:S]
    encoder = whole[:E] if layout.encoder_first else whole[S:]
    counts = [n * B * w * D for w in widths]
    send = first.new_empty(sum(counts))  # destination j's heads of my tokens, one block each
    blocks = [block.view(n, B, w, D) for block, w in zip(send.split(counts), widths)]

    even = all(_even(ranges) for ranges in splits)
    views, offsets = [], [0] * N  # each destination's columns filled so far
    for x, ranges in zip(tensors, splits):
        enc, vid = layout.split_local(x)
        if even:
            h = len(ranges[0])
            columns = slice(offsets[0], offsets[0] + h)
            send.view(N, n, B, widths[0], D)[..., columns, :].copy_(vid.unflatten(2, (N, h)).permute(2, 1, 0, 3, 4))
        else:
            for block, heads, offset in zip(blocks, ranges, offsets):
                block[..., offset:offset + len(heads), :].copy_(vid[:, :, heads.start:heads.stop].transpose(0, 1))
        mine = ranges[r]
        columns = slice(offsets[r], offsets[r] + len(mine))
        if enc is not None:
            encoder[..., columns, :].copy_(enc[:, :, mine.start:mine.stop].transpose(0, 1))
        views.append((whole if enc is not None else video)[..., columns, :].transpose(0, 1))
        offsets = [offset + len(heads) for offset, heads in zip(offsets, ranges)]
    dist.all_to_all_single(video.view(-1), send, output_split_sizes=[size * B * widths[r] * D for size in layout.sizes],
                           input_split_sizes=counts, group=group)
    return views


def to_sequence(out: torch.Tensor, layout: Layout, group) -> torch.Tensor:
    """Whole layout -> local layout: ``[B, (E +) S, h, D]`` attention output of this rank's query
    heads back to ``[B, (E +) n, H, D]``, this rank's video tokens (and the encoder tokens) of all heads."""
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
    heads = [len(ranges) for ranges in layout.heads.query]
    counts = [mine * B * g * D for g in heads]
    recv = out.new_empty(sum(counts))  # one block per source rank = head group: my tokens
    dist.all_to_all_single(recv, send.view(-1), output_split_sizes=counts,
                           input_split_sizes=[(E + size) * B * h * D for size in layout.sizes], group=group)
    if _even(layout.heads.query):
        return recv.view(N, mine, B, h, D).permute(2, 1, 0, 3, 4).reshape(B, mine, N * h, D)
    blocks = recv.split(counts)
    return torch.cat([block.view(mine, B, g, D).transpose(0, 1) for block, g in zip(blocks, heads)], dim=2)


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


__all__ = ["HeadSplit", "Layout", "gather_sequence", "shares", "split_heads", "to_heads", "to_sequence"]
