// Normalisation and stores of a consumer warpgroup's 64 rows, from the wgmma accumulator
// layout (mainloop.cuh): each lane writes 2 adjacent columns per n8 block as one 4-byte store.
// Rows past valid_rows (padded encoder queries, or every row when the key list is empty) are
// zeros with lse -inf, as the contract defines them; rows past qt.rows do not exist.
#pragma once

#include <math_constants.h>

#include "../common/block_info.cuh"
#include "../common/params.hpp"
#include "../common/ptx.cuh"

namespace lvsa::cuda::sm90 {

// Normalises and stores this thread's rows (O / l times o_scale: fp8 values' descale); rows past
// valid_rows are zeros with lse -inf.
template <class Tr>
__device__ __forceinline__ void store_rows(const FwdParams& p, const float (&o)[Tr::kD / 2], const float (&m)[2],
                                           const float (&l)[2], int b, int h, const QueryTile& qt,
                                           int valid_rows, int wg, int ctid, float o_scale = 1.0f) {
  using T = typename Tr::T;
  const int warp = ctid >> 5, lane = ctid & 31;
  T* out = static_cast<T*>(p.out) + int64_t(b) * p.o_stride[0] + int64_t(h) * p.o_stride[2] + 2 * (lane & 3);
#pragma unroll
  for (int hh = 0; hh < 2; ++hh) {
    const int r = wg * Tr::kWGRows + warp * 16 + hh * 8 + (lane >> 2);
    float sum = l[hh];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    if (r >= qt.rows) continue;
    const bool live = r < valid_rows && sum > 0.0f;
    const float inv = live ? o_scale / sum : 0.0f;
    T* row = out + int64_t(qt.row0 + r) * p.o_stride[1];
#pragma unroll
    for (int i = 0; i < Tr::kD / 8; ++i) {
      const uint32_t v = live ? ptx::pack2<T>(o[4 * i + 2 * hh] * inv, o[4 * i + 2 * hh + 1] * inv) : 0u;
      *reinterpret_cast<uint32_t*>(row + i * 8) = v;
    }
    if (p.lse != nullptr && (lane & 3) == 0) {
      const float lse = live ? (m[hh] + log2f(sum)) * CUDART_LN2_F : -CUDART_INF_F;
      p.lse[(int64_t(b) * p.heads_q + h) * p.seq_q + qt.row0 + r] = lse;
    }
  }
}

// Zeros / -inf for this warpgroup's existing rows (no keys, or no valid rows).
template <class Tr>
__device__ __forceinline__ void store_empty(const FwdParams& p, int b, int h, const QueryTile& qt, int wg,
                                            int ctid) {
  float o[Tr::kD / 2];
#pragma unroll
  for (int i = 0; i < Tr::kD / 2; ++i) o[i] = 0.0f;
  const float m[2] = {0.0f, 0.0f}, l[2] = {0.0f, 0.0f};
  store_rows<Tr>(p, o, m, l, b, h, qt, 0, wg, ctid);
}

}  // namespace lvsa::cuda::sm90
