// Tile shapes, roles and the shared-memory layout of the sm90 (Hopper) forward kernel.
//
// One CTA of three warpgroups per (batch, head, 128-row query tile), as in the sm80 kernel
// (same tiling, so the host fills FwdParams the same way):
//   warpgroup 0      producer: Q and each K/V tile into a ring of kStages stages (TMA for full
//                    tiles, zero-filling cp.async for the rest), completion on mbarriers
//   warpgroups 1, 2  consumers: 64 query rows each; S = Q K^T by wgmma from shared memory,
//                    online softmax in registers, O += P V by wgmma with P from registers
// The producer gives most of its registers to the consumers (setmaxnreg).
//
// Quantised scores (ScoreElem = __nv_fp8_e4m3 or int8_t, opt-in): Q and K arrive quantised to
// e4m3 or int8 with one descale factor per (batch, head) (FwdParams::q_descale, k_descale) and
// S = Q K^T runs at the 8-bit tensor rate; V, P and O keep the 16-bit Elem. A row of D 8-bit
// elements is D bytes, so at D = 128 a Q or K tile has the byte layout of a 16-bit D = 64 tile:
// one 128-byte column block. int8 scores accumulate in int32 (mainloop.cuh: int_scores_as_float).
//
// fp8 values (ValueElem = __nv_fp8_e4m3, opt-in, with quantised scores; int8 ones instantiated):
// P . V runs at the 8-bit rate too. 8-bit wgmma takes only K-major B operands, so V arrives
// transposed, [B, Hkv, D, keys], in e4m3 with one descale per (batch, head) (FwdParams::v_descale),
// as the value pre-pass (prologue/quantize_values.cu) writes it: keys permuted within aligned
// groups of 16 so that the probabilities need no shuffle to become the A operand (mainloop.cuh,
// to_operand), padding zero. Key tiles therefore start at multiples of 16 (KeyWalk's alignment;
// the keys before an interval are masked like those after its end), every V tile arrives by TMA,
// and P is e4m3 scaled by 256 through the row max (softmax.cuh), which the row sum carries alike.
#pragma once

#include <cuda_fp8.h>

#include <cstdint>
#include <type_traits>

#include "../common/params.hpp"
#include "../common/block_info.cuh"
#include "../common/row_loader.cuh"

