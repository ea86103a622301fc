// The zero-filling global->shared copy of a Q, K or V tile, shared by the sm80 kernel and
// the sm90 producer; each family passes the shared-memory layout its matrix instructions
// read as the Layout policy.
//
// cp.async of 16-byte chunks by kThreads threads: each thread owns one chunk column and rows
// r0, r0 + kRowsPerPass, ... of the tile. Rows outside the current interval are zero-filled
// instead of read, so masked keys contribute exact zeros even if the memory there holds
// Inf/NaN (padded encoder tokens). cp.async rather than TMA (sm90): a key tile starts at an
// arbitrary token and its tail must read as zeros.
//
// Layout policy (static functions): offset(rows, row_bytes, row, chunk) is the byte offset
// of a chunk in a tile of `rows` rows of `row_bytes` bytes; row_pitch(row_bytes) is the bytes
// per row between two rows of one chunk column that are a multiple of 8 rows apart. Both
// layouts XOR-swizzle chunks by (row & 7); a thread's rows all share it (kRowsPerPass % 8 ==
// 0), so its destination swizzle is a per-thread constant and every further row a
// compile-time step. The tile shape is passed as arguments, not template parameters, so that
// it is folded where the copy is inlined, as in the two copies this one replaced: each family
// compiles to the same PTX as before.
#pragma once

#include <cstdint>

#include "ptx.cuh"

namespace lvsa::cuda {

template <typename T, int kHeadDim, int kThreads, class Layout>
struct RowLoader {
  using Elem = T;
  static_assert(sizeof(T) == 2 || sizeof(T) == 1, "16-bit or 8-bit elements");
  static constexpr int kChunkElems = 16 / int(sizeof(T));  // elements per 16-byte chunk
  static constexpr int kRowBytes = kHeadDim * int(sizeof(T));
  static constexpr int kChunks = kRowBytes / 16;  // 16-byte chunks per row
  static constexpr int kRowsPerPass = kThreads / kChunks;  // rows one pass of the threads covers
  static constexpr int kRowPitch = Layout::row_pitch(kRowBytes);
  static_assert(kRowsPerPass % 8 == 0, "a thread's rows must share (row & 7) for the swizzle");

  const T* base;  // tensor + batch/head offset + this thread's chunk column
  int64_t row_stride;

  __device__ __forceinline__ void init(const void* tensor, int64_t batch_head_offset, int64_t row_stride_,
                                       int tid) {
    base = static_cast<const T*>(tensor) + batch_head_offset + (tid % kChunks) * kChunkElems;
    row_stride = row_stride_;
  }

  // Rows [0, kRows) of the tile are tokens first + r, copied while r < nvalid, else zeroed.
  // Zeroed rows keep a valid source address (row `first`) although zero-fill reads none of it.
  template <int kRows>
  __device__ __forceinline__ void load(uint32_t smem_tile, int first, int nvalid, int tid) const {
    static_assert(kRows % kRowsPerPass == 0);
    const int r0 = tid / kChunks;
    const uint32_t dst = smem_tile + Layout::offset(kRows, kRowBytes, r0, tid % kChunks);
    const T* tile = base + int64_t(first) * row_stride;
    const T* src = tile + int64_t(r0) * row_stride;
    const int64_t step = int64_t(kRowsPerPass) * row_stride;
#pragma unroll
    for (int i = 0; i < kRows / kRowsPerPass; ++i) {
      const bool ok = r0 + i * kRowsPerPass < nvalid;
      ptx::cp_async_16(dst + i * kRowsPerPass * kRowPitch, ok ? src : tile, ok);
      src += step;
    }
  }

  // A spanning key tile (KeyWalk<..., kSpan>): rows [0, nfirst) are tokens first + r, rows
  // [nfirst, nvalid) tokens second + r - nfirst, the rest zeroed.
  template <int kRows>
  __device__ __forceinline__ void load(uint32_t smem_tile, int first, int nfirst, int second, int nvalid,
                                       int tid) const {
    static_assert(kRows % kRowsPerPass == 0);
    const int r0 = tid / kChunks;
    const uint32_t dst = smem_tile + Layout::offset(kRows, kRowBytes, r0, tid % kChunks);
    const T* tile = base + int64_t(first) * row_stride;
#pragma unroll
    for (int i = 0; i < kRows / kRowsPerPass; ++i) {
      const int r = r0 + i * kRowsPerPass;
      const T* src = base + int64_t(r < nfirst ? first + r : second + r - nfirst) * row_stride;
      const bool ok = r < nvalid;
      ptx::cp_async_16(dst + i * kRowsPerPass * kRowPitch, ok ? src : tile, ok);
    }
  }
};

}  // namespace lvsa::cuda
