// The sm80 block-sparse forward kernel: one CTA per (batch, head, query tile), FlashAttention-2
// style (mma.sync, ldmatrix, cp.async), walking the tile's merged key intervals.
//
// Pipeline: a 2-stage K/V ring in shared memory. At the top of iteration j one wait + one
// barrier both publish tile j and prove every warp is done with tile j-1, whose stage then
// receives tile j+1 while tile j is computed. The next tile's position comes from the walk,
// which is one tile ahead of the compute.
#pragma once

#include <cuda_runtime.h>

#include "../common/block_info.cuh"
#include "../common/launch.cuh"
#include "../common/params.hpp"
#include "../common/ptx.cuh"
#include "../common/tile_scheduler.cuh"
#include "epilogue.cuh"
#include "kernel_traits.cuh"
#include "mainloop.cuh"
#include "mask.cuh"
#include "softmax.cuh"

namespace lvsa::cuda::sm80 {

template <class Tr>
__global__ void __launch_bounds__(Tr::kThreads, 2) fwd_kernel(const __grid_constant__ FwdParams p) {
  constexpr int kM = Tr::kM, kN = Tr::kN, kMT = Tr::kMTiles, kNT = kN / 8, kDT = Tr::kD / 8;
  extern __shared__ __align__(128) unsigned char smem[];
  const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;

  const TileCoord tc = tile_coord(p, blockIdx.x);
  const QueryTile qt = query_tile<kM>(p, tc.b, tc.tile);

  float o[kMT][kDT][4];
#pragma unroll
  for (int mi = 0; mi < kMT; ++mi)
#pragma unroll
    for (int nd = 0; nd < kDT; ++nd)
#pragma unroll
      for (int e = 0; e < 4; ++e) o[mi][nd][e] = 0.0f;
  SoftmaxState<kMT> sm;
  sm.init();

  KeyWalk<kN> walk;
  walk.init(p, qt);
  const bool frame_pair = qt.two_frames();
  FramePairMask pairs{};
  if (frame_pair) pairs.init(p, qt);
  if (qt.valid_rows == 0 || !walk.valid()) {  // CTA-uniform: nothing to attend to
    store_output<Tr>(p, o, sm.m, sm.l, tc.b, tc.h, qt.row0, qt.rows, 0, warp, lane);
    return;
  }

  const uint32_t s_base = ptx::smem_addr(smem);
  const uint32_t s_q = s_base, s_k = s_base + Tr::kKOffset, s_v = s_base + Tr::kVOffset;

  typename Tr::Loader lq, lk, lv;
  lq.init(p.q, int64_t(tc.b) * p.q_stride[0] + int64_t(tc.h) * p.q_stride[2], p.q_stride[1], tid);
  lk.init(p.k, int64_t(tc.b) * p.k_stride[0] + int64_t(tc.hkv) * p.k_stride[2], p.k_stride[1], tid);
  lv.init(p.v, int64_t(tc.b) * p.v_stride[0] + int64_t(tc.hkv) * p.v_stride[2], p.v_stride[1], tid);

  lq.template load<kM>(s_q, qt.row0, qt.rows, tid);
  int cur_valid = walk.count(), cur_key = walk.cur;  // of the tile being computed (the walk runs ahead)
  lk.template load<kN>(s_k, walk.cur, cur_valid, tid);
  lv.template load<kN>(s_v, walk.cur, cur_valid, tid);
  ptx::cp_async_commit();
  walk.advance();

  // Lane-constant parts of the ldmatrix addresses (see mainloop.cuh).
  const uint32_t q_key = chunk_key(lane >> 4, lane), k_key = chunk_key((lane >> 3) & 1, lane);
  const uint32_t v_key = q_key;  // same lane -> (row, chunk) pattern
  const uint32_t q_lane = s_q + (warp * Tr::kWarpRows + (lane & 15)) * Tr::kRowBytes;
  const uint32_t k_row = ((lane >> 4) * 8 + (lane & 7)) * Tr::kRowBytes;
  const uint32_t v_row = (((lane >> 3) & 1) * 8 + (lane & 7)) * Tr::kRowBytes;
  // The last tile of a frame is short: warps with no valid rows skip the math (their tensor
  // cores go to the other CTA on the SM) but still copy and hit every barrier.
  const bool warp_active = warp * Tr::kWarpRows < qt.valid_rows;

  for (int stage = 0;; stage ^= 1) {
    ptx::cp_async_wait<0>();
    __syncthreads();
    const bool has_next = walk.valid();
    int next_valid = 0, next_key = 0;
    if (has_next) {
      next_valid = walk.count();
      next_key = walk.cur;
      const int other = stage ^ 1;
      lk.template load<kN>(s_k + other * Tr::kKVTileBytes, walk.cur, next_valid, tid);
      lv.template load<kN>(s_v + other * Tr::kKVTileBytes, walk.cur, next_valid, tid);
      ptx::cp_async_commit();
      walk.advance();
    }
    if (warp_active) {
      float s[kMT][kNT][4];
      gemm_qk<Tr>(s, q_lane, q_key, s_k + stage * Tr::kKVTileBytes + k_row, k_key);
      if (cur_valid < kN) mask_tail(s, cur_valid, lane);
      if (frame_pair) mask_pairs(s, pairs, cur_key, warp * Tr::kWarpRows + (lane >> 2), lane);
      const uint32_t v_lane = s_v + stage * Tr::kKVTileBytes + v_row;
      if constexpr (Tr::kSplitMTiles) {
        static_assert(kMT == 2);
        sm.template update<0, 1, Tr::kSkipRescaleIfSame>(s, o, p.scale_log2);
        gemm_pv<Tr, 0, 1>(o, s, v_lane, v_key);
        sm.template update<1, 2, Tr::kSkipRescaleIfSame>(s, o, p.scale_log2);
        gemm_pv<Tr, 1, 2>(o, s, v_lane, v_key);
      } else {
        sm.template update<0, kMT, Tr::kSkipRescaleIfSame>(s, o, p.scale_log2);
        gemm_pv<Tr>(o, s, v_lane, v_key);
      }
    }
    if (!has_next) break;
    cur_valid = next_valid;
    cur_key = next_key;
  }

  store_output<Tr>(p, o, sm.m, sm.l, tc.b, tc.h, qt.row0, qt.rows, qt.valid_rows, warp, lane);
}

template <class Tr>
void launch_fwd(const FwdParams& p, void* stream) {
  launch_tiles(fwd_kernel<Tr>, p, Tr::kThreads, Tr::kSmemBytes, stream, "launching the sm80 attention kernel");
}

}  // namespace lvsa::cuda::sm80
