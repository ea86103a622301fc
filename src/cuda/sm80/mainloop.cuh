// Global->shared tile copies and the two warp-level GEMMs of one key tile.
//
// Copies are cp.async of 16-byte chunks: each thread owns one chunk column and a fixed set of
// rows, so its destination swizzle is a per-thread constant. Rows outside the current
// interval are zero-filled instead of read, so masked keys contribute exact zeros even if
// the memory there holds Inf/NaN (e.g. padded encoder tokens).
//
// GEMM fragment addressing: every ldmatrix row this thread supplies has (row & 7) = lane & 7,
// so the swizzled chunk (2j + hi) ^ (lane & 7) = 2j ^ key with key = hi ^ (lane & 7) fixed
// per thread; every other term of the address is a compile-time immediate.
#pragma once

#include "../common/ptx.cuh"
#include "kernel_traits.cuh"

namespace lvsa::cuda::sm80 {

template <class Tr>
struct TileLoader {
  using T = typename Tr::T;
  const T* base;  // tensor + batch/head offset + this thread's chunk column
  int64_t row_stride;

  __device__ __forceinline__ void init(const void* tensor, int64_t batch_off, int64_t row_stride_,
                                       int tid) {
    base = static_cast<const T*>(tensor) + batch_off + (tid % Tr::kChunks) * 8;
    row_stride = row_stride_;
  }

  // Rows [0, kRows) of the tile are tokens first + r, valid while r < nvalid. Invalid rows
  // keep a valid source address (row `first`) although zero-fill reads none of it.
  template <int kRows>
  __device__ __forceinline__ void load(uint32_t smem_tile, int first, int nvalid, int tid) const {
    const int r0 = tid / Tr::kChunks;
    const uint32_t dst = smem_tile + swizzled(Tr::kRowBytes, r0, tid % Tr::kChunks);
    const T* tile = base + int64_t(first) * row_stride;
    const T* src = tile + int64_t(r0) * row_stride;
    const int64_t step = int64_t(Tr::kRowsPerPass) * row_stride;
#pragma unroll
    for (int i = 0; i < kRows / Tr::kRowsPerPass; ++i) {
      const bool ok = r0 + i * Tr::kRowsPerPass < nvalid;
      ptx::cp_async_16(dst + i * Tr::kRowsPerPass * Tr::kRowBytes, ok ? src : tile, ok);
      src += step;
    }
  }
};

// Per-thread swizzle key (see the header comment) of an operand whose lane supplies row
// (rbase + (lane & 7)) and chunk (2j + hi).
__device__ __forceinline__ uint32_t chunk_key(int hi, int lane) { return uint32_t(hi ^ (lane & 7)); }

// Byte offset of chunk pair j (chunk 2j + hi) within the lane's row.
__device__ __forceinline__ uint32_t chunk_pair(uint32_t key, int j) {
  return (uint32_t(2 * j) ^ key) << 4;
}

// S[32 x kN] = Q[32 rows of this warp] . K[tile]^T.
template <class Tr>
__device__ __forceinline__ void gemm_qk(float (&s)[Tr::kMTiles][Tr::kN / 8][4], uint32_t q_lane,
                                        uint32_t q_key, uint32_t k_lane, uint32_t k_key) {
  using T = typename Tr::T;
#pragma unroll
  for (int mi = 0; mi < Tr::kMTiles; ++mi)
#pragma unroll
    for (int nt = 0; nt < Tr::kN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mi][nt][e] = 0.0f;
  // Not unrolled: one k16 step's fragments in flight at a time keeps the compiler from
  // hoisting every ldmatrix of the tile next to 192 accumulator registers (it spills then).
#pragma unroll 1
  for (int kk = 0; kk < Tr::kD / 16; ++kk) {
    uint32_t a[Tr::kMTiles][4];
#pragma unroll
    for (int mi = 0; mi < Tr::kMTiles; ++mi)
      ptx::ldmatrix_x4(a[mi], q_lane + mi * 16 * Tr::kRowBytes + chunk_pair(q_key, kk));
#pragma unroll
    for (int np = 0; np < Tr::kN / 16; ++np) {
      uint32_t b[4];
      ptx::ldmatrix_x4(b, k_lane + np * 16 * Tr::kRowBytes + chunk_pair(k_key, kk));
#pragma unroll
      for (int mi = 0; mi < Tr::kMTiles; ++mi) {
        ptx::mma_16816<T>(s[mi][2 * np], a[mi], b[0], b[1]);
        ptx::mma_16816<T>(s[mi][2 * np + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

// O[32 x D] += P[32 x kN] . V[tile], with P taken straight from the score registers: the
// accumulator layout of two adjacent n8 tiles is the A-operand layout of one k16 step.
template <class Tr>
__device__ __forceinline__ void gemm_pv(float (&o)[Tr::kMTiles][Tr::kD / 8][4],
                                        const float (&p)[Tr::kMTiles][Tr::kN / 8][4],
                                        uint32_t v_lane, uint32_t v_key) {
  using T = typename Tr::T;
#pragma unroll
  for (int kk = 0; kk < Tr::kN / 16; ++kk) {
    uint32_t a[Tr::kMTiles][4];
#pragma unroll
    for (int mi = 0; mi < Tr::kMTiles; ++mi) {
      a[mi][0] = ptx::pack2<T>(p[mi][2 * kk][0], p[mi][2 * kk][1]);
      a[mi][1] = ptx::pack2<T>(p[mi][2 * kk][2], p[mi][2 * kk][3]);
      a[mi][2] = ptx::pack2<T>(p[mi][2 * kk + 1][0], p[mi][2 * kk + 1][1]);
      a[mi][3] = ptx::pack2<T>(p[mi][2 * kk + 1][2], p[mi][2 * kk + 1][3]);
    }
#pragma unroll
    for (int nd = 0; nd < Tr::kD / 16; ++nd) {
      uint32_t b[4];
      ptx::ldmatrix_x4_trans(b, v_lane + kk * 16 * Tr::kRowBytes + chunk_pair(v_key, nd));
#pragma unroll
      for (int mi = 0; mi < Tr::kMTiles; ++mi) {
        ptx::mma_16816<T>(o[mi][2 * nd], a[mi], b[0], b[1]);
        ptx::mma_16816<T>(o[mi][2 * nd + 1], a[mi], b[2], b[3]);
      }
    }
  }
}

}  // namespace lvsa::cuda::sm80
