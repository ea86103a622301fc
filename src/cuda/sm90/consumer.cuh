// A consumer warpgroup: 64 query rows of the CTA's tile against every K/V tile of the walk.
//
// Per key tile j (FlashAttention-3's intra-warpgroup overlap):
//   issue S = Q K_j^T (wgmma, Q and K from shared memory)
//   issue O += P_{j-1} V_{j-1} (wgmma, P from registers)
//   wait for S; mask (mask.cuh); online softmax of S (overlaps the P.V wgmmas)
//   wait for P.V; rescale O; P_j = bf16/fp16(S)
// so the exp2 work of one tile runs while the tensor cores multiply the previous one, and
// the other consumer warpgroup fills the remaining gaps.
#pragma once

#include <math_constants.h>

#include "../common/block_info.cuh"
#include "../common/params.hpp"
#include "epilogue.cuh"
#include "kernel_traits.cuh"
#include "mainloop.cuh"
#include "mask.cuh"
#include "ptx.cuh"
#include "softmax.cuh"

namespace lvsa::cuda::sm90 {

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
__device__ __forceinline__ void consumer(const FwdParams& p, const QueryTile& qt, int b, int h,
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

  typename Tr::Walk walk;
  walk.init(p, qt);
  const bool frame_pair = Tr::kFramePairs && qt.two_frames();
  FramePairMask pairs{};
  if (frame_pair) pairs.init(p, qt);
  const int row = wg * Tr::kWGRows + (ctid >> 5) * 16 + (lane >> 2);  // this thread's first row

  float o[kD / 2], s[kN / 2], m[2], l[2], alpha[2];
  uint32_t pa[Tr::kPVSteps][4];
#pragma unroll
  for (int i = 0; i < kD / 2; ++i) o[i] = 0.0f;
  m[0] = m[1] = -CUDART_INF_F;
  l[0] = l[1] = 0.0f;

  // Quantised scores: the descale factors of this head's Q and K fold into the softmax scale.
  // The 16-bit kernels read p.scale_log2 where they use it, as before quantised scores existed:
  // a value held across the loop would change their register allocation (their PTX is unchanged).
  float quant_scale_log2 = p.scale_log2;
  if constexpr (Tr::kQuantScores)
    quant_scale_log2 *= p.q_descale[b * p.heads_q + h] * p.k_descale[b * p.heads_kv + h / p.group];

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
    if constexpr (Tr::kIntScores) int_scores_as_float<kN>(s);
    release(bar.k_empty, lane);
    mask_tile(s, walk, nvalid, frame_pair, pairs, row, lane);
    softmax<kN, Tr::kSkipExp, Tr::kProbShiftLog2>(s, m, l, alpha,
                                                  Tr::kQuantScores ? quant_scale_log2 : p.scale_log2);
    to_operand<Tr>(pa, s);
    walk.advance();
  }
  int j = 1;
  for (; walk.valid(); ++j) {
    const int st = Tr::stage(j), sp = Tr::stage(j - 1);
    const uint32_t par = Tr::round_parity(j), par_prev = Tr::round_parity(j - 1);
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
    gemm_qk<Tr>(s, q_addr, k_addr + st * Tr::kKBytes);
    ptx::wgmma_commit();
    gemm_pv<Tr>(o, pa, v_addr + sp * Tr::kVBytes);
    ptx::wgmma_commit();
    turns.end(false);
    ptx::wgmma_wait<1>();  // S of tile j is in
    ptx::fence_regs(s);
    if constexpr (Tr::kIntScores) int_scores_as_float<kN>(s);
    release(bar.k_empty + 8 * st, lane);
    mask_tile(s, walk, nvalid, frame_pair, pairs, row, lane);
    softmax<kN, Tr::kSkipExp, Tr::kProbShiftLog2>(s, m, l, alpha,
                                                  Tr::kQuantScores ? quant_scale_log2 : p.scale_log2);
    ptx::wgmma_wait<0>();  // P.V of tile j-1 is done: O and P may change
    ptx::fence_regs(o);
    ptx::fence_regs(s);
    ptx::fence_regs(pa);
    release(bar.v_empty + 8 * sp, lane);
    rescale_output<kD, Tr::kSkipRescaleIfSame>(o, alpha);
    to_operand<Tr>(pa, s);
    walk.advance();
  }
  // P.V of the last tile.
  {
    const int sp = Tr::stage(j - 1);
    ptx::mbar_wait(bar.v_full + 8 * sp, Tr::round_parity(j - 1));
    ptx::fence_proxy_async();
    ptx::fence_regs(o);
    ptx::fence_regs(pa);
    turns.begin();
    ptx::wgmma_fence();
    gemm_pv<Tr>(o, pa, v_addr + sp * Tr::kVBytes);
    ptx::wgmma_commit();
    turns.end(true);
    ptx::wgmma_wait<0>();
    ptx::fence_regs(o);
  }
  if constexpr (Tr::kIntScores)  // the row max carries int_scores_as_float's offset; lse must not
    for (float& mh : m) mh -= kIntScoreOffset * quant_scale_log2;
  if constexpr (Tr::kQuantValues) {  // l is 2^kProbShiftLog2 times the row sum; O carries v's descale
    for (float& mh : m) mh -= float(Tr::kProbShiftLog2);
    store_rows<Tr>(p, o, m, l, b, h, qt, qt.valid_rows, wg, ctid, p.v_descale[b * p.heads_kv + h / p.group]);
  } else {
    store_rows<Tr>(p, o, m, l, b, h, qt, qt.valid_rows, wg, ctid);
  }
}

}  // namespace lvsa::cuda::sm90