namespace lvsa::cuda::sm90 {

// Shared-memory layout of a tile (a RowLoader policy; see ptx.cuh, descriptors): column
// blocks of 64 elements, each `rows` rows of 128 bytes, 16-byte chunks XOR-swizzled by
// (row & 7) within a block.
struct SwizzledColumnBlocks {
  __host__ __device__ static constexpr uint32_t offset(int rows, int /*row_bytes*/, int row, int chunk) {
    return uint32_t((chunk >> 3) * rows * 128 + row * 128 + (((chunk & 7) ^ (row & 7)) << 4));
  }
  __host__ __device__ static constexpr int row_pitch(int /*row_bytes*/) { return 128; }
};

// Schedule variants, selectable per instantiation so that bench/cuda (lvsa_cuda_variants) can
// time them against each other:
//  kPingPong     the two consumer warpgroups take turns issuing their wgmmas (named barriers),
//                so one's softmax runs while the other's matrix products do (FA3's ping-pong)
//  kSkipRescale  skip O *= alpha when no row max of the warp moved
//  kTmaKV        full K/V tiles by TMA from the producer's thread 0 (tma.cuh), partial ones by
//                cp.async
//  kThreeStages  a 3-stage K/V ring instead of 2 (at D = 128 it fits up to 128-key tiles)
//  kSpanTiles    an interval's last key tile continues into the next interval (KeyWalk's kSpan,
//                16-bit scores and values: their tiles may start at any key)
//  kNoFramePairs no frame-pair masks (block_info.cuh): for launches whose query tiles hold rows of
//                one frame each (FwdParams::frame_pairs = 0: dense plans, short frames), where
//                that code still cost 1.5-2 % (H200, docs/perf/cuda_sm90.md v10)
// and four that compute wrong results, to bound what a stage costs by leaving it out:
//  kDiagNoCopy   the producer copies only the first round of K/V tiles, then only signals
//  kDiagNoExp    P = the scaled score, no exp2
//  kDiagOneTile  every TMA copy fetches the same keys [0, kN), so L2 serves one hot tile: the
//                same shared-memory writes and barrier traffic, (almost) none of the L2 misses
//  kDiagNoPV     no P.V wgmmas (O stays zero): what the second matrix product costs
// kNoFramePairs's and kSpanTiles's values are spelled in src/cuda/instantiate.cmake too (the
// table's frame_pairs and spanning columns).
inline constexpr int kPingPong = 1, kSkipRescale = 2, kDiagNoCopy = 64, kDiagNoExp = 128, kTmaKV = 256,
                     kThreeStages = 1024, kDiagOneTile = 2048, kDiagNoPV = 8192, kNoFramePairs = 16384,
                     kSpanTiles = 32768;
// Shipped schedule per head dim, as measured with lvsa_cuda_variants (docs/perf/cuda_sm90.md):
// ping-pong, TMA for full K/V tiles, no rescale skip (within noise with 176-key tiles), 176-key
// tiles for both head dims (fewest per-tile overheads that still fit 240 registers without
// spills), and at D = 64 a 3-stage ring (+1.5-4 %; at D = 128 only 128-key tiles leave room for
// one, and they lose more than it gains). With quantised scores (1-byte Q and K) a 3-stage ring
// of 176-key tiles fits at D = 128 as well. 16-bit D = 64 kernels span intervals with their key
// tiles (v11: +1-6 % at 192 keys; at D = 128 within noise either way, so those keep one segment).
template <int HeadDim, int ScoreBytes = 2>
inline constexpr int kDefaultFlags = kPingPong | kTmaKV | (HeadDim == 64 || ScoreBytes == 1 ? kThreeStages : 0) |
                                     (HeadDim == 64 && ScoreBytes == 2 ? kSpanTiles : 0);
template <int HeadDim>
inline constexpr int kDefaultTileN = 176;

template <typename Elem, int HeadDim, int TileN = kDefaultTileN<HeadDim>, int Flags = kDefaultFlags<HeadDim>,
          typename ScoreElem = Elem, typename ValueElem = Elem>
struct Traits {
  static constexpr bool kPingPongWGs = (Flags & kPingPong) != 0;
  static constexpr bool kSkipRescaleIfSame = (Flags & kSkipRescale) != 0;
  static constexpr bool kSkipCopies = (Flags & kDiagNoCopy) != 0;
  static constexpr bool kSkipExp = (Flags & kDiagNoExp) != 0;
  static constexpr bool kTmaFullTiles = (Flags & kTmaKV) != 0;
  static constexpr bool kOneHotTile = (Flags & kDiagOneTile) != 0;
  static constexpr bool kSkipPV = (Flags & kDiagNoPV) != 0;
  static constexpr bool kFramePairs = (Flags & kNoFramePairs) == 0;
  static constexpr bool kSpan = (Flags & kSpanTiles) != 0;
  using T = Elem;        // O (and V, P unless the values are fp8)
  using TS = ScoreElem;  // Q, K: Elem, or e4m3 / int8 (quantised scores)
  using TV = ValueElem;  // V, P: Elem, or e4m3 (fp8 values)
  static constexpr bool kQuantScores = sizeof(TS) == 1;
  static constexpr bool kIntScores = std::is_same_v<TS, int8_t>;
  static constexpr bool kQuantValues = sizeof(TV) == 1;
  // Key tiles start at multiples of this (fp8 values: the pre-pass permutes keys in groups of 16).
  static constexpr int kKeyAlign = kQuantValues ? 16 : 1;
  using Walk = KeyWalk<TileN, kKeyAlign, kSpan>;
  // log2 of P's scale: fp8 probabilities as 256 * p keep e4m3's normal range down to p = 2^-14.
  static constexpr int kProbShiftLog2 = kQuantValues ? 8 : 0;
  static constexpr int kD = HeadDim;
  static constexpr int kM = kQueryTileRows;  // query rows per CTA (the host's tiling)
  static constexpr int kN = TileN;  // keys per K/V tile
  // k steps of P.V per key tile: each wgmma reads 32 bytes of a row (16 keys, or 32 in e4m3), so
  // P is kPVSteps x 4 registers of the A operand.
  static constexpr int kPVSteps = kN * int(sizeof(TV)) / 32;
  static constexpr int kConsumerWGs = 2;
  static constexpr int kWGRows = kM / kConsumerWGs;  // 64: one wgmma M
  static constexpr int kThreads = 128 * (1 + kConsumerWGs);
  static constexpr int kStages = (Flags & kThreeStages) != 0 ? 3 : 2;
  // Key tile j lives in stage j % kStages, in that stage's round j / kStages.
  __device__ static constexpr int stage(int j) { return j % kStages; }
  __device__ static constexpr uint32_t round_parity(int j) { return uint32_t(j / kStages) & 1u; }
  // Registers per thread after reallocation: 128 * (kProducerRegs + 2 * kConsumerRegs) must not
  // exceed what the launch gave the CTA, 168 to each of its 384 threads (64,512, not the 64K
  // register file): setmaxnreg.inc waits for registers the others freed, forever if too few.
  static constexpr int kProducerRegs = 40;
  static constexpr int kConsumerRegs = 232;
  static_assert(128 * (kProducerRegs + kConsumerWGs * kConsumerRegs) <= (65536 / kThreads) / 8 * 8 * kThreads,
                "the reallocated registers must fit the launch's");

