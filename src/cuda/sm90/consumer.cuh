// A consumer warpgroup: 64 query rows of the CTA's tile against every K/V tile of the walk.
//
// Per key tile j (FlashAttention-3's intra-warpgroup overlap):
//   issue S = Q K_j^T (wgmma, Q and K from shared memory)
//   issue O += P_{j-1} V_{j-1} (wgmma, P from registers)
//   wait for S; mask the interval tail; online softmax of S (overlaps the P.V wgmmas)
//   wait for P.V; rescale O; P_j = bf16/fp16(S)
// so the exp2 work of one tile runs while the tensor cores multiply the previous one, and
// the other consumer warpgroup fills the remaining gaps.
//
// Register layout of an m64nNk16 accumulator (per warp: 16 rows): thread (warp w, lane l)
// holds rows 16w + l/4 (h = 0) and 16w + l/4 + 8 (h = 1); element 4i + 2h + e is column
// 8i + 2(l%4) + e. Two adjacent n8 blocks of S are exactly the A-operand registers of one
// k16 step of P.V, so P never leaves registers.
#pragma once

#include <math_constants.h>

#include "../common/params.hpp"
#include "../common/ptx.cuh"
#include "../sm80/block_info.cuh"
#include "kernel_traits.cuh"
#include "producer.cuh"
#include "ptx.cuh"
#include "wgmma.cuh"

namespace lvsa::cuda::sm90 {

// S[64 x kN] = Q[this warpgroup's 64 rows] . K_tile^T
template <class Tr>
__device__ __forceinline__ void gemm_qk(float (&s)[Tr::kN / 2], uint32_t q_addr, uint32_t k_addr) {
  using T = typename Tr::T;
  const uint64_t base = ptx::desc_base(16, 1024);
#pragma unroll
  for (int kk = 0; kk < Tr::kD / 16; ++kk) {
    const uint64_t a = ptx::desc_at(base, q_addr + (kk / 4) * Tr::kM * 128 + (kk % 4) * 32);
    const uint64_t b = ptx::desc_at(base, k_addr + (kk / 4) * Tr::kN * 128 + (kk % 4) * 32);
#define LVSA_SM90_QK(N)                                  \
    if constexpr (Tr::kN == N) {                         \
      if (kk == 0) wgmma_ss_m64n##N##k16<0>(s, a, b, T{}); \
      else wgmma_ss_m64n##N##k16<1>(s, a, b, T{});         \
    }
    LVSA_SM90_QK(64)
    LVSA_SM90_QK(112)
    LVSA_SM90_QK(128)
    LVSA_SM90_QK(144)
    LVSA_SM90_QK(160)
    LVSA_SM90_QK(176)
    LVSA_SM90_QK(192)
#undef LVSA_SM90_QK
  }
}

// O[64 x kD] += P[64 x kN] . V_tile[kN x kD]
template <class Tr>
__device__ __forceinline__ void gemm_pv(float (&o)[Tr::kD / 2], const uint32_t (&pa)[Tr::kN / 16][4],
                                        uint32_t v_addr) {
  using T = typename Tr::T;
  const uint64_t base = ptx::desc_base(Tr::kN * 128, 1024);
#pragma unroll
  for (int kk = 0; kk < Tr::kN / 16; ++kk) {
    const uint64_t b = ptx::desc_at(base, v_addr + kk * 16 * 128);
    if constexpr (Tr::kD == 128) wgmma_rs_m64n128k16<1>(o, pa[kk], b, T{});
    else wgmma_rs_m64n64k16<1>(o, pa[kk], b, T{});
  }
}

template <int kN>
__device__ __forceinline__ void mask_tail(float (&s)[kN / 2], int nvalid, int lane) {
  const int col0 = 2 * (lane & 3);
#pragma unroll
  for (int i = 0; i < kN / 8; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e)
      if (i * 8 + col0 + (e & 1) >= nvalid) s[4 * i + e] = -CUDART_INF_F;
}

// Scores -> probabilities in place (exp2 domain); returns the rescale factors of O.
template <int kN>
__device__ __forceinline__ void softmax(float (&s)[kN / 2], float (&m)[2], float (&l)[2], float (&alpha)[2],
                                        float scale_log2) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float mx = -CUDART_INF_F;
#pragma unroll
    for (int i = 0; i < kN / 8; ++i) mx = fmaxf(mx, fmaxf(s[4 * i + 2 * h], s[4 * i + 2 * h + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m[h], mx * scale_log2);  // column 0 is always valid: finite
    alpha[h] = lvsa::cuda::ptx::exp2_approx(m[h] - m_new);  // first tile: exp2(-inf) = 0
    m[h] = m_new;
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kN / 8; ++i)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float pr = lvsa::cuda::ptx::exp2_approx(fmaf(s[4 * i + 2 * h + e], scale_log2, -m_new));
        s[4 * i + 2 * h + e] = pr;
        sum += pr;
      }
    l[h] = l[h] * alpha[h] + sum;
  }
}

