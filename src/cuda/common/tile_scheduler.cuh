// Which (batch, head, query tile) a CTA computes.
//
// The hardware launches CTAs roughly in blockIdx order, so the order of this mapping is the
// schedule: query tiles of one frame are adjacent (they walk the same key list, so its K/V
// is read from DRAM about once and then served from L2), frames of one head follow each
// other (neighbouring frames share most of their window and all global frames), and the
// query heads of one GQA group sit innermost (they read the very same K/V). Encoder query
// tiles, which attend densely and are the longest, come first so they do not form the tail.
#pragma once

#include "params.hpp"

namespace lvsa::cuda {

struct TileCoord {
  int b, h, hkv, tile;
};

__device__ __forceinline__ TileCoord tile_coord(const FwdParams& p, int linear) {
  TileCoord c;
  const int gi = linear % p.group;
  linear /= p.group;
  c.tile = linear % p.tiles_per_head;
  linear /= p.tiles_per_head;
  c.hkv = linear % p.heads_kv;
  c.b = linear / p.heads_kv;
  c.h = c.hkv * p.group + gi;
  return c;
}

}  // namespace lvsa::cuda
