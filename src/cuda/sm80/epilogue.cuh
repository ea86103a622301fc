// Normalisation and stores. Each lane owns 2 adjacent columns of 4 rows per n8 tile, written
// as one 4-byte store; a quad covers 16 contiguous bytes of a row. The output is written
// once per CTA after a whole key walk, so this is not on the critical path.
//
// Rows past valid_rows (padded encoder queries, or every row when the key list is empty)
// are zeros with lse -inf, as the contract defines them; rows past `rows` do not exist.
#pragma once

#include <math_constants.h>

#include "../common/params.hpp"
#include "../common/ptx.cuh"

namespace lvsa::cuda::sm80 {

template <class Tr>
__device__ __forceinline__ void store_output(const FwdParams& p, float (&o)[Tr::kMTiles][Tr::kD / 8][4],
                                             const float (&m)[Tr::kMTiles][2],
                                             const float (&l)[Tr::kMTiles][2], int b, int h,
                                             int row0, int rows, int valid_rows, int warp, int lane) {
  using T = typename Tr::T;
  T* out = static_cast<T*>(p.out) + int64_t(b) * p.o_stride[0] + int64_t(h) * p.o_stride[2] +
           2 * (lane & 3);
#pragma unroll
  for (int mi = 0; mi < Tr::kMTiles; ++mi)
#pragma unroll
    for (int hh = 0; hh < 2; ++hh) {
      const int r = warp * Tr::kWarpRows + mi * 16 + hh * 8 + (lane >> 2);
      float sum = l[mi][hh];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      if (r >= rows) continue;
      const bool live = r < valid_rows && sum > 0.0f;
      const float inv = live ? 1.0f / sum : 0.0f;
      T* row = out + int64_t(row0 + r) * p.o_stride[1];
#pragma unroll
      for (int nt = 0; nt < Tr::kD / 8; ++nt) {
        const uint32_t v = live ? ptx::pack2<T>(o[mi][nt][2 * hh] * inv, o[mi][nt][2 * hh + 1] * inv) : 0u;
        *reinterpret_cast<uint32_t*>(row + nt * 8) = v;
      }
      if (p.lse != nullptr && (lane & 3) == 0) {
        // m is in the exp2 domain: ln(sum_j e^{s_j}) = (m + log2 l) * ln 2.
        const float lse = live ? (m[mi][hh] + log2f(sum)) * CUDART_LN2_F : -CUDART_INF_F;
        p.lse[(int64_t(b) * p.heads_q + h) * p.seq_q + row0 + r] = lse;
      }
    }
}

}  // namespace lvsa::cuda::sm80
