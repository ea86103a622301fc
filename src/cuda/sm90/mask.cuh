// Masking at interval ends, as in the sm80 kernel (sm80/mask.cuh: why, and why no row is
// ever all -inf), on the wgmma accumulator layout of S (mainloop.cuh): columns >= nvalid of
// the tile's last interval tile get -inf scores, and with aligned tile starts (fp8 values)
// columns < head of an interval's first tile.
#pragma once

#include <math_constants.h>

#include "../common/block_info.cuh"

namespace lvsa::cuda::sm90 {

template <int kN>
__device__ __forceinline__ void mask_tail(float (&s)[kN / 2], int nvalid, int lane) {
  const int col0 = 2 * (lane & 3);
#pragma unroll
  for (int i = 0; i < kN / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (i * 8 + col0 + (e & 1) >= nvalid) s[4 * i + e] = -CUDART_INF_F;
}

// Columns < head (keys before the interval, in a tile that starts at an aligned key: KeyWalk)
// get -inf scores. head < 16 <= kN, so only the first two n8 blocks can hold them.
template <int kN>
__device__ __forceinline__ void mask_head(float (&s)[kN / 2], int head, int lane) {
  const int col0 = 2 * (lane & 3);
#pragma unroll
  for (int i = 0; i < 2; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (i * 8 + col0 + (e & 1) < head) s[4 * i + e] = -CUDART_INF_F;
}

// Both masks of the walk's current tile (nvalid = walk.count()).
template <int kN, int kAlign>
__device__ __forceinline__ void mask_tile(float (&s)[kN / 2], const KeyWalk<kN, kAlign>& walk, int nvalid,
                                          int lane) {
  if (nvalid < kN) mask_tail<kN>(s, nvalid, lane);
  if constexpr (kAlign > 1)
    if (walk.head() > 0) mask_head<kN>(s, walk.head(), lane);
}

}  // namespace lvsa::cuda::sm90