template <class Tr>
__device__ __forceinline__ void to_operand(uint32_t (&pa)[Tr::kN / 16][4], const float (&s)[Tr::kN / 2]) {
  using T = typename Tr::T;
#pragma unroll
  for (int kk = 0; kk < Tr::kN / 16; ++kk)
#pragma unroll
    for (int r = 0; r < 4; ++r) pa[kk][r] = lvsa::cuda::ptx::pack2<T>(s[8 * kk + 2 * r], s[8 * kk + 2 * r + 1]);
}

// Normalises and stores this thread's rows; rows past valid_rows are zeros with lse -inf.
template <class Tr>
__device__ __forceinline__ void store_rows(const FwdParams& p, const float (&o)[Tr::kD / 2], const float (&m)[2],
                                           const float (&l)[2], int b, int h, const sm80::QueryTile& qt,
                                           int valid_rows, int wg, int ctid) {
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
    const float inv = live ? 1.0f / sum : 0.0f;
    T* row = out + int64_t(qt.row0 + r) * p.o_stride[1];
#pragma unroll
    for (int i = 0; i < Tr::kD / 8; ++i) {
      const uint32_t v = live ? lvsa::cuda::ptx::pack2<T>(o[4 * i + 2 * hh] * inv, o[4 * i + 2 * hh + 1] * inv) : 0u;
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
__device__ __forceinline__ void store_empty(const FwdParams& p, int b, int h, const sm80::QueryTile& qt, int wg,
                                            int ctid) {
  float o[Tr::kD / 2];
#pragma unroll
  for (int i = 0; i < Tr::kD / 2; ++i) o[i] = 0.0f;
  const float m[2] = {0.0f, 0.0f}, l[2] = {0.0f, 0.0f};
  store_rows<Tr>(p, o, m, l, b, h, qt, 0, wg, ctid);
}

// Warp-level release of a stage: after this warp's wgmma reads of it have completed.
__device__ __forceinline__ void release(uint32_t bar, int lane) {
  __syncwarp();
  if (lane == 0) ptx::mbar_arrive(bar);
}

// Ping-pong turns (Tr::kPingPongWGs, both consumer warpgroups active): warpgroup w issues a
// batch of wgmmas only after the other one issued its previous batch (named barrier 1 + w,
// 256 threads: w's 128 wait, the other's 128 arrive). Both walk the same tiles, so both issue
// the same number of batches; warpgroup 0 goes first (warpgroup 1 arrives once up front and
// skips its arrival after its last batch, leaving no barrier half-arrived at exit).
struct Turns {
  bool on;
  int wg;
  __device__ __forceinline__ void begin() const {
    if (on) ptx::named_sync(1 + wg, 256);
  }
  __device__ __forceinline__ void end(bool last) const {
    if (on && !(last && wg == 1)) ptx::named_arrive(2 - wg, 256);
  }
};

template <class Tr>
__device__ __forceinline__ void consumer(const FwdParams& p, const sm80::QueryTile& qt, int b, int h,
                                         uint32_t s_base, const Barriers& bar, int wg, int ctid,
                                         int active_wgs) {
  constexpr int kN = Tr::kN, kD = Tr::kD;
  const int lane = ctid & 31;
  if (wg * Tr::kWGRows >= qt.valid_rows) {  // no valid rows here (short or padded tile)
    store_empty<Tr>(p, b, h, qt, wg, ctid);
    return;
  }
  const Turns turns{Tr::kPingPongWGs && active_wgs == 2, wg};
  if (turns.on && wg == 1) ptx::named_arrive(1, 256);

  sm80::KeyWalk<kN> walk;
  walk.init(p, qt);

  float o[kD / 2], s[kN / 2], m[2], l[2], alpha[2];
  uint32_t pa[kN / 16][4];
#pragma unroll
  for (int i = 0; i < kD / 2; ++i) o[i] = 0.0f;
  m[0] = m[1] = -CUDART_INF_F;
  l[0] = l[1] = 0.0f;

  const uint32_t q_addr = s_base + Tr::kQOffset + wg * Tr::kWGRows * 128;
  const uint32_t k_addr = s_base + Tr::kKOffset, v_addr = s_base + Tr::kVOffset;

  ptx::mbar_wait(bar.q_full, 0);
  // Tile 0: S alone.
  {
    const int nvalid = walk.count();
    ptx::mbar_wait(bar.k_full, 0);
    ptx::fence_proxy_async();
    turns.begin();
    ptx::wgmma_fence();
    gemm_qk<Tr>(s, q_addr, k_addr);
    ptx::wgmma_commit();
    turns.end(false);
    ptx::wgmma_wait<0>();
    ptx::fence_regs(s);
    release(bar.k_empty, lane);
    if (nvalid < kN) mask_tail<kN>(s, nvalid, lane);
    softmax<kN>(s, m, l, alpha, p.scale_log2);
    to_operand<Tr>(pa, s);
    walk.advance();
  }
  int j = 1;
  for (; walk.valid(); ++j) {
    const int st = j & 1, sp = st ^ 1;
    const uint32_t par = (j >> 1) & 1, par_prev = ((j - 1) >> 1) & 1;
    const int nvalid = walk.count();
    // Both waits before the first wgmma: a wait loop between the two batches makes ptxas
    // inject a second warpgroup fence (C7519).
    ptx::mbar_wait(bar.k_full + 8 * st, par);
    ptx::mbar_wait(bar.v_full + 8 * sp, par_prev);
    ptx::fence_proxy_async();
    ptx::fence_regs(o);
    ptx::fence_regs(pa);
    turns.begin();
    ptx::wgmma_fence();
    gemm_qk<Tr>(s, q_addr, k_addr + st * Tr::kKVBytes);
    ptx::wgmma_commit();
    gemm_pv<Tr>(o, pa, v_addr + sp * Tr::kKVBytes);
    ptx::wgmma_commit();
    turns.end(false);
    ptx::wgmma_wait<1>();  // S of tile j is in
    ptx::fence_regs(s);
    release(bar.k_empty + 8 * st, lane);
    if (nvalid < kN) mask_tail<kN>(s, nvalid, lane);
    softmax<kN>(s, m, l, alpha, p.scale_log2);
    ptx::wgmma_wait<0>();  // P.V of tile j-1 is done: O and P may change
    ptx::fence_regs(o);
    ptx::fence_regs(s);
    ptx::fence_regs(pa);
    release(bar.v_empty + 8 * sp, lane);
    if (!Tr::kSkipRescaleIfSame || __any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
      for (int i = 0; i < kD / 8; ++i) {
        o[4 * i + 0] *= alpha[0];
        o[4 * i + 1] *= alpha[0];
        o[4 * i + 2] *= alpha[1];
        o[4 * i + 3] *= alpha[1];
      }
    }
    to_operand<Tr>(pa, s);
    walk.advance();
  }
  // P.V of the last tile.
  {
    const int sp = (j - 1) & 1;
    ptx::mbar_wait(bar.v_full + 8 * sp, ((j - 1) >> 1) & 1);
    ptx::fence_proxy_async();
    ptx::fence_regs(o);
    ptx::fence_regs(pa);
    turns.begin();
    ptx::wgmma_fence();
    gemm_pv<Tr>(o, pa, v_addr + sp * Tr::kKVBytes);
    ptx::wgmma_commit();
    turns.end(true);
    ptx::wgmma_wait<0>();
    ptx::fence_regs(o);
  }
  store_rows<Tr>(p, o, m, l, b, h, qt, qt.valid_rows, wg, ctid);
}

}  // namespace lvsa::cuda::sm90