  // Tiles are column blocks of 128 bytes per row; a tile of R rows of B bytes is B / 128 blocks
  // of R * 128 bytes.
  static constexpr int kScoreRowBytes = kD * int(sizeof(TS));  // a row of Q or K
  static constexpr int kQBytes = kM * kScoreRowBytes;
  static constexpr int kKBytes = kN * kScoreRowBytes;  // one stage of K
  // fp8 values: a V stage is kValueBlocks blocks of V^T, each kD rows of 64 bytes (64 keys, 64-byte
  // swizzle, ptx.cuh); a width that is not a multiple of 64 (160) loads its last block whole and
  // reads half of it.
  static constexpr int kValueBlockKeys = 64;
  static constexpr int kValueBlockBytes = kValueBlockKeys * kD;
  static constexpr int kValueBlocks = (kN + kValueBlockKeys - 1) / kValueBlockKeys;
  static constexpr int kVBytes = kQuantValues ? kValueBlocks * kValueBlockBytes : kN * kD * 2;  // one stage of V
  static constexpr int kQOffset = 0;
  static constexpr int kKOffset = kQBytes;
  static constexpr int kVOffset = kKOffset + kStages * kKBytes;
  static constexpr int kBarOffset = kVOffset + kStages * kVBytes;
  // q_full, k_full[kStages], k_empty[kStages], v_full[kStages], v_empty[kStages]
  static constexpr int kNumBars = 1 + 4 * kStages;
  // + 1024 so the kernel can round the dynamic shared-memory base up to a swizzle atom.
  static constexpr int kSmemBytes = kBarOffset + 8 * kNumBars + 1024;
  // Q, K and V tiles are copied by the producer warpgroup (fp8 values only by TMA).
  using ScoreLoader = RowLoader<TS, kD, 128, SwizzledColumnBlocks>;
  using ValueLoader = RowLoader<T, kD, 128, SwizzledColumnBlocks>;

  static_assert(kD == 64 || kD == 128, "head_dim 64 or 128");
  static_assert(sizeof(T) == 2 && (sizeof(TS) == 2 || sizeof(TS) == 1), "16-bit output, 16-bit or 8-bit scores");
  static_assert(!kQuantValues || (std::is_same_v<TV, __nv_fp8_e4m3> && kQuantScores && kN % 32 == 0 &&
                                  (Flags & kTmaKV) != 0),
                "fp8 values: e4m3, with quantised scores, whole k32 steps of P.V, all V by TMA");
  static_assert(kScoreRowBytes % 128 == 0, "Q and K rows of whole 128-byte column blocks");
  static_assert(kQBytes % 1024 == 0 && kKBytes % 1024 == 0 && kVBytes % 1024 == 0);
  static_assert(!kSpan || !kQuantValues, "spanning tiles: values that are not key-aligned");
  static_assert(kSmemBytes <= 227 * 1024, "dynamic shared memory of one Hopper CTA");
};

// Shared-memory addresses of the ring's mbarriers (protocol: kernel.cuh); stage s: + 8 * s.
struct Barriers {
  uint32_t q_full, k_full, k_empty, v_full, v_empty;
};

}  // namespace lvsa::cuda::sm90
