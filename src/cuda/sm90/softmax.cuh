// Online softmax in fp32, in the exp2 domain, on the wgmma accumulator layout (mainloop.cuh):
// a thread holds 2 rows of S, each spread over the 4 lanes of a quad (two xor-shuffles per row
// reduction). The row sum stays per-lane until the epilogue.
#pragma once

#include <math_constants.h>

#include "../common/ptx.cuh"

namespace lvsa::cuda::sm90 {

// Scores -> probabilities in place (exp2 domain); returns the rescale factors of O.
// kNoExp (measurement only, wrong results): P = the scaled score, to bound the exp2 cost.
// kShiftLog2 > 0 (fp8 values): P and the row sum come out 2^kShiftLog2 times the probabilities,
// by one subtraction per row from the max; the row max keeps its value (epilogue: lse).
template <int kN, bool kNoExp = false, int kShiftLog2 = 0>
__device__ __forceinline__ void softmax(float (&s)[kN / 2], float (&m)[2], float (&l)[2], float (&alpha)[2],
                                        float scale_log2) {
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    float mx = -CUDART_INF_F;
#pragma unroll
    for (int i = 0; i < kN / 8; ++i) mx = fmaxf(mx, fmaxf(s[4 * i + 2 * h], s[4 * i + 2 * h + 1]));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    // Finite: a row's first tile has a key it attends (mask.cuh), and m only grows after it.
    const float m_new = fmaxf(m[h], mx * scale_log2);
    alpha[h] = ptx::exp2_approx(m[h] - m_new);  // first tile: exp2(-inf) = 0
    m[h] = m_new;
    const float m_exp = kShiftLog2 > 0 ? m_new - float(kShiftLog2) : m_new;
    float sum = 0.0f;
#pragma unroll
    for (int i = 0; i < kN / 8; ++i)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        const float x = fmaf(s[4 * i + 2 * h + e], scale_log2, -m_exp);
        const float pr = kNoExp ? x : ptx::exp2_approx(x);
        s[4 * i + 2 * h + e] = pr;
        sum += pr;
      }
    l[h] = l[h] * alpha[h] + sum;
  }
}

// O *= alpha per row, after the P.V of the previous tile has completed. kSkipUnchanged: once
// the running max settles, alpha is exactly 1 for every row of the warp and the multiplies are
// skipped.
template <int kD, bool kSkipUnchanged>
__device__ __forceinline__ void rescale_output(float (&o)[kD / 2], const float (&alpha)[2]) {
  if (!kSkipUnchanged || __any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
    for (int i = 0; i < kD / 8; ++i) {
      o[4 * i + 0] *= alpha[0];
      o[4 * i + 1] *= alpha[0];
      o[4 * i + 2] *= alpha[1];
      o[4 * i + 3] *= alpha[1];
    }
  }
}

}  // namespace lvsa::cuda::sm90
