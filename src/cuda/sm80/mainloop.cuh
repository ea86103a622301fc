// The two warp-level GEMMs of one key tile, on tiles that Tr::Loader (common/row_loader.cuh)
// copied into shared memory in the SwizzledRows layout.
//
// Fragment addressing: every ldmatrix row this thread supplies has (row & 7) = lane & 7,
// so the swizzled chunk (2j + hi) ^ (lane & 7) = 2j ^ key with key = hi ^ (lane & 7) fixed
// per thread; every other term of the address is a compile-time immediate.
#pragma once

#include "../common/ptx.cuh"
#include "kernel_traits.cuh"

namespace lvsa::cuda::sm80 {

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
  constexpr int kMT = Tr::kMTiles, NP = Tr::kN / 16, KD = Tr::kD / 16;
#pragma unroll
  for (int mi = 0; mi < kMT; ++mi)
#pragma unroll
    for (int nt = 0; nt < Tr::kN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) s[mi][nt][e] = 0.0f;
  if constexpr (Tr::kPrefetchFrags) {
    // Flattened (kk, np) steps; fragments of step t+1 are requested before the MMAs of t.
    uint32_t a[2][kMT][4], b[2][4];
#pragma unroll
    for (int mi = 0; mi < kMT; ++mi)
      ptx::ldmatrix_x4(a[0][mi], q_lane + mi * 16 * Tr::kRowBytes + chunk_pair(q_key, 0));
    ptx::ldmatrix_x4(b[0], k_lane + chunk_pair(k_key, 0));
#pragma unroll
    for (int t = 0; t < KD * NP; ++t) {
      const int kk = t / NP, np = t % NP;
      if (t + 1 < KD * NP) {
        const int kk1 = (t + 1) / NP, np1 = (t + 1) % NP;
        if (np1 == 0)
#pragma unroll
          for (int mi = 0; mi < kMT; ++mi)
            ptx::ldmatrix_x4(a[kk1 & 1][mi], q_lane + mi * 16 * Tr::kRowBytes + chunk_pair(q_key, kk1));
        ptx::ldmatrix_x4(b[(t + 1) & 1], k_lane + np1 * 16 * Tr::kRowBytes + chunk_pair(k_key, kk1));
      }
#pragma unroll
      for (int mi = 0; mi < kMT; ++mi) {
        ptx::mma_16816<T>(s[mi][2 * np], a[kk & 1][mi], b[t & 1][0], b[t & 1][1]);
        ptx::mma_16816<T>(s[mi][2 * np + 1], a[kk & 1][mi], b[t & 1][2], b[t & 1][3]);
      }
    }
  } else {
    // One k16 step's fragments in flight at a time: the compiler cannot hoist every
    // ldmatrix of the tile next to 192 accumulator registers.
#pragma unroll 1
    for (int kk = 0; kk < KD; ++kk) {
      uint32_t a[kMT][4];
#pragma unroll
      for (int mi = 0; mi < kMT; ++mi)
        ptx::ldmatrix_x4(a[mi], q_lane + mi * 16 * Tr::kRowBytes + chunk_pair(q_key, kk));
#pragma unroll
      for (int np = 0; np < NP; ++np) {
        uint32_t b[4];
        ptx::ldmatrix_x4(b, k_lane + np * 16 * Tr::kRowBytes + chunk_pair(k_key, kk));
#pragma unroll
        for (int mi = 0; mi < kMT; ++mi) {
          ptx::mma_16816<T>(s[mi][2 * np], a[mi], b[0], b[1]);
          ptx::mma_16816<T>(s[mi][2 * np + 1], a[mi], b[2], b[3]);
        }
      }
    }
  }
}

// P (fp32 probabilities in accumulator layout) -> A operand of k16 step kk: the accumulator
// layout of two adjacent n8 tiles is the A-operand layout of one k16 step.
template <class Tr, int kRows>
__device__ __forceinline__ void p_fragment(uint32_t (&a)[4], const float (&p)[kRows][Tr::kN / 8][4], int mi, int kk) {
  using T = typename Tr::T;
  a[0] = ptx::pack2<T>(p[mi][2 * kk][0], p[mi][2 * kk][1]);
  a[1] = ptx::pack2<T>(p[mi][2 * kk][2], p[mi][2 * kk][3]);
  a[2] = ptx::pack2<T>(p[mi][2 * kk + 1][0], p[mi][2 * kk + 1][1]);
  a[3] = ptx::pack2<T>(p[mi][2 * kk + 1][2], p[mi][2 * kk + 1][3]);
}

// O[rows mi in [kMi0, kMi1)] += P . V[tile], P taken straight from the score registers.
template <class Tr, int kMi0 = 0, int kMi1 = Tr::kMTiles>
__device__ __forceinline__ void gemm_pv(float (&o)[Tr::kMTiles][Tr::kD / 8][4],
                                        const float (&p)[Tr::kMTiles][Tr::kN / 8][4],
                                        uint32_t v_lane, uint32_t v_key) {
  using T = typename Tr::T;
  constexpr int KN = Tr::kN / 16, ND = Tr::kD / 16;
  if constexpr (Tr::kPrefetchFrags) {
    uint32_t b[2][4];
    ptx::ldmatrix_x4_trans(b[0], v_lane + chunk_pair(v_key, 0));
    uint32_t a[Tr::kMTiles][4];
#pragma unroll
    for (int t = 0; t < KN * ND; ++t) {
      const int kk = t / ND, nd = t % ND;
      if (nd == 0)
#pragma unroll
        for (int mi = kMi0; mi < kMi1; ++mi) p_fragment<Tr>(a[mi], p, mi, kk);
      if (t + 1 < KN * ND) {
        const int kk1 = (t + 1) / ND, nd1 = (t + 1) % ND;
        ptx::ldmatrix_x4_trans(b[(t + 1) & 1], v_lane + kk1 * 16 * Tr::kRowBytes + chunk_pair(v_key, nd1));
      }
#pragma unroll
      for (int mi = kMi0; mi < kMi1; ++mi) {
        ptx::mma_16816<T>(o[mi][2 * nd], a[mi], b[t & 1][0], b[t & 1][1]);
        ptx::mma_16816<T>(o[mi][2 * nd + 1], a[mi], b[t & 1][2], b[t & 1][3]);
      }
    }
  } else {
#pragma unroll
    for (int kk = 0; kk < KN; ++kk) {
      uint32_t a[Tr::kMTiles][4];
#pragma unroll
      for (int mi = kMi0; mi < kMi1; ++mi) p_fragment<Tr>(a[mi], p, mi, kk);
#pragma unroll
      for (int nd = 0; nd < ND; ++nd) {
        uint32_t b[4];
        ptx::ldmatrix_x4_trans(b, v_lane + kk * 16 * Tr::kRowBytes + chunk_pair(v_key, nd));
#pragma unroll
        for (int mi = kMi0; mi < kMi1; ++mi) {
          ptx::mma_16816<T>(o[mi][2 * nd], a[mi], b[0], b[1]);
          ptx::mma_16816<T>(o[mi][2 * nd + 1], a[mi], b[2], b[3]);
        }
      }
    }
  }
}

}  // namespace lvsa::cuda::sm80
