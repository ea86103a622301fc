// The two warpgroup GEMMs of one key tile (wgmma) and the conversion of probabilities into
// the A operand of the second, on tiles the producer copied in the SwizzledColumnBlocks layout.
//
// Register layout of an m64nN accumulator (per warp: 16 rows): thread (warp w, lane l)
// holds rows 16w + l/4 (h = 0) and 16w + l/4 + 8 (h = 1); element 4i + 2h + e is column
// 8i + 2(l%4) + e. Two adjacent n8 blocks of S are exactly the A-operand registers of one
// k16 step of P.V, so P never leaves registers.
//
// fp8 values: the A operand of an e4m3 k32 step wants, per row, columns 4(l%4) .. 4(l%4) + 3 of
// each 16 in one register, where the thread holds columns 2(l%4), 2(l%4) + 1, 8 + 2(l%4) and
// 9 + 2(l%4). Packed in that order, position 4t + c of a group of 16 multiplies V's row for key
// 8(c >> 1) + 2t + (c & 1): the pre-pass stores V^T's keys in exactly that order within each
// aligned group of 16 (prologue/quantize_values.cu), so P needs no shuffle.
#pragma once

#include <cstdint>

#include "../common/ptx.cuh"
#include "kernel_traits.cuh"
#include "ptx.cuh"
#include "wgmma.cuh"

namespace lvsa::cuda::sm90 {

// S[64 x kN] = Q[this warpgroup's 64 rows] . K_tile^T. Each instruction reads 32 bytes of every
// row (k16 of 16-bit elements, k32 of e4m3 or int8): four per 128-byte column block. With int8
// the accumulator registers hold int32 (int_scores_as_float).
template <class Tr>
__device__ __forceinline__ void gemm_qk(float (&s)[Tr::kN / 2], uint32_t q_addr, uint32_t k_addr) {
  using TS = typename Tr::TS;
  const uint64_t base = ptx::desc_base(16, 1024);
#pragma unroll
  for (int kk = 0; kk < Tr::kScoreRowBytes / 32; ++kk) {
    const uint64_t a = ptx::desc_at(base, q_addr + (kk / 4) * Tr::kM * 128 + (kk % 4) * 32);
    const uint64_t b = ptx::desc_at(base, k_addr + (kk / 4) * Tr::kN * 128 + (kk % 4) * 32);
    if (kk == 0) wgmma_ss<Tr::kN, 0>(s, a, b, TS{});
    else wgmma_ss<Tr::kN, 1>(s, a, b, TS{});
  }
}

// int8 scores accumulate in int32, |S| <= 127^2 * D < 2^22. One integer add to the bits of
// kIntScoreOffset = 1.5 * 2^23 turns each into the float kIntScoreOffset + S exactly (that float's
// mantissa holds 2^22 + S). The offset is the same in every score and row max, so the softmax
// cancels it (exp2 of differences); only the row max kept for lse carries it, which the consumer
// takes out before the epilogue.
inline constexpr float kIntScoreOffset = 12582912.0f;
template <int kN>
__device__ __forceinline__ void int_scores_as_float(float (&s)[kN / 2]) {
#pragma unroll
  for (int i = 0; i < kN / 2; ++i) s[i] = __int_as_float(__float_as_int(s[i]) + 0x4B400000);
}

// O[64 x kD] += P[64 x kN] . V_tile[kN x kD]
template <class Tr>
__device__ __forceinline__ void gemm_pv(float (&o)[Tr::kD / 2], const uint32_t (&pa)[Tr::kPVSteps][4],
                                        uint32_t v_addr) {
  using TV = typename Tr::TV;
  if constexpr (Tr::kSkipPV) return;
  // 16-bit V, MN-major: a k16 step is 16 key rows of 128 bytes further. fp8 V^T, K-major: a k32
  // step is 32 bytes along the rows of a 64-key block, two per block.
  const uint64_t base =
      Tr::kQuantValues ? ptx::desc_base(16, 512, ptx::kSwizzle64B) : ptx::desc_base(Tr::kN * 128, 1024);
#pragma unroll
  for (int kk = 0; kk < Tr::kPVSteps; ++kk) {
    const uint32_t step = Tr::kQuantValues ? (kk / 2) * Tr::kValueBlockBytes + (kk % 2) * 32 : kk * 16 * 128;
    const uint64_t b = ptx::desc_at(base, v_addr + step);
    if constexpr (Tr::kD == 128) wgmma_rs_m64n128<1>(o, pa[kk], b, TV{});
    else wgmma_rs_m64n64<1>(o, pa[kk], b, TV{});
  }
}

// P as the A operand of P.V: bf16/fp16(S), or e4m3(S) in the permuted column order (above).
template <class Tr>
__device__ __forceinline__ void to_operand(uint32_t (&pa)[Tr::kPVSteps][4], const float (&s)[Tr::kN / 2]) {
  using T = typename Tr::T;
  if constexpr (Tr::kQuantValues) {
    // Step kk covers n8 blocks 4kk .. 4kk + 3 (s[16kk .. 16kk + 15]); register r holds row half
    // r & 1 of blocks 4kk + 2(r >> 1) and the next one.
#pragma unroll
    for (int kk = 0; kk < Tr::kPVSteps; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) {
        const float* x = s + 16 * kk + 8 * (r >> 1) + 2 * (r & 1);
        pa[kk][r] = ptx::pack4_e4m3(x[0], x[1], x[4], x[5]);
      }
  } else {
#pragma unroll
    for (int kk = 0; kk < Tr::kPVSteps; ++kk)
#pragma unroll
      for (int r = 0; r < 4; ++r) pa[kk][r] = ptx::pack2<T>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
  }
}

}  // namespace lvsa::cuda::sm90
