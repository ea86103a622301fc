// Masking at interval ends, as in the sm80 kernel (sm80/mask.cuh: why, and why no row is
// ever all -inf), on the wgmma accumulator layout of S (mainloop.cuh): columns >= nvalid of
// the tile's last interval tile get -inf scores.
#pragma once

#include <math_constants.h>

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

}  // namespace lvsa::cuda::sm90
