// Quantised scores' inputs: per-(batch, head) scales, k's mean and the e4m3 or int8 values of q
// and k, in two passes over each tensor (read for the statistics, read again and written once).
//
// The same work in PyTorch ops (python/lvsa/backends/quantized_scores.py, kept as the reference) is
// a chain of reductions over strided dimensions and float32 temporaries: 5.2 ms at Wan 2.1
// 1.3B, T = 121 on an H200 (2026-12-02), a tenth of the kernel it feeds; these two kernels take
// 1.2 ms there for q and k together, against a 0.7 ms floor of their traffic
// (docs/perf/cuda_sm90.md, v6).
//
// Statistics: one block per (chunk of rows, head, batch) keeps, per feature, the sum, minimum
// and maximum over the chunk; the caller reduces the chunks (deterministically, in PyTorch), so
// no float atomics make the mean depend on the block order. Minimum and maximum per feature,
// not of |x|, because k's scale is that of k less its mean: max |k - mean| over the rows is
// max(max k - mean, mean - min k) per feature.
//
// Both: one thread per 8 features (16-byte loads), four loads in flight per thread. Values: a
// block per 16 rows, an 8-byte store per thread; q's dot product with k's mean is reduced over
// the head's threads with shuffles.
#include <cuda_bf16.h>
#include <cuda_fp8.h>

#include <cstdint>
#include <string>

#include "common/params.hpp"
#include "common/vec16.cuh"
#include "lvsa/cuda.hpp"
#include "prologue/score_tensor.cuh"

namespace lvsa::cuda {
namespace {

using prologue::check_rows, prologue::fail, prologue::launched, prologue::padded_rows, prologue::PaddedRows,
    prologue::row_of;

constexpr int kThreads = 256;
constexpr int kVec = kVec16;  // features per thread: a 16-byte load
// Loads each thread issues before it uses them: bytes in flight per SM are what a pass over
// memory is bound by (one 16-byte load per thread at a time reads at a fraction of HBM's rate).
constexpr int kUnroll = 4;
// Rows per block of the values: 32-bit index arithmetic within a block (a 64-bit division per
// vector costs more than its memory traffic).
constexpr int kQuantizeRows = 16;

// NaN-propagating min and max (fminf/fmaxf drop NaN): once NaN, it stays.
__device__ inline float max_keeping_nan(float m, float v) { return (v > m || v != v) ? v : m; }
__device__ inline float min_keeping_nan(float m, float v) { return (v < m || v != v) ? v : m; }

__global__ void __launch_bounds__(kThreads) score_stats_kernel(ScoreStatsParams p) {
  const ScoreTensor& x = p.x;
  const int lanes = x.head_dim / kVec;      // threads across one row
  const int row_groups = kThreads / lanes;  // rows read side by side
  const int feature = (threadIdx.x % lanes) * kVec;
  const int group = threadIdx.x / lanes;
  const int h = blockIdx.y;
  const int64_t b = blockIdx.z;
  const int64_t begin = int64_t(blockIdx.x) * kScoreStatsChunkRows;
  const int64_t end = min(begin + kScoreStatsChunkRows, x.rows);
  const PaddedRows padded = padded_rows(x, b);
  const __nv_bfloat16* base = row_of(x, b, 0, h) + feature;

  float sum[kVec], lo[kVec], hi[kVec];
#pragma unroll
  for (int i = 0; i < kVec; ++i) sum[i] = 0.0f, lo[i] = INFINITY, hi[i] = -INFINITY;
  for (int64_t row0 = begin + group; row0 < end; row0 += int64_t(kUnroll) * row_groups) {
    uint4 raw[kUnroll];
    bool live[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int64_t row = row0 + int64_t(u) * row_groups;
      live[u] = row < end && !padded.contains(row);
      if (live[u]) raw[u] = *reinterpret_cast<const uint4*>(base + row * x.row_stride);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      if (!live[u]) continue;
      float e[kVec];
      unpack<__nv_bfloat16>(raw[u], e);
#pragma unroll
      for (int i = 0; i < kVec; ++i)
        sum[i] += e[i], lo[i] = min_keeping_nan(lo[i], e[i]), hi[i] = max_keeping_nan(hi[i], e[i]);
    }
  }

  // The row groups' partials, reduced by one thread per feature in a fixed order.
  __shared__ float shared[3][kThreads * kVec];
#pragma unroll
  for (int i = 0; i < kVec; ++i) {
    const int at = group * x.head_dim + feature + i;
    shared[0][at] = sum[i], shared[1][at] = lo[i], shared[2][at] = hi[i];
  }
  __syncthreads();
  if (threadIdx.x >= x.head_dim) return;
  float s = 0.0f, mn = INFINITY, mx = -INFINITY;
  for (int g = 0; g < row_groups; ++g) {
    const int at = g * x.head_dim + threadIdx.x;
    s += shared[0][at];
    mn = min_keeping_nan(mn, shared[1][at]);
    mx = max_keeping_nan(mx, shared[2][at]);
  }
  const int64_t out = ((int64_t(blockIdx.x) * x.batch + b) * x.heads + h) * x.head_dim + threadIdx.x;
  p.sum[out] = s, p.min[out] = mn, p.max[out] = mx;
}

// Two 8-bit values of x / descale: e4m3 (saturating) or int8 (round to nearest even, clamped to
// +-127, as the reference's torch.round and clamp).
template <bool kInt8>
__device__ inline uint16_t quantize_pair(float a, float b) {
  if constexpr (kInt8) {
    const int lo = min(max(__float2int_rn(a), -127), 127), hi = min(max(__float2int_rn(b), -127), 127);
    return uint16_t((lo & 0xFF) | ((hi & 0xFF) << 8));
  } else {
    return __nv_cvt_float2_to_fp8x2(make_float2(a, b), __NV_SATFINITE, __NV_E4M3);
  }
}

template <bool kInt8>
__global__ void __launch_bounds__(kThreads) score_quantize_kernel(ScoreQuantizeParams p) {
  const ScoreTensor& x = p.x;
  const int lanes = x.head_dim / kVec;  // threads of one (row, head), adjacent in a warp
  const int row_vectors = x.heads * lanes;
  const int64_t b = blockIdx.y;
  const int64_t first_row = int64_t(blockIdx.x) * kQuantizeRows;
  const int vectors = int(min(int64_t(kQuantizeRows), x.rows - first_row)) * row_vectors;
  const PaddedRows padded = padded_rows(x, b);
  // The block's vectors in row-major order, kUnroll loads per thread in flight. The loop bound
  // is the same for every thread of a warp: threads past the end stay for the shuffles, with
  // nothing to load or store.
  for (int base = 0; base < vectors; base += kThreads * kUnroll) {
    uint4 raw[kUnroll];
    int h[kUnroll], feature[kUnroll];
    int64_t row[kUnroll];
    bool active[kUnroll], live[kUnroll];
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      const int index = base + u * kThreads + int(threadIdx.x);
      active[u] = index < vectors;
      const int r = active[u] ? index / row_vectors : 0;
      const int in_row = index - r * row_vectors;
      h[u] = in_row / lanes;
      feature[u] = (in_row - h[u] * lanes) * kVec;
      row[u] = first_row + r;
      live[u] = active[u] && !padded.contains(row[u]);
      raw[u] = live[u] ? *reinterpret_cast<const uint4*>(row_of(x, b, row[u], h[u]) + feature[u]) : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < kUnroll; ++u) {
      float e[kVec];
      unpack<__nv_bfloat16>(raw[u], e);  // a padded row or none: zeros
      const int64_t head_row = (b * x.rows + row[u]) * x.heads + h[u];
      if (p.score_mean) {
        const float* mean = p.score_mean + (b * (x.heads / p.group) + h[u] / p.group) * x.head_dim + feature[u];
        float dot = 0.0f;
#pragma unroll
        for (int i = 0; i < kVec; ++i) dot += e[i] * mean[i];
        for (int offset = lanes / 2; offset > 0; offset /= 2) dot += __shfl_xor_sync(0xffffffffu, dot, offset);
        if (active[u] && feature[u] == 0) p.mean_scores[head_row] = p.score_scale * dot;
      }
      if (!active[u]) continue;
      uint2 packed = make_uint2(0, 0);  // a padded row: zeros
      if (live[u]) {
        // x times the reciprocal of its scale, as the reference computes it (an IEEE reciprocal:
        // --use_fast_math would approximate 1 / descale).
        const float inverse = __frcp_rn(p.descale[b * x.heads + h[u]]);
        if (p.mean) {
          // Rounded to bfloat16 as the 16-bit subtraction k - mean of the reference rounds it.
          const float* mean = p.mean + (b * x.heads + h[u]) * x.head_dim + feature[u];
#pragma unroll
          for (int i = 0; i < kVec; ++i) e[i] = __bfloat162float(__float2bfloat16_rn(e[i] - mean[i]));
        }
        auto* out = reinterpret_cast<uint16_t*>(&packed);
#pragma unroll
        for (int i = 0; i < kVec / 2; ++i) out[i] = quantize_pair<kInt8>(e[2 * i] * inverse, e[2 * i + 1] * inverse);
      }
      *reinterpret_cast<uint2*>(static_cast<uint8_t*>(p.out) + head_row * x.head_dim + feature[u]) = packed;
    }
  }
}

void check(const ScoreTensor& x, int vec, const char* kernel) {
  if (x.head_dim < vec || x.head_dim % vec != 0 || 32 % (x.head_dim / vec) != 0)
    fail(kernel, "head_dim must be " + std::to_string(vec) + " x (a divisor of 32), got " +
                     std::to_string(x.head_dim));
  check_rows(x, kernel, "x");
}

}  // namespace

