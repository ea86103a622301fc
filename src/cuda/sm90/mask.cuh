// Masking, as in the sm80 kernel (sm80/mask.cuh: why), on the wgmma accumulator layout of S
// (mainloop.cuh): columns >= nvalid of an interval's last tile get -inf scores, with aligned
// tile starts (fp8 values) columns < head of its first tile, and in tiles with rows of two
// frames the keys one frame does not attend, for that frame's rows (FramePairMask).
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

// Columns [c0, c1) get -inf scores in this thread's first row (hide_lo) and second (hide_hi).
template <int kN>
__device__ __forceinline__ void mask_rows(float (&s)[kN / 2], int c0, int c1, bool hide_lo, bool hide_hi,
                                          int lane) {
  const int col0 = 2 * (lane & 3);
#pragma unroll
  for (int i = 0; i < kN / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      const int c = i * 8 + col0 + (e & 1);
      if (c >= c0 && c < c1 && (e < 2 ? hide_lo : hide_hi)) s[4 * i + e] = -CUDART_INF_F;
    }
}

// All masks of the walk's current tile (nvalid = walk.count()); row: this thread's first row in
// the query tile (the second is row + 8).
template <int kN, int kAlign, bool kSpan>
__device__ __forceinline__ void mask_tile(float (&s)[kN / 2], const KeyWalk<kN, kAlign, kSpan>& walk, int nvalid,
                                          bool frame_pair, const FramePairMask& pairs, int row, int lane) {
  if (nvalid < kN) mask_tail<kN>(s, nvalid, lane);
  if constexpr (kAlign > 1)
    if (walk.head() > 0) mask_head<kN>(s, walk.head(), lane);
  if (frame_pair) {
    auto hide = [&](int c0, int c1, bool first) {
      mask_rows<kN>(s, c0, c1, (row < pairs.split) == first, (row + 8 < pairs.split) == first, lane);
    };
    if constexpr (kSpan) {  // each segment's columns hold its own keys
      pairs.visit(walk.cur, walk.first_count(), walk.cur2, walk.n2, hide);
    } else {
      pairs.visit(walk.cur, kN, hide);
    }
  }
}

}  // namespace lvsa::cuda::sm90
