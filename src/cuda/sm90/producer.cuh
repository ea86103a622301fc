// The producer warpgroup: cp.async copies of the Q tile and of every K/V tile of the walk,
// each completing on an mbarrier that the consumers wait on.
//
// cp.async rather than TMA: rows outside the current interval must read as exact zeros even
// when the memory there holds Inf/NaN (padded encoder tokens), and a key tile starts at an
// arbitrary token, so the zero-filling copy of the sm80 kernel is kept. Each of the 128
// threads owns one 16-byte chunk column and rows r0, r0 + kRowsPerPass, ...; all its rows
// share (row & 7), so its destination swizzle is a per-thread constant.
//
// Order: K0, then K(j), V(j-1) for j >= 1, then the last V -- the order the consumers need
// them (S of tile j is computed before P.V of tile j-1).
#pragma once

#include "../common/params.hpp"
#include "../common/ptx.cuh"
#include "../sm80/block_info.cuh"
#include "kernel_traits.cuh"
#include "ptx.cuh"

namespace lvsa::cuda::sm90 {

template <class Tr>
struct TileCopy {
  using T = typename Tr::T;
  const T* base;  // tensor + batch/head offset + this thread's chunk column
  int64_t row_stride;
  int r0;

  __device__ __forceinline__ void init(const void* tensor, int64_t off, int64_t row_stride_, int ptid) {
    const int chunk = ptid % Tr::kChunks;
    r0 = ptid / Tr::kChunks;
    base = static_cast<const T*>(tensor) + off + chunk * 8;
    row_stride = row_stride_;
  }

  // Rows [0, kRows) of the tile are tokens first + r, copied while r < nvalid, else zeroed.
  template <int kRows>
  __device__ __forceinline__ void load(uint32_t smem_tile, int first, int nvalid, int ptid) const {
    const int chunk = ptid % Tr::kChunks;
    const uint32_t dst = smem_tile + tile_offset(kRows, r0, chunk);
    const T* tile = base + int64_t(first) * row_stride;
    const T* src = tile + int64_t(r0) * row_stride;
    const int64_t step = int64_t(Tr::kRowsPerPass) * row_stride;
#pragma unroll
    for (int i = 0; i < kRows / Tr::kRowsPerPass; ++i) {
      const bool ok = r0 + i * Tr::kRowsPerPass < nvalid;
      lvsa::cuda::ptx::cp_async_16(dst + i * Tr::kRowsPerPass * 128, ok ? src : tile, ok);
      src += step;
    }
  }
};

struct Barriers {
  uint32_t q_full, k_full, k_empty, v_full, v_empty;  // stage s: + 8 * s
};

template <class Tr>
__device__ __forceinline__ void producer(const FwdParams& p, const sm80::QueryTile& qt, int b, int h, int hkv,
                                         uint32_t s_base, const Barriers& bar, int ptid) {
  TileCopy<Tr> cq, ck, cv;
  cq.init(p.q, int64_t(b) * p.q_stride[0] + int64_t(h) * p.q_stride[2], p.q_stride[1], ptid);
  ck.init(p.k, int64_t(b) * p.k_stride[0] + int64_t(hkv) * p.k_stride[2], p.k_stride[1], ptid);
  cv.init(p.v, int64_t(b) * p.v_stride[0] + int64_t(hkv) * p.v_stride[2], p.v_stride[1], ptid);

  // Q rows past valid_rows (padded encoder queries, rows past the frame) are zeros.
  cq.template load<Tr::kM>(s_base + Tr::kQOffset, qt.row0, qt.valid_rows, ptid);
  ptx::cp_async_arrive_noinc(bar.q_full);

  sm80::KeyWalk<Tr::kN> walk;
  walk.init(p, qt);
  int prev_cur = 0, prev_valid = 0;
  for (int j = 0; walk.valid(); ++j) {
    const int s = j & 1;
    const uint32_t parity = ((j >> 1) & 1) ^ 1;
    const int cur = walk.cur, valid = walk.count();
    ptx::mbar_wait(bar.k_empty + 8 * s, parity);
    ck.template load<Tr::kN>(s_base + Tr::kKOffset + s * Tr::kKVBytes, cur, valid, ptid);
    ptx::cp_async_arrive_noinc(bar.k_full + 8 * s);
    if (j > 0) {
      const int sp = s ^ 1;
      const uint32_t pp = (((j - 1) >> 1) & 1) ^ 1;
      ptx::mbar_wait(bar.v_empty + 8 * sp, pp);
      cv.template load<Tr::kN>(s_base + Tr::kVOffset + sp * Tr::kKVBytes, prev_cur, prev_valid, ptid);
      ptx::cp_async_arrive_noinc(bar.v_full + 8 * sp);
    }
    prev_cur = cur;
    prev_valid = valid;
    walk.advance();
    if (!walk.valid()) {  // the last tile's V
      ptx::mbar_wait(bar.v_empty + 8 * s, parity);
      cv.template load<Tr::kN>(s_base + Tr::kVOffset + s * Tr::kKVBytes, cur, valid, ptid);
      ptx::cp_async_arrive_noinc(bar.v_full + 8 * s);
    }
  }
  // Leave no copy in flight behind an exited thread.
  ptx::cp_async_wait_all();
}

}  // namespace lvsa::cuda::sm90
