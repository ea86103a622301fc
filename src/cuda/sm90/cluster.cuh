// CTA pairs that share their K/V loads (schedule flag kClusterKV).
//
// The kernel is then launched in clusters of two adjacent CTAs. In the CTA order of
// common/tile_scheduler.cuh adjacent CTAs are the query heads of one GQA group or neighbouring
// query tiles of one frame, so they usually walk the same key list. Such a pair splits every
// full K/V tile into two row halves: each CTA's TMA fetches one half from L2 and multicasts it
// into the shared memory of both, halving the L2 -> SM bytes, which at D = 128 cost about 10 %
// of the kernel's time after TMA (docs/perf/cuda_sm90.md, v4). A stage may then be refilled
// only when the consumers of both CTAs have released it, so every consumer warp arrives on the
// "empty" barriers of both. Partial tiles stay on each CTA's own zero-filling cp.async.
//
// A pair whose key lists differ (a frame's short last tile beside the next frame's first, a
// padded encoder tile, the padding CTA of an odd grid) runs as two independent CTAs, exactly as
// without clusters. Both CTAs evaluate the same symmetric predicate, so they agree.
#pragma once

#include <cstdint>

#include "../common/block_info.cuh"
#include "../common/params.hpp"
#include "../common/tile_scheduler.cuh"

namespace lvsa::cuda::sm90 {

struct Pair {
  bool shared = false;  // the two CTAs walk one key list and share its full tiles; each fetches
                        // the half of every full tile its cluster rank names
  int peer_wgs = 0;     // the peer's active consumer warpgroups, whose releases we also count
};

__device__ __forceinline__ int ctas_of(const FwdParams& p) { return p.batch * p.heads_q * p.tiles_per_head; }

// `tc`, `qt`: this CTA's tile, which has valid rows and a non-empty key walk.
template <class Tr>
__device__ __forceinline__ Pair pair_of(const FwdParams& p, const TileCoord& tc, const QueryTile& qt) {
  Pair pair;
  const int peer = int(blockIdx.x ^ 1u);  // clusters of two in a 1-D grid: rank = blockIdx.x & 1
  if (peer >= ctas_of(p)) return pair;
  const TileCoord pc = tile_coord(p, peer);
  const QueryTile pq = query_tile<Tr::kM>(p, pc.b, pc.tile);
  // One batch entry, K/V head and frame (or both encoder tiles): one key list, one K/V.
  pair.shared = pq.valid_rows > 0 && pc.b == tc.b && pc.hkv == tc.hkv && pq.frame == qt.frame;
  pair.peer_wgs = min(Tr::kConsumerWGs, (pq.valid_rows + Tr::kWGRows - 1) / Tr::kWGRows);
  return pair;
}

}  // namespace lvsa::cuda::sm90
