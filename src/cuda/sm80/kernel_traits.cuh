// Tile shapes and the shared-memory layout of the sm80 forward kernel.
//
// 4 warps own 32 query rows each (two m16 tiles), so every K/V fragment read from shared
// memory feeds two MMAs: at one m16 tile per warp the ldmatrix traffic alone would need
// ~90 B/clk/SM at the target rate, close to the 128 B/clk limit. 64 keys per tile keeps
// the score accumulators at 64 registers next to 128 for the output (D = 128).
#pragma once

#include <cstdint>

#include "../common/params.hpp"
#include "../common/row_loader.cuh"

namespace lvsa::cuda::sm80 {

// Shared-memory layout of a tile (a RowLoader policy): rows row_bytes apart, their 16-byte
// chunks permuted by chunk ^ (row & 7), so the 8 rows one ldmatrix phase reads fall into 8
// distinct bank groups instead of one.
struct SwizzledRows {
  __host__ __device__ static constexpr uint32_t offset(int /*rows*/, int row_bytes, int row, int chunk) {
    return uint32_t(row * row_bytes + ((chunk ^ (row & 7)) << 4));
  }
  __host__ __device__ static constexpr int row_pitch(int row_bytes) { return row_bytes; }
};

// Scheduling variants of the same algorithm, selectable per instantiation so that they can
// be measured against each other (bench/cuda, lvsa_cuda_variants):
//  kPrefetch   GEMM loops fully unrolled, each step's ldmatrix issued one step ahead
//  kSplitRows  softmax + PV per m16 tile, so one tile's exps overlap the other's MMAs
//  kSkipRescale  skip the output rescale when no row max of the warp changed
inline constexpr int kPrefetch = 1, kSplitRows = 2, kSkipRescale = 4;
// Shipped schedule, per head dim, as measured with bench/cuda/variants (docs/perf/cuda_sm80.md):
// the rescale skip pays at D = 128 (128 multiplies per tile) but not at D = 64.
template <int HeadDim>
inline constexpr int kDefaultFlags =
    HeadDim == 128 ? (kPrefetch | kSplitRows | kSkipRescale) : (kPrefetch | kSplitRows);

template <typename Elem, int HeadDim, int TileN = 64, int Flags = kDefaultFlags<HeadDim>>
struct Traits {
  static constexpr bool kPrefetchFrags = (Flags & kPrefetch) != 0;
  static constexpr bool kSplitMTiles = (Flags & kSplitRows) != 0;
  static constexpr bool kSkipRescaleIfSame = (Flags & kSkipRescale) != 0;
  using T = Elem;
  static constexpr int kD = HeadDim;
  static constexpr int kM = kQueryTileRows;  // query rows per CTA (the host's tiling)
  static constexpr int kN = TileN;
  static constexpr int kWarps = 4;
  static constexpr int kThreads = kWarps * 32;
  static constexpr int kWarpRows = kM / kWarps;  // 32: two m16 tiles
  static constexpr int kMTiles = kWarpRows / 16;
  static constexpr int kRowBytes = kD * 2;
  static constexpr int kStages = 2;  // K/V ring: tile j+1 streams in while tile j computes

  static constexpr int kQBytes = kM * kRowBytes;
  static constexpr int kKVTileBytes = kN * kRowBytes;
  static constexpr int kKOffset = kQBytes;
  static constexpr int kVOffset = kQBytes + kStages * kKVTileBytes;
  static constexpr int kSmemBytes = kQBytes + 2 * kStages * kKVTileBytes;
  // Q, K and V tiles are copied by all threads of the CTA.
  using Loader = RowLoader<T, kD, kThreads, SwizzledRows>;

  static_assert(kD == 64 || kD == 128, "head_dim 64 or 128");
  static_assert(kN % 16 == 0);
};

}  // namespace lvsa::cuda::sm80