void score_stats(const ScoreStatsParams& p, cudaStream_t stream) {
  check(p.x, kVec, "score_stats");
  if (p.x.batch == 0 || p.x.rows == 0) return;
  const dim3 grid(unsigned((p.x.rows + kScoreStatsChunkRows - 1) / kScoreStatsChunkRows), unsigned(p.x.heads),
                  unsigned(p.x.batch));
  score_stats_kernel<<<grid, kThreads, 0, stream>>>(p);
  launched("launching score_stats");
}

void score_quantize(const ScoreQuantizeParams& p, cudaStream_t stream) {
  check(p.x, kVec, "score_quantize");
  if (p.score_mean && (p.group <= 0 || p.x.heads % p.group != 0 || !p.mean_scores))
    fail("score_quantize", "mean scores need a group dividing the heads and a mean_scores output");
  if (p.out_dtype != DType::E4M3 && p.out_dtype != DType::I8)
    fail("score_quantize", std::string("out_dtype must be float8_e4m3 or int8, got ") + dtype_name(p.out_dtype));
  if (p.x.batch == 0 || p.x.rows == 0) return;
  const dim3 grid(unsigned((p.x.rows + kQuantizeRows - 1) / kQuantizeRows), unsigned(p.x.batch));
  if (p.out_dtype == DType::I8)
    score_quantize_kernel<true><<<grid, kThreads, 0, stream>>>(p);
  else
    score_quantize_kernel<false><<<grid, kThreads, 0, stream>>>(p);
  launched("launching score_quantize");
}

}  // namespace lvsa::cuda
