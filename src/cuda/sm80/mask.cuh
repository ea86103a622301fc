// Masking at interval ends: the only partial key tiles are the last tile of each merged
// interval, where columns >= nvalid belong to keys the query tile does not attend to.
// Their K/V rows were zero-filled on load; here their scores become -inf so that they get
// exactly zero weight. Column 0 of a tile is always valid, so the tail never hides a whole
// row. The keys of a frame pair that one frame does not attend (FramePairMask) may hide a whole
// tile from some rows, but never their first (lvsa::frame_pairs_fit), so every row's running
// maximum is finite after its first tile.
#pragma once

#include <math_constants.h>

#include "../common/block_info.cuh"

namespace lvsa::cuda::sm80 {

// s[mi][nt][e]: m16 tile mi, n8 tile nt; e = 0,1 row g and e = 2,3 row g+8, at columns
// nt*8 + 2*(lane%4) + (e%2).
template <int kMTiles, int kNTiles>
__device__ __forceinline__ void mask_tail(float (&s)[kMTiles][kNTiles][4], int nvalid, int lane) {
  const int col0 = 2 * (lane & 3);
#pragma unroll
  for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
    for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e)
        if (nt * 8 + col0 + (e & 1) >= nvalid) s[mi][nt][e] = -CUDART_INF_F;
}

// In tiles with rows of two frames: the keys one frame does not attend, for that frame's rows.
// row: this thread's first row in the query tile (rows row + 16 mi and row + 16 mi + 8).
template <int kMTiles, int kNTiles>
__device__ __forceinline__ void mask_pairs(float (&s)[kMTiles][kNTiles][4], const FramePairMask& pairs, int cur,
                                           int row, int lane) {
  const int col0 = 2 * (lane & 3);
  pairs.visit(cur, kNTiles * 8, [&](int c0, int c1, bool first) {
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
      for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int c = nt * 8 + col0 + (e & 1);
          const bool in_first = row + 16 * mi + (e < 2 ? 0 : 8) < pairs.split;
          if (c >= c0 && c < c1 && in_first == first) s[mi][nt][e] = -CUDART_INF_F;
        }
  });
}

}  // namespace lvsa::cuda::sm80
