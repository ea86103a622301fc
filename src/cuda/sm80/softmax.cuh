// Online softmax in fp32, in the exp2 domain (scores pre-multiplied by scale * log2 e, so one
// FFMA + one MUFU.EX2 per score). Each thread holds 2 rows per m16 tile; a row's 64 columns
// are spread over the 4 lanes of a quad, so row reductions are two xor-shuffles. The row sum
// stays per-lane until the epilogue: it is only needed once.
#pragma once

#include <math_constants.h>

#include "../common/ptx.cuh"

namespace lvsa::cuda::sm80 {

template <int kMTiles>
struct SoftmaxState {
  float m[kMTiles][2];  // running max (exp2 domain) of rows g, g+8
  float l[kMTiles][2];  // this lane's share of the running sum

  __device__ __forceinline__ void init() {
#pragma unroll
    for (int mi = 0; mi < kMTiles; ++mi)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        m[mi][h] = -CUDART_INF_F;
        l[mi][h] = 0.0f;
      }
  }

  // Turns the scores s into probabilities (in place) relative to the updated row max and
  // rescales the output accumulators o by exp2(m_old - m_new).
  // Rows of m16 tiles [kMi0, kMi1) only, so callers can interleave tiles with their MMAs.
  // kSkipUnchanged: once the running max settles (most tiles after the first few), alpha is
  // exactly 1 for every row of the warp and the 4*kDTiles rescaling multiplies are skipped.
  template <int kMi0 = 0, int kMi1 = kMTiles, bool kSkipUnchanged = false, int kNTiles, int kDTiles>
  __device__ __forceinline__ void update(float (&s)[kMTiles][kNTiles][4],
                                         float (&o)[kMTiles][kDTiles][4], float scale_log2) {
#pragma unroll
    for (int mi = kMi0; mi < kMi1; ++mi) {
      float alpha[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        float mx = -CUDART_INF_F;
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt) mx = fmaxf(mx, fmaxf(s[mi][nt][2 * h], s[mi][nt][2 * h + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        // Finite: a row's first tile has a key it attends (mask.cuh), and m only grows after it.
        const float m_new = fmaxf(m[mi][h], mx * scale_log2);
        // First tile: m_old = -inf gives alpha = 0, which also clears o and l.
        alpha[h] = ptx::exp2_approx(m[mi][h] - m_new);
        m[mi][h] = m_new;
        float sum = 0.0f;
#pragma unroll
        for (int nt = 0; nt < kNTiles; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const float pr = ptx::exp2_approx(fmaf(s[mi][nt][2 * h + e], scale_log2, -m_new));
            s[mi][nt][2 * h + e] = pr;
            sum += pr;
          }
        l[mi][h] = l[mi][h] * alpha[h] + sum;
      }
      if (!kSkipUnchanged || __any_sync(0xffffffffu, alpha[0] != 1.0f || alpha[1] != 1.0f)) {
#pragma unroll
        for (int nd = 0; nd < kDTiles; ++nd) {
          o[mi][nd][0] *= alpha[0];
          o[mi][nd][1] *= alpha[0];
          o[mi][nd][2] *= alpha[1];
          o[mi][nd][3] *= alpha[1];
        }
      }
    }
  }
};

}  // namespace lvsa::cuda::sm80
